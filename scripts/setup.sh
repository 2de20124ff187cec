#!/usr/bin/env bash
# One set-up for the README, the tests, CI and wrangler's [build] command.
#
# Installs (idempotently; a second run with nothing changed takes seconds):
#   - the wasm32-unknown-unknown Rust target
#   - worker-build 0.8.x and wasm-bindgen-cli at exactly the wasm-bindgen
#     version in Cargo.lock, into .tools/ (copied from a per-user cache,
#     ~/.cache/attio-oauth-broker, so fresh clones do not rebuild them)
#   - the npm packages from package-lock.json (wrangler, miniflare, binaryen's
#     wasm-opt, esbuild, the test clients)
# and writes .tools/env, which exports WASM_BINDGEN_BIN, WASM_OPT_BIN and
# ESBUILD_BIN so that worker-build never downloads anything.
#
# Source it (". scripts/setup.sh") or run it; either way it is safe to repeat.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="$ROOT/.tools"
CACHE="${ATTIO_BROKER_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/attio-oauth-broker}"
WORKER_BUILD_VERSION="0.8.7"
mkdir -p "$TOOLS/bin" "$CACHE"
WITH_BROWSER=0
for arg in "$@"; do
  case "$arg" in
    --with-browser) WITH_BROWSER=1 ;;
  esac
done

say() { printf '[setup] %s\n' "$*" >&2; }

# Rust target
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target (rustup)"
  rustup target add wasm32-unknown-unknown >&2
fi

# Install a cargo binary at an exact version into the shared cache once, then
# copy it into .tools/bin.
cargo_tool() { # crate version binary
  local crate="$1" version="$2" bin="$3"
  local cached="$CACHE/$crate-$version/bin/$bin"
  if [ ! -x "$cached" ]; then
    say "building $crate $version from crates.io (a few minutes, once per machine)"
    cargo install "$crate" --version "=$version" --root "$CACHE/$crate-$version" >&2
  fi
  if [ ! -x "$TOOLS/bin/$bin-$version" ] || ! cmp -s "$cached" "$TOOLS/bin/$bin-$version"; then
    cp "$cached" "$TOOLS/bin/$bin-$version"
  fi
  ln -sf "$bin-$version" "$TOOLS/bin/$bin"
}

WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)"
if [ -z "$WASM_BINDGEN_VERSION" ]; then
  say "cannot find the wasm-bindgen version in Cargo.lock"; exit 1
fi
cargo_tool worker-build "$WORKER_BUILD_VERSION" worker-build
cargo_tool wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen

# npm packages, reinstalled only when the lockfile changed.
STAMP="$ROOT/node_modules/.setup-stamp"
LOCK_SUM="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$LOCK_SUM" ]; then
  say "installing npm packages from package-lock.json (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$LOCK_SUM" > "$STAMP"
fi

# Headless Chromium for the browser tests (Debian packages; a test tool's own
# browser download cannot work on these machines).
if [ "$WITH_BROWSER" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  say "installing Debian's chromium and chromium-driver (apt-get) for browser tests"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >&2
fi

cat > "$TOOLS/env" <<ENV
export WASM_BINDGEN_BIN="$TOOLS/bin/wasm-bindgen"
export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
export PATH="$TOOLS/bin:$ROOT/node_modules/.bin:\$PATH"
ENV
# shellcheck disable=SC1091
. "$TOOLS/env"
say "tools ready: worker-build $WORKER_BUILD_VERSION, wasm-bindgen $WASM_BINDGEN_VERSION, $(wasm-opt --version | cut -d' ' -f1-3), esbuild $(esbuild --version)"
