//! Values across the boundary: JSON text both ways (the engines' own
//! `JSON.parse`/`JSON.stringify` are faster than walking objects from
//! wasm), and errors as `Error` objects whose `name` says what failed.

use sealbase_client::SyncError;
use sealbase_db::DbError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;

/// An `Error` named `name` (`SchemaError`, `SyncError`, …).
pub(super) fn error(name: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    e.set_name(name);
    e.into()
}

/// What a thrown JavaScript value says: a string, or an `Error`'s
/// `message`; `fallback` for anything else.
pub(super) fn thrown_text(e: &JsValue, fallback: &str) -> String {
    e.as_string()
        .or_else(|| {
            js_sys::Reflect::get(e, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| fallback.to_owned())
}

/// The store's refusal, named by kind.
pub(super) fn db_error(e: DbError) -> JsValue {
    let name = match &e {
        DbError::Schema(_) | DbError::UnknownCollection(_) => "SchemaError",
        DbError::Query(_) => "QueryError",
        DbError::NotFound { .. } => "NotFoundError",
        DbError::Unique { .. } => "UniqueError",
        _ => "StoreError",
    };
    error(name, &e.to_string())
}

/// A sync or space operation's failure.
pub(super) fn sync_error(e: SyncError) -> JsValue {
    error("SyncError", &e.to_string())
}

/// A Rust value as a JavaScript value.
pub(super) fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    let text = serde_json::to_string(value).map_err(|e| error("StoreError", &e.to_string()))?;
    js_sys::JSON::parse(&text)
}

/// A JavaScript value (`what`, for the message) as a Rust value.
pub(super) fn from_js<T: DeserializeOwned>(value: &JsValue, what: &str) -> Result<T, JsValue> {
    let text = if value.is_undefined() {
        "null".to_owned()
    } else {
        String::from(js_sys::JSON::stringify(value).map_err(|_| {
            error(
                "TypeError",
                &format!("the {what} is not JSON (a cycle or a BigInt?)"),
            )
        })?)
    };
    serde_json::from_str(&text).map_err(|e| error("TypeError", &format!("bad {what}: {e}")))
}
