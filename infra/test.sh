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
bash infra/deny.sh

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

# Real clients (Mastodon.py, toot) against a running server.
echo "==> python client stage (infra/clients/run.sh)"
pylog=$(mktemp)
trap 'rm -f "$log" "$pylog"' EXIT
if bash infra/clients/run.sh 2>&1 | tee "$pylog"; then python=0; else python=$?; fi
pysummary=$(grep -E '[0-9]+ (passed|failed)' "$pylog" | tail -n 1 || true)

count() { # count WORD LINE: the number before WORD in LINE, or 0
    local n
    n=$(grep -oE "[0-9]+ $1" <<<"$2" | head -n 1 | cut -d' ' -f1 || true)
    echo "${n:-0}"
}
passed=$(( $(count passed "${summary:-}") + $(count passed "${pysummary:-}") ))
failed=$(( $(count failed "${summary:-}") + $(count failed "${pysummary:-}") ))

echo
echo "rust: ${summary:-no test summary found (see the output above)}"
echo "python: ${pysummary:-no pytest summary found (see the output above)}"
if [[ $rust -ne 0 || $python -ne 0 ]]; then
    echo "FAILED (rust tests: exit $rust, python stage: exit $python)"
    echo "tests: $passed passed, $(( failed > 0 ? failed : 1 )) failed"
    exit 1
fi
echo "tests: $passed passed, $failed failed"
