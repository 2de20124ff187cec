#!/usr/bin/env bash
# Benchmark the broker against a do-nothing Worker, in the same workerd.
#
#   bash bench/run.sh [options for bench/bench.mjs]
#
# 1. Builds the release Worker (bash scripts/build.sh).
# 2. Serves, each in its own Node process with its own workerd child (Miniflare
#    from node_modules): the broker with KV and a fake Attio
#    (tests/support/fake-attio.mjs), and the floor (bench/floor.mjs), then the
#    broker without KV for whole flows.
# 3. For each endpoint drives a bounded loopback load (wrk -t1 -c4 for 5 s after
#    1 s of warm-up; a Node driver for the callback, the code exchange and
#    whole flows) and reads the workerd process's utime+stime from
#    /proc/<pid>/stat before and after.
# 4. Prints a Markdown report: workerd CPU per request, requests/s, p50/p99
#    latency, the ratio to the floor, Wasm size raw and gzip -9, cold start,
#    and the issue's targets met or missed. The same report and the raw
#    figures go to bench/results/latest.md and latest.json.
#
# Every load stops by itself; the whole run takes about 2-3 minutes (a hard
# limit of 8 minutes stops it otherwise). Needs wrk (apt-get install wrk).
# Options (defaults): --duration 5 --warmup 1 --connections 4 --concurrency 8
#   --flow-seconds 8 --items 1500 --prep-seconds 20 --cold-runs 5
#   --no-stateless (skip the without-KV flows) --no-io (skip the KV/fetch
#   references) --out bench/results
#   --rust-floor: also build and measure the Rust control in bench/rust-floor
#   (the worker crate alone, then + Router, then + the settings prelude). Its
#   first build compiles the worker crate (about 2-3 minutes on 2 cores, into
#   target/bench-rust-floor); later runs reuse it.
# BENCH_SKIP_BUILD=1 skips step 1 (measure the build/ that is there).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk (Debian package) for the load" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >&2
fi
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  echo "[bench] building the release Worker (scripts/build.sh)" >&2
  bash scripts/build.sh
else
  bash scripts/setup.sh
fi
[ -f build/index.js ] && [ -f build/index_bg.wasm ] || { echo "bench: build/ is incomplete" >&2; exit 1; }
for arg in "$@"; do
  if [ "$arg" = --rust-floor ]; then
    echo "[bench] building the Rust control (bench/rust-floor)" >&2
    # shellcheck disable=SC1091
    . .tools/env
    (cd bench/rust-floor && CARGO_TARGET_DIR="$ROOT/target/bench-rust-floor" worker-build --release >&2)
  fi
done
exec timeout --signal=TERM --kill-after=10 540 node bench/bench.mjs "$@"
