#!/usr/bin/env bash
# Build the release Worker into build/ (wrangler's [build] command runs this).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck disable=SC1091
. .tools/env
echo "[build] worker-build --release" >&2
worker-build --release >&2
