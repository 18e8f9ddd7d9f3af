#!/usr/bin/env bash
# Runs every check of the project on a fresh machine: installs what the tests
# need (nginx and its brotli module, Apache, Caddy, httpbin in a virtualenv,
# cargo-fuzz, a bare-metal Rust target for the no_std build of
# pollhttp-proto, node and npm, gcc/g++/valgrind/Mono for the C API), then
# fmt, clippy, docs, the whole workspace's tests, the HTTP cache conformance
# suite (scripts/cache-conformance.sh, about 25 s), and a short smoke run of
# each fuzz target.
#
# The C API's checks are part of `cargo test --workspace` (crate
# pollhttp-ffi): tests/header.rs fails when ffi/include/pollhttp.h differs
# from a fresh cbindgen generation; tests/c_api.rs compiles the C cases
# with gcc and runs them plain, under ASan+UBSan and under valgrind, checks
# the header as C99 and C++11 (-Wall -Wextra -Werror), compiles and runs the
# README's C example, and runs the C# smoke test under Mono.
#
#   scripts/test.sh                  everything (what CI runs)
#   FUZZ_SECONDS=0 scripts/test.sh   skip the fuzz smoke runs
#
# A test that skips its checks (POLLHTTP_SKIP_REAL_SERVERS=1 with nginx, its
# brotli module, httpbin, Apache or Caddy missing) still reports "ok" to
# cargo, so every skip is written to a log (tests/src/lib.rs record_skip)
# and this script fails when the log is not empty: a skipped test proves
# nothing. POLLHTTP_ALLOW_SKIPS=1 lists the skips and passes anyway (a local
# run on a machine without the servers; never in CI).
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
POLLHTTP_SKIP_LOG="$(realpath -m "${CARGO_TARGET_DIR:-target}")/pollhttp-skipped.log"
export POLLHTTP_SKIP_LOG
mkdir -p "$(dirname "$POLLHTTP_SKIP_LOG")"
rm -f "$POLLHTTP_SKIP_LOG"
cargo test --workspace --locked
if [ -s "$POLLHTTP_SKIP_LOG" ]; then
  printf '\n== %s test(s) skipped their checks:\n' "$(wc -l < "$POLLHTTP_SKIP_LOG")"
  cat "$POLLHTTP_SKIP_LOG"
  if [ "${POLLHTTP_ALLOW_SKIPS:-0}" != 1 ]; then
    echo "failing: skipped tests prove nothing (install the servers with .ci/install-deps.sh," \
      "or set POLLHTTP_ALLOW_SKIPS=1 for a local run)"
    exit 1
  fi
fi

step "HTTP cache conformance: the cache-tests suite through pollhttp's cache"
scripts/cache-conformance.sh

if [ "${FUZZ_SECONDS:-15}" != 0 ]; then
  step "fuzz targets: build and smoke-run"
  .ci/fuzz-smoke.sh
fi

step "all checks passed"
