#!/usr/bin/env bash
# godwit against cp, rsync and rclone on the same data, in one run, on this machine.
#
#   bash bench/run.sh [--runs N] [--small N] [--large-count N] [--large-mib N] [--s3-files N]
#                     [--sftp-files N] [--million] [--only small|large|s3|s3fast|azure|sftp|scan|sync|verify|rss] [--dir DIR]
# --million adds peak-memory rows for 100k and 1M tiny files (needs about 5 GB and 10 minutes).
#
# Data sets (made once, kept in DIR/data): SMALL files of 1-16 KiB in ~1,000 folders; LARGE files
# of LARGE_MIB MiB; for S3, Azure and SFTP the first S3_FILES / SFTP_FILES small files. Each
# timed run writes into a fresh folder (deleting the last copy makes the next one slow on these
# machines: see ../shared/BENCHMARKING.md) and reads the source once before, so the cache is
# warm. When the disk holding DIR has less than MIN_FREE_GIB (default 40) free at the end of a
# round, that round's copies are deleted and the script waits 65 s before the next (a full run
# at the default sizes writes about 60 GB and would fill these machines' disks otherwise).
# Tools alternate within a round. Medians, min-max, ratios against godwit, CPU seconds (the
# tool's own, and the whole machine's, servers and `ssh` included) and peak RSS are printed as a
# Markdown table and written to DIR/results.md.
#
#   scan, small, large  local, against find, cp -r, rsync -a and rclone
#   sync                true-ups with nothing and with 1% changed (0.5% rewritten, 0.25% new,
#                       0.25% deleted) against rsync -a --delete and rclone sync, with nothing
#                       changed and permissions carried (--metadata against rsync -aAX and
#                       rclone sync --metadata), and an
#                       unchanged S3 true-up with the requests each tool sends
#   s3                  to moto (scripts/servers.sh), against rclone
#   s3fast              to s3s-fs, a fast server, against rclone and s3sync (S3SYNC names its
#                       binary; else built once into DIR/tools), with requests a file counted
#   azure               to Azurite, against the Azure SDK for Python's own uploads
#   sftp                to the test OpenSSH server, against rclone without its hash checks
#   verify              godwit verify (with and without --checksum) against rclone check
#   rss                 with --million: peak memory at 100k and 1M tiny files
#
# Needs: rsync, rclone, GNU time, python3 (apt-get install rsync rclone time); the servers come
# from scripts/servers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RUNS=3 SMALL=100000 LARGE_COUNT=4 LARGE_MIB=512 S3_FILES=10000 SFTP_FILES=2000 MILLION=0 ONLY="" DIR=/tmp/godwit-bench
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift ;;
    --small) SMALL=$2; shift ;;
    --large-count) LARGE_COUNT=$2; shift ;;
    --large-mib) LARGE_MIB=$2; shift ;;
    --s3-files) S3_FILES=$2; shift ;;
    --sftp-files) SFTP_FILES=$2; shift ;;
    --million) MILLION=1 ;;
    --only) ONLY=$2; shift ;;
    --dir) DIR=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

for tool in rsync rclone python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install rsync rclone time" >&2; exit 2; }
done
# rclone 1.60 refuses plain-http endpoints when this points at a CA file (BENCHMARKING.md).
unset AWS_CA_BUNDLE

cargo build --release -q
GODWIT=$ROOT/target/release/godwit
mkdir -p "$DIR/data" "$DIR/out"
RESULTS=$DIR/results.tsv
: >"$RESULTS"
rm -f "$DIR/requests.md" "$DIR/requests-s3s.md"

make_small() { # dir count
  [ -f "$1/.done-$2" ] && return
  rm -rf "$1"
  python3 - "$1" "$2" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
for i in range(n):
    d = os.path.join(root, f"d{i % 1000:04d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:07d}.bin"), "wb") as f:
        f.write(rng.randbytes(rng.randint(1024, 16384)))
EOF
  touch "$1/.done-$2"
}

make_tiny() { # dir count: files of 100 bytes, 1,000 to a folder (for memory against file count)
  [ -f "$1/.done-$2" ] && return
  rm -rf "$1"
  python3 - "$1" "$2" <<'EOF2'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:04d}")
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:07d}"), "wb") as f:
        f.write(b"x" * 100)
EOF2
  touch "$1/.done-$2"
}

make_large() { # dir count mib
  [ -f "$1/.done-$2-$3" ] && return
  rm -rf "$1"; mkdir -p "$1"
  for i in $(seq 1 "$2"); do head -c "$(($3 << 20))" /dev/urandom >"$1/large$i.bin"; done
  touch "$1/.done-$2-$3"
}

warm() { tar cf /dev/null "$1" 2>/dev/null || true; }

# Unique per call (it runs in a subshell, so no counter can be kept).
fresh() { echo "$DIR/out/$1-$(date +%s%N)-$RANDOM"; }

# Deletes the copies made so far when the disk runs low, then waits for the freed inodes to be
# usable again without slowing the next timed run (BENCHMARKING.md).
MIN_FREE_GIB=${MIN_FREE_GIB:-40}
reclaim() {
  local free; free=$(df -P -BG "$DIR" | awk 'NR==2{sub("G","",$4); print $4}')
  [ "$free" -ge "$MIN_FREE_GIB" ] && return
  echo "  ${free} GiB free (under $MIN_FREE_GIB): deleting this round's copies and waiting 65 s"
  rm -rf "$DIR/out"; mkdir -p "$DIR/out"; sync; sleep 65
}

# Busy CPU time of the whole machine so far, in clock ticks (user, nice, system, irq, softirq):
# a client and the server it talks to on this machine, and the `ssh` processes a tool starts
# that are no children of its own.
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
TICKS=$(getconf CLK_TCK)
# A process's user+system CPU so far, in clock ticks.
proc_cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }

# time_it ROW TOOL COMMAND...: one timed run; appends "row tool seconds rss_kib cpu machine_cpu"
# to RESULTS (cpu: the tool's own and its children's user+system seconds; machine_cpu: every
# process's, servers included).
time_it() {
  local row=$1 tool=$2; shift 2
  local log; log=$(mktemp)
  local b0 b1 s0; b0=$(busy)
  [ -n "${SERVER_PID:-}" ] && s0=$(proc_cpu "$SERVER_PID")
  if ! /usr/bin/time -f '%e %M %U %S' -o "$log" "$@" >/dev/null 2>"$log.err"; then
    echo "  $tool failed on $row:" >&2; tail -3 "$log.err" >&2
  fi
  b1=$(busy)
  if [ -n "${SERVER_PID:-}" ]; then
    echo "  server CPU $(python3 -c "print(f'{($(proc_cpu "$SERVER_PID") - $s0) / $TICKS:.2f}')")s" >&2
  fi
  # The last line: GNU time writes "Command exited with non-zero status" before it.
  read -r secs rss usr sys < <(tail -1 "$log")
  local cpu machine
  cpu=$(python3 -c "print(f'{$usr + $sys:.2f}')")
  machine=$(python3 -c "print(f'{($b1 - $b0) / $TICKS:.2f}')")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$row" "$tool" "$secs" "$rss" "$cpu" "$machine" >>"$RESULTS"
  printf '  %-28s %-10s %8ss %8s KiB  cpu %6ss  machine %6ss\n' "$row" "$tool" "$secs" "$rss" "$cpu" "$machine"
  rm -f "$log" "$log.err"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { # port name log
  for _ in $(seq 1 150); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return
    sleep 0.1
  done
  echo "$2 did not start: $(tail -3 "$3")" >&2; exit 1
}

# Starts the test servers once (scripts/servers.sh), stopped when the script ends, and points
# the S3 clients at moto.
servers_up() {
  if [ -z "${GODWIT_TEST_S3_ENDPOINT:-}" ]; then
    bash scripts/servers.sh install >/dev/null
    trap 'bash scripts/servers.sh stop' EXIT
    bash scripts/servers.sh start
    # shellcheck disable=SC1091
    source "${GODWIT_SERVERS_DIR:-.test-servers}/env"
  fi
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$GODWIT_TEST_S3_ENDPOINT
  export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other RCLONE_CONFIG_BENCH_ENDPOINT=$GODWIT_TEST_S3_ENDPOINT \
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=bench RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=bench RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
SMALL_SRC=$DIR/data/small-$SMALL
LARGE_SRC=$DIR/data/large
make_small "$SMALL_SRC" "$SMALL"
make_large "$LARGE_SRC" "$LARGE_COUNT" "$LARGE_MIB"

for run in $(seq 1 "$RUNS"); do
  echo "round $run of $RUNS (load $(cut -d' ' -f1 /proc/loadavg))"
  if want scan; then
    warm "$SMALL_SRC"
    time_it "scan ${SMALL} small" godwit "$GODWIT" scan "$SMALL_SRC" --state-dir "$(fresh state)" --json
    time_it "scan ${SMALL} small" find find "$SMALL_SRC" -printf '%s %T@\n'
    time_it "scan ${SMALL} small" rclone rclone size "$SMALL_SRC"
  fi
  if want small; then
    for tool in godwit cp rsync rclone; do
      warm "$SMALL_SRC"; out=$(fresh small)
      case $tool in
        godwit) time_it "copy ${SMALL} small local" godwit "$GODWIT" copy "$SMALL_SRC" "$out" --state-dir "$(fresh state)" ;;
        cp) time_it "copy ${SMALL} small local" cp cp -r "$SMALL_SRC" "$out" ;;
        rsync) time_it "copy ${SMALL} small local" rsync rsync -a "$SMALL_SRC/" "$out/" ;;
        rclone) time_it "copy ${SMALL} small local" rclone rclone copy "$SMALL_SRC" "$out" ;;
      esac
    done
    # No change since the last copy: godwit from its index, rsync and rclone by comparing.
    state=$(fresh state); out=$(fresh small)
    "$GODWIT" copy "$SMALL_SRC" "$out" --state-dir "$state" >/dev/null
    rsync -a "$SMALL_SRC/" "$out-rsync/"
    warm "$SMALL_SRC"
    time_it "no-change ${SMALL} small" godwit "$GODWIT" copy "$SMALL_SRC" "$out" --state-dir "$state"
    time_it "no-change ${SMALL} small" rsync rsync -a "$SMALL_SRC/" "$out-rsync/"
    time_it "no-change ${SMALL} small" rclone rclone copy "$SMALL_SRC" "$out-rsync"
  fi
  if want sync; then
    # Each tool keeps its own target in step; the source changes between the rows, the same
    # change for all three.
    if [ ! -d "$DIR/sync/godwit" ]; then
      rm -rf "$DIR/sync"; mkdir -p "$DIR/sync"
      cp -a "$SMALL_SRC" "$DIR/sync/src"
      "$GODWIT" sync "$DIR/sync/src" "$DIR/sync/godwit" --state-dir "$DIR/sync/state" --delete >/dev/null
      rsync -a --delete "$DIR/sync/src/" "$DIR/sync/rsync/"
      rclone sync "$DIR/sync/src" "$DIR/sync/rclone"
    fi
    warm "$DIR/sync/src"
    time_it "sync no-change ${SMALL} small" godwit "$GODWIT" sync "$DIR/sync/src" "$DIR/sync/godwit" --state-dir "$DIR/sync/state" --delete
    time_it "sync no-change ${SMALL} small" rsync rsync -a --delete "$DIR/sync/src/" "$DIR/sync/rsync/"
    time_it "sync no-change ${SMALL} small" rclone rclone sync "$DIR/sync/src" "$DIR/sync/rclone"
    # The same with permissions carried (owner, mode, ACLs, xattrs, times): each tool's own
    # target, brought in step untimed first (the source changed since the last round).
    "$GODWIT" sync "$DIR/sync/src" "$DIR/sync/godwit-meta" --state-dir "$DIR/sync/state" --delete --metadata >/dev/null
    rsync -aAX --delete "$DIR/sync/src/" "$DIR/sync/rsync-meta/"
    rclone sync --metadata "$DIR/sync/src" "$DIR/sync/rclone-meta"
    time_it "sync no-change ${SMALL} small, permissions too" godwit "$GODWIT" sync "$DIR/sync/src" "$DIR/sync/godwit-meta" --state-dir "$DIR/sync/state" --delete --metadata
    time_it "sync no-change ${SMALL} small, permissions too" rsync rsync -aAX --delete "$DIR/sync/src/" "$DIR/sync/rsync-meta/"
    time_it "sync no-change ${SMALL} small, permissions too" rclone rclone sync --metadata "$DIR/sync/src" "$DIR/sync/rclone-meta"
    python3 - "$DIR/sync/src" "$SMALL" "$run" <<'EOF3'
import os, random, sys
root, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(1000 + seed)
files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs if not f.startswith("."))
pick = rng.sample(files, n // 100)
half, quarter = len(pick) // 2, len(pick) // 4
for p in pick[:half]:
    with open(p, "wb") as f:
        f.write(rng.randbytes(rng.randint(1024, 16384)))
for p in pick[half:half + quarter]:
    os.remove(p)
for i in range(len(pick) - half - quarter):
    d = os.path.join(root, f"d{rng.randrange(1000):04d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"new-{seed}-{i:06d}.bin"), "wb") as f:
        f.write(rng.randbytes(rng.randint(1024, 16384)))
EOF3
    warm "$DIR/sync/src"
    time_it "sync 1% changed ${SMALL} small" godwit "$GODWIT" sync "$DIR/sync/src" "$DIR/sync/godwit" --state-dir "$DIR/sync/state" --delete --max-delete 1%
    time_it "sync 1% changed ${SMALL} small" rsync rsync -a --delete "$DIR/sync/src/" "$DIR/sync/rsync/"
    time_it "sync 1% changed ${SMALL} small" rclone rclone sync "$DIR/sync/src" "$DIR/sync/rclone"
  fi
  if want large; then
    for tool in godwit cp rsync rclone; do
      warm "$LARGE_SRC"; out=$(fresh large)
      case $tool in
        godwit) time_it "copy ${LARGE_COUNT}x${LARGE_MIB}MiB local" godwit "$GODWIT" copy "$LARGE_SRC" "$out" --state-dir "$(fresh state)" ;;
        cp) time_it "copy ${LARGE_COUNT}x${LARGE_MIB}MiB local" cp cp -r "$LARGE_SRC" "$out" ;;
        rsync) time_it "copy ${LARGE_COUNT}x${LARGE_MIB}MiB local" rsync rsync -a "$LARGE_SRC/" "$out/" ;;
        rclone) time_it "copy ${LARGE_COUNT}x${LARGE_MIB}MiB local" rclone rclone copy "$LARGE_SRC" "$out" ;;
      esac
    done
  fi
  reclaim
done

if want s3; then
  S3_SRC=$DIR/data/s3-small-$S3_FILES
  make_small "$S3_SRC" "$S3_FILES"
  servers_up
  for run in $(seq 1 "$RUNS"); do
    echo "S3 round $run of $RUNS"
    for tool in godwit rclone; do
      b="b$run-$tool-$RANDOM"
      "$GODWIT_TEST_PYTHON" crates/godwit/tests/support/store.py mkbucket "$b-s"
      "$GODWIT_TEST_PYTHON" crates/godwit/tests/support/store.py mkbucket "$b-l"
      warm "$S3_SRC"
      case $tool in
        godwit)
          time_it "S3 copy ${S3_FILES} small" godwit "$GODWIT" copy "$S3_SRC" "s3://$b-s/x" --state-dir "$(fresh state)"
          warm "$LARGE_SRC"
          time_it "S3 copy ${LARGE_COUNT}x${LARGE_MIB}MiB" godwit "$GODWIT" copy "$LARGE_SRC" "s3://$b-l/x" --state-dir "$(fresh state)" ;;
        rclone)
          time_it "S3 copy ${S3_FILES} small" rclone rclone copy "$S3_SRC" "bench:$b-s/x"
          warm "$LARGE_SRC"
          time_it "S3 copy ${LARGE_COUNT}x${LARGE_MIB}MiB" rclone rclone copy "$LARGE_SRC" "bench:$b-l/x" ;;
      esac
      # moto keeps large objects in files of its own: free them before the next round.
      "$GODWIT_TEST_PYTHON" crates/godwit/tests/support/store.py delete s3 "$b-l" ""
    done
  done
fi

if want s3 || want sync; then
  # A true-up with nothing changed, against the S3 server: time, and requests counted in the
  # server's own log.
  S3_SRC=$DIR/data/s3-small-$S3_FILES
  make_small "$S3_SRC" "$S3_FILES"
  servers_up
  MOTO_LOG=${GODWIT_SERVERS_DIR:-.test-servers}/run/moto.log
  requests() { grep -cE '"(GET|PUT|HEAD|POST|DELETE) ' "$MOTO_LOG" || true; }
  b="sync-$RANDOM"
  "$GODWIT_TEST_PYTHON" crates/godwit/tests/support/store.py mkbucket "$b"
  s3state=$(fresh state)
  "$GODWIT" sync "$S3_SRC" "s3://$b/godwit" --state-dir "$s3state" --delete >/dev/null
  rclone sync "$S3_SRC" "bench:$b/rclone"
  REQS=$DIR/requests.md
  echo "| true-up, nothing changed, ${S3_FILES} files to S3 | requests to the server |" >"$REQS"
  echo "| --- | --- |" >>"$REQS"
  for run in $(seq 1 "$RUNS"); do
    warm "$S3_SRC"
    before=$(requests)
    time_it "S3 sync no-change ${S3_FILES} small" godwit "$GODWIT" sync "$S3_SRC" "s3://$b/godwit" --state-dir "$s3state" --delete
    g=$(( $(requests) - before ))
    before=$(requests)
    time_it "S3 sync no-change ${S3_FILES} small" rclone rclone sync "$S3_SRC" "bench:$b/rclone"
    r=$(( $(requests) - before ))
    echo "  requests: godwit $g, rclone $r"
    echo "| round $run | godwit $g, rclone $r |" >>"$REQS"
  done
fi

if want sftp; then
  # Small files to the test OpenSSH server on loopback: godwit against rclone at its best
  # settings here (no hash command per file; 16 transfers, as godwit's default).
  SFTP_SRC=$DIR/data/sftp-small-$SFTP_FILES
  make_small "$SFTP_SRC" "$SFTP_FILES"
  servers_up
  SFTP_RUN=${GODWIT_SERVERS_DIR:-.test-servers}/run
  sftp_port=${GODWIT_TEST_SFTP_ENDPOINT##*:}
  export RCLONE_CONFIG_SFTPB_TYPE=sftp RCLONE_CONFIG_SFTPB_HOST=127.0.0.1 RCLONE_CONFIG_SFTPB_PORT=$sftp_port \
    RCLONE_CONFIG_SFTPB_USER=$(id -un) RCLONE_CONFIG_SFTPB_KEY_FILE=$GODWIT_TEST_SFTP_KEY \
    RCLONE_CONFIG_SFTPB_KNOWN_HOSTS_FILE=$SFTP_RUN/known_hosts RCLONE_CONFIG_SFTPB_DISABLE_HASHCHECK=true
  for run in $(seq 1 "$RUNS"); do
    echo "SFTP round $run of $RUNS"
    for tool in godwit rclone; do
      warm "$SFTP_SRC"
      dest=$GODWIT_TEST_SFTP_ROOT/$tool-$run-$RANDOM
      case $tool in
        godwit) GODWIT_SFTP_KEY=$GODWIT_TEST_SFTP_KEY time_it "SFTP copy ${SFTP_FILES} small" godwit \
          "$GODWIT" copy "$SFTP_SRC" "sftp://${GODWIT_TEST_SFTP_ENDPOINT#ssh://}$dest" --state-dir "$(fresh state)" ;;
        rclone) time_it "SFTP copy ${SFTP_FILES} small" rclone rclone copy --transfers 16 "$SFTP_SRC" "sftpb:$dest" ;;
      esac
      n=$(find "$dest" -type f | wc -l)
      [ "$n" = "$SFTP_FILES" ] || echo "  $tool left $n of $SFTP_FILES files at the target" >&2
    done
  done
fi

if want s3fast; then
  # 10,000 small files to s3s-fs, a fast S3 server (the test suite's strict one), so that the
  # client is what is measured: godwit, rclone and s3sync at their best settings. Timed against
  # a quiet server; the requests each tool sends are counted in one more run each against a
  # second server that logs every request.
  S3_SRC=$DIR/data/s3-small-$S3_FILES
  make_small "$S3_SRC" "$S3_FILES"
  servers_up
  S3S=${GODWIT_SERVERS_DIR:-.test-servers}/s3s/bin/s3s-fs
  S3SYNC=${S3SYNC:-$(command -v s3sync || echo "$DIR/tools/bin/s3sync")}
  if [ ! -x "$S3SYNC" ]; then
    echo "building s3sync into $DIR/tools (cargo install s3sync; about 25 minutes on 2 cores)"
    cargo install --locked --quiet s3sync --root "$DIR/tools"
    S3SYNC=$DIR/tools/bin/s3sync
  fi
  s3s_start() { # data-dir log-level -> sets S3S_PORT, S3S_PID
    rm -rf "$1"; mkdir -p "$1"
    S3S_PORT=$(free_port)
    RUST_LOG=$2 "$S3S" --host 127.0.0.1 --port "$S3S_PORT" --access-key bench --secret-key bench "$1" >"$1.log" 2>&1 &
    S3S_PID=$!
    wait_port "$S3S_PORT" s3s-fs "$1.log"
  }
  s3fast() { # tool endpoint bucket: the command line of each tool at its best settings
    case $1 in
      godwit) echo env AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_ENDPOINT_URL="$2" "$GODWIT" copy "$S3_SRC" "s3://$3/x" --state-dir "$(fresh state)" ;;
      rclone) echo env RCLONE_CONFIG_FAST_ENDPOINT="$2" rclone copy --transfers 16 --s3-no-head --s3-no-check-bucket "$S3_SRC" "fast:$3/x" ;;
      s3sync) echo "$S3SYNC" --target-endpoint-url "$2" --target-force-path-style --target-region us-east-1 \
          --target-access-key bench --target-secret-access-key bench "$S3_SRC" "s3://$3/x/" ;;
    esac
  }
  export RCLONE_CONFIG_FAST_TYPE=s3 RCLONE_CONFIG_FAST_PROVIDER=Other RCLONE_CONFIG_FAST_ACCESS_KEY_ID=bench \
    RCLONE_CONFIG_FAST_SECRET_ACCESS_KEY=bench RCLONE_CONFIG_FAST_FORCE_PATH_STYLE=true
  # Counting: one run each against a server that logs every request.
  s3s_start "$DIR/s3s-count" s3s=debug
  COUNT_PID=$S3S_PID
  REQS_FAST=$DIR/requests-s3s.md
  echo "| ${S3_FILES} small files to s3s-fs | requests | per file |" >"$REQS_FAST"
  echo "| --- | --- | --- |" >>"$REQS_FAST"
  for tool in godwit rclone s3sync; do
    mkdir -p "$DIR/s3s-count/count-$tool"
    before=$(grep -c 's3s::service: req:' "$DIR/s3s-count.log" || true)
    # shellcheck disable=SC2046
    $(s3fast $tool "http://127.0.0.1:$S3S_PORT" "count-$tool") >/dev/null 2>&1 || echo "  $tool failed (counting run)" >&2
    n=$(( $(grep -c 's3s::service: req:' "$DIR/s3s-count.log" || true) - before ))
    echo "| $tool | $n | $(python3 -c "print(f'{$n / $S3_FILES:.3f}')") |" >>"$REQS_FAST"
  done
  kill "$COUNT_PID"
  s3s_start "$DIR/s3s-data" error
  for run in $(seq 1 "$RUNS"); do
    echo "s3s-fs round $run of $RUNS"
    for tool in godwit rclone s3sync; do
      b="r$run-$tool"; mkdir -p "$DIR/s3s-data/$b"
      warm "$S3_SRC"
      # shellcheck disable=SC2046
      SERVER_PID=$S3S_PID time_it "s3s-fs copy ${S3_FILES} small" $tool $(s3fast $tool "http://127.0.0.1:$S3S_PORT" "$b")
      n=$(find "$DIR/s3s-data/$b" -type f | wc -l)
      [ "$n" -ge "$S3_FILES" ] || echo "  $tool left $n of $S3_FILES objects" >&2
    done
  done
  kill "$S3S_PID"
fi

if want azure; then
  # 10,000 small files to Azurite: godwit against the Azure SDK for Python's own uploads (16
  # threads, one upload_blob each), a floor rather than a tool (rclone 1.60 cannot talk to
  # this Azurite). Each timed run gets a fresh Azurite that keeps blobs in memory: one that
  # writes its database to disk slowed down eightfold within a round as it filled (13.7 s, then
  # 104 s for the same copy).
  S3_SRC=$DIR/data/s3-small-$S3_FILES
  make_small "$S3_SRC" "$S3_FILES"
  servers_up
  AZURITE=${GODWIT_SERVERS_DIR:-.test-servers}/azurite/node_modules/.bin/azurite-blob
  AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
  for run in $(seq 1 "$RUNS"); do
    echo "Azurite round $run of $RUNS"
    for tool in godwit sdk; do
      AZ_PORT=$(free_port)
      "$AZURITE" --blobHost 127.0.0.1 --blobPort "$AZ_PORT" --inMemoryPersistence --skipApiVersionCheck \
        --disableTelemetry --silent --loose >"$DIR/azurite.log" 2>&1 &
      AZ_PID=$!
      wait_port "$AZ_PORT" azurite "$DIR/azurite.log"
      export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZ_KEY;BlobEndpoint=http://127.0.0.1:$AZ_PORT/devstoreaccount1;"
      c="r$run-$tool"
      "$GODWIT_TEST_PYTHON" crates/godwit/tests/support/store.py mkcontainer "$c"
      warm "$S3_SRC"
      export SERVER_PID=$AZ_PID
      case $tool in
        godwit) time_it "Azurite copy ${S3_FILES} small" godwit "$GODWIT" copy "$S3_SRC" "az://$c/x" --state-dir "$(fresh state)" ;;
        sdk) time_it "Azurite copy ${S3_FILES} small" python-sdk "$GODWIT_TEST_PYTHON" - "$S3_SRC" "$c" <<'EOF4'
import os, sys
from concurrent.futures import ThreadPoolExecutor
from azure.storage.blob import BlobServiceClient
src, container = sys.argv[1], sys.argv[2]
client = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"]).get_container_client(container)
files = [os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs]
def put(path):
    with open(path, "rb") as f:
        client.upload_blob("x/" + os.path.relpath(path, src), f, overwrite=True)
with ThreadPoolExecutor(16) as pool:
    list(pool.map(put, files))
EOF4
          ;;
      esac
      unset SERVER_PID
      kill "$AZ_PID"; wait "$AZ_PID" 2>/dev/null || true
    done
  done
fi

if want verify; then
  # A verification of the whole small set against a copy of it made by `cp -a` (times kept):
  # godwit verify against rclone check, by size (godwit also by modification time) and by
  # content (godwit xxh3-128, rclone MD5 on local files). Both must find the two sides the same.
  V_DST=$DIR/verify-target
  if [ ! -f "$DIR/.verify-target-$SMALL" ]; then
    rm -rf "$V_DST"; cp -a "$SMALL_SRC" "$V_DST"; sync
    touch "$DIR/.verify-target-$SMALL"
  fi
  for run in $(seq 1 "$RUNS"); do
    echo "verify round $run of $RUNS"
    warm "$SMALL_SRC"; warm "$V_DST"
    time_it "verify ${SMALL} small" godwit "$GODWIT" verify "$SMALL_SRC" "$V_DST" --state-dir "$(fresh state)"
    time_it "verify ${SMALL} small" rclone rclone check --size-only "$SMALL_SRC" "$V_DST"
    warm "$SMALL_SRC"; warm "$V_DST"
    time_it "verify --checksum ${SMALL} small" godwit "$GODWIT" verify "$SMALL_SRC" "$V_DST" --checksum --state-dir "$(fresh state)"
    time_it "verify --checksum ${SMALL} small" rclone rclone check "$SMALL_SRC" "$V_DST"
  done
fi

if want rss && [ "$MILLION" = 1 ]; then
  # Peak memory must not grow with the number of files: the same tree at 100k and 1M files.
  for count in 100000 1000000; do
    T_SRC=$DIR/data/tiny-$count
    make_tiny "$T_SRC" "$count"
    warm "$T_SRC"
    time_it "scan ${count} tiny" godwit "$GODWIT" scan "$T_SRC" --state-dir "$(fresh state)"
    warm "$T_SRC"
    time_it "copy ${count} tiny local" godwit "$GODWIT" copy "$T_SRC" "$(fresh tiny)" --state-dir "$(fresh state)"
  done
fi

python3 - "$RESULTS" "$DIR/results.md" <<'EOF'
import statistics, sys
from collections import OrderedDict
rows = OrderedDict()
for line in open(sys.argv[1]):
    row, tool, secs, rss, cpu, machine = line.rstrip("\n").split("\t")
    rows.setdefault(row, OrderedDict()).setdefault(tool, []).append((float(secs), int(rss), float(cpu), float(machine)))
out = ["| task | tool | median s | min-max s | vs godwit | CPU s | machine CPU s | peak RSS MiB |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
for row, tools in rows.items():
    g = statistics.median(r[0] for r in tools["godwit"]) if "godwit" in tools else None
    for tool, runs in tools.items():
        secs = [r[0] for r in runs]
        med = statistics.median(secs)
        q = g / med if g and med and tool != "godwit" else None
        ratio = "" if q is None else (f"{q:.2f}x" if q >= 0.1 else f"{q:.4f}x")
        cpu = statistics.median(r[2] for r in runs)
        machine = statistics.median(r[3] for r in runs)
        out.append(f"| {row} | {tool} | {med:.2f} | {min(secs):.2f}-{max(secs):.2f} | {ratio} | {cpu:.2f} | {machine:.2f} | {max(r[1] for r in runs) / 1024:.0f} |")
text = "\n".join(out)
print(text)
open(sys.argv[2], "w").write(text + "\n")
print("\n'vs godwit' is godwit's median divided by the tool's: below 1.00x godwit is faster. CPU s is the")
print("tool's own (with its children), machine CPU s every process's on the machine during the run.")
EOF
for f in "$DIR/requests.md" "$DIR/requests-s3s.md"; do
  if [ -f "$f" ]; then echo; cat "$f"; fi
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg). Cleaning up copies in $DIR/out (the data sets stay)."
rm -rf "$DIR/out"
