#!/usr/bin/env bash
# Fuzz smoke test for pollhttp-proto and the client's content decoders
# (content_decoders): builds every cargo-fuzz target in fuzz/ (`cargo fuzz list`)
# and runs each for FUZZ_SECONDS (default 15) on a fresh corpus seeded from
# fuzz/seeds/<target>. Fails on any crash, invariant failure, timeout or OOM.
#
# Needs rustup with a nightly toolchain; installs cargo-fuzz when missing.
#   FUZZ_SECONDS=60 .ci/fuzz-smoke.sh            # all targets, 60 s each
#   .ci/fuzz-smoke.sh chunked_decoder             # some targets only
# A failing input is left in fuzz/artifacts/<target>/; reproduce it with
#   cd fuzz && cargo +nightly fuzz run <target> artifacts/<target>/<file>
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH="${FUZZ_SECONDS:-15}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz-smoke: needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
# libfuzzer-sys compiles libFuzzer's C++ sources.
if ! command -v c++ >/dev/null 2>&1 && ! command -v clang++ >/dev/null 2>&1; then
    echo "fuzz-smoke: needs a C++ compiler for libFuzzer (e.g. apt-get install g++)" >&2
    exit 1
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd "$ROOT/fuzz"
if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo +nightly fuzz list)
fi

echo "fuzz-smoke: building ${TARGETS[*]}"
cargo +nightly fuzz build

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pollhttp-fuzz-smoke.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

failed=()
for t in "${TARGETS[@]}"; do
    corpus="$WORK/$t"
    mkdir -p "$corpus"
    if [ -d "seeds/$t" ]; then
        cp -R "seeds/$t/." "$corpus/"
    fi
    echo "fuzz-smoke: $t for ${SECONDS_EACH}s ($(find "$corpus" -type f | wc -l) seeds)"
    # One process, one job; -timeout turns a hang into a failure.
    if cargo +nightly fuzz run "$t" "$corpus" -- \
        -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$WORK/$t.log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units' "$WORK/$t.log" || true
    else
        echo "fuzz-smoke: $t FAILED; last lines of its log:"
        tail -n 60 "$WORK/$t.log"
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz-smoke: ${#failed[@]} failed: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
echo "fuzz-smoke: ${#TARGETS[@]} passed, 0 failed"
