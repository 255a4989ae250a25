//! Signature checks in a second worker: the engine's worker hands a
//! batch's checks to a JavaScript function (the SDK posts them to its
//! checker worker), and that worker answers with [`verify_signatures`].
//! The check itself is the crypto crate's, on both sides.

use sealbase_client::{Runtime, SignatureAnswer, SignatureCheck};
use sealbase_crypto::verify_signature;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::WasmEnv;

/// The engine's runtime in the browser: [`WasmEnv`]'s clock and timers,
/// and `check(keys, signatures, messages, lengths) → Promise<Uint8Array>`
/// for signature checks when the SDK gives one.
pub(super) struct BrowserRuntime {
    pub(super) check: Option<js_sys::Function>,
}

impl Runtime for BrowserRuntime {
    fn now_ms(&self) -> i64 {
        sealbase_db::Env::now_ms(&WasmEnv)
    }

    async fn sleep(&self, ms: u64) {
        WasmEnv.sleep(ms).await;
    }

    fn check_signatures(&self, checks: &[SignatureCheck]) -> Option<SignatureAnswer> {
        let check = self.check.clone()?;
        let mut keys = Vec::with_capacity(checks.len() * 32);
        let mut signatures = Vec::with_capacity(checks.len() * 64);
        let mut messages = Vec::new();
        let mut lengths = Vec::with_capacity(checks.len());
        for c in checks {
            keys.extend_from_slice(c.public_key());
            signatures.extend_from_slice(c.signature());
            messages.extend_from_slice(c.message());
            lengths.push(u32::try_from(c.message().len()).ok()?);
        }
        let args = js_sys::Array::of4(
            &js_sys::Uint8Array::from(&keys[..]),
            &js_sys::Uint8Array::from(&signatures[..]),
            &js_sys::Uint8Array::from(&messages[..]),
            &js_sys::Uint32Array::from(&lengths[..]),
        );
        // A throwing or non-promise checker counts as a failed one: the
        // engine checks the batch itself.
        let promise = check
            .apply(&JsValue::NULL, &args)
            .ok()?
            .dyn_into::<js_sys::Promise>()
            .ok()?;
        Some(Box::pin(async move {
            let answer = JsFuture::from(promise).await.ok()?;
            let flags = answer.dyn_into::<js_sys::Uint8Array>().ok()?.to_vec();
            Some(flags.into_iter().map(|f| f == 1).collect())
        }))
    }
}

/// Checks Ed25519 signatures (strictly, as the engine does): entry `i` has
/// the 32-byte public key at `keys[32i..]`, the 64-byte signature at
/// `signatures[64i..]` and a message of `lengths[i]` bytes, the messages
/// one after the other in `messages`. Returns 1 for each that verifies,
/// 0 otherwise.
#[wasm_bindgen(js_name = verifySignatures)]
pub fn verify_signatures(
    keys: &[u8],
    signatures: &[u8],
    messages: &[u8],
    lengths: &[u32],
) -> Result<Vec<u8>, JsValue> {
    let n = lengths.len();
    if Some(keys.len()) != n.checked_mul(32) || Some(signatures.len()) != n.checked_mul(64) {
        return Err(super::json::error(
            "TypeError",
            "verifySignatures: keys and signatures must hold 32 and 64 bytes per message",
        ));
    }
    let mut flags = Vec::with_capacity(n);
    let mut rest = messages;
    for ((len, key), signature) in lengths
        .iter()
        .zip(keys.chunks_exact(32))
        .zip(signatures.chunks_exact(64))
    {
        let len = usize::try_from(*len).unwrap_or(usize::MAX);
        let Some((message, tail)) = rest.split_at_checked(len) else {
            return Err(super::json::error(
                "TypeError",
                "verifySignatures: the lengths add up to more than the messages",
            ));
        };
        rest = tail;
        flags.push(u8::from(verify_signature(key, message, signature)));
    }
    if !rest.is_empty() {
        return Err(super::json::error(
            "TypeError",
            "verifySignatures: the lengths add up to less than the messages",
        ));
    }
    Ok(flags)
}
