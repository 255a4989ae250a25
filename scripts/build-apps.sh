#!/usr/bin/env bash
# Builds the browser SDK (its wasm module into js/wasm, then the TypeScript
# into js/dist) and the example apps (examples/*/dist), which `sealbase
# --web-app` serves. cargo and Vite skip what is up to date.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
scripts/build-wasm.sh sdk
npm run build --silent -w js
for app in examples/launchpad examples/tasks; do
  npm run build --silent -w "$app"
done
log "apps built: examples/launchpad/dist examples/tasks/dist"
