#!/usr/bin/env bash
# Set up and run the broker locally with `wrangler dev` on
# http://localhost:8787, with a local KV namespace (kept in .wrangler/state).
#
# Without real Attio credentials in .dev.vars, this also starts the local
# stand-in for Attio (tests/support/fake-attio.mjs) on 127.0.0.1:8788 and
# points the broker at it, so every flow can be clicked through without an
# Attio account. A deployed Worker never does this: its defaults are Attio's
# real endpoints.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PORT="${PORT:-8787}"
STAND_IN_PORT="${STAND_IN_PORT:-8788}"

bash scripts/setup.sh
# shellcheck disable=SC1091
. .tools/env

if [ ! -f .dev.vars ]; then
  cp .dev.vars.example .dev.vars
  echo "[dev] created .dev.vars from .dev.vars.example"
fi

setting() { sed -n "s/^$1=//p" .dev.vars | tail -1 | tr -d '"'"'"' \r'; }

ARGS=(dev --port "$PORT" --ip 127.0.0.1 --inspector-port "${INSPECTOR_PORT:-9229}" --persist-to .wrangler/state)
if [ -z "$(setting ATTIO_CLIENT_ID)" ] || [ -z "$(setting ATTIO_CLIENT_SECRET)" ]; then
  STAND_IN="http://127.0.0.1:$STAND_IN_PORT"
  echo "[dev] no Attio credentials in .dev.vars: using the LOCAL STAND-IN for Attio at $STAND_IN"
  echo "[dev] (not the real Attio; tokens it issues are fake. Fill in .dev.vars to use Attio.)"
  node tests/support/fake-attio.mjs --port "$STAND_IN_PORT" --interactive \
    --client-id stand-in-client --client-secret stand-in-secret &
  STAND_IN_PID=$!
  trap 'kill "$STAND_IN_PID" 2>/dev/null || true' EXIT INT TERM
  ARGS+=(--var "ATTIO_CLIENT_ID:stand-in-client" --var "ATTIO_CLIENT_SECRET:stand-in-secret"
         --var "ATTIO_AUTHORIZE_URL:$STAND_IN/authorize" --var "ATTIO_TOKEN_URL:$STAND_IN/oauth/token"
         --var "ATTIO_INTROSPECT_URL:$STAND_IN/oauth/introspect" --var "ATTIO_REVOKE_URL:$STAND_IN/oauth/revoke")
fi
echo "[dev] starting wrangler dev on http://localhost:$PORT (health: /health, get a token: /oauth/authorize)"
npx wrangler "${ARGS[@]}"
