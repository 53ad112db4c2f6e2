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

# --- the ScyllaDB backend and the cluster (only when SCYLLA_URI names a CQL server) ---------
# The Python client stage again on the scylla backend, then the cluster fault tests
# (infra/starling/tests/cluster: infra/cluster.sh's processes, faults injected in turn).
scylla=0
scyllasummary=""
if [[ -n "${SCYLLA_URI:-}" ]]; then
    echo "==> python client stage on the scylla backend (CLIENTS_STORE=scylla, SCYLLA_URI=$SCYLLA_URI)"
    sclog=$(mktemp)
    trap 'rm -f "$log" "$pylog" "$sclog"' EXIT
    if CLIENTS_STORE=scylla bash infra/clients/run.sh 2>&1 | tee "$sclog"; then :; else scylla=$?; fi
    scpy=$(grep -E '[0-9]+ (passed|failed)' "$sclog" | tail -n 1 || true)
    echo "==> cluster fault tests (cargo test -p starling --test cluster -- --ignored)"
    if cargo test -p starling --test cluster -- --ignored --nocapture 2>&1 | tee "$sclog"; then :; else scylla=$?; fi
    scfault=$(grep -E '^test result:' "$sclog" | tail -n 1 || true)
    scyllasummary="$(count passed "$scpy") passed, $(count failed "$scpy") failed (python on scylla); $(count passed "$scfault") passed, $(count failed "$scfault") failed (cluster faults)"
else
    echo "==> cluster fault tests and the scylla client stage skipped: SCYLLA_URI is not set"
fi

passed=$(( $(count passed "${summary:-}") + $(count passed "${pysummary:-}") ))
failed=$(( $(count failed "${summary:-}") + $(count failed "${pysummary:-}") ))
if [[ -n "${SCYLLA_URI:-}" ]]; then
    passed=$(( passed + $(count passed "${scpy:-}") + $(count passed "${scfault:-}") ))
    failed=$(( failed + $(count failed "${scpy:-}") + $(count failed "${scfault:-}") ))
fi

echo
echo "rust: ${summary:-no test summary found (see the output above)}"
echo "python: ${pysummary:-no pytest summary found (see the output above)}"
[[ -n "$scyllasummary" ]] && echo "scylla: $scyllasummary"
if [[ $rust -ne 0 || $python -ne 0 || $scylla -ne 0 ]]; then
    echo "FAILED (rust tests: exit $rust, python stage: exit $python, scylla and cluster stages: exit $scylla)"
    echo "tests: $passed passed, $(( failed > 0 ? failed : 1 )) failed"
    exit 1
fi
echo "tests: $passed passed, $failed failed"
