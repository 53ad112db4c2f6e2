#!/usr/bin/env bash
# The client stages: real Mastodon clients drive one running Starling over HTTP.
#
#   python   Mastodon.py and toot from PyPI (pytest, infra/clients/*.py)
#   openapi  schemathesis fuzzes every operation of /api/openapi.json (infra/clients/openapi/fuzz.py)
#   node     masto.js and megalodon from npm (node --test, infra/clients/node/test/*.test.mjs)
#   browser  Debian's Chromium driven by playwright-core (infra/clients/node/test/browser.test.mjs)
#
# Builds `starling` (debug), starts two redis-server shards, a JetStream nats-server and
# `starling serve` on free loopback ports with a fresh data directory, waits for /ready, runs
# the stages against it one after the other and stops everything it started on exit. Each
# stage ends with a line `stage NAME: N passed, M failed`; test.sh adds them up.
#
# Usage (from anywhere): bash infra/clients/run.sh [PYTEST ARGS...]
# Exits non-zero if any stage failed. Env: CLIENT_STAGES (default "python openapi node browser"),
# STARLING_LOG__FILTER (default warn) for the server log, CLIENTS_VENV to put the virtualenv
# elsewhere (default target/clients-venv), CLIENTS_STARLING_BIN to test an already built binary
# instead of building one, CLIENTS_OUTPUT (default target/client-output) for the browser
# stage's screenshots.
# Rate limits stay on (clients read the X-RateLimit headers on every answer) but far above what
# one test run from one address does.
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

stages="${CLIENT_STAGES:-python openapi node browser}"
has_stage() { [[ " $stages " == *" $1 "* ]]; }

need_deps=false
for tool in redis-server nats-server python3 curl cargo; do
    command -v "$tool" >/dev/null 2>&1 || need_deps=true
done
if has_stage node || has_stage browser; then
    for tool in node npm; do
        command -v "$tool" >/dev/null 2>&1 || need_deps=true
    done
fi
if has_stage browser && [[ ! -x /usr/bin/chromium ]]; then
    need_deps=true
fi
if [[ $need_deps == true ]]; then
    bash infra/install-deps.sh
fi

# --- the clients: a virtualenv and node_modules with the pinned packages ----------------------
venv="${CLIENTS_VENV:-$root/target/clients-venv}"
if has_stage python || has_stage openapi; then
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
fi

node_dir="$root/infra/clients/node"
if has_stage node || has_stage browser; then
    # Reinstall only when the lockfile changed since the last successful `npm ci`. No test
    # tool may download a browser: Chromium is Debian's.
    stamp="$node_dir/node_modules/.lock.sha256"
    want=$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        echo "==> npm ci (infra/clients/node)"
        (cd "$node_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
        echo "$want" >"$stamp"
    fi
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
    STARLING_MEDIA__PATH="$tmp/media" \
    STARLING_REDIS__SHARDS="[\"redis://127.0.0.1:$p_redis1\",\"redis://127.0.0.1:$p_redis2\"]" \
    STARLING_NATS__URL="nats://127.0.0.1:$p_nats" \
    STARLING_LOG__FILTER="${STARLING_LOG__FILTER:-warn}" \
    STARLING_RATE_LIMITS__API_PER_TOKEN__LIMIT=100000 \
    STARLING_RATE_LIMITS__API_PER_ACCOUNT__LIMIT=100000 \
    STARLING_RATE_LIMITS__API_PER_IP__LIMIT=100000 \
    STARLING_RATE_LIMITS__SIGN_UP_PER_IP__LIMIT=100000 \
    STARLING_RATE_LIMITS__SIGN_IN_PER_IP__LIMIT=100000 \
    STARLING_RATE_LIMITS__SIGN_IN_PER_ACCOUNT__LIMIT=100000 \
    STARLING_RATE_LIMITS__POSTS_PER_ACCOUNT__LIMIT=100000 \
    STARLING_RATE_LIMITS__MEDIA_PER_ACCOUNT__LIMIT=100000 \
    STARLING_LIMITS__PASSWORD_HASH_QUEUE=1024 \
    STARLING_LIMITS__POLL_MIN_EXPIRATION_SECS=1 \
    STARLING_PUSH__ALLOW_PRIVATE_ADDRESSES=true \
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
output="${CLIENTS_OUTPUT:-$root/target/client-output}"
mkdir -p "$output"
summaries=()
overall=0

server_log_tail() {
    echo "--- the end of the server log ---"
    tail -n 40 "$tmp/starling.log" || true
    echo "---"
}

if has_stage python; then
    echo "==> stage python: pytest -q infra/clients"
    set +e
    STARLING_BASE_URL="$base_url" \
        STARLING_CLIENTS_VENV="$venv" \
        PYTHONDONTWRITEBYTECODE=1 \
        "$venv/bin/python" -m pytest -q --tb=short -p no:cacheprovider infra/clients "$@" 2>&1 | tee "$tmp/pytest.out"
    code=${PIPESTATUS[0]}
    set -e
    line=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error|errors|skipped|deselected)|^(=+ )?no tests ran' \
        "$tmp/pytest.out" | tail -n 1 || true)
    p=$(grep -oE '[0-9]+ passed' <<<"$line" | cut -d' ' -f1 || true)
    f=$(grep -oE '[0-9]+ (failed|errors?)' <<<"$line" | awk '{n += $1} END {print n + 0}' || true)
    summaries+=("stage python: ${p:-0} passed, ${f:-0} failed")
    if [[ $code -ne 0 ]]; then
        overall=1
        server_log_tail
    fi
fi

if has_stage openapi; then
    echo "==> stage openapi: schemathesis against $base_url/api/openapi.json"
    set +e
    "$venv/bin/python" infra/clients/openapi/fuzz.py "$base_url" "$output" 2>&1 | tee "$tmp/openapi.out"
    code=${PIPESTATUS[0]}
    set -e
    line=$(grep -E '^openapi: [0-9]+ passed, [0-9]+ failed' "$tmp/openapi.out" | tail -n 1 || true)
    p=$(grep -oE '[0-9]+ passed' <<<"$line" | cut -d' ' -f1 || true)
    f=$(grep -oE '[0-9]+ failed' <<<"$line" | cut -d' ' -f1 || true)
    if [[ $code -ne 0 && "${f:-0}" == 0 ]]; then f=1; fi
    summaries+=("stage openapi: ${p:-0} passed, ${f:-0} failed")
    if [[ $code -ne 0 ]]; then
        overall=1
        server_log_tail
    fi
fi

node_stage() { # NAME FILES...
    local name=$1
    shift
    echo "==> stage $name: node --test ${*#"$node_dir/"}"
    set +e
    (cd "$node_dir" && STARLING_BASE_URL="$base_url" STARLING_TEST_OUTPUT="$output" \
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
        node --test --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="$tmp/$name.tap" "$@") 2>&1
    local code=$?
    set -e
    local p f
    p=$(grep -E '^# pass [0-9]+' "$tmp/$name.tap" | tail -n 1 | awk '{print $3}' || true)
    # Cancelled tests (a failed hook, a timeout) count as failed.
    f=$(grep -E '^# (fail|cancelled) [0-9]+' "$tmp/$name.tap" | awk '{n += $3} END {print n + 0}' || true)
    if [[ $code -ne 0 && "${f:-0}" == 0 ]]; then f=1; fi
    summaries+=("stage $name: ${p:-0} passed, ${f:-0} failed")
    if [[ $code -ne 0 ]]; then
        overall=1
        server_log_tail
    fi
}

if has_stage node; then
    mapfile -t node_tests < <(find "$node_dir/test" -maxdepth 1 -name '*.test.mjs' ! -name 'browser*.test.mjs' | sort)
    node_stage node "${node_tests[@]#"$node_dir/"}"
fi
if has_stage browser; then
    node_stage browser test/browser.test.mjs
fi

echo
printf '%s\n' "${summaries[@]}"
exit "$overall"
