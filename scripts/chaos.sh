#!/usr/bin/env bash
# The chaos suite, long form: godwit killed with SIGKILL at 20 random instants of a local, an
# S3 and an SFTP copy of mixed sizes; the control plane killed during an agent's copy on
# SQLite and on PostgreSQL; 10% of the requests of a 10,000-file S3 copy failing; a target
# that fills up; a source folder that vanishes during a true-up. CI runs the same cases in a
# bounded form (5 kills, 1,000 files) as part of scripts/test.sh.
#
#   bash scripts/chaos.sh              # the figures of docs/reliability.md
#   GODWIT_CHAOS_KILLS=50 bash scripts/chaos.sh
#
# Prints one `CHAOS case: figures` line a case, and exits non-zero if any case failed.
set -euo pipefail
cd "$(dirname "$0")/.."

export GODWIT_CHAOS_KILLS="${GODWIT_CHAOS_KILLS:-20}"
export GODWIT_CHAOS_FILES="${GODWIT_CHAOS_FILES:-10000}"

bash scripts/servers.sh install
trap 'bash scripts/servers.sh stop' EXIT
bash scripts/servers.sh start
# shellcheck disable=SC1091
source "${GODWIT_SERVERS_DIR:-.test-servers}/env"
GODWIT_TEST_POSTGRES_URL=$(bash scripts/postgres.sh)
export GODWIT_TEST_POSTGRES_URL

log=$(mktemp)
status=0
cargo nextest run -p godwit --no-fail-fast --no-capture --test-threads 1 \
  -E 'binary(chaos) | test(regression_the_control_plane_killed)' 2>&1 | tee "$log" || status=$?
echo
echo "== figures (GODWIT_CHAOS_KILLS=$GODWIT_CHAOS_KILLS, GODWIT_CHAOS_FILES=$GODWIT_CHAOS_FILES)"
grep '^CHAOS ' "$log" || true
rm -f "$log"
exit "$status"
