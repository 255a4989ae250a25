#!/usr/bin/env bash
# Builds the accounts web UI's wasm module (crates/wasm, release) and its
# JavaScript glue into servers/accounts/web/pkg. The accounts server serves
# servers/accounts/web with --web-dir.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sealbase/target}"
scripts/cargo-wasm build -p sealbase-wasm --release
# The rustup target or Debian's toolchain (its own target directory): the newer one.
wasm=
for candidate in "$CARGO_TARGET_DIR"/wasm32-unknown-unknown/release/sealbase_wasm.wasm \
                 "$CARGO_TARGET_DIR"/debian-rustc-web/wasm32-unknown-unknown/release/sealbase_wasm.wasm; do
  if [ -f "$candidate" ] && { [ -z "$wasm" ] || [ "$candidate" -nt "$wasm" ]; }; then wasm=$candidate; fi
done
[ -n "$wasm" ] || die "sealbase_wasm.wasm was not built"
wasm-bindgen --target web --no-typescript --out-dir servers/accounts/web/pkg "$wasm"
log "accounts web UI built: servers/accounts/web/pkg ($(du -h servers/accounts/web/pkg/sealbase_wasm_bg.wasm | cut -f1))"
