#!/usr/bin/env bash
# The real servers godwit's tests talk to, on free loopback ports:
#   S3         moto's standalone server (PyPI moto[server]) in a venv
#   Azure Blob Azurite (npm azurite) in a local folder
#   SFTP       Debian's OpenSSH server with its own config, key and known_hosts
#   S3, strict s3s-fs (crates.io), which checks payload checksums as moto does not
#              (integrity tests); built once with cargo install, about 2 minutes
# Everything lives in $GODWIT_SERVERS_DIR (default .test-servers/ in the checkout).
#
#   scripts/servers.sh install   install what is missing (idempotent)
#   scripts/servers.sh start     start them; writes $GODWIT_SERVERS_DIR/env to source
#   scripts/servers.sh stop      stop them (and any ssh master godwit left)
#
# scripts/test.sh runs install, start and stop around the test suite.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${GODWIT_SERVERS_DIR:-$ROOT/.test-servers}"
RUN="$DIR/run"
MOTO_VERSION=5.2.5
AZURITE_VERSION=3.35.0
S3S_VERSION=0.14.1
SCHEMATHESIS_VERSION=4.32.5
PROMETHEUS_CLIENT_VERSION=0.21.1

say() { printf 'servers: %s\n' "$*" >&2; }

install() {
  mkdir -p "$DIR"
  if [ ! -x "$DIR/venv/bin/moto_server" ]; then
    say "installing moto $MOTO_VERSION into $DIR/venv (about a minute)"
    python3 -m venv "$DIR/venv"
    "$DIR/venv/bin/pip" install -q "moto[server]==$MOTO_VERSION" boto3 azure-storage-blob
  fi
  if [ ! -x "$DIR/venv/bin/st" ]; then
    say "installing schemathesis $SCHEMATHESIS_VERSION into $DIR/venv (API fuzzing)"
    "$DIR/venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  if ! "$DIR/venv/bin/python" -c 'import prometheus_client' 2>/dev/null; then
    say "installing prometheus-client $PROMETHEUS_CLIENT_VERSION into $DIR/venv (its text parser checks /metrics)"
    "$DIR/venv/bin/pip" install -q "prometheus-client==$PROMETHEUS_CLIENT_VERSION"
  fi
  if [ ! -x "$DIR/azurite/node_modules/.bin/azurite-blob" ]; then
    say "installing azurite $AZURITE_VERSION into $DIR/azurite"
    mkdir -p "$DIR/azurite"
    (cd "$DIR/azurite" && npm install --silent --no-audit --no-fund "azurite@$AZURITE_VERSION")
  fi
  if [ ! -x "$DIR/s3s/bin/s3s-fs" ]; then
    say "building s3s-fs $S3S_VERSION into $DIR/s3s (about 2 minutes)"
    cargo install --locked --quiet "s3s-fs@$S3S_VERSION" --features binary --root "$DIR/s3s"
  fi
  # sshd for the SFTP tests; setfacl/getfacl and setfattr/getfattr for the permissions tests.
  local missing=""
  [ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
  command -v setfacl >/dev/null || missing="$missing acl"
  command -v setfattr >/dev/null || missing="$missing attr"
  # systemd-analyze checks the service units in packaging/.
  command -v systemd-analyze >/dev/null || missing="$missing systemd"
  # faketime runs godwit doctor with a clock far off the store's.
  command -v faketime >/dev/null || missing="$missing faketime"
  # The dashboard's browser tests: Debian's Chromium and its WebDriver.
  command -v chromedriver >/dev/null || missing="$missing chromium chromium-driver"
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
      say "installing$missing (Debian packages)"
      apt-get update -qq
      # shellcheck disable=SC2086
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
      say "missing:$missing: run 'sudo apt-get install$missing' and try again"
      exit 1
    fi
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # name port
  for _ in $(seq 1 150); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$2),0.2)" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  say "$1 did not start on port $2; its log: $RUN/$1.log"
  tail -20 "$RUN/$1.log" >&2 || true
  exit 1
}

start() {
  stop >/dev/null 2>&1 || true
  rm -rf "$RUN"
  mkdir -p "$RUN/azurite-data" "$RUN/sftp"
  chmod 755 "$RUN"

  local s3_port az_port sftp_port
  s3_port=$(free_port)
  "$DIR/venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$RUN/moto.log" 2>&1 &
  echo $! >"$RUN/moto.pid"

  az_port=$(free_port)
  "$DIR/azurite/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$az_port" \
    --location "$RUN/azurite-data" --skipApiVersionCheck --disableTelemetry --silent --loose >"$RUN/azurite.log" 2>&1 &
  echo $! >"$RUN/azurite.pid"

  local s3s_port
  s3s_port=$(free_port)
  mkdir -p "$RUN/s3s-data"
  "$DIR/s3s/bin/s3s-fs" --host 127.0.0.1 --port "$s3s_port" --access-key test --secret-key test \
    "$RUN/s3s-data" >"$RUN/s3s.log" 2>&1 &
  echo $! >"$RUN/s3s.pid"

  # SFTP: our own host key, client key, known_hosts and sshd config; nothing in ~/.ssh.
  sftp_port=$(free_port)
  [ -f "$DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$DIR/host_ed25519"
  [ -f "$DIR/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$DIR/client_ed25519"
  chmod 600 "$DIR/host_ed25519" "$DIR/client_ed25519"
  cp "$DIR/client_ed25519.pub" "$RUN/authorized_keys"
  chmod 600 "$RUN/authorized_keys"
  echo "[127.0.0.1]:$sftp_port $(cut -d' ' -f1,2 "$DIR/host_ed25519.pub")" >"$RUN/known_hosts"
  cat >"$RUN/sshd_config" <<EOF
Port $sftp_port
ListenAddress 127.0.0.1
HostKey $DIR/host_ed25519
PidFile $RUN/sshd.pid
AuthorizedKeysFile $RUN/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp internal-sftp
EOF
  mkdir -p /run/sshd 2>/dev/null || true
  /usr/sbin/sshd -f "$RUN/sshd_config" -D -e >"$RUN/sshd.log" 2>&1 &
  echo $! >"$RUN/sshd.pid.bg"

  # The `ssh` godwit runs (through OpenDAL) checks host keys strictly against our file.
  mkdir -p "$RUN/bin"
  cat >"$RUN/bin/ssh" <<EOF
#!/bin/sh
exec /usr/bin/ssh -o UserKnownHostsFile=$RUN/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes "\$@"
EOF
  chmod 755 "$RUN/bin/ssh"

  wait_port moto "$s3_port"
  wait_port azurite "$az_port"
  wait_port sshd "$sftp_port"
  wait_port s3s "$s3s_port"

  cat >"$DIR/env" <<EOF
export GODWIT_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
export GODWIT_TEST_S3_LOG=$RUN/moto.log
export GODWIT_TEST_S3S_ENDPOINT=http://127.0.0.1:$s3s_port
export GODWIT_TEST_AZURE_ENDPOINT=http://127.0.0.1:$az_port/devstoreaccount1
export GODWIT_TEST_SFTP_ENDPOINT=ssh://$(id -un)@127.0.0.1:$sftp_port
export GODWIT_TEST_SFTP_KEY=$DIR/client_ed25519
export GODWIT_TEST_SFTP_ROOT=$RUN/sftp
export GODWIT_TEST_PYTHON=$DIR/venv/bin/python
export PATH=$RUN/bin:\$PATH
EOF
  say "S3 on $s3_port (strict: $s3s_port), Azure Blob on $az_port, SFTP on $sftp_port; source $DIR/env"
}

stop() {
  for name in moto azurite s3s sshd.pid.bg; do
    local f="$RUN/${name%.pid.bg}.pid"
    [ "$name" = sshd.pid.bg ] && f="$RUN/sshd.pid.bg"
    if [ -f "$f" ]; then
      kill "$(cat "$f")" 2>/dev/null || true
      rm -f "$f"
    fi
  done
  # ssh control masters that OpenDAL's SFTP sessions started for our server.
  pkill -f "ssh.*UserKnownHostsFile=$RUN/known_hosts" 2>/dev/null || true
  rm -f "$DIR/env"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
