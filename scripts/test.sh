#!/usr/bin/env bash
# Set up and run every test: host unit tests of the core (cargo test), then
# the end-to-end tests (node --test) against the release Worker in workerd
# with a fake Attio, both with and without KV, including headless Chromium.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh --with-browser
# shellcheck disable=SC1091
. .tools/env

echo "== host unit tests (cargo test) =="
cargo test --quiet 2>&1

echo "== building the release Worker =="
bash scripts/build.sh

echo "== end-to-end tests (node --test, workerd via Miniflare) =="
mkdir -p test-output
node --test --test-reporter=spec --test-timeout=120000 tests/e2e/
