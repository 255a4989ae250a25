//! The browser's clock, randomness and timers: the environment of the
//! store and the engine inside a worker (or a page, or Node).

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    // The global `setTimeout` of windows, workers and Node alike.
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: i32) -> JsValue;
}

/// `Date.now()`, `crypto.getRandomValues` and `setTimeout`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmEnv;

impl sealbase_db::Env for WasmEnv {
    fn now_ms(&self) -> i64 {
        // Unix ms fit an f64 exactly until the year 287396.
        #[allow(clippy::cast_possible_truncation)]
        let now = js_sys::Date::now() as i64;
        now
    }

    fn fill_random(&self, buf: &mut [u8]) {
        // The Web Crypto API cannot fail for buffers this size; a missing
        // one (a platform without `crypto`) must not yield weak ids or keys.
        if let Err(e) = getrandom::getrandom(buf) {
            wasm_bindgen::throw_str(&format!("no secure randomness: {e}"));
        }
    }
}

impl sealbase_client::Runtime for WasmEnv {
    fn now_ms(&self) -> i64 {
        sealbase_db::Env::now_ms(self)
    }

    async fn sleep(&self, ms: u64) {
        let ms = i32::try_from(ms).unwrap_or(i32::MAX);
        let timer = js_sys::Promise::new(&mut |resolve, _reject| {
            set_timeout(&resolve, ms);
        });
        // A timer promise only resolves.
        let _ = JsFuture::from(timer).await;
    }
}
