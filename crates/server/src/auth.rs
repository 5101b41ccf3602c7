//! Authentication of callers (bearer tokens, Basic passwords, mapped TLS
//! client certificates, anonymous enrollees) and who may read a request,
//! shared by REST, certsrv and console.
//!
//! Handlers without a body take the [`Authenticated`] or [`Enrollee`]
//! extractor (certsrv's `WebUser` and the console's `Session` are built on
//! them). Handlers that read a body call [`authenticated`] or [`enrollee`]
//! by hand after the body extractor: axum runs the body extractor last, so an
//! authentication extractor would log the caller in before a malformed or
//! oversized body is refused, and the order of refusals would change.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use lockbox_engine::Credential;
use lockbox_engine::{Actor, Ca, EngineError};

use crate::error::{ApiError, ApiResult};

fn unauthorized() -> ApiError {
    ApiError(EngineError::Forbidden(
        "administrator token required".into(),
    ))
}

/// Authenticates the caller: `Authorization: Bearer` (API token or the
/// administrator token) or `Basic` (principal password). `None`: no credentials.
/// Failures are audited; password logins are throttled per (principal,
/// peer address) pair and per peer address (429 with `Retry-After` while
/// that pair or address is throttled; the same principal from another
/// address is unaffected).
pub(crate) async fn caller(ca: &Ca, headers: &HeaderMap) -> ApiResult<Option<Actor>> {
    let source = headers
        .get(PEER_ADDRESS_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<std::net::IpAddr>().ok());
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        // A verified TLS client certificate mapped to a principal authenticates it
        // (the header is set by the connection layer, never taken from clients).
        return match headers
            .get(CLIENT_CERT_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            Some(thumb) => Ok(ca.login(Credential::Certificate(thumb), source).await?),
            None => Ok(None),
        };
    };
    let value = value.to_str().map_err(|_| unauthorized())?;
    let (scheme, cred) = value.split_once(' ').ok_or_else(unauthorized)?;
    let actor = if scheme.eq_ignore_ascii_case("bearer") {
        ca.login(Credential::Token(cred.trim()), source).await?
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded =
            lockbox_codec::pem::decode_base64_text(cred.trim()).map_err(|_| unauthorized())?;
        let text = zeroize::Zeroizing::new(String::from_utf8(decoded).map_err(|_| unauthorized())?);
        let (user, pass) = text.split_once(':').ok_or_else(unauthorized)?;
        ca.login(
            Credential::Password {
                name: user,
                password: pass,
            },
            source,
        )
        .await?
    } else {
        None
    };
    actor.map(Some).ok_or_else(unauthorized)
}

/// An authenticated caller (the engine then decides what it may do).
pub(crate) async fn authenticated(ca: &Ca, headers: &HeaderMap) -> ApiResult<Actor> {
    caller(ca, headers).await?.ok_or_else(|| {
        ApiError(EngineError::Forbidden(
            "authentication required: send 'Authorization: Bearer <token>' or Basic credentials"
                .into(),
        ))
    })
}

/// An authenticated caller as an extractor: the request is refused as by
/// [`authenticated`] when it carries no valid credentials.
pub(crate) struct Authenticated(pub(crate) Actor);

impl FromRequestParts<Arc<Ca>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ca: &Arc<Ca>) -> Result<Self, ApiError> {
        authenticated(ca, &parts.headers).await.map(Authenticated)
    }
}

/// Who is enrolling: an authenticated caller, or `anonymous` (as an
/// Authenticated User) when the CA allows anonymous enrollment.
pub(crate) async fn enrollee(ca: &Ca, headers: &HeaderMap) -> ApiResult<Actor> {
    match caller(ca, headers).await? {
        Some(a) => Ok(a),
        None => anonymous_enrollee(ca).ok_or_else(|| {
            ApiError(EngineError::Unauthenticated(
                "authentication required: anonymous enrollment is off (server.allow_anonymous_enrollment); send 'Authorization: Bearer <token>' or Basic credentials"
                    .into(),
            ))
        }),
    }
}

/// The enrollee as an extractor (see [`enrollee`]): REST refusals as
/// [`ApiError`]; certsrv maps them to its own pages (`certsrv::WebUser`).
pub(crate) struct Enrollee(pub(crate) Actor);

impl FromRequestParts<Arc<Ca>> for Enrollee {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ca: &Arc<Ca>) -> Result<Self, ApiError> {
        enrollee(ca, &parts.headers).await.map(Enrollee)
    }
}

/// The anonymous caller as an Authenticated User, when the CA allows it.
pub(crate) fn anonymous_enrollee(ca: &Ca) -> Option<Actor> {
    ca.config().server.allow_anonymous_enrollment.then(|| {
        let mut a = Actor::anonymous();
        a.groups.push(lockbox_engine::AUTHENTICATED_USERS.into());
        a
    })
}

/// Set by the connection layer (never by clients) to the verified TLS client certificate's SHA-1.
pub const CLIENT_CERT_HEADER: &str = "x-lockbox-client-certificate-sha1";

/// Set from the connection's peer address (never by clients), for throttling failed logins.
pub const PEER_ADDRESS_HEADER: &str = "x-lockbox-peer-address";

/// Replaces any client-sent [`PEER_ADDRESS_HEADER`] with the connection's
/// peer address (`ConnectInfo`, set by `serve`), when known.
pub(crate) async fn peer_address(mut req: axum::extract::Request) -> axum::extract::Request {
    req.headers_mut().remove(PEER_ADDRESS_HEADER);
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    if let Some(v) = peer.and_then(|p| HeaderValue::from_str(&p).ok()) {
        req.headers_mut().insert(PEER_ADDRESS_HEADER, v);
    }
    req
}

/// The request `id` if `user` may read it: its requester, or a reader of the
/// CA database (certsrv's rule). Anyone else gets one answer whether the
/// request exists or not, so request IDs cannot be probed.
pub(crate) async fn readable_request(
    ca: &Ca,
    user: Option<&Actor>,
    id: i64,
) -> Result<lockbox_engine::RequestRecord, EngineError> {
    let rec = ca.request(id).await;
    if let (Some(u), Ok(r)) = (user, &rec) {
        if r.requester.eq_ignore_ascii_case(&u.name) {
            return rec;
        }
    }
    if let Some(u) = user {
        if ca
            .authorize(u, lockbox_engine::Op::ReadDatabase)
            .await
            .is_ok()
        {
            // A restricted manager reads only the rows within its restrictions.
            return ca.read_request(u, id).await;
        }
    }
    Err(EngineError::Forbidden(format!(
        "request {id} does not exist or is not yours"
    )))
}
