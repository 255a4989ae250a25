#!/usr/bin/env bash
# Makes a wasm32-unknown-unknown toolchain available (DESIGN.md §2):
#  1. the rustup target, where it is installed or can be downloaded;
#  2. otherwise Debian's rustc-web (std sources included) with -Zbuild-std,
#     clang for C code (SQLite) and wasm-ld.
# scripts/cargo-wasm picks whichever is present. Set SEALBASE_WASM_TOOLCHAIN
# to `rustup` or `debian` to force one.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# clang and llvm-ar compile SQLite's C for wasm32 (sqlite-wasm-rs) on
# either toolchain; Debian's rustc also needs its std sources and wasm-ld.
c_packages=(clang-19 llvm-19)
debian_packages=(rustc-web cargo-web rust-web-src lld-19 "${c_packages[@]}")
mode=${SEALBASE_WASM_TOOLCHAIN:-auto}

# The SDK build compiles std itself (-Zbuild-std, for its size features), so
# the rustup toolchain counts only with its std sources (rust-src).
have_rustup_target() {
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
    && [ -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library" ]
}

if [ "$mode" != debian ]; then
  if have_rustup_target || {
    log "trying: rustup target add wasm32-unknown-unknown; rustup component add rust-src"
    timeout 180 rustup target add wasm32-unknown-unknown >/dev/null 2>&1 \
      && timeout 180 rustup component add rust-src >/dev/null 2>&1 && have_rustup_target
  }; then
    apt_ensure "${c_packages[@]}"
    exit 0
  fi
  [ "$mode" = rustup ] && die "rustup cannot add wasm32-unknown-unknown and rust-src on this machine"
  log "rustup target or rust-src unavailable; using Debian rustc-web with -Zbuild-std"
fi

apt_ensure "${debian_packages[@]}"
sysroot=$(/usr/bin/rustc --print sysroot)
[ -d "$sysroot/lib/rustlib/src/rust/library" ] || die "rust-web-src did not install std sources under $sysroot"
