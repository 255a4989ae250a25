#!/usr/bin/env bash
# Builds crates/wasm (release, wasm32) for one of its two users and runs
# wasm-bindgen on it:
#   scripts/build-wasm.sh ui    the accounts web UI  -> servers/accounts/web/pkg
#   scripts/build-wasm.sh sdk   the browser SDK      -> js/wasm (+ wasm-opt -Oz)
# Each build carries only its feature's code (the UI needs no SQLite, the SDK
# no OPAQUE), so the two modules stay small.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sealbase/target}"
which=${1:-}
case "$which" in
  ui) out=servers/accounts/web/pkg; bindgen_flags=(--no-typescript); profile=release ;;
  sdk) out=js/wasm; bindgen_flags=(); profile=wasm ;;
  *) die "usage: scripts/build-wasm.sh ui|sdk" ;;
esac
# Two size levers for the browser modules (docs/benchmarks.md has the
# figures), both unstable flags, hence RUSTC_BOOTSTRAP on the stable
# toolchain (Debian's needs it for build-std anyway):
# - panic messages without file, line and column: every `expect`, slice
#   index and overflow check otherwise embeds its source path (~37 KB gzip
#   in the SDK); a panic still reports its message;
# - derived `Debug` prints type and variant names only (~22 KB gzip):
#   messages shown to users never depend on derived `Debug` output.
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="${RUSTFLAGS:-} -Zlocation-detail=none -Zfmt-debug=shallow"
# The SDK also builds std itself, with its size-first variants (smaller sort
# and formatting code; ~33 KB gzip): scripts/cargo-wasm passes -Zbuild-std.
if [ "$which" = sdk ]; then export SEALBASE_WASM_STD_FEATURES=optimize_for_size; fi
scripts/cargo-wasm build -p sealbase-wasm --profile "$profile" --no-default-features --features "$which"
# The rustup target or Debian's toolchain (its own target directory): the newer one.
wasm=
for candidate in "$CARGO_TARGET_DIR"/wasm32-unknown-unknown/$profile/sealbase_wasm.wasm \
                 "$CARGO_TARGET_DIR"/debian-rustc-web/wasm32-unknown-unknown/$profile/sealbase_wasm.wasm; do
  if [ -f "$candidate" ] && { [ -z "$wasm" ] || [ "$candidate" -nt "$wasm" ]; }; then wasm=$candidate; fi
done
[ -n "$wasm" ] || die "sealbase_wasm.wasm was not built"
# wasm-bindgen and wasm-opt take minutes: skip them when cargo left the module as it was.
stamp="$out/.built-from"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(stat -c '%n %s %Y' "$wasm")" ]; then
  log "$out is up to date"
  exit 0
fi
rm -rf "$out"
wasm-bindgen --target web "${bindgen_flags[@]}" --out-dir "$out" "$wasm"
if [ "$which" = sdk ]; then
  # binaryen from npm (the workspace's dev dependency): Debian's 108 predates
  # wasm-bindgen's externref table and rewrites its export to the wrong table.
  wasm_opt=node_modules/.bin/wasm-opt
  [ -x "$wasm_opt" ] || die "wasm-opt missing: run scripts/setup.sh (npm ci installs binaryen)"
  raw=$(stat -c %s "$out/sealbase_wasm_bg.wasm")
  # The features rustc's wasm32 output uses must be allowed explicitly.
  # --converge repeats the passes while they still shrink the module; the
  # producers and target-features sections are for tools, not the browser.
  "$wasm_opt" -Oz --converge --strip-producers --strip-target-features --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$out/sealbase_wasm_bg.wasm" -o "$out/sealbase_wasm_bg.opt.wasm"
  mv "$out/sealbase_wasm_bg.opt.wasm" "$out/sealbase_wasm_bg.wasm"
  size=$(stat -c %s "$out/sealbase_wasm_bg.wasm")
  gz=$(gzip -9 -n -c "$out/sealbase_wasm_bg.wasm" | wc -c)
  stat -c '%n %s %Y' "$wasm" > "$stamp"
  log "SDK wasm built: $out (raw $raw B, after wasm-opt -Oz $size B, gzip -9 $gz B)"
else
  stat -c '%n %s %Y' "$wasm" > "$stamp"
  log "accounts web UI built: $out ($(du -h "$out/sealbase_wasm_bg.wasm" | cut -f1))"
fi
