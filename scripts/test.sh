#!/usr/bin/env bash
# Runs godwit's whole test suite. This is the README's test command, and .ci/run calls it too.
#
# It needs only the Rust toolchain; cargo-nextest is used when installed (it is on our CI
# machines), plain `cargo test` otherwise. Build outputs go to CARGO_TARGET_DIR when set, so CI
# can keep them between runs.
set -euo pipefail
cd "$(dirname "$0")/.."

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --status-level fail --final-status-level slow
  # nextest does not run documentation examples.
  cargo test --workspace --doc --quiet
else
  cargo test --workspace --no-fail-fast
fi
