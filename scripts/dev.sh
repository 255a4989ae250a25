#!/usr/bin/env bash
# `just dev`: the accounts server and the sync server side by side, on SQLite
# under ./data, in development mode (keys created on first start, emailed
# codes in the log and at http://127.0.0.1:8080/dev/mail?to=ADDRESS).
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sealbase/target}"
ACCOUNTS="${SEALBASE_ACCOUNTS_LISTEN:-127.0.0.1:8080}"
SYNC="${SEALBASE_SYNC_LISTEN:-127.0.0.1:8081}"
ISSUER="http://$ACCOUNTS"

cargo build -p sealbase-accounts -p sealbase-sync
scripts/build-accounts-web.sh
bin="$CARGO_TARGET_DIR/debug"
mkdir -p data

pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT INT TERM

"$bin/sealbase-accounts" serve --dev --listen "$ACCOUNTS" --issuer "$ISSUER" \
    --database-url sqlite://./data/accounts.db --keys-file ./data/accounts-keys.json \
    --sync-url "ws://$SYNC/api/v1/ws" --web-dir servers/accounts/web &
pids+=($!)
for _ in $(seq 1 100); do
    curl -fsS "$ISSUER/health" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$ISSUER/health" >/dev/null || { echo "the accounts server did not start" >&2; exit 1; }

"$bin/sealbase-sync" serve --listen "$SYNC" --issuer "$ISSUER" \
    --jwks-url "$ISSUER/.well-known/jwks.json" --audience sealbase-sync \
    --database-url sqlite://./data/sync.db --files-dir ./data/files &
pids+=($!)

cat <<MSG

Sealbase (development) is running:
  accounts  $ISSUER   (sign up at $ISSUER/signup; discovery: $ISSUER/.well-known/sealbase)
  sync      ws://$SYNC/api/v1/ws
Register an app:  $bin/sealbase-accounts client add --database-url sqlite://./data/accounts.db \\
                    --id myapp --name "My app" --redirect-uri http://localhost:5173/callback
Emailed codes:    $ISSUER/dev/mail?to=ADDRESS
Ctrl-C stops both servers.

MSG
wait -n "${pids[@]}"
