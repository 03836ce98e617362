#!/usr/bin/env bash
# What the dashboard's overview costs the control plane, against the API requests that read
# the same (issue 19): 100 agents, 1,000 migrations and 5,000 job runs in a fresh SQLite store,
# `godwit serve` (release build) on loopback, the page and the API requests timed alternately;
# the control plane's own CPU time per request comes from /proc. Prints a Markdown table.
#
#   bash bench/dashboard.sh [--godwit PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
GODWIT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --godwit) GODWIT=$2; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$GODWIT" ]; then
  cargo build --release -q -p godwit
  GODWIT=$PWD/target/release/godwit
fi
DIR=$(mktemp -d /tmp/godwit-dashboard-bench.XXXXXX)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$DIR"' EXIT
# No rate limit: the benchmark sends hundreds of requests a second with one token.
GODWIT_RATE_LIMIT=1000000 "$GODWIT" serve --listen 127.0.0.1:0 --state-dir "$DIR/cp" \
  2>"$DIR/serve.log" &
PID=$!
for _ in $(seq 100); do
  grep -q "listening on" "$DIR/serve.log" 2>/dev/null && break
  sleep 0.1
done
URL=$(grep -o "listening on [^ ]*" "$DIR/serve.log" | head -1 | sed 's/listening on //')
[ -n "$URL" ] || { cat "$DIR/serve.log" >&2; exit 1; }
PORT=${URL##*:}
PORT=${PORT%%/*}
TOKEN=$("$GODWIT" token create --role admin --state-dir "$DIR/cp")
python3 bench/dashboard.py 127.0.0.1 "$PORT" "$TOKEN" "$PID" "$DIR/cp/control-plane.db"
