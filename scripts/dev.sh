#!/usr/bin/env bash
# Set up and run the broker locally with `wrangler dev` on
# http://localhost:8787, with a local KV namespace (kept in .wrangler/state).
#
# Without real Attio credentials in .dev.vars, this also starts the local
# stand-in for Attio (tests/support/fake-attio.mjs) on 127.0.0.1:8788 and
# points the broker at it, so every flow can be clicked through without an
# Attio account. A deployed Worker never does this: its defaults are Attio's
# real endpoints.
#
# Ports: PORT (8787), STAND_IN_PORT (8788), INSPECTOR_PORT (9229). Extra
# arguments are passed to `wrangler dev`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PORT="${PORT:-8787}"
STAND_IN_PORT="${STAND_IN_PORT:-8788}"
INSPECTOR_PORT="${INSPECTOR_PORT:-9229}"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$PORT" "$INSPECTOR_PORT"; do
  if port_busy "$p"; then
    echo "[dev] port $p on 127.0.0.1 is already in use (another scripts/dev.sh or wrangler dev?)." >&2
    echo "[dev] stop it, or choose other ports: PORT=8789 STAND_IN_PORT=8790 INSPECTOR_PORT=9230 bash scripts/dev.sh" >&2
    exit 1
  fi
done

bash scripts/setup.sh
# shellcheck disable=SC1091
. .tools/env

if [ ! -f .dev.vars ]; then
  cp .dev.vars.example .dev.vars
  echo "[dev] created .dev.vars from .dev.vars.example"
fi

setting() { sed -n "s/^$1=//p" .dev.vars | tail -1 | tr -d '"'"'"' \r'; }

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

ARGS=(dev --port "$PORT" --ip 127.0.0.1 --inspector-port "$INSPECTOR_PORT" --persist-to .wrangler/state)
if [ -z "$(setting ATTIO_CLIENT_ID)" ] || [ -z "$(setting ATTIO_CLIENT_SECRET)" ]; then
  if port_busy "$STAND_IN_PORT"; then
    echo "[dev] port $STAND_IN_PORT (the local stand-in for Attio) is already in use; set STAND_IN_PORT to another port." >&2
    exit 1
  fi
  STAND_IN="http://127.0.0.1:$STAND_IN_PORT"
  echo "[dev] no Attio credentials in .dev.vars: using the LOCAL STAND-IN for Attio at $STAND_IN"
  echo "[dev] (not the real Attio; tokens it issues are fake. Fill in .dev.vars to use Attio.)"
  node tests/support/fake-attio.mjs --port "$STAND_IN_PORT" --interactive \
    --client-id stand-in-client --client-secret stand-in-secret &
  PIDS+=($!)
  ARGS+=(--var "ATTIO_CLIENT_ID:stand-in-client" --var "ATTIO_CLIENT_SECRET:stand-in-secret"
         --var "ATTIO_AUTHORIZE_URL:$STAND_IN/authorize" --var "ATTIO_TOKEN_URL:$STAND_IN/oauth/token"
         --var "ATTIO_INTROSPECT_URL:$STAND_IN/oauth/introspect" --var "ATTIO_REVOKE_URL:$STAND_IN/oauth/revoke")
fi
# Build before wrangler starts, so its own [build] run finds build/ current.
bash scripts/build.sh
echo "[dev] starting wrangler dev on http://localhost:$PORT (health: /health, get a token: /oauth/authorize)"
# In the background so that SIGTERM and SIGINT reach the trap at once.
wrangler "${ARGS[@]}" "$@" &
PIDS+=($!)
wait "${PIDS[-1]}"
