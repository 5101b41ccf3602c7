//! Shared HTTP helpers: body limit, same-origin check, base64 and the
//! request/response layers (cross-origin refusal, `no-store`, `Host`).

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use lockbox_codec::pem::encode_pem;
use lockbox_engine::EngineError;

use crate::error::ApiError;

/// Largest request body accepted (a CMC archival request is a few KiB).
pub const MAX_BODY: usize = 1024 * 1024;

/// Whether a browser sent this request from another origin: a foreign or
/// `null` `Origin` header. Clients other than browsers send none. Basic
/// credentials are ambient in browsers, so form posts check this.
pub(crate) fn cross_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
    origin == "null" || !origin_host.eq_ignore_ascii_case(host)
}

pub(crate) fn base64_encode(data: &[u8]) -> String {
    // The PEM body without armour is plain base64.
    encode_pem("X", data)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
}

/// Browsers send ambient credentials (a TLS client certificate, cached Basic
/// credentials) with cross-site requests too: no state-changing request from
/// another origin reaches a handler.
pub(crate) async fn refuse_cross_origin_writes(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let safe = matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if !safe && cross_origin(req.headers()) {
        return ApiError(EngineError::Forbidden(
            "cross-origin requests that change state are refused".into(),
        ))
        .into_response();
    }
    next.run(req).await
}

/// Responses may carry keys, recovery blobs, tokens or database rows: none
/// may be kept by a cache unless its handler says otherwise (the public CA
/// certificate, chain and CRL set no header and stay cacheable).
pub(crate) async fn no_store_by_default(uri: axum::http::Uri, mut resp: Response) -> Response {
    const PUBLIC: &[&str] = &[
        "/api/v1/ca/certificate",
        "/api/v1/ca/chain",
        "/api/v1/ca/exchange",
        "/api/v1/crl",
        "/crl/ca.crl",
    ];
    if !PUBLIC.contains(&uri.path()) && !resp.headers().contains_key(header::CACHE_CONTROL) {
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// HTTP/2 carries the host in `:authority`, not in a `Host` header: copy it
/// there so same-origin checks see the same thing on both protocol versions.
pub(crate) async fn host_from_authority(mut req: axum::extract::Request) -> axum::extract::Request {
    if !req.headers().contains_key(header::HOST) {
        if let Some(v) = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(header::HOST, v);
        }
    }
    req
}
