//! EST (RFC 7030) under `/.well-known/est/` and `/.well-known/est/<LABEL>/`,
//! where the label names the template (without one: `User` to enroll, the
//! renewed certificate's own to re-enroll).
//!
//! - `cacerts`: the CA certificates (current, its parents and the
//!   cross-certificates between CA keys, RFC 7030 4.1.3's rollover
//!   certificates), certs-only CMS in base64.
//! - `simpleenroll`: a base64 PKCS#10 from an authenticated caller (HTTP
//!   Basic, a bearer token, or a mapped TLS client certificate), through the
//!   same submission pipeline as every other front end; the certificate
//!   comes back as certs-only CMS in base64, a pending request as 202 with
//!   `Retry-After`.
//! - `simplereenroll`: the same, authenticated with the TLS client
//!   certificate being renewed, which becomes a renewal of it (names and
//!   template kept, rows linked).
//! - `csrattrs`: 204 (Lockbox asks for no particular attributes).
//! - `serverkeygen`: not offered yet (501): server-generated keys come with
//!   KMS mode.
//!
//! Refusals are the engine's errors with their HTTP status and a text body.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use lockbox_engine::{Ca, Disposition, SubmitOptions};

use crate::auth::{enrollee, CLIENT_CERT_HEADER};
use crate::error::ApiError;

/// The template when the path names none.
const DEFAULT_TEMPLATE: &str = "User";

/// Largest request body (a PKCS#10 in base64 is a few kilobytes).
const MAX_REQUEST: usize = 64 * 1024;

/// The `/.well-known/est/` routes.
pub(crate) fn routes() -> Router<Arc<Ca>> {
    Router::new()
        .route("/.well-known/est/cacerts", get(cacerts))
        .route("/.well-known/est/{label}/cacerts", get(cacerts_labelled))
        .route("/.well-known/est/simpleenroll", post(enroll))
        .route(
            "/.well-known/est/{label}/simpleenroll",
            post(enroll_labelled),
        )
        .route("/.well-known/est/simplereenroll", post(reenroll))
        .route(
            "/.well-known/est/{label}/simplereenroll",
            post(reenroll_labelled),
        )
        .route("/.well-known/est/csrattrs", get(csrattrs))
        .route("/.well-known/est/{label}/csrattrs", get(csrattrs))
        .route("/.well-known/est/serverkeygen", post(serverkeygen))
        .route("/.well-known/est/{label}/serverkeygen", post(serverkeygen))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST))
}

/// Base64 with line breaks every 64 characters (RFC 7030 bodies).
fn base64_lines(der: &[u8]) -> String {
    let mut out = String::new();
    let text = crate::http::base64_encode(der);
    for chunk in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// A certs-only CMS response in base64.
fn certs_only(certs: &[Vec<u8>]) -> Response {
    match lockbox_crypto::cms::certs_only(certs) {
        Ok(p7) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/pkcs7-mime; smime-type=certs-only"),
                ),
                (
                    header::HeaderName::from_static("content-transfer-encoding"),
                    HeaderValue::from_static("base64"),
                ),
            ],
            base64_lines(&p7),
        )
            .into_response(),
        Err(e) => text_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn text_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\r\n"),
    )
        .into_response()
}

/// An engine refusal as RFC 7030 allows: its HTTP status and a text body
/// (what a 500 or 503 may say, as every front end).
fn refusal(e: lockbox_engine::EngineError) -> Response {
    let status = crate::error::http_status(&e, StatusCode::FORBIDDEN);
    let message = crate::error::public_message(&e, status, "est").unwrap_or_else(|| e.to_string());
    text_error(status, &message)
}

async fn cacerts(State(ca): State<Arc<Ca>>) -> Response {
    let mut certs = match ca.chain_der() {
        Ok(c) => c,
        Err(e) => return refusal(e),
    };
    certs.extend(ca.cross_certificates().unwrap_or_default());
    certs_only(&certs)
}

async fn cacerts_labelled(State(ca): State<Arc<Ca>>, Path(_label): Path<String>) -> Response {
    cacerts(State(ca)).await
}

async fn csrattrs() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Reads the request (answering before the body is read would reset an
/// HTTP/2 stream the client is still sending on), then says not yet.
async fn serverkeygen(_body: Bytes) -> Response {
    text_error(
        StatusCode::NOT_IMPLEMENTED,
        "server-side key generation is not offered by this CA yet",
    )
}

async fn enroll(State(ca): State<Arc<Ca>>, headers: HeaderMap, body: Bytes) -> Response {
    submit(&ca, &headers, &body, Some(DEFAULT_TEMPLATE), false).await
}

async fn enroll_labelled(
    State(ca): State<Arc<Ca>>,
    Path(label): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    submit(&ca, &headers, &body, Some(&label), false).await
}

/// Without a label, a renewal keeps the renewed certificate's template.
async fn reenroll(State(ca): State<Arc<Ca>>, headers: HeaderMap, body: Bytes) -> Response {
    submit(&ca, &headers, &body, None, true).await
}

async fn reenroll_labelled(
    State(ca): State<Arc<Ca>>,
    Path(label): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    submit(&ca, &headers, &body, Some(&label), true).await
}

/// simpleenroll / simplereenroll: authenticate (after the body is read, as
/// every handler with a body does), decode, submit.
async fn submit(
    ca: &Ca,
    headers: &HeaderMap,
    body: &[u8],
    label: Option<&str>,
    renew: bool,
) -> Response {
    let actor = match enrollee(ca, headers).await {
        Ok(a) => a,
        // RFC 7030 3.2.3: missing or invalid credentials are 401 with a
        // challenge; anything else (throttled, the database away, an
        // internal error) keeps its own status and what it may say.
        Err(ApiError(e))
            if matches!(
                e.kind(),
                lockbox_engine::ErrorKind::Unauthorized
                    | lockbox_engine::ErrorKind::Forbidden
                    | lockbox_engine::ErrorKind::Denied
            ) =>
        {
            let mut r = text_error(StatusCode::UNAUTHORIZED, &e.to_string());
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"EST\""),
            );
            return r;
        }
        Err(ApiError(e)) => {
            let throttled = e.kind() == lockbox_engine::ErrorKind::Throttled;
            let mut r = refusal(e);
            if throttled {
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(lockbox_engine::LOGIN_WINDOW.as_secs()),
                );
            }
            return r;
        }
    };
    let renewing = if renew {
        match headers
            .get(CLIENT_CERT_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            Some(t) => Some(t.to_string()),
            None => return text_error(
                StatusCode::FORBIDDEN,
                "simplereenroll needs the certificate being renewed as the TLS client certificate",
            ),
        }
    } else {
        None
    };
    let der = match lockbox_codec::pem::decode_input(body) {
        Ok(d) => d.der,
        Err(e) => return text_error(StatusCode::BAD_REQUEST, &format!("the request: {e}")),
    };
    // A request repeated after 202 (RFC 7030 4.2.3) is the same request:
    // still pending, or its certificate once an officer issued it.
    let earlier = match ca.earlier_submission(&actor, &der).await {
        Ok(o) => o,
        Err(e) => return refusal(e),
    };
    let opts = SubmitOptions {
        template: label.map(str::to_string),
        requester: actor.name.clone(),
        attributes: vec![],
        actor: Some(actor),
        on_behalf_of: None,
        renewing,
    };
    let outcome = match earlier {
        Some(o) => o,
        None => match ca.submit(&der, &opts).await {
            Ok(o) => o,
            Err(e) => return refusal(e),
        },
    };
    match (&outcome.disposition, &outcome.certificate_pem) {
        (Disposition::Issued, Some(pem)) => {
            match lockbox_codec::pem::decode_input(pem.as_bytes()) {
                Ok(d) => certs_only(&[d.der]),
                Err(e) => text_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
        (Disposition::Pending, _) => {
            let mut r = text_error(
                StatusCode::ACCEPTED,
                &format!(
                    "request {} is waiting for a certificate manager",
                    outcome.request_id
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("300"));
            r
        }
        _ => text_error(StatusCode::FORBIDDEN, &outcome.message),
    }
}
