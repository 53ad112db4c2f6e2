#!/usr/bin/env bash
# Run Starling on this machine with every role (api, fanout, indexer) on the embedded store:
# install what is missing, build, start Redis and NATS if they are not running, serve.
# Usage (from anywhere): bash infra/run.sh [--config FILE] [other `starling serve` flags]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash infra/install-deps.sh
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
PATH="$PATH:/usr/sbin:/usr/local/sbin"

echo "==> building starling (release)"
source infra/build-bin.sh
bin=$(build_starling --release)
mkdir -p data

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Redis on 6379 (the default shard) unless one is already there.
if port_open 6379; then
    echo "==> using the Redis already on 127.0.0.1:6379"
else
    echo "==> starting redis-server on 127.0.0.1:6379 (log: data/redis.log)"
    redis-server "$PWD/infra/redis/starling.conf" --port 6379 --bind 127.0.0.1 \
        --dir "$PWD/data" --save "" --appendonly no --daemonize yes --logfile "$PWD/data/redis.log"
fi

# NATS with JetStream on 4222 unless one is already there.
if port_open 4222; then
    echo "==> using the NATS already on 127.0.0.1:4222"
else
    echo "==> starting nats-server -js on 127.0.0.1:4222 (log: data/nats.log)"
    mkdir -p data/nats
    nohup nats-server -a 127.0.0.1 -p 4222 -js -sd "$PWD/data/nats" >"$PWD/data/nats.log" 2>&1 &
fi
for _ in $(seq 1 50); do port_open 6379 && port_open 4222 && break; sleep 0.2; done

echo "==> applying the store schema"
"$bin" migrate "$@"

echo "==> starling serve (all roles) on http://127.0.0.1:8080; Ctrl-C stops it gracefully"
exec "$bin" serve "$@"
