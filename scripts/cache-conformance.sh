#!/usr/bin/env bash
# The public HTTP cache conformance suite (Mark Nottingham's cache-tests, npm
# `http-cache-tests`, pinned) against pollhttp's cache (issue 17): the
# suite's origin server and our reverse-proxy adapter
# (tests/src/bin/cache_proxy.rs: every request goes through pollhttp with one
# shared in-memory Cache) on 127.0.0.1, then every test of the suite through
# the adapter. About 25 s; node and npm are needed (.ci/install-deps.sh).
#
#   scripts/cache-conformance.sh            run, summarize, gate
#   CACHE_PROXY_BIN=path scripts/...        use an already built adapter
#
# Writes target/cache-conformance/results.json (the suite's JSON, as its
# `npm run cli` prints it) and summary.txt (passes and failures by kind, for
# the tests that apply to a private cache and for all of them). Fails when
# a test of kind "required" that applies to a private cache fails and is not
# listed, with its reason, in scripts/cache-conformance-known-failures.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.4.5
TARGET="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
OUT="$TARGET/cache-conformance"
PREFIX="$TARGET/cache-tests-$VERSION"
export CACHE_TESTS_DIR="$PREFIX/node_modules/http-cache-tests"
mkdir -p "$OUT"

if [ ! -f "$CACHE_TESTS_DIR/package.json" ]; then
  echo "cache-conformance: installing http-cache-tests@$VERSION into $PREFIX (npm)"
  npm install --prefix "$PREFIX" --no-audit --no-fund --omit=dev --no-save \
    --loglevel=error "http-cache-tests@$VERSION" >/dev/null
fi

PROXY_BIN="${CACHE_PROXY_BIN:-}"
if [ -z "$PROXY_BIN" ]; then
  cargo build --quiet --locked -p pollhttp-tests --bin cache_proxy
  PROXY_BIN="$TARGET/debug/cache_proxy"
fi

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# wait_for FILE REGEX: the first match of REGEX in FILE (waits up to 10 s).
wait_for() {
  for _ in $(seq 100); do
    if grep -Eo "$2" "$1" 2>/dev/null | head -1 | grep .; then return 0; fi
    sleep 0.1
  done
  echo "cache-conformance: no '$2' in $1 after 10 s:" >&2
  cat "$1" >&2
  return 1
}

node --no-warnings scripts/cache-conformance.mjs origin 0 >"$OUT/origin.log" 2>&1 &
pids+=($!)
ORIGIN_PORT="$(wait_for "$OUT/origin.log" '127\.0\.0\.1:[0-9]+' | cut -d: -f2)"

"$PROXY_BIN" --origin "http://127.0.0.1:$ORIGIN_PORT" >"$OUT/proxy.log" 2>"$OUT/proxy.err" &
pids+=($!)
PROXY_PORT="$(wait_for "$OUT/proxy.log" '127\.0\.0\.1:[0-9]+' | cut -d: -f2)"

status=0
timeout 240 node --no-warnings scripts/cache-conformance.mjs run \
  "http://127.0.0.1:$PROXY_PORT" "$OUT/results.json" \
  scripts/cache-conformance-known-failures.txt >"$OUT/summary.txt" || status=$?
cat "$OUT/summary.txt"
if [ "$status" = 124 ]; then
  echo "cache-conformance: the suite did not finish within 240 s"
fi
exit "$status"
