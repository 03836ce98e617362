#!/usr/bin/env bash
# One migration's copy spread over a pool of agents (issue 20): the wall time of a copy of
# 800 MiB (32 folders of 25 files of 1 MiB) with 1, 2 and 4 agents, each held to the same
# bandwidth (--rate, MB/s, default 20), and the control plane's own CPU time per thousand files
# handed out (also for 20,000 files of 1 KiB over 4 agents, unthrottled). One machine's cores
# and disk cannot show what more machines give; the bandwidth cap is what each agent's network
# would be. `godwit serve` (release build, SQLite) and four `godwit agent` on loopback; the
# single-agent row is an ordinary migration of one agent. Prints a Markdown table.
#
#   bash bench/pool.sh [--godwit PATH] [--rate MB]
set -euo pipefail
cd "$(dirname "$0")/.."
GODWIT=""
RATE=20
while [ $# -gt 0 ]; do
  case "$1" in
    --godwit) GODWIT=$2; shift ;;
    --rate) RATE=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$GODWIT" ]; then
  cargo build --release -q -p godwit
  GODWIT=$PWD/target/release/godwit
fi
DIR=$(mktemp -d /tmp/godwit-pool-bench.XXXXXX)
trap 'pkill -f "$DIR" 2>/dev/null || true; rm -rf "$DIR"' EXIT
python3 bench/pool.py "$GODWIT" "$DIR" "$RATE"
