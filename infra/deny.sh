#!/usr/bin/env bash
# Supply chain: `cargo deny check` against deny.toml (advisories, licences, bans, sources).
# Installs cargo-deny from crates.io when it is missing. The advisory check needs the RustSec
# database, a git repository on GitHub: when it cannot be fetched and no earlier copy exists,
# the other three checks still run and this says plainly that advisories were skipped.
# Usage (from anywhere): bash infra/deny.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! cargo deny --version >/dev/null 2>&1; then
    echo "==> installing cargo-deny (cargo install cargo-deny --locked)"
    cargo install cargo-deny --locked
fi

# cargo-deny reads `cargo metadata` offline, which needs every crate of the lock file, those
# of other platforms too (a build fetches only this machine's): fetch them all first.
cargo fetch --locked >/dev/null

db_dir="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
if timeout 120 cargo deny fetch db >/dev/null 2>&1; then
    echo "==> cargo deny check (advisories, licences, bans, sources)"
    cargo deny --offline check --hide-inclusion-graph
elif compgen -G "$db_dir/*/" >/dev/null; then
    echo "==> cargo deny check (advisories from the copy in $db_dir: GitHub unreachable, it may be stale)"
    cargo deny --offline check --hide-inclusion-graph
else
    echo "==> cargo deny check licenses bans sources"
    echo "    ADVISORIES SKIPPED: the RustSec database (https://github.com/rustsec/advisory-db)"
    echo "    cannot be fetched from this machine and no earlier copy is in $db_dir"
    cargo deny --offline check --hide-inclusion-graph licenses bans sources
fi
