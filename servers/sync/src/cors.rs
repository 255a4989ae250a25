//! CORS for the file routes: browser apps are served from their own origin
//! (a Vite dev server, an app host) and call `PUT`/`GET`/`HEAD` of
//! `/api/v1/spaces/{space}/files/{file}` with a bearer token and the
//! `Sealbase-*` headers, which needs a preflight. Only origins the operator
//! lists are answered (`--cors-origin`); no cookies are involved, so
//! credentials are never allowed. The WebSocket needs no CORS (the server
//! authenticates the first frame, not the origin), and `/health` and
//! `/metrics` are for operators, not pages.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::server::AppState;

/// Request headers a browser may send to the file routes.
const ALLOW_HEADERS: &str = "authorization, content-type, range, if-none-match, if-range, \
     sealbase-capability, sealbase-file-key, sealbase-record";
/// Response headers a page may read.
const EXPOSE_HEADERS: &str = "sealbase-file-key, sealbase-record, sealbase-cursor, etag, \
     content-range, content-length, accept-ranges";

/// Whether `s` is an origin as browsers send it (`scheme://host[:port]`,
/// no path, no trailing slash), or `*` for any.
pub fn valid_origin(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
}

/// The CORS middleware (file routes only).
pub(crate) async fn cors(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if !request
        .uri()
        .path()
        .starts_with(sealbase_protocol::FILES_PATH_PREFIX)
    {
        return next.run(request).await;
    }
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let allowed = origin.as_deref().and_then(|o| {
        state
            .cors_origins
            .iter()
            .any(|a| a == "*" || a == o)
            .then(|| HeaderValue::from_str(o).ok())
            .flatten()
    });
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        match &allowed {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => StatusCode::FORBIDDEN.into_response(),
        }
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(allowed) = allowed {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        if preflight {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD, PUT"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        } else {
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::valid_origin;

    #[test]
    fn origins() {
        for ok in ["http://localhost:5173", "https://app.example", "*"] {
            assert!(valid_origin(ok), "{ok}");
        }
        for bad in [
            "localhost:5173",
            "https://app.example/",
            "https://app.example/path",
            "ftp://x",
            "https://",
            "",
        ] {
            assert!(!valid_origin(bad), "{bad}");
        }
    }
}
