#!/usr/bin/env bash
# Server CPU per request, closed-loop throughput and (with PROFILE=1) flame graphs of the two
# hot paths: a home read of 20 statuses and a post.
#
#   RUSTFLAGS="-C force-frame-pointers=yes" cargo build --profile profiling \
#       --target-dir target/prof -p starling -p starling-bench
#   bash bench/flamegraphs/measure.sh LABEL            # numbers only
#   PROFILE=1 bash bench/flamegraphs/measure.sh LABEL  # also perf record → LABEL-*.svg
#
# Starts one redis-server, nats-server -js and `starling serve` (all roles, embedded store)
# on free ports, seeds USERS users (Zipf graph, admin bulk import, POSTS posts each), builds
# their home timelines, then drives each workload closed-loop with wrk (CONNS connections,
# SECONDS seconds, a random seeded user's token per request). Server CPU is utime+stime from
# /proc/<pid>/stat over the measured run, divided by the requests wrk completed.
# Needs: wrk, perf, inferno (`cargo install inferno`; without it the raw stacks are kept in
# STACKS, default /tmp/starling-stacks). Env: BIN (target/prof/profiling),
# USERS (1000), POSTS (5), CONNS (32), SECONDS (15).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
PATH="$PATH:/usr/sbin:/usr/local/sbin:$HOME/.cargo/bin"
label=${1:?usage: measure.sh LABEL}
bin=${BIN:-$root/target/prof/profiling}
USERS=${USERS:-1000}
POSTS=${POSTS:-5}
CONNS=${CONNS:-32}
SECONDS_RUN=${SECONDS:-15}
out=$root/bench/flamegraphs
work=$(mktemp -d /tmp/starling-measure.XXXXXX)
pids=()
cleanup() {
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

rp=$(port); np=$(port); ap=$(port)
redis-server "$root/infra/redis/starling.conf" --port "$rp" --bind 127.0.0.1 --dir "$work" \
    --save "" --appendonly no --daemonize no --logfile "$work/redis.log" &
pids+=($!)
nats-server -a 127.0.0.1 -p "$np" -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
pids+=($!)
wait_port "$rp"; wait_port "$np"
cat >"$work/starling.toml" <<TOML
node_id = 0
[log]
filter = "warn,fjall=warn,lsm_tree=warn"
[store.embedded]
path = "$work/store"
[api]
listen = "127.0.0.1:$ap"
public_url = "http://127.0.0.1:$ap"
domain = "127.0.0.1:$ap"
[redis]
shards = ["redis://127.0.0.1:$rp"]
[nats]
url = "nats://127.0.0.1:$np"
[search]
path = "$work/search"
TOML
"$bin/starling" --config "$work/starling.toml" migrate >/dev/null
"$bin/starling" --config "$work/starling.toml" serve >"$work/starling.log" 2>&1 &
server=$!
pids+=($server)
wait_port "$ap"
base="http://127.0.0.1:$ap"
"$bin/starling-bench" seed --base "$base" --state "$work/state.json" --users "$USERS" \
    --exponent 2.0 --celebrities 1 --celebrity-followers $((USERS / 2)) --reciprocity 0.3 \
    --seed 1 --prefix m --posts-per-user "$POSTS" \
    --admin-import --starling "$bin/starling" --config "$work/starling.toml" >"$work/seed.log" 2>&1
"$bin/starling" --config "$work/starling.toml" admin feeds build --all >"$work/feeds.log" 2>&1

# A wrk script that sends each request as a random seeded user.
python3 - "$work/state.json" >"$work/tokens.lua" <<'PY'
import json, sys
users = json.load(open(sys.argv[1]))["users"]
print("tokens = {" + ",".join('"%s"' % u["token"] for u in users) + "}")
PY
cat >"$work/home.lua" <<'LUA'
math.randomseed(os.time())
request = function()
  local t = tokens[math.random(#tokens)]
  return wrk.format("GET", "/api/v1/timelines/home?limit=20", {["Authorization"] = "Bearer " .. t})
end
LUA
cat >"$work/post.lua" <<'LUA'
math.randomseed(os.time())
local n = 0
request = function()
  n = n + 1
  local t = tokens[math.random(#tokens)]
  local body = "status=measured+post+" .. n .. "+%23bench+https%3A%2F%2Fexample.org%2Fx"
  return wrk.format("POST", "/api/v1/statuses", {["Authorization"] = "Bearer " .. t,
    ["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
LUA
cpu() { awk '{print $14 + $15}' "/proc/$server/stat"; }
hz=$(getconf CLK_TCK)
run() { # name script seconds
    cat "$work/tokens.lua" "$work/$2" >"$work/run.lua"
    wrk -t1 -c"$CONNS" -d"$3"s --latency -s "$work/run.lua" "$base" >"$work/wrk.out"
}
echo "# $label: $(date -u +%FT%TZ), load before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
for w in home post; do
    run "$w" "$w.lua" 3 # warm-up: caches, timelines, JIT-free but allocator warm
    before=$(cpu)
    run "$w" "$w.lua" "$SECONDS_RUN"
    after=$(cpu)
    [[ -n "${DEBUG:-}" ]] && cat "$work/wrk.out" "$work/seed.log" && tail -3 "$work/feeds.log"
    reqs=$(awk '/requests in/ {print $1}' "$work/wrk.out")
    rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
    p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.out")
    errs=$(grep -E "Non-2xx|Socket errors" "$work/wrk.out" | tr '\n' ' ' || true)
    awk -v w="$w" -v d="$((after - before))" -v hz="$hz" -v n="$reqs" -v rps="$rps" -v p99="$p99" -v e="$errs" \
        'BEGIN { printf "%s: %d requests, %.0f req/s closed-loop ('"$CONNS"' conns), p99 %s, server CPU %.1f us/request %s\n", w, n, rps, p99, d / hz / n * 1e6, e }'
    if [[ "${PROFILE:-0}" == 1 ]]; then
        cat "$work/tokens.lua" "$work/$w.lua" >"$work/run.lua"
        wrk -t1 -c"$CONNS" -d12s -s "$work/run.lua" "$base" >/dev/null &
        wrkpid=$!
        sleep 1
        perf record -F 999 -g -p "$server" -o "$work/perf.data" -- sleep 10 >/dev/null 2>&1
        wait "$wrkpid" || true
        perf script -i "$work/perf.data" 2>/dev/null >"$work/$w.stacks"
        if command -v inferno-collapse-perf >/dev/null; then
            inferno-collapse-perf <"$work/$w.stacks" >"$work/$w.folded"
            inferno-flamegraph --title "$label: $w" <"$work/$w.folded" >"$out/$label-$w.svg"
            echo "  flame graph: bench/flamegraphs/$label-$w.svg"
        else
            mkdir -p "${STACKS:-/tmp/starling-stacks}"
            cp "$work/$w.stacks" "${STACKS:-/tmp/starling-stacks}/$label-$w.stacks"
            echo "  inferno missing: stacks kept in ${STACKS:-/tmp/starling-stacks}/$label-$w.stacks"
        fi
    fi
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
