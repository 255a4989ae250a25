/// <reference types="vite/client" />

// Build-time fallbacks for `vite dev` without a /config.json.
interface ImportMetaEnv {
  readonly VITE_ACCOUNTS_URL?: string;
  readonly VITE_SYNC_URL?: string;
}
