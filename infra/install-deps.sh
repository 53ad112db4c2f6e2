#!/usr/bin/env bash
# Installs what building and testing Starling needs on a fresh Debian/Ubuntu machine:
# redis-server, nats-server, a C toolchain, Python with venv, curl, CA certificates, Node.js
# with npm and Chromium (the Node and browser client stages), and Rust with rustfmt and
# clippy. Installs only what is missing, so running it again does
# nothing; starts no service. Needs root, or sudo, only when something is missing.
set -euo pipefail

root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# rustup's proxies live here; a shell that has not sourced ~/.cargo/env lacks them.
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

has() { command -v "$1" >/dev/null 2>&1; }
# Debian puts daemons in /usr/sbin, which is often not on a user's PATH.
has_daemon() { has "$1" || [[ -x "/usr/sbin/$1" || -x "/usr/bin/$1" ]]; }
pkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}
# A cargo proxy from rustup exists before any toolchain does, so ask it for its version.
cargo_works() { cargo --version >/dev/null 2>&1; }
tools_work() { cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif has sudo; then
        sudo "$@"
    else
        echo "install-deps: need root or sudo to run: $*" >&2
        exit 1
    fi
}

apt_updated=false
apt_update_once() {
    if ! has apt-get; then
        echo "install-deps: apt-get not found; install the missing tools by hand" >&2
        exit 1
    fi
    if [[ $apt_updated == false ]]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update
        apt_updated=true
    fi
}
apt_install() {
    apt_update_once
    echo "install-deps: apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}
apt_has_candidate() {
    apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'
}

missing=()
has_daemon redis-server || missing+=(redis-server)
has_daemon nats-server || missing+=(nats-server)
{ has cc && has make; } || pkg_installed build-essential || missing+=(build-essential)
has pkg-config || missing+=(pkg-config)
has python3 || missing+=(python3)
# Debian and Ubuntu ship ensurepip, which `python3 -m venv` needs, in python3-venv.
{ has python3 && python3 -c 'import ensurepip, venv' >/dev/null 2>&1; } \
    || pkg_installed python3-venv || missing+=(python3-venv)
has curl || missing+=(curl)
[[ -s /etc/ssl/certs/ca-certificates.crt ]] || pkg_installed ca-certificates \
    || missing+=(ca-certificates)
# The Node client stage (masto.js, megalodon) and the browser stage (playwright-core driving
# the OS's Chromium at /usr/bin/chromium; no test tool downloads a browser).
has node || missing+=(nodejs)
has npm || missing+=(npm)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)

changed=false
if [[ ${#missing[@]} -gt 0 ]]; then
    apt_install "${missing[@]}"
    changed=true
fi

# Rust. sh.rustup.rs cannot be reached from our machines: rustup comes from the OS
# package when there is one, and the OS's cargo is the fallback.
if ! cargo_works; then
    changed=true
    apt_update_once
    if ! pkg_installed rustup && apt_has_candidate rustup; then
        apt_install rustup
        hash -r
    fi
    if has rustup && ! cargo_works; then
        rustup default stable || echo "install-deps: rustup could not install stable" \
            "(is static.rust-lang.org reachable?)" >&2
        hash -r
    fi
    if ! cargo_works; then
        if ! apt_has_candidate cargo; then
            echo "install-deps: cannot install Rust: no working rustup toolchain and apt" \
                "has no cargo package" >&2
            exit 1
        fi
        echo "install-deps: falling back to the OS's cargo" >&2
        apt_install cargo rustc
        hash -r
    fi
fi

# rustfmt and clippy, for `cargo fmt` and `cargo clippy`.
if ! tools_work; then
    changed=true
    if has rustup; then
        rustup component add rustfmt clippy
    else
        cargo fmt --version >/dev/null 2>&1 || apt_install rustfmt
        cargo clippy --version >/dev/null 2>&1 || apt_install rust-clippy
    fi
fi

# An OS cargo can be older than the workspace allows (Debian 12 has 1.65).
required=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$root_dir/Cargo.toml")
have=$(rustc --version | awk '{print $2}')
if [[ -n $required && $(printf '%s\n' "$required" "$have" | sort -V | head -n 1) != "$required" ]]; then
    echo "install-deps: rustc $have is older than the workspace's rust-version $required;" \
        "install a newer Rust (rustup) and run this again" >&2
    exit 1
fi

if [[ $changed == true ]]; then
    echo "install-deps: done (rustc $have)"
else
    echo "install-deps: everything is installed (rustc $have)"
fi
