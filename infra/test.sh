#!/usr/bin/env bash
# The whole test suite, as CI runs it: dependencies, formatting, lints, tests.
# Usage (from anywhere): bash infra/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash infra/install-deps.sh
# rustup's proxies live here; a shell that has not sourced ~/.cargo/env lacks them.
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

echo "==> cargo fmt --all --check"
cargo fmt --all --check
echo "==> cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

log=$(mktemp)
trap 'rm -f "$log"' EXIT

if cargo nextest --version >/dev/null 2>&1; then
    echo "==> cargo nextest run --workspace --no-fail-fast"
    if cargo nextest run --workspace --no-fail-fast 2>&1 | tee "$log"; then rust=0; else rust=$?; fi
    summary=$(grep -E '^ *Summary ' "$log" | tail -n 1 | sed 's/^ *//' || true)
else
    echo "==> cargo test --workspace --no-fail-fast"
    if cargo test --workspace --no-fail-fast 2>&1 | tee "$log"; then rust=0; else rust=$?; fi
    summary=$(awk '/^test result:/ {
            for (i = 1; i <= NF; i++) {
                if ($(i) ~ /^(passed|failed|ignored)/) { sub(/[;,]$/, "", $(i)); n[$(i)] += $(i - 1) }
            }
            targets++
        }
        END { if (targets) printf "cargo test: %d passed; %d failed; %d ignored (%d test targets)\n",
            n["passed"], n["failed"], n["ignored"], targets }' "$log")
fi

if [[ -n "${SCYLLA_URI:-}" ]]; then
    echo "==> ScyllaDB conformance suite ran against SCYLLA_URI=$SCYLLA_URI"
else
    echo "==> ScyllaDB conformance suite skipped: SCYLLA_URI is not set (embedded store suite ran)"
fi

echo
echo "${summary:-no test summary found (see the output above)}"
if [[ $rust -ne 0 ]]; then
    echo "FAILED (rust tests: exit $rust)"
    exit 1
fi
echo "OK"
