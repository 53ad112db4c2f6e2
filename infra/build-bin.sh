# Sourced by the scripts that run Starling: `build_starling [CARGO BUILD ARGS...]` builds the
# `starling` binary and prints the path of the executable cargo made, wherever cargo put it
# (CARGO_TARGET_DIR, `build.target-dir` in a cargo config, or ./target). Cargo's progress and
# errors go to stderr.
build_starling() {
    local json path
    json=$(cargo build "$@" -p starling --bin starling --message-format=json-render-diagnostics) || return 1
    path=$(python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "starling":
        print(m["executable"])
' <<<"$json" | tail -n 1)
    if [[ -z "$path" || ! -x "$path" ]]; then
        echo "cargo built starling but did not say where the executable is" >&2
        return 1
    fi
    echo "$path"
}
