#!/usr/bin/env bash
# Two builds of godwit side by side on the same data, alternating within each round: to tell
# whether a change costs speed, without the machine's drift between two separate runs.
#
#   bash bench/compare.sh OLD_GODWIT NEW_GODWIT [--runs N] [--dir DIR]
#
# Times a scan, a local copy of the small set, the same copy with nothing changed, a true-up
# with nothing changed and a local copy of the large set (the data sets of bench/run.sh, made
# there first: run it once, or any `--only` of it, with the same --dir). Prints each run and
# then the medians, min-max and NEW/OLD per row.
set -euo pipefail
OLD=$1 NEW=$2; shift 2
RUNS=5 DIR=/tmp/godwit-bench
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift ;;
    --dir) DIR=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
SMALL=$(ls -d "$DIR"/data/small-* | head -1)
LARGE=$DIR/data/large
[ -d "$SMALL" ] && [ -d "$LARGE" ] || { echo "no data in $DIR/data: run bench/run.sh first" >&2; exit 2; }
OUT=$DIR/compare; mkdir -p "$OUT"
RESULTS=$OUT/results.tsv; : >"$RESULTS"
fresh() { echo "$OUT/$1-$(date +%s%N)-$RANDOM"; }
warm() { tar cf /dev/null "$1" 2>/dev/null || true; }
time_it() { # row build command...
  local row=$1 build=$2; shift 2
  local t; t=$(mktemp)
  /usr/bin/time -f '%e' -o "$t" "$@" >/dev/null 2>&1 || { echo "  $build failed on $row" >&2; }
  printf '%s\t%s\t%s\n' "$row" "$build" "$(cat "$t")" >>"$RESULTS"
  printf '  %-24s %-4s %6ss\n' "$row" "$build" "$(cat "$t")"
  rm -f "$t"
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq 1 "$RUNS"); do
  echo "round $run of $RUNS (load $(cut -d' ' -f1 /proc/loadavg))"
  # Alternate which build goes first, so neither always gets the warmer cache.
  order="old new"; [ $((run % 2)) = 0 ] && order="new old"
  for build in $order; do
    bin=$OLD; [ "$build" = new ] && bin=$NEW
    warm "$SMALL"
    time_it "scan small" "$build" "$bin" scan "$SMALL" --state-dir "$(fresh state)" --json
    state=$(fresh state); out=$(fresh small)
    warm "$SMALL"
    time_it "copy small" "$build" "$bin" copy "$SMALL" "$out" --state-dir "$state"
    warm "$SMALL"
    time_it "no-change small" "$build" "$bin" copy "$SMALL" "$out" --state-dir "$state"
    "$bin" sync "$SMALL" "$out-sync" --state-dir "$state" --delete >/dev/null
    warm "$SMALL"
    time_it "sync no-change small" "$build" "$bin" sync "$SMALL" "$out-sync" --state-dir "$state" --delete
    warm "$LARGE"
    time_it "copy large" "$build" "$bin" copy "$LARGE" "$(fresh large)" --state-dir "$(fresh state)"
  done
done
python3 - "$RESULTS" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    row, build, secs = line.rstrip("\n").split("\t")
    rows.setdefault(row, {}).setdefault(build, []).append(float(secs))
print("\n| task | old median s (min-max) | new median s (min-max) | new/old |")
print("| --- | --- | --- | --- |")
for row, b in rows.items():
    o, n = statistics.median(b["old"]), statistics.median(b["new"])
    print(f"| {row} | {o:.2f} ({min(b['old']):.2f}-{max(b['old']):.2f}) | "
          f"{n:.2f} ({min(b['new']):.2f}-{max(b['new']):.2f}) | {n / o:.2f}x |")
EOF
# The copies are not deleted here (deleting slows the next copies: ../shared/BENCHMARKING.md).
echo "copies left in $OUT; remove them when done"
