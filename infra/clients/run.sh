#!/usr/bin/env bash
# The Python client stage: real Mastodon clients from PyPI (Mastodon.py and toot) drive a
# running Starling over HTTP.
#
# Builds `starling` (debug), starts two redis-server shards, a JetStream nats-server and
# `starling serve` on free loopback ports with a fresh data directory, waits for /ready, runs
# `pytest -q infra/clients` against it and stops everything it started on exit.
#
# Usage (from anywhere): bash infra/clients/run.sh [PYTEST ARGS...]
# Exits with pytest's exit code. Env: STARLING_LOG__FILTER (default warn) for the server log,
# CLIENTS_VENV to put the virtualenv elsewhere (default target/clients-venv), CLIENTS_STARLING_BIN to
# test an already built binary instead of building one.
# CLIENTS_STORE=scylla runs the server on the ScyllaDB backend against the CQL server that
# SCYLLA_URI (host:port) names, in a fresh keyspace dropped afterwards (default: embedded).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

# rustup's proxies live here; a shell that has not sourced ~/.cargo/env lacks them.
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
# Debian puts the daemons in /usr/sbin, which is often not on a user's PATH.
export PATH="$PATH:/usr/sbin:/usr/local/sbin"

need_deps=false
for tool in redis-server nats-server python3 curl cargo; do
    command -v "$tool" >/dev/null 2>&1 || need_deps=true
done
if [[ $need_deps == true ]]; then
    bash infra/install-deps.sh
fi

# --- the clients: a virtualenv with the pinned packages --------------------------------------
venv="${CLIENTS_VENV:-$root/target/clients-venv}"
req="$root/infra/clients/requirements.txt"
if [[ ! -x "$venv/bin/python" ]]; then
    echo "==> creating the client virtualenv at $venv"
    python3 -m venv "$venv"
fi
# Reinstall only when requirements.txt changed since the last successful install.
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "==> pip install -r infra/clients/requirements.txt"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
    echo "$want" >"$stamp"
fi

# --- the store: embedded (default), or a fresh keyspace on the CQL server SCYLLA_URI names ---
store_env=(STARLING_STORE__BACKEND=embedded)
keyspace=""
case "${CLIENTS_STORE:-embedded}" in
    embedded) ;;
    scylla)
        if [[ -z "${SCYLLA_URI:-}" ]]; then
            echo "CLIENTS_STORE=scylla needs SCYLLA_URI=host:port (a ScyllaDB or Cassandra 4+ node)" >&2
            exit 2
        fi
        # The driver drops the run's keyspace afterwards.
        "$venv/bin/python" -c 'import cassandra' 2>/dev/null ||
            "$venv/bin/python" -m pip install -q --disable-pip-version-check 'cassandra-driver==3.29.2'
        keyspace="starling_clients_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
        store_env=(
            STARLING_STORE__BACKEND=scylla
            STARLING_STORE__SCYLLA__NODES="[\"$SCYLLA_URI\"]"
            STARLING_STORE__SCYLLA__KEYSPACE="$keyspace"
            STARLING_STORE__SCYLLA__MIGRATE_ON_START=true
        )
        echo "==> store: ScyllaDB backend on $SCYLLA_URI, keyspace $keyspace"
        ;;
    *)
        echo "CLIENTS_STORE must be embedded or scylla, not ${CLIENTS_STORE}" >&2
        exit 2
        ;;
esac

# --- the server ------------------------------------------------------------------------------
if [[ -n "${CLIENTS_STARLING_BIN:-}" ]]; then
    bin="$CLIENTS_STARLING_BIN"
    echo "==> using the starling binary $bin (CLIENTS_STARLING_BIN)"
else
    echo "==> cargo build -p starling"
    cargo build -q -p starling
    bin="${CARGO_TARGET_DIR:-$root/target}/debug/starling"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/starling-clients.XXXXXX")
pids=()
cleanup() {
    local status=$?
    # Reverse order: the server first, then the services it uses.
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
    done
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        local n=0
        while kill -0 "${pids[i]}" 2>/dev/null && ((n < 100)); do
            sleep 0.1
            n=$((n + 1))
        done
        kill -KILL "${pids[i]}" 2>/dev/null || true
        wait "${pids[i]}" 2>/dev/null || true
    done
    if [[ -n "$keyspace" ]]; then
        "$venv/bin/python" -c '
import sys
from cassandra.cluster import Cluster
host, _, port = sys.argv[1].rpartition(":")
cluster = Cluster([host], port=int(port))
cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {sys.argv[2]}", timeout=60)
cluster.shutdown()
' "$SCYLLA_URI" "$keyspace" || echo "could not drop keyspace $keyspace" >&2
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Free loopback ports: bound to port 0 together, so they are distinct, then released.
read -r p_api p_redis1 p_redis2 p_nats < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(4):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)

wait_port() { # name port pid
    local deadline=$((SECONDS + 20))
    until (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; do
        if ! kill -0 "$3" 2>/dev/null; then
            echo "$1 exited before listening on port $2; its log:" >&2
            tail -n 30 "$tmp/$1.log" >&2 || true
            exit 1
        fi
        if ((SECONDS > deadline)); then
            echo "$1 did not listen on port $2 within 20 s; its log:" >&2
            tail -n 30 "$tmp/$1.log" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
}

for shard in 1 2; do
    port_var="p_redis$shard"
    mkdir -p "$tmp/redis$shard"
    redis-server --port "${!port_var}" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$tmp/redis$shard" >"$tmp/redis$shard.log" 2>&1 &
    pids+=($!)
    wait_port "redis$shard" "${!port_var}" "$!"
done

mkdir -p "$tmp/nats"
nats-server -a 127.0.0.1 -p "$p_nats" -js -sd "$tmp/nats" >"$tmp/nats.log" 2>&1 &
pids+=($!)
wait_port nats "$p_nats" "$!"

base_url="http://127.0.0.1:$p_api"
echo "==> starling serve on $base_url"
env "${store_env[@]}" \
    STARLING_API__LISTEN="127.0.0.1:$p_api" \
    STARLING_API__PUBLIC_URL="$base_url" \
    STARLING_API__DOMAIN="127.0.0.1:$p_api" \
    STARLING_STORE__EMBEDDED__PATH="$tmp/store" \
    STARLING_SEARCH__PATH="$tmp/search" \
    STARLING_REDIS__SHARDS="[\"redis://127.0.0.1:$p_redis1\",\"redis://127.0.0.1:$p_redis2\"]" \
    STARLING_NATS__URL="nats://127.0.0.1:$p_nats" \
    STARLING_LOG__FILTER="${STARLING_LOG__FILTER:-warn}" \
    "$bin" serve >"$tmp/starling.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")

deadline=$((SECONDS + 60))
until curl -fsS -o /dev/null --max-time 2 "$base_url/ready" 2>/dev/null; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "starling exited before it was ready; the end of its log:" >&2
        tail -n 40 "$tmp/starling.log" >&2 || true
        exit 1
    fi
    if ((SECONDS > deadline)); then
        echo "starling was not ready within 60 s (GET $base_url/ready); the end of its log:" >&2
        curl -sS --max-time 2 "$base_url/ready" >&2 || true
        echo >&2
        tail -n 40 "$tmp/starling.log" >&2 || true
        exit 1
    fi
    sleep 0.2
done

# --- the tests -------------------------------------------------------------------------------
echo "==> pytest -q infra/clients"
set +e
STARLING_BASE_URL="$base_url" \
    STARLING_CLIENTS_VENV="$venv" \
    PYTHONDONTWRITEBYTECODE=1 \
    "$venv/bin/python" -m pytest -q --tb=short -p no:cacheprovider infra/clients "$@" 2>&1 | tee "$tmp/pytest.out"
code=${PIPESTATUS[0]}
set -e
if [[ $code -ne 0 ]]; then
    echo "--- the end of the server log ---"
    tail -n 40 "$tmp/starling.log" || true
    echo "---"
    # Repeat pytest's summary so that it stays the closing line.
    grep -E '^(=+ )?[0-9]+ (passed|failed|error|errors|skipped|deselected)|^(=+ )?no tests ran' \
        "$tmp/pytest.out" | tail -n 1 || true
fi
exit "$code"
