#!/usr/bin/env bash
# `just dev`: the `sealbase` binary — the accounts server and the sync
# server in one process, on SQLite under ./data, in development mode (keys
# created on first start, emailed codes in the log and at
# http://127.0.0.1:8080/dev/mail?to=ADDRESS). Ctrl-C stops both.
# The example apps are built (the SDK's wasm, js/, examples/*) and served,
# each on its own origin: launchpad at http://127.0.0.1:8090/, tasks at
# http://127.0.0.1:8091/.
# Extra arguments go to `sealbase` (e.g. --app myapp=http://localhost:5173/callback).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sealbase/target}"

cargo build -p sealbase
scripts/build-wasm.sh ui
scripts/build-apps.sh
exec "$CARGO_TARGET_DIR/debug/sealbase" --data-dir ./data --web-dir servers/accounts/web \
  --web-app launchpad=examples/launchpad/dist --web-app tasks=examples/tasks/dist "$@"
