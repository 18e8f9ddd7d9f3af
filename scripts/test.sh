#!/usr/bin/env bash
# Runs every check of the project on a fresh machine: installs what the tests
# need (nginx, httpbin in a virtualenv, cargo-fuzz, a bare-metal Rust target
# for the no_std build of pollhttp-proto), then fmt, clippy, docs,
# the whole workspace's tests, and a short smoke run of each fuzz target.
#
#   scripts/test.sh                  everything (what CI runs)
#   FUZZ_SECONDS=0 scripts/test.sh   skip the fuzz smoke runs
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "installing test dependencies"
.ci/install-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)

step "layers: request/, conn/ and below import nothing from web/, a front end or the pool"
scripts/check-layers.sh

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
(cd fuzz && cargo clippy --all-targets --locked -- -D warnings)

step "pollhttp without its optional features (json, cookies, multipart, http)"
cargo clippy -p pollhttp --no-default-features --locked -- -D warnings

step "pollhttp-proto without std (no_std + alloc, bare-metal target)"
cargo clippy -p pollhttp-proto --no-default-features --locked \
    --target "${POLLHTTP_NO_STD_TARGET:-thumbv7em-none-eabihf}" -- -D warnings

step "cargo doc -D warnings"
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --locked --quiet

step "cargo test"
cargo test --workspace --locked

if [ "${FUZZ_SECONDS:-15}" != 0 ]; then
  step "fuzz targets: build and smoke-run"
  .ci/fuzz-smoke.sh
fi

step "all checks passed"
