#!/usr/bin/env bash
# A local Starling cluster on loopback ports, every part a separate process:
#   - a NATS cluster of 3 servers with JetStream (the event stream at 3 replicas)
#   - 3 Redis shards
#   - 2 api nodes behind HAProxy (health checks on /ready; WebSocket and SSE passed through)
#   - 2 fan-out workers and 2 indexers (each indexer writes the search index its api node reads)
#   - all on the CQL server (ScyllaDB or Cassandra 4+) that SCYLLA_URI=host:port names: the
#     embedded store belongs to one process, so a cluster needs the real database.
#
# Usage (from anywhere):
#   SCYLLA_URI=127.0.0.1:9042 bash infra/cluster.sh     build, start, wait until ready
#   bash infra/cluster.sh status                         each process, its pid and state
#   bash infra/cluster.sh --down                         stop everything it started
#   bash infra/cluster.sh kill|stop|start NAME           one process (kill -9, SIGTERM, again)
#
# Env: CLUSTER_DIR (logs, pids, data; default data/cluster), CLUSTER_HTTP_PORT (the load
# balancer, default 8080), CLUSTER_PORT_BASE (first of the internal ports, default 17000),
# CLUSTER_KEYSPACE (default starling_cluster), CLUSTER_PROFILE (release or debug, default
# release), CLUSTER_STARLING_BIN (an already built binary: no build), STARLING_LOG__FILTER.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$PATH:/usr/sbin:/usr/local/sbin"
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

dir="${CLUSTER_DIR:-$root/data/cluster}"
http_port="${CLUSTER_HTTP_PORT:-8080}"
base="${CLUSTER_PORT_BASE:-17000}"
keyspace="${CLUSTER_KEYSPACE:-starling_cluster}"
profile="${CLUSTER_PROFILE:-release}"

# Ports: NATS clients base+1..3, NATS routes base+11..13, Redis base+21..23, api base+31..32,
# /metrics of fan-out workers base+41..42 and of indexers base+43..44.
nats_port() { echo $((base + $1)); }
route_port() { echo $((base + 10 + $1)); }
redis_port() { echo $((base + 20 + $1)); }
api_port() { echo $((base + 30 + $1)); }
metrics_port() { echo $((base + 40 + $1)); }

# Every process this script starts, in start order (stopped in reverse).
procs=(nats1 nats2 nats3 redis1 redis2 redis3 api1 api2 fanout1 fanout2 indexer1 indexer2 haproxy)

pid_of() { [[ -f "$dir/$1.pid" ]] && cat "$dir/$1.pid"; }
alive() {
    local pid
    pid=$(pid_of "$1") || return 1
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

status() {
    local name state any=false
    printf '%-10s %-8s %s\n' PROCESS PID STATE
    for name in "${procs[@]}"; do
        if alive "$name"; then state=running any=true; elif [[ -f "$dir/$name.pid" ]]; then state=dead; else state=-; fi
        printf '%-10s %-8s %s\n' "$name" "$(pid_of "$name" || echo -)" "$state"
    done
    if [[ $any == true ]]; then
        echo "load balancer: http://127.0.0.1:$http_port  (ready: $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$http_port/ready" || true))"
        echo "metrics: api nodes :$(api_port 1) :$(api_port 2), fan-out :$(metrics_port 1) :$(metrics_port 2), indexers :$(metrics_port 3) :$(metrics_port 4) (/metrics)"
        echo "logs and pids: $dir"
    fi
}

stop_group() { # names...: SIGTERM to each, then wait for each (kill -9 after 15 s)
    local name pid n
    for name in "$@"; do
        alive "$name" && kill -TERM "$(pid_of "$name")" 2>/dev/null || true
    done
    for name in "$@"; do
        pid=$(pid_of "$name") || continue
        n=0
        while kill -0 "$pid" 2>/dev/null && ((n < 150)); do sleep 0.1; n=$((n + 1)); done
        if kill -0 "$pid" 2>/dev/null; then
            echo "$name (pid $pid) did not stop in 15 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/$name.pid"
    done
}

down() {
    # Starling's processes first, while NATS and Redis still answer: a stopping fan-out
    # worker or indexer acks what it finished and flushes to NATS before it exits.
    stop_group haproxy indexer2 indexer1 fanout2 fanout1 api2 api1
    stop_group redis3 redis2 redis1 nats3 nats2 nats1
    echo "cluster stopped (logs kept in $dir)"
}

run() { # name: start $dir/name.cmd in the background, log to $dir/name.log, pid to $dir/name.pid
    echo "--- started $(date -u +%FT%TZ)" >>"$dir/$1.log"
    nohup bash "$dir/$1.cmd" >>"$dir/$1.log" 2>&1 &
    echo $! >"$dir/$1.pid"
}

one() { # action name: act on one process of a running cluster (fault drills, tests)
    local name=$2 pid n
    [[ " ${procs[*]} " == *" $name "* ]] || { echo "no process $name (one of: ${procs[*]})" >&2; exit 2; }
    [[ -f "$dir/$name.cmd" ]] || { echo "$name was never started from $dir" >&2; exit 1; }
    case "$1" in
        kill) alive "$name" && kill -KILL "$(pid_of "$name")" ;;
        stop)
            pid=$(pid_of "$name") || exit 0
            kill -TERM "$pid" 2>/dev/null || exit 0
            n=0
            while kill -0 "$pid" 2>/dev/null && ((n < 150)); do sleep 0.1; n=$((n + 1)); done
            kill -KILL "$pid" 2>/dev/null || true
            ;;
        start)
            alive "$name" && { echo "$name is running" >&2; exit 1; }
            run "$name"
            ;;
    esac
    return 0
}

case "${1:-up}" in
    --down | down) down; exit 0 ;;
    status) status; exit 0 ;;
    kill | stop | start) one "$1" "${2:-}"; exit 0 ;;
    up | --up) ;;
    *) echo "usage: bash infra/cluster.sh [--down | status | kill NAME | stop NAME | start NAME]" >&2; exit 2 ;;
esac

if [[ -z "${SCYLLA_URI:-}" ]]; then
    echo "infra/cluster.sh needs a CQL server: set SCYLLA_URI=host:port (ScyllaDB, or Cassandra 4+)." >&2
    echo "The embedded store belongs to one process, so a cluster of processes cannot share it;" >&2
    echo "for one machine without a database, use bash infra/run.sh instead. Nothing was started." >&2
    exit 2
fi
for name in "${procs[@]}"; do
    if alive "$name"; then
        echo "a cluster is already running from $dir ($name is up); bash infra/cluster.sh --down first" >&2
        exit 1
    fi
done

# --- dependencies: redis, nats, a C toolchain, Rust (install-deps.sh) and HAProxy -----------
need_deps=false
for tool in redis-server nats-server python3 curl cargo; do
    command -v "$tool" >/dev/null 2>&1 || need_deps=true
done
[[ $need_deps == true ]] && bash infra/install-deps.sh
if ! command -v haproxy >/dev/null 2>&1; then
    echo "==> installing HAProxy from the OS packages"
    sudo_cmd=""
    [[ $(id -u) -ne 0 ]] && sudo_cmd=sudo
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq haproxy >/dev/null
fi

# --- the binary, wherever cargo puts it -----------------------------------------------------
if [[ -n "${CLUSTER_STARLING_BIN:-}" ]]; then
    bin="$CLUSTER_STARLING_BIN"
else
    echo "==> building starling ($profile)"
    source infra/build-bin.sh
    if [[ $profile == release ]]; then bin=$(build_starling --release); else bin=$(build_starling); fi
fi
echo "==> binary: $bin"

for p in $(nats_port 1) $(nats_port 2) $(nats_port 3) $(route_port 1) $(route_port 2) $(route_port 3) \
    $(redis_port 1) $(redis_port 2) $(redis_port 3) $(api_port 1) $(api_port 2) "$http_port" \
    $(metrics_port 1) $(metrics_port 2) $(metrics_port 3) $(metrics_port 4); do
    if port_open "$p"; then
        echo "port $p on 127.0.0.1 is taken; pick other ports with CLUSTER_PORT_BASE / CLUSTER_HTTP_PORT" >&2
        exit 1
    fi
done

mkdir -p "$dir"
start() { # name command... : write $dir/name.cmd (its settings and command), run it
    local name=$1 kv
    shift
    {
        echo "# Written by infra/cluster.sh: how $name is started (bash infra/cluster.sh start $name)."
        { env | grep -E '^STARLING_' || true; } | while IFS= read -r kv; do printf 'export %q\n' "$kv"; done
        printf 'exec'
        printf ' %q' "$@"
        echo
    } >"$dir/$name.cmd"
    run "$name"
}
wait_port() { # name port
    local deadline=$((SECONDS + 30))
    until port_open "$2"; do
        if ! alive "$1"; then
            echo "$1 exited before listening on port $2; the end of $dir/$1.log:" >&2
            tail -n 30 "$dir/$1.log" >&2
            exit 1
        fi
        ((SECONDS < deadline)) || { echo "$1 did not listen on port $2 within 30 s" >&2; exit 1; }
        sleep 0.1
    done
}

# --- NATS: a cluster of 3 with JetStream ----------------------------------------------------
routes="nats://127.0.0.1:$(route_port 1),nats://127.0.0.1:$(route_port 2),nats://127.0.0.1:$(route_port 3)"
for i in 1 2 3; do
    mkdir -p "$dir/nats$i"
    start "nats$i" nats-server -a 127.0.0.1 -p "$(nats_port "$i")" -n "nats$i" -js -sd "$dir/nats$i" \
        --cluster_name starling --cluster "nats://127.0.0.1:$(route_port "$i")" --routes "$routes"
done
for i in 1 2 3; do wait_port "nats$i" "$(nats_port "$i")"; done
nats_url="nats://127.0.0.1:$(nats_port 1),nats://127.0.0.1:$(nats_port 2),nats://127.0.0.1:$(nats_port 3)"

# --- Redis: 3 shards ------------------------------------------------------------------------
shards=""
for i in 1 2 3; do
    mkdir -p "$dir/redis$i"
    start "redis$i" redis-server "$root/infra/redis/starling.conf" --port "$(redis_port "$i")" \
        --bind 127.0.0.1 --dir "$dir/redis$i" --save "" --appendonly no --daemonize no
    shards+="${shards:+,}\"redis://127.0.0.1:$(redis_port "$i")\""
done
for i in 1 2 3; do wait_port "redis$i" "$(redis_port "$i")"; done

# --- settings every Starling process shares -------------------------------------------------
export STARLING_STORE__BACKEND=scylla
export STARLING_STORE__SCYLLA__NODES="[\"$SCYLLA_URI\"]"
export STARLING_STORE__SCYLLA__KEYSPACE="$keyspace"
export STARLING_REDIS__SHARDS="[$shards]"
export STARLING_NATS__URL="$nats_url"
export STARLING_NATS__REPLICAS=3
export STARLING_API__PUBLIC_URL="http://127.0.0.1:$http_port"
export STARLING_API__DOMAIN="127.0.0.1:$http_port"
export STARLING_LOG__FILTER="${STARLING_LOG__FILTER:-info,fjall=warn,lsm_tree=warn}"

echo "==> applying the store schema to keyspace $keyspace on $SCYLLA_URI"
"$bin" migrate >>"$dir/migrate.log" 2>&1 || { tail -n 20 "$dir/migrate.log" >&2; exit 1; }

# --- Starling: node ids 1-2 api, 3-4 fan-out, 5-6 indexers ----------------------------------
# Indexer i writes search index i, which api node i reads (on real machines: the same host).
for i in 1 2; do
    STARLING_NODE_ID=$i STARLING_API__LISTEN="127.0.0.1:$(api_port "$i")" \
        STARLING_SEARCH__PATH="$dir/search$i" \
        start "api$i" "$bin" serve --roles api
done
for i in 1 2; do
    STARLING_NODE_ID=$((2 + i)) STARLING_METRICS__LISTEN="127.0.0.1:$(metrics_port "$i")" \
        start "fanout$i" "$bin" serve --roles fanout
done
for i in 1 2; do
    STARLING_NODE_ID=$((4 + i)) STARLING_SEARCH__PATH="$dir/search$i" \
        STARLING_METRICS__LISTEN="127.0.0.1:$(metrics_port $((2 + i)))" \
        start "indexer$i" "$bin" serve --roles indexer
done
for i in 1 2; do wait_port "api$i" "$(api_port "$i")"; done

# --- HAProxy in front of the api nodes ------------------------------------------------------
cat >"$dir/haproxy.cfg" <<EOF
# Written by infra/cluster.sh.
global
    maxconn 4096
defaults
    mode http
    log stdout format raw local0 info
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # WebSocket after the upgrade, and long SSE responses (the server sends a heartbeat
    # every streaming.heartbeat_secs), stay open this long without traffic.
    timeout tunnel 1h
    # A request that never reached a node (connection refused) is tried on the other one.
    retries 2
    option redispatch
    retry-on conn-failure
frontend starling
    bind 127.0.0.1:$http_port
    # When no node is ready, a dependency they all share is down (a Redis shard, the
    # store): send traffic to the nodes that are alive, which degrade on their own (reads
    # from the store while a shard is down, 503 for writes while the store is down), rather
    # than answer every request with HAProxy's 503.
    use_backend alive if { nbsrv(api) eq 0 }
    default_backend api
backend api
    balance roundrobin
    option httpchk GET /ready
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
    server api1 127.0.0.1:$(api_port 1) check
    server api2 127.0.0.1:$(api_port 2) check
backend alive
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
    server api1 127.0.0.1:$(api_port 1) check
    server api2 127.0.0.1:$(api_port 2) check
EOF
haproxy -c -q -f "$dir/haproxy.cfg"
start haproxy haproxy -db -f "$dir/haproxy.cfg"
wait_port haproxy "$http_port"

echo "==> waiting for the cluster to be ready (GET http://127.0.0.1:$http_port/ready)"
deadline=$((SECONDS + 120))
until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$http_port/ready" 2>/dev/null; do
    for name in "${procs[@]}"; do
        if ! alive "$name"; then
            echo "$name exited; the end of $dir/$name.log:" >&2
            tail -n 30 "$dir/$name.log" >&2
            exit 1
        fi
    done
    if ((SECONDS > deadline)); then
        echo "not ready within 120 s; /ready of each api node:" >&2
        for i in 1 2; do curl -sS --max-time 2 "http://127.0.0.1:$(api_port "$i")/ready" >&2 || true; echo >&2; done
        exit 1
    fi
    sleep 0.5
done
status
echo "==> up: http://127.0.0.1:$http_port; stop with: bash infra/cluster.sh --down"
