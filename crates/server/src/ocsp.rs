//! The OCSP responder's HTTP binding (RFC 6960 appendix A, RFC 5019):
//! `POST /ocsp` with an `application/ocsp-request` body, and
//! `GET /ocsp/{base64 request}`. Answers are `application/ocsp-response`;
//! a GET answer without a nonce carries RFC 5019 cache headers, anything
//! else is `no-store`. With `ocsp.enabled = false` both routes are 404.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use lockbox_engine::{Ca, OcspAnswer};

/// Largest OCSP request accepted (real ones are a few hundred bytes).
const MAX_REQUEST: usize = 16 * 1024;

/// The `/ocsp` routes.
pub(crate) fn routes() -> Router<Arc<Ca>> {
    Router::new()
        .route("/ocsp", post(by_post))
        .route("/ocsp/", post(by_post))
        .route("/ocsp/{*request}", get(by_get))
        // A larger body is refused before it is read in full.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST))
}

async fn by_post(State(ca): State<Arc<Ca>>, body: Bytes) -> Response {
    if !ca.ocsp_enabled() {
        return StatusCode::NOT_FOUND.into_response();
    }
    if body.len() > MAX_REQUEST {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    let answer = ca.ocsp(&body).await;
    reply(answer, false)
}

async fn by_get(State(ca): State<Arc<Ca>>, Path(request): Path<String>) -> Response {
    if !ca.ocsp_enabled() {
        return StatusCode::NOT_FOUND.into_response();
    }
    if request.len() > MAX_REQUEST * 2 {
        return StatusCode::URI_TOO_LONG.into_response();
    }
    // The path is already percent-decoded; accept padded or unpadded
    // standard base64 and the URL-safe alphabet.
    let text: String = request.chars().filter(|c| !c.is_whitespace()).collect();
    let trimmed = text.trim_end_matches('=');
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed));
    let answer = ca.ocsp(&der.unwrap_or_default()).await;
    reply(answer, true)
}

/// `Mon, 07 Dec 2026 21:42:15 GMT`.
fn http_date(unix: i64) -> Option<HeaderValue> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).ok()?;
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    HeaderValue::from_str(&t.format(&f).ok()?).ok()
}

fn reply(answer: OcspAnswer, get: bool) -> Response {
    let mut resp = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/ocsp-response"),
        )],
        answer.der,
    )
        .into_response();
    let h = resp.headers_mut();
    match answer.cacheable.filter(|_| get) {
        Some((this_update, next_update)) => {
            let now = lockbox_engine::period::now();
            let max_age = (next_update - now).max(0);
            if let Ok(v) = HeaderValue::from_str(&format!(
                "max-age={max_age}, public, no-transform, must-revalidate"
            )) {
                h.insert(header::CACHE_CONTROL, v);
            }
            if let Some(v) = http_date(this_update) {
                h.insert(header::LAST_MODIFIED, v);
            }
            if let Some(v) = http_date(next_update) {
                h.insert(header::EXPIRES, v);
            }
            if let Some(v) = http_date(now) {
                h.insert(header::DATE, v);
            }
        }
        None => {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    resp
}
