#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 with a database `test` that the user
# `postgres` reaches without a password (as on our machines), and prints its URL for the tests.
# Starts the machine's cluster when it is installed but stopped, and installs Debian's package
# (as root) when it is missing.
set -euo pipefail

URL=postgres://postgres@127.0.0.1:5432/test
say() { echo "postgres: $*" >&2; }
answers() { psql -h 127.0.0.1 -p 5432 -U postgres -d "${1:-postgres}" -Atc 'SELECT 1' >/dev/null 2>&1; }

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { say "PostgreSQL is not installed; install it (apt-get install postgresql) or run as root"; exit 1; }
    say "installing PostgreSQL (Debian package)"
    apt-get install -y -q postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }
  fi
  say "starting the machine's PostgreSQL cluster"
  for cluster in $(pg_lsclusters -h 2>/dev/null | awk '{print $1 "/" $2}'); do
    pg_ctlcluster "${cluster%/*}" "${cluster#*/}" start 2>/dev/null || true
  done
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 -q || { say "nothing answers on 127.0.0.1:5432"; exit 1; }

if ! answers; then
  # A fresh Debian cluster asks for a password over TCP: let local connections in, as our
  # machines are set up (loopback only).
  [ "$(id -u)" = 0 ] || { say "cannot log in as postgres on 127.0.0.1 without a password"; exit 1; }
  hba=$(su postgres -c "psql -Atc 'SHOW hba_file'")
  sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  su postgres -c "psql -Atc 'SELECT pg_reload_conf()'" >/dev/null
  sleep 1
fi
answers postgres || { say "cannot log in as postgres on 127.0.0.1"; exit 1; }
answers test || psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test' >/dev/null
echo "$URL"
