#!/usr/bin/env bash
# Record a CPU profile of `starling serve` under a harness workload and render it as a flame
# graph.
#
#   bash bench/profile.sh home|post|mixed [OUT.svg]
#
# It builds `starling` and `starling-bench` with the `profiling` profile (release with line
# tables) and frame pointers, in their own target directory (target/profiling-fp) so the
# flags do not invalidate normal builds; starts one redis-server, nats-server -js and the
# server (all roles, embedded store) on free ports; seeds a small graph through the API;
# runs the workload closed-loop (`home`: home reads of 20 statuses, `post`: posts, `mixed`:
# dsb-mixed) while `perf record -F 999 -g` samples the server over the measured window;
# and renders the samples with inferno. It prints the SVG's path and the server's CPU per
# request (from /proc, over the same window; perf's sampling adds a few percent to it).
#
# Env: DURATION (seconds measured, default 15), WARMUP (default 3), CONNECTIONS (closed-loop
# connections, default 8), USERS (seeded users, default 200), POSTS (posts per user, default
# 20, so home pages are full), HARNESS_SVG=path also profiles the harness itself over the
# same window (its own flame graph), KEEP=1 keeps the work directory (perf.data, logs, report).
# Needs perf (Debian: linux-perf, installed when missing) with perf_event_paranoid ≤ 1 or
# root, and inferno (`cargo install inferno --locked` when missing; or FLAMEGRAPH_DIR).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
export PATH="$PATH:/usr/sbin:/usr/local/sbin:${HOME:-/root}/.cargo/bin"

what=${1:-}
case "$what" in
    home) workload=read-only ;;
    post) workload=write-only ;;
    mixed) workload=dsb-mixed ;;
    *)
        echo "usage: bash bench/profile.sh home|post|mixed [OUT.svg]" >&2
        exit 2
        ;;
esac
out=${2:-$root/bench/flamegraphs/$what.svg}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-8}
USERS=${USERS:-200}
POSTS=${POSTS:-20}

# --- tools -----------------------------------------------------------------------------------
if ! command -v perf >/dev/null 2>&1; then
    echo "==> installing perf (Debian package linux-perf)"
    sudo=""
    [[ $(id -u) == 0 ]] || sudo=sudo
    $sudo apt-get install -y linux-perf
fi
# inferno renders the graph; FLAMEGRAPH_DIR (a checkout of Brendan Gregg's FlameGraph, whose
# perl scripts inferno ports) is used instead when set and inferno is not installed.
collapse=inferno-collapse-perf
render=inferno-flamegraph
if ! command -v inferno-flamegraph >/dev/null 2>&1; then
    if [[ -n "${FLAMEGRAPH_DIR:-}" ]]; then
        collapse=$FLAMEGRAPH_DIR/stackcollapse-perf.pl
        render=$FLAMEGRAPH_DIR/flamegraph.pl
    else
        echo "==> cargo install inferno --locked"
        cargo install inferno --locked
    fi
fi
paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 2)
if [[ $(id -u) != 0 && $paranoid -gt 1 ]]; then
    echo "perf_event_paranoid is $paranoid: run as root or 'sysctl kernel.perf_event_paranoid=1'" >&2
    exit 1
fi

# --- build -----------------------------------------------------------------------------------
target=$root/target/profiling-fp
echo "==> building starling and starling-bench (profile profiling, frame pointers) in $target"
RUSTFLAGS="-C force-frame-pointers=yes" cargo build --profile profiling \
    -p starling -p starling-bench --target-dir "$target"
starling=$target/profiling/starling
bench=$target/profiling/starling-bench

# --- Redis, NATS and the server on free ports ------------------------------------------------
work=$(mktemp -d /tmp/starling-profile.XXXXXX)
pids=()
cleanup() {
    if [[ -n "${server:-}" ]]; then
        kill "$server" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$server" 2>/dev/null || true
    fi
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$work"; else echo "work directory kept: $work"; fi
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 20000))
        port_open "$p" || { echo "$p"; return; }
    done
}
wait_port() {
    for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.1; done
    echo "nothing listens on port $1" >&2
    return 1
}

redis_port=$(free_port)
mkdir -p "$work/redis"
redis-server "$root/infra/redis/starling.conf" --port "$redis_port" --bind 127.0.0.1 \
    --dir "$work/redis" --save "" --appendonly no --daemonize no \
    --logfile "$work/redis/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
wait_port "$redis_port"
nats_port=$(free_port)
nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
nats_pid=$!
pids+=("$nats_pid")
wait_port "$nats_port"

api_port=$(free_port)
cat >"$work/starling.toml" <<EOF
node_id = 0
[log]
filter = "warn,fjall=warn,lsm_tree=warn"
[store.embedded]
path = "$work/store"
[api]
listen = "127.0.0.1:$api_port"
public_url = "http://127.0.0.1:$api_port"
domain = "127.0.0.1:$api_port"
[redis]
shards = ["redis://127.0.0.1:$redis_port"]
[nats]
url = "nats://127.0.0.1:$nats_port"
[search]
path = "$work/search"
EOF
base="http://127.0.0.1:$api_port"
echo "==> starting starling serve on $base (work directory $work)"
"$starling" --config "$work/starling.toml" migrate >/dev/null
"$starling" --config "$work/starling.toml" serve >"$work/starling.log" 2>&1 &
server=$!
pids+=("$server")
wait_port "$api_port"

echo "==> seeding $USERS users, $POSTS posts each, through the API"
"$bench" seed --base "$base" --state "$work/state.json" --users "$USERS" --exponent 2.0 \
    --min-followers 5 --reciprocity 0.3 --seed 1 --prefix p --posts-per-user "$POSTS" \
    --no-progress
# Let fan-out and the indexer finish with the seeded posts before measuring.
sleep 3

# --- the workload, with perf sampling the server over its measured window --------------------
echo "==> $workload closed loop on $CONNECTIONS connections: ${WARMUP}s warm-up, ${DURATION}s measured"
"$bench" run --state "$work/state.json" --workload "$workload" --name "profile-$what" \
    --out "$work/run" --closed-loop "$CONNECTIONS" --warmup "$WARMUP" --duration "$DURATION" \
    --ceiling-seconds 2 --server-pid "$server" --redis-pid "$redis_pid" --nats-pid "$nats_pid" \
    >"$work/run.md" 2>"$work/run.log" &
harness=$!
# The harness measures the /health ceiling first, then says when the workload starts.
for _ in $(seq 1 600); do
    grep -q "closed loop: $workload" "$work/run.log" 2>/dev/null && break
    kill -0 "$harness" 2>/dev/null || break
    sleep 0.1
done
sleep "$WARMUP"
if [[ -n "${HARNESS_SVG:-}" ]]; then
    perf record -F 999 -g -p "$harness" -o "$work/perf-harness.data" -- sleep "$DURATION" \
        2>"$work/perf-harness.log" &
    harness_perf=$!
fi
perf record -F 999 -g -p "$server" -o "$work/perf.data" -- sleep "$DURATION" 2>"$work/perf.log" || {
    cat "$work/perf.log" >&2
    exit 1
}
# perf on the harness ends with an error status when the harness exits first.
if [[ -n "${harness_perf:-}" ]]; then wait "$harness_perf" || true; fi
if ! wait "$harness"; then
    cat "$work/run.log" >&2
    exit 1
fi

# --- the flame graph -------------------------------------------------------------------------
mkdir -p "$(dirname "$out")"
per_request=$(jq -r '.closed_loop.cpu.server_us_per_request // "unknown" | if type == "number" then (. * 10 | round / 10) else . end' "$work/run/report.json")
throughput=$(jq -r '.closed_loop.throughput_rps | round' "$work/run/report.json")
share=$(jq -r '.closed_loop.share_of_health * 1000 | round / 10' "$work/run/report.json")
perf script -i "$work/perf.data" 2>/dev/null | "$collapse" >"$work/collapsed.txt"
"$render" --title "starling serve: $what ($workload closed loop, $CONNECTIONS connections, $throughput req/s, server ${per_request} µs CPU/request)" \
    <"$work/collapsed.txt" >"$out"
if [[ -n "${HARNESS_SVG:-}" ]]; then
    mkdir -p "$(dirname "$HARNESS_SVG")"
    perf script -i "$work/perf-harness.data" 2>/dev/null | "$collapse" |
        "$render" --title "starling-bench: $what ($workload closed loop, $CONNECTIONS connections)" \
            >"$HARNESS_SVG"
    echo "harness flame graph: $HARNESS_SVG"
fi
grep -h "CPU during the closed loop" "$work/run.md" || true
echo "throughput: $throughput req/s ($share% of GET /health closed loop on $CONNECTIONS connections)"
echo "server CPU per request: $per_request µs"
echo "flame graph: $out"
