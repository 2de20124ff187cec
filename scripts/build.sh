#!/usr/bin/env bash
# Build the release Worker into build/ (wrangler's [build] command runs this).
# Skips the build when build/ is newer than every source file, so restarting
# `wrangler dev` is quick; `--force` builds anyway.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck disable=SC1091
. .tools/env
if [ "${1:-}" != "--force" ] && [ -f build/index.js ] && [ -f build/index_bg.wasm ] \
   && [ -z "$(find src Cargo.toml Cargo.lock -newer build/index_bg.wasm -print -quit)" ]; then
  echo "[build] build/ is up to date with src/, Cargo.toml and Cargo.lock" >&2
  exit 0
fi
echo "[build] worker-build --release" >&2
worker-build --release >&2
# Optimise for size and drop the names section (130 KB of function names,
# useful only for symbolised stack traces): Wasm size drives cold start.
# The feature list is worker-build's own, so nothing newer than workerd
# supports is emitted.
echo "[build] wasm-opt -Oz --strip-debug --strip-producers" >&2
wasm-opt build/index_bg.wasm -Oz --strip-debug --strip-producers \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling \
  -o build/index_bg.wasm.opt
mv build/index_bg.wasm.opt build/index_bg.wasm
echo "[build] build/index_bg.wasm: $(wc -c < build/index_bg.wasm) bytes, $(gzip -9c build/index_bg.wasm | wc -c) gzipped" >&2
