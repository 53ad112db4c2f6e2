#!/usr/bin/env bash
# An S3-compatible server for the tests of the S3 media backend: moto's `moto_server`, from
# PyPI into its own virtualenv (target/s3-venv), on a free port of 127.0.0.1, with an empty
# bucket whose objects anyone may read. Objects are answered unsigned at {endpoint}/{bucket}/{key}, which the tests use as
# `media.public_url`.
#
#   bash infra/s3-server.sh start   install if needed, start, create the bucket, and write
#                                   the variables the tests read to target/s3-server/env
#                                   (S3_ENDPOINT, S3_BUCKET, S3_REGION, S3_ACCESS_KEY_ID,
#                                   S3_SECRET_ACCESS_KEY); `source` that file
#   bash infra/s3-server.sh stop    stop the server started by `start`
#
# `start` exits 1 with a message when moto cannot be installed (no PyPI) or does not start:
# the S3 cases then skip, saying so. Any other S3-compatible server works the same way: set
# the variables by hand (the bucket must exist; each test works under its own prefix).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/target/s3-server"
venv="${S3_VENV:-$root/target/s3-venv}"
moto_version="5.2.5"
bucket="starling-test"

stop() {
    if [[ -f "$dir/pid" ]]; then
        kill "$(cat "$dir/pid")" 2>/dev/null || true
        rm -f "$dir/pid" "$dir/env"
    fi
}

case "${1:-}" in
start) ;;
stop)
    stop
    exit 0
    ;;
*)
    echo "usage: bash infra/s3-server.sh start|stop" >&2
    exit 2
    ;;
esac

stop
mkdir -p "$dir"
if [[ ! -x "$venv/bin/moto_server" || "$(cat "$venv/.moto-version" 2>/dev/null)" != "$moto_version" ]]; then
    echo "==> installing moto[server]==$moto_version into $venv" >&2
    if ! { python3 -m venv "$venv" >&2 \
        && "$venv/bin/python" -m pip install -q --disable-pip-version-check \
            "moto[server]==$moto_version" >&2; }; then
        echo "s3-server: could not install moto from PyPI; the S3 cases will be skipped" >&2
        exit 1
    fi
    echo "$moto_version" >"$venv/.moto-version"
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/log" 2>&1 &
echo $! >"$dir/pid"
for _ in $(seq 1 100); do
    if curl -sf -o /dev/null -X PUT "$endpoint/$bucket"; then
        # Anyone may read objects (as a bucket behind media.public_url is set up); writes
        # stay signed.
        policy='{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::'"$bucket"'/*"}]}'
        if ! curl -sf -o /dev/null -X PUT -H 'Content-Type: application/json' \
            --data-binary "$policy" "$endpoint/$bucket?policy"; then
            echo "s3-server: could not set the bucket's public-read policy" >&2
            stop
            exit 1
        fi
        cat >"$dir/env" <<EOF
export S3_ENDPOINT=$endpoint
export S3_BUCKET=$bucket
export S3_REGION=us-east-1
export S3_ACCESS_KEY_ID=starling
export S3_SECRET_ACCESS_KEY=starling-secret
EOF
        echo "==> moto_server $moto_version at $endpoint, bucket $bucket (pid $(cat "$dir/pid"))" >&2
        exit 0
    fi
    sleep 0.2
done
echo "s3-server: moto_server did not answer within 20 s; its log:" >&2
tail -n 20 "$dir/log" >&2 || true
stop
exit 1
