# Sealbase tasks. Run `./scripts/setup.sh` once on a fresh machine (it installs just itself).
set shell := ["bash", "-euo", "pipefail", "-c"]

export PATH := env_var("HOME") / ".cargo/bin:" + env_var("PATH")
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") / ".cache/sealbase/target")
export CARGO_TERM_COLOR := env_var_or_default("CARGO_TERM_COLOR", "auto")

# Crates that must build and pass their tests on wasm32-unknown-unknown.
wasm_crates := "-p sealbase-crypto -p sealbase-protocol -p sealbase-auth -p sealbase-db"

# List the recipes.
default:
    @just --list

# Install toolchains and packages (idempotent).
setup:
    ./scripts/setup.sh

# Run the accounts server and the sync server on SQLite under ./data (development mode).
dev:
    scripts/dev.sh

# Every check CI runs: formatting, clippy, native tests (incl. PostgreSQL), wasm32 tests in Node, WebCrypto vectors, the SDK's TypeScript tests, browser tests.
test: lint test-native test-wasm test-webcrypto test-js test-e2e

# rustfmt and clippy with warnings as errors.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Native tests of the whole workspace.
test-native:
    cargo test --workspace

# Build for wasm32 and run the crypto, protocol, auth and store tests in Node; the sync engine must build for wasm32 too.
test-wasm:
    scripts/cargo-wasm test {{wasm_crates}}
    scripts/cargo-wasm build -p sealbase-client

# Check the Rust test vectors with Node's WebCrypto.
test-webcrypto:
    node crates/crypto/tests/webcrypto/check-vectors.mjs

# The SDK's TypeScript: type-checked build and vitest (with the real wasm module, in Node).
test-js: sdk
    npm test -w js

# Browser tests (Playwright driving Debian's Chromium): the accounts web UI, and the example apps on the `sealbase` binary.
test-e2e: web apps
    cargo build -p sealbase-accounts -p sealbase
    npm test -w e2e

# Build the browser SDK: its wasm module (wasm-opt -Oz) into js/wasm and the package into js/dist.
sdk:
    scripts/build-wasm.sh sdk
    npm run build -w js

# Build the SDK and the example apps (examples/*/dist).
apps:
    scripts/build-apps.sh

# SDK figures in Chromium (cold sync, queries, put latency, bundle size; docs/benchmarks.md).
bench-browser: web
    cargo build --release -p sealbase
    scripts/build-apps.sh
    node e2e/bench/sdk.mjs

# Build the accounts web UI's wasm module into servers/accounts/web/pkg.
web:
    scripts/build-wasm.sh ui

# Release build of the wasm32 crates.
wasm:
    scripts/cargo-wasm build {{wasm_crates}} --release

# Criterion benchmarks (figures go to docs/benchmarks.md): crypto, encoding and
# decoding a pull chunk, and the
# sync server's authorization check, the accounts server's per-login and per-token cost,
# the local store, the sync engine's cold sync and merge throughput, and
# shared-space rotation cost and invite-to-first-sync latency.
bench *args:
    cargo bench -p sealbase-crypto --bench crypto -- {{args}}
    cargo bench -p sealbase-protocol --bench frames -- {{args}}
    cargo bench -p sealbase-sync --bench capability -- {{args}}
    cargo bench -p sealbase-accounts --bench accounts -- {{args}}
    cargo bench -p sealbase-db --bench store -- {{args}}
    cargo bench -p sealbase-client --bench sync -- {{args}}
    cargo bench -p sealbase-client --bench spaces

# Sync server load generator against the release binary (args: sqlite, postgres, --quick).
bench-sync *args:
    cargo bench -p sealbase-sync --bench load -- {{args}}

# Fuzz frame decoding with libFuzzer (needs a nightly toolchain and cargo-fuzz).
fuzz seconds="60":
    cd crates/protocol && cargo +nightly fuzz run decode_frame -- -max_len=65536 -rss_limit_mb=256 -max_total_time={{seconds}}

# Format the code.
fmt:
    cargo fmt --all
