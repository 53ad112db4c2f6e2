#!/usr/bin/env bash
# Reproduce bench/RESULTS.md on this machine: build release binaries, start a fresh
# `starling serve` (all roles, embedded store) with its own Redis shards and NATS on free
# ports, seed the graphs, run the required configurations with sweeps and ceilings, and
# write bench/RESULTS.md with its charts and JSON under bench/results/.
#
#   bash bench/run-results.sh
#
# Environment: CARGO_TARGET_DIR (where the release binaries are built), SHARDS (Redis
# shards, default 3), DURATION / WARMUP (seconds per sweep step, default 10 / 2),
# P99_MS (the sweep's bound, default 10), TWITTER_USERS (default 100000),
# CELEBRITY_FOLLOWERS (default 50000), CLOSED_CONNECTIONS (connections of the closed-loop
# runs, default 64), MAX_RSS_MB (the server is stopped if its resident memory passes this,
# default 12000), KEEP=1 keeps the work directory.
#
# Every run reports the CPU split over its measured window (server, Redis, NATS and the
# harness, from /proc; the pids are passed below) and the share of its sends that went out
# over 1 ms late; the closed-loop runs (home read of 20 statuses and dsb-mixed, on the
# 1,000-user graph) report their throughput as a share of `GET /health` closed loop on as
# many connections in the same run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
PATH="$PATH:/usr/sbin:/usr/local/sbin"

SHARDS=${SHARDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
P99_MS=${P99_MS:-10}
TWITTER_USERS=${TWITTER_USERS:-100000}
CELEBRITY_FOLLOWERS=${CELEBRITY_FOLLOWERS:-50000}
CLOSED_CONNECTIONS=${CLOSED_CONNECTIONS:-64}
MAX_RSS_MB=${MAX_RSS_MB:-12000}
target=${CARGO_TARGET_DIR:-$root/target}

echo "==> building release binaries (starling, starling-bench)"
cargo build --release -p starling -p starling-bench
starling=$target/release/starling
bench=$target/release/starling-bench

# Other work on the machine skews every figure: wait (up to two minutes) for the load the
# build left to settle, and note what it was.
cores=$(nproc)
for _ in $(seq 1 24); do
    awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v c="$cores" 'BEGIN { exit !(l <= c / 2) }' && break
    sleep 5
done
start_load=$(cut -d' ' -f1-3 /proc/loadavg)

work=$(mktemp -d /tmp/starling-bench.XXXXXX)
results=$root/bench/results
rm -rf "$results"
mkdir -p "$results"
commands=$work/commands.sh
notes=$work/notes.md
echo "# Everything below is run by: bash bench/run-results.sh" >"$commands"
: >"$notes"
pids=()

cleanup() {
    # The server first (it stops gracefully while Redis and NATS are still there).
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
# Run a command, and record it (as run, paths under the temporary work directory shown
# as $WORK) for the results page.
record() {
    echo "${*//$work/\$WORK}" >>"$commands"
    "$@"
}

echo "==> starting $SHARDS redis-server shards and nats-server -js (work directory $work)"
shards=()
redis_pids=()
for i in $(seq 1 "$SHARDS"); do
    port=$(free_port)
    mkdir -p "$work/redis$i"
    redis-server "$root/infra/redis/starling.conf" --port "$port" --bind 127.0.0.1 \
        --dir "$work/redis$i" --save "" --appendonly no --daemonize no \
        --logfile "$work/redis$i/redis.log" &
    pids+=($!)
    redis_pids+=($!)
    wait_port "$port"
    shards+=("redis://127.0.0.1:$port")
done
nats_port=$(free_port)
nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
nats_pid=$!
pids+=($nats_pid)
wait_port "$nats_port"

api_port=$(free_port)
shard_list=$(printf '"%s", ' "${shards[@]}")
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
shards = [${shard_list%, }]
[nats]
url = "nats://127.0.0.1:$nats_port"
[search]
path = "$work/search"
[limits]
# Seeding signs up thousands of users at once.
password_hash_queue = 4096
[rate_limits]
# The harness is one address driving many accounts at full speed.
enabled = false
EOF
base="http://127.0.0.1:$api_port"
redis_flags=()
for s in "${shards[@]}"; do redis_flags+=(--redis "$s"); done

echo "==> starting starling serve (all roles) on $base"
"$starling" --config "$work/starling.toml" migrate >/dev/null
"$starling" --config "$work/starling.toml" serve >"$work/starling.log" 2>&1 &
server=$!
pids+=($server)
wait_port "$api_port"
# A server whose memory runs away is stopped before it takes the machine down with it.
(
    while kill -0 "$server" 2>/dev/null; do
        rss=$(($(ps -o rss= -p "$server" 2>/dev/null || echo 0) / 1024))
        if ((rss > MAX_RSS_MB)); then
            echo "**The server was stopped: its resident memory reached ${rss} MiB (limit ${MAX_RSS_MB} MiB).**" >>"$notes"
            kill -9 "$server"
        fi
        sleep 1
    done
) &
pids+=($!)

{
    echo "# Server: starling serve (all roles, embedded store) with $SHARDS Redis shards and nats-server -js,"
    echo "# all on this machine; config written by bench/run-results.sh to \$WORK/starling.toml."
} >>"$commands"

# Whose CPU time each run reports (server, Redis shards, NATS; the harness finds itself).
cpu_flags=(--server-pid "$server" --nats-pid "$nats_pid")
for p in "${redis_pids[@]}"; do cpu_flags+=(--redis-pid "$p"); done
sweep_flags=(--sweep --p99-ms "$P99_MS" --warmup "$WARMUP" --duration "$DURATION" "${cpu_flags[@]}")

# 1. dsb-mixed on a 1,000-user graph, seeded through the public API (one account of it a
#    celebrity followed by half the users, for the fallback below).
echo "==> dsb-mixed: seeding 1,000 users through the API"
record "$bench" seed --base "$base" --state "$work/dsb.json" --users 1000 --exponent 2.0 \
    --min-followers 5 --celebrities 1 --celebrity-followers 500 --reciprocity 0.3 --seed 1 \
    --prefix d --posts-per-user 5
echo "==> dsb-mixed: sweep, then closed loop on $CLOSED_CONNECTIONS connections"
record "$bench" run --state "$work/dsb.json" --workload dsb-mixed --name dsb-mixed-1k \
    --out "$results/dsb-mixed-1k" "${sweep_flags[@]}" --sweep-start 100 --ceilings "${redis_flags[@]}" \
    --closed-loop "$CLOSED_CONNECTIONS"
reports=(--report "$results/dsb-mixed-1k/report.json")
# Home reads of 20 statuses alone, as fast as the server answers them.
echo "==> home read: closed loop on $CLOSED_CONNECTIONS connections"
record "$bench" run --state "$work/dsb.json" --workload read-only --name home-read-1k \
    --out "$results/home-read-1k" --closed-loop "$CLOSED_CONNECTIONS" --warmup "$WARMUP" \
    --duration "$DURATION" "${cpu_flags[@]}"
reports+=(--report "$results/home-read-1k/report.json")

# 2. twitter on a 100,000-user Zipf graph with a 50,000-follower celebrity. Seeding that
#    many users goes through the admin bulk import (password hashing alone over the API
#    would take about an hour).
echo "==> twitter: seeding $TWITTER_USERS users with the admin bulk import"
record "$bench" seed --base "$base" --state "$work/twitter.json" --users "$TWITTER_USERS" \
    --exponent 2.0 --celebrities 1 --celebrity-followers "$CELEBRITY_FOLLOWERS" \
    --reciprocity 0.1 --seed 2 --prefix t --posts-per-user 1 \
    --admin-import --starling "$starling" --config "$work/starling.toml"
# A bulk import writes follows straight to the store, so no home timeline holds them yet (the
# import says so); an operator builds them, as a running service has them for its users.
echo "==> twitter: building home timelines after the import"
record "$starling" --config "$work/starling.toml" admin feeds build --all
twitter_name=twitter-${TWITTER_USERS}
twitter_state=$work/twitter.json
streaming_note=$(curl -s -o /dev/null -w '%{http_code}' "$base/api/v1/streaming/health" || true)
if [[ "$streaming_note" != 200 ]]; then
    {
        echo "**Streaming is not in this build** (\`/api/v1/streaming/health\` answered $streaming_note), so"
        echo "fan-out lag is measured by followers' home reads only; the sockets the \`twitter\` run"
        echo "tries to open are reported as failed."
        echo
    } >>"$notes"
fi
echo "==> twitter: sweep"
record "$bench" run --state "$twitter_state" --workload twitter --name "$twitter_name" \
    --out "$results/$twitter_name" "${sweep_flags[@]}" --sweep-start 100 --stream-share 0.01 \
    --ceilings "${redis_flags[@]}"
reports+=(--report "$results/$twitter_name/report.json")
echo "==> celebrity"
record "$bench" run --state "$twitter_state" --workload celebrity --name "celebrity-$twitter_name" \
    --out "$results/celebrity-$twitter_name" --celebrity-posts 5 --celebrity-sample 200 \
    --celebrity-streams 50
reports+=(--report "$results/celebrity-$twitter_name/report.json")

load=$(cut -d' ' -f1-3 /proc/loadavg)
{
    echo "Load average before the run (after the build settled): $start_load on $cores cores; at"
    echo "the end of the run: $load (the run itself: server, Redis, NATS and the load generator)."
    if awk -v l="${start_load%% *}" -v c="$cores" 'BEGIN { exit !(l > c) }'; then
        echo "**Other work was using this machine when the run started (load above the core count),"
        echo "so these figures show contention, not Starling's capacity;** the report's share of sends"
        echo "over 1 ms late shows how far the load generator itself was held back. Regenerate on a"
        echo "quiet machine."
    fi
    echo
} >>"$notes"
echo "==> writing bench/RESULTS.md"
"$bench" page "${reports[@]}" --commands "$commands" --notes "$notes" --out "$root/bench/RESULTS.md"
