//! Shared HTTP helpers: body limit, same-origin check, base64 and the
//! request/response layers (cross-origin refusal, security headers, `Host`).

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

/// Content security policy of the certsrv HTML pages: the enrollment page
/// runs this origin's script (`lockbox-enroll.js`).
const CERTSRV_CSP: &str = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Content security policy of the console pages: no script at all.
const CONSOLE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Whether `path` is `prefix` or below it.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The headers of an HTML page, in this order: its content security policy,
/// no framing, no sniffing, the referrer policy (when given), no caching.
fn page_headers(h: &mut HeaderMap, csp: &'static str, referrer: Option<&'static str>) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(r) = referrer {
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static(r));
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The one layer that sets security headers, for every route.
///
/// HTML pages of certsrv (the enrollment page holds a key and a password)
/// and of the console get a content security policy, no framing, no
/// sniffing and no caching (the console also a same-origin referrer
/// policy); certsrv's enrollment script is not sniffed either.
///
/// Responses may carry keys, recovery blobs, backups, tokens or database
/// rows: every response but the public CA certificate, chain, exchange
/// certificate and CRL is `no-store`, whatever a handler or an inner layer
/// set (a handler cannot make a key blob cacheable by mistake). OCSP
/// answers (`/ocsp/...`) keep the RFC 5019 headers their handler set.
///
/// Page headers follow the path prefix (`/certsrv`, `/console`), not the
/// router a route was added to: a page served under another prefix gets no
/// CSP, so new page routes belong under those two.
pub(crate) async fn security_headers(uri: axum::http::Uri, mut resp: Response) -> Response {
    const PUBLIC: &[&str] = &[
        "/api/v1/ca/certificate",
        "/api/v1/ca/chain",
        "/api/v1/ca/cross",
        "/api/v1/ca/exchange",
        "/api/v1/crl",
        "/api/v1/crl/delta",
    ];
    let path = uri.path();
    let html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    let h = resp.headers_mut();
    if html && under(path, "/certsrv") {
        page_headers(h, CERTSRV_CSP, None);
    } else if html && under(path, "/console") {
        // `no-referrer` would make browsers send `Origin: null` with same-origin posts.
        page_headers(h, CONSOLE_CSP, Some("same-origin"));
    } else if path == "/certsrv/lockbox-enroll.js" {
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    let ocsp = under(path, "/ocsp") && h.contains_key(header::CACHE_CONTROL);
    // Every CRL under /crl/ (one base and one delta per CA key).
    let crl = under(path, "/crl");
    if !PUBLIC.contains(&path) && !ocsp && !crl {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    async fn headers_for(path: &str, resp: Response) -> axum::http::HeaderMap {
        let uri: axum::http::Uri = path.parse().unwrap();
        security_headers(uri, resp).await.headers().clone()
    }

    #[tokio::test]
    async fn secret_responses_are_never_cacheable() {
        for path in [
            "/api/v1/keys/blob",
            "/api/v1/backup",
            "/console/recovery/blob",
        ] {
            let mut resp = (StatusCode::OK, "secret").into_response();
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=600"),
            );
            let h = headers_for(path, resp).await;
            assert_eq!(h.get(header::CACHE_CONTROL).unwrap(), "no-store", "{path}");
        }
        let h = headers_for(
            "/api/v1/ca/certificate",
            (StatusCode::OK, "cert").into_response(),
        )
        .await;
        assert!(h.get(header::CACHE_CONTROL).is_none());
    }

    #[tokio::test]
    async fn pages_get_their_policy() {
        let page = || {
            (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<html></html>",
            )
                .into_response()
        };
        let h = headers_for("/certsrv/certrqma.asp", page()).await;
        assert_eq!(h.get(header::CONTENT_SECURITY_POLICY).unwrap(), CERTSRV_CSP);
        assert_eq!(h.get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
        assert_eq!(h.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
        let h = headers_for("/console/", page()).await;
        assert_eq!(h.get(header::CONTENT_SECURITY_POLICY).unwrap(), CONSOLE_CSP);
        assert_eq!(h.get(header::REFERRER_POLICY).unwrap(), "same-origin");
        let h = headers_for(
            "/certsrv/lockbox-enroll.js",
            (StatusCode::OK, "js").into_response(),
        )
        .await;
        assert_eq!(h.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
    }
}
