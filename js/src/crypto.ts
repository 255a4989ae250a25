/**
 * The cryptography an app may use directly. All of it is the Rust of
 * `crates/crypto` through the wasm; the SDK has no cryptography of its own
 * besides wrapping the stored app key with WebCrypto (session.ts).
 */
import { loadWasm } from './wasm.js';

export { loadWasm, loadWasmSync } from './wasm.js';

/** The `did:key` of an app key: the user's identity in that app. */
export async function didOfAppKey(appKey: Uint8Array): Promise<string> {
  const wasm = await loadWasm();
  return wasm.didOfAppKey(appKey);
}
