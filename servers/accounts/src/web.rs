//! The web UI's server side: error pages, and the static files of the UI
//! when `--web-dir` names them.

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::server::AppState;

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A complete error page.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sealbase: sign-in problem</title></head><body><main>\
         <h1>This sign-in cannot continue</h1><p>{}</p>\
         <p>Go back to the app and try again.</p></main></body></html>",
        escape(message)
    );
    (status, Html(body)).into_response()
}

/// Adds the UI routes.
pub fn routes(app: Router<AppState>, _state: &AppState) -> Router<AppState> {
    app
}
