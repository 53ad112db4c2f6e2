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

# The S3 half of the media storage conformance suite and the S3 end-to-end media test run
# against moto (infra/s3-server.sh: PyPI into target/s3-venv, a free port), unless S3_ENDPOINT
# already names an S3-compatible server; skipped, saying so, when moto cannot be had.
s3_started=false
stop_s3() { if [[ $s3_started == true ]]; then bash infra/s3-server.sh stop; fi; }
if [[ -z "${S3_ENDPOINT:-}" ]]; then
    echo "==> starting an S3-compatible server for the S3 media storage tests (infra/s3-server.sh)"
    if bash infra/s3-server.sh start; then
        # shellcheck disable=SC1091
        source target/s3-server/env
        s3_started=true
    else
        echo "==> S3 media storage cases will be skipped: no S3-compatible server"
    fi
fi

log=$(mktemp)
trap 'rm -f "$log"; stop_s3' EXIT

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

if [[ -n "${S3_ENDPOINT:-}" ]]; then
    echo "==> S3 media storage conformance suite ran against S3_ENDPOINT=$S3_ENDPOINT"
else
    echo "==> S3 media storage conformance suite skipped: S3_ENDPOINT is not set (file-system suite ran)"
fi
stop_s3
s3_started=false

if [[ -n "${SCYLLA_URI:-}" ]]; then
    echo "==> ScyllaDB conformance suite ran against SCYLLA_URI=$SCYLLA_URI"
else
    echo "==> ScyllaDB conformance suite skipped: SCYLLA_URI is not set (embedded store suite ran)"
fi

# Real clients against one running server: Mastodon.py and toot (python), schemathesis
# fuzzing the OpenAPI document (openapi), masto.js and megalodon (node), Chromium through the
# sign-in pages (browser). Each stage ends with `stage NAME: N passed, M failed`.
echo "==> client stages: python, openapi, node, browser (infra/clients/run.sh)"
clog=$(mktemp)
trap 'rm -f "$log" "$clog"; stop_s3' EXIT
if bash infra/clients/run.sh 2>&1 | tee "$clog"; then clients=0; else clients=$?; fi
stage_lines=$(grep -E '^stage [a-z]+: [0-9]+ passed, [0-9]+ failed$' "$clog" || true)

count() { # count WORD LINES: the sum of the numbers before WORD in LINES
    { grep -oE "[0-9]+ $1" <<<"$2" || true; } | awk '{n += $1} END {print n + 0}'
}

# --- the ScyllaDB backend and the cluster (only when SCYLLA_URI names a CQL server) ---------
# The client stages again on the scylla backend, then the cluster fault tests
# (infra/starling/tests/cluster: infra/cluster.sh's processes, faults injected in turn).
scylla=0
scylla_lines=""
if [[ -n "${SCYLLA_URI:-}" ]]; then
    echo "==> client stages on the scylla backend (CLIENTS_STORE=scylla, SCYLLA_URI=$SCYLLA_URI)"
    sclog=$(mktemp)
    trap 'rm -f "$log" "$clog" "$sclog"; stop_s3' EXIT
    if CLIENTS_STORE=scylla bash infra/clients/run.sh 2>&1 | tee "$sclog"; then :; else scylla=$?; fi
    scylla_lines=$(grep -E '^stage [a-z]+: [0-9]+ passed, [0-9]+ failed$' "$sclog" | sed 's/^stage /stage scylla-/' || true)
    echo "==> cluster fault tests (cargo test -p starling --test cluster -- --ignored)"
    if cargo test -p starling --test cluster -- --ignored --nocapture 2>&1 | tee "$sclog"; then :; else scylla=$?; fi
    scfault=$(grep -E '^test result:' "$sclog" | tail -n 1 || true)
    scylla_lines="$scylla_lines
stage cluster-faults: $(count passed "$scfault") passed, $(count failed "$scfault") failed"
else
    echo "==> cluster fault tests and the scylla client stages skipped: SCYLLA_URI is not set"
fi

passed=$(( $(count passed "${summary:-}") + $(count passed "$stage_lines") + $(count passed "$scylla_lines") ))
failed=$(( $(count failed "${summary:-}") + $(count failed "$stage_lines") + $(count failed "$scylla_lines") ))

echo
echo "rust: ${summary:-no test summary found (see the output above)}"
if [[ -n $stage_lines ]]; then
    echo "$stage_lines"
else
    echo "client stages: no summary found (see the output above)"
fi
if [[ -n "$scylla_lines" ]]; then
    echo "$scylla_lines"
fi
if [[ $rust -ne 0 || $clients -ne 0 || $scylla -ne 0 ]]; then
    echo "FAILED (rust tests: exit $rust, client stages: exit $clients, scylla and cluster stages: exit $scylla)"
    echo "tests: $passed passed, $(( failed > 0 ? failed : 1 )) failed"
    exit 1
fi
echo "tests: $passed passed, $failed failed"
