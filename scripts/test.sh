#!/usr/bin/env bash
# Runs godwit's whole test suite. This is the README's test command, and .ci/run calls it too.
#
# It installs what the tests need into .test-servers/ (moto in a venv, Azurite from npm; the
# OpenSSH server from Debian's packages when running as root), starts the servers on free
# loopback ports, runs every test against them, and stops them, also on failure or Ctrl-C.
# The control plane's tests also need PostgreSQL on 127.0.0.1:5432: scripts/postgres.sh starts
# (or installs) it when it is not running. Last, scripts/fuzz-api.sh fuzzes the API with
# schemathesis (installed into the same venv as moto).
# cargo-nextest is used when installed, plain `cargo test` otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/servers.sh install
trap 'bash scripts/servers.sh stop' EXIT
bash scripts/servers.sh start
# shellcheck disable=SC1091
source "${GODWIT_SERVERS_DIR:-.test-servers}/env"
GODWIT_TEST_POSTGRES_URL=$(bash scripts/postgres.sh)
export GODWIT_TEST_POSTGRES_URL

# A second build of godwit that reports a newer version (set at build time, as a release build
# sets it), for the agent upgrade tests; the test build below rebuilds the usual one (only the
# godwit binary crate is built again).
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
version=$(sed -n 's/^version = "\([0-9]*\.[0-9]*\.[0-9]*\)"$/\1/p' Cargo.toml | head -1)
next_version="${version%.*}.$(( ${version##*.} + 1 ))-next"
GODWIT_BUILD_VERSION="$next_version" cargo build --quiet -p godwit --bin godwit
mkdir -p "$target_dir/upgrade-test"
cp "$target_dir/debug/godwit" "$target_dir/upgrade-test/godwit"
GODWIT_TEST_NEXT_BUILD="$target_dir/upgrade-test/godwit"
export GODWIT_TEST_NEXT_BUILD

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --status-level fail --final-status-level slow
  # nextest does not run documentation examples.
  cargo test --workspace --doc --quiet
else
  cargo test --workspace --no-fail-fast
fi
# The control plane's API, fuzzed from its own OpenAPI document (the binary is built above).
bash scripts/fuzz-api.sh

# `cargo install` from the repository, as docs/install.md shows it (a debug build here, which
# reuses the tests' build: the release build it makes for users takes the same path).
install_root=$(mktemp -d)
cargo install --quiet --locked --debug --path crates/godwit --root "$install_root" --target-dir "$target_dir"
"$install_root/bin/godwit" --version
rm -rf "$install_root"
