#!/usr/bin/env bash
# Fuzz the broker's core parsers (fuzz/: params, redirect rules, registration,
# token bodies, callback queries, sealed values, Attio answers). None may panic.
#
#   bash scripts/fuzz.sh [SECONDS=60] [SEED=1]
#
# Engine: libFuzzer through cargo-fuzz when a nightly toolchain and cargo-fuzz
# are installed (`rustup toolchain install nightly`, `cargo install cargo-fuzz`),
# else the stable, libFuzzer-free smoke harness (fuzz/src/bin/smoke.rs), which
# feeds seeded random and mutated inputs through the same checks and prints
# inputs per second. Force one with FUZZ_ENGINE=smoke or FUZZ_ENGINE=libfuzzer.
# Exits non-zero on a panic, printing the input (libFuzzer also saves it under
# fuzz/artifacts/parse/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_TO_RUN="${1:-60}"
SEED="${2:-1}"
ENGINE="${FUZZ_ENGINE:-auto}"
if [ -f .tools/env ]; then
  # shellcheck disable=SC1091
  . .tools/env
fi

have_libfuzzer() {
  command -v cargo-fuzz >/dev/null 2>&1 && rustup toolchain list 2>/dev/null | grep -q '^nightly'
}

if [ "$ENGINE" = auto ]; then
  if have_libfuzzer; then ENGINE=libfuzzer; else ENGINE=smoke; fi
fi

case "$ENGINE" in
  libfuzzer)
    echo "== cargo +nightly fuzz run parse, ${SECONDS_TO_RUN} s =="
    # Seed the corpus with valid inputs (sealed values, forms, JSON, URIs) so
    # mutations start past each parser's first check.
    cargo build --quiet --release --no-default-features --bin smoke --manifest-path fuzz/Cargo.toml
    fuzz/target/release/smoke --write-seeds fuzz/corpus/parse
    # -seed for reproducibility; -max_len keeps inputs to the sizes the broker
    # accepts; -len_control=0 tries long inputs (sealed values) from the start.
    cargo +nightly fuzz run parse fuzz/corpus/parse -- \
      -max_total_time="$SECONDS_TO_RUN" -seed="$SEED" -max_len=8192 -len_control=0 -print_final_stats=1
    ;;
  smoke)
    echo "== smoke fuzz harness (stable, no libFuzzer), ${SECONDS_TO_RUN} s =="
    cargo build --quiet --release --no-default-features --bin smoke --manifest-path fuzz/Cargo.toml
    fuzz/target/release/smoke "$SECONDS_TO_RUN" "$SEED"
    ;;
  *)
    echo "FUZZ_ENGINE must be smoke or libfuzzer" >&2
    exit 2
    ;;
esac
