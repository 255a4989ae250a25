//! The web UI's server side: error pages, and the static files of the UI
//! when `--web-dir` names them.

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tower_http::services::ServeDir;

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

/// The pages of the UI (one document; the script renders the page the path
/// names).
pub const PAGES: &[&str] = &[
    "/",
    "/login",
    "/signup",
    "/consent",
    "/recover",
    "/password",
];

/// Adds the UI: the pages, and `/assets/` from the web directory (the
/// page's script, style, and the wasm module built by
/// `scripts/build-wasm.sh ui`). Without a web directory the pages
/// answer 503 with a note for the operator.
pub fn routes(mut app: Router<AppState>, state: &AppState) -> Router<AppState> {
    let index = state.settings.web_dir.as_ref().and_then(|dir| {
        let path = dir.join("index.html");
        match std::fs::read_to_string(&path) {
            Ok(html) if dir.join("pkg").join("sealbase_wasm_bg.wasm").is_file() => Some(html),
            Ok(_) => {
                tracing::warn!(dir = %dir.display(), "the web UI's wasm module is missing: run scripts/build-wasm.sh ui");
                None
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the web UI cannot be read");
                None
            }
        }
    });
    for page in PAGES {
        let html = index.clone();
        app = app.route(
            page,
            get(move || async move {
                match html {
                    Some(html) => Html(html).into_response(),
                    None => error_page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The account pages are not installed on this server (its operator: build them with scripts/build-wasm.sh ui and set --web-dir).",
                    ),
                }
            }),
        );
    }
    if let (Some(dir), Some(_)) = (&state.settings.web_dir, &index) {
        app = app.nest_service("/assets", ServeDir::new(dir));
    }
    app
}
