#!/usr/bin/env bash
# Installs everything Sealbase needs to build and test on a fresh Debian
# machine with rustup: system packages, just, the wasm32 toolchain,
# wasm-bindgen-cli at the version in Cargo.lock, and Node packages.
# Idempotent: when everything is present it only checks, in a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# System packages: OpenSSL headers (josekit, used by tests and the servers),
# PostgreSQL 15 (throwaway clusters in tests), Node.js (WebCrypto vector check).
apt_ensure pkg-config libssl-dev postgresql-15 ca-certificates python3-venv curl chromium
command -v node >/dev/null || apt_ensure nodejs npm

command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

JUST_VERSION=1.59.0
if ! command -v just >/dev/null; then
  log "installing just $JUST_VERSION"
  cargo install just --version "$JUST_VERSION" --locked --quiet \
    || cargo install just --version "$JUST_VERSION" --quiet
fi

scripts/wasm-toolchain.sh

# moto's S3 server: the sync server's S3 file storage is tested against it.
MOTO_VERSION=5.2.5
SEALBASE_VENV="${SEALBASE_VENV:-$HOME/.cache/sealbase/venv}"
if [ "$("$SEALBASE_VENV/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" != "$MOTO_VERSION" ]; then
  log "installing moto[server] $MOTO_VERSION into $SEALBASE_VENV"
  python3 -m venv "$SEALBASE_VENV"
  "$SEALBASE_VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

WB_VERSION=$(locked_version wasm-bindgen)
[ -n "$WB_VERSION" ] || die "wasm-bindgen not found in Cargo.lock"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  log "installing wasm-bindgen-cli $WB_VERSION"
  # --locked first; if a locked dependency has since been yanked, resolve afresh.
  cargo install wasm-bindgen-cli --version "$WB_VERSION" --locked --force --quiet \
    || cargo install wasm-bindgen-cli --version "$WB_VERSION" --force --quiet
fi

# Node packages of every package in the tree that has a lockfile.
for lock in package-lock.json js/package-lock.json e2e/package-lock.json; do
  [ -f "$lock" ] || continue
  dir=$(dirname "$lock")
  stamp="$dir/node_modules/.sealbase-installed"
  if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
    log "npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) && touch "$stamp"
  fi
done

log "setup complete"
