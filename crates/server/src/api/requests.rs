//! REST handlers for certificate requests: submit (JSON and CMC), list,
//! status, certificate, issue, deny, revoke and view.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lockbox_engine::{Ca, ErrorKind, SubmitOptions};
use serde::Deserialize;

use super::ca::{cert_response, FormatQuery};
use super::AppState;
use crate::auth::{
    anonymous_enrollee, authenticated, caller, enrollee, readable_request, Authenticated,
};
use crate::error::{ApiError, ApiResult};
use crate::http::base64_encode;

#[derive(Deserialize)]
pub(super) struct SubmitQuery {
    template: Option<String>,
    /// Enroll for this principal (callers holding the EnrollmentAgent role).
    on_behalf_of: Option<String>,
}

pub(super) async fn submit(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SubmitQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    // By hand, after the body extractor: an extractor would authenticate
    // before a bad or oversized body is refused (see `crate::auth`).
    let actor = enrollee(&ca, &headers).await?;
    let requester = actor.name.clone();
    let wants_cmc = is_pkcs7(&headers, header::CONTENT_TYPE) || is_pkcs7(&headers, header::ACCEPT);
    let opts = SubmitOptions {
        template: q.template,
        requester,
        attributes: vec![],
        actor: Some(actor),
        on_behalf_of: q.on_behalf_of,
        renewing: None,
    };
    if wants_cmc {
        return Ok(cmc_exchange(&ca, &body, &opts).await);
    }
    let mut outcome = ca.submit(&body, &opts).await?;
    if outcome.body_part_id.is_some() {
        // The request was CMC: include the Full PKI Response for clients that want it.
        let resp = ca.cmc_response(&outcome).await?;
        outcome.cmc_response = Some(base64_encode(&resp));
    }
    Ok(Json(outcome).into_response())
}

fn is_pkcs7(headers: &HeaderMap, name: header::HeaderName) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/pkcs7-mime"))
}

/// RFC 5273 CMC over HTTP: the answer is a CMC Full PKI Response, also for failures.
async fn cmc_exchange(ca: &Ca, body: &[u8], opts: &SubmitOptions) -> Response {
    let ct = [(
        header::CONTENT_TYPE,
        "application/pkcs7-mime; smime-type=CMC-response",
    )];
    match ca.submit(body, opts).await {
        Ok(o) => match ca.cmc_response(&o).await {
            Ok(resp) => (ct, resp).into_response(),
            Err(e) => ApiError(e).into_response(),
        },
        Err(e) => {
            let status = match e.kind() {
                ErrorKind::BadInput => StatusCode::BAD_REQUEST,
                ErrorKind::Denied => StatusCode::OK,
                _ => return ApiError(e).into_response(),
            };
            match lockbox_engine::cmc_failure(ca, &e, 1).await {
                Ok(resp) => (status, ct, resp).into_response(),
                Err(_) => ApiError(e).into_response(),
            }
        }
    }
}

pub(super) async fn submit_cmc(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SubmitQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    // By hand, after the body extractor: an extractor would authenticate
    // before a bad or oversized body is refused (see `crate::auth`).
    let actor = enrollee(&ca, &headers).await?;
    let requester = actor.name.clone();
    let opts = SubmitOptions {
        template: q.template,
        requester,
        attributes: vec![],
        actor: Some(actor),
        on_behalf_of: q.on_behalf_of,
        renewing: None,
    };
    Ok(cmc_exchange(&ca, &body, &opts).await)
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    disposition: Option<String>,
    limit: Option<i64>,
}

pub(super) async fn list_requests(
    State(ca): State<AppState>,
    Query(q): Query<ListQuery>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    let restrict = q
        .disposition
        .map(|d| format!("Disposition={d}"))
        .unwrap_or_default();
    let rows = ca.view(&actor, &restrict, q.limit.unwrap_or(1000)).await?;
    Ok(Json(rows).into_response())
}

pub(super) async fn request_status(
    State(ca): State<AppState>,
    Path(id): Path<i64>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    Ok(Json(ca.read_request(&actor, id).await?).into_response())
}

/// `GET /api/v1/requests/{id}/certificate`: for the request's requester (an
/// anonymous requester when anonymous enrollment is on) or a reader of the database.
pub(super) async fn request_certificate(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<FormatQuery>,
) -> ApiResult<Response> {
    let user = match caller(&ca, &headers).await? {
        Some(a) => Some(a),
        None => anonymous_enrollee(&ca),
    };
    readable_request(&ca, user.as_ref(), id).await?;
    Ok(cert_response(
        ca.certificate(id).await?,
        q.format.as_deref(),
    ))
}

pub(super) async fn issue(
    State(ca): State<AppState>,
    Path(id): Path<i64>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    Ok(Json(ca.issue(id, &actor).await?).into_response())
}

pub(super) async fn deny(
    State(ca): State<AppState>,
    Path(id): Path<i64>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    Ok(Json(ca.deny(id, &actor).await?).into_response())
}

#[derive(Deserialize)]
pub(super) struct RevokeBody {
    reason: Option<String>,
}

pub(super) async fn revoke(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Path(serial): Path<String>,
    body: Option<Json<RevokeBody>>,
) -> ApiResult<Response> {
    // By hand, after the body extractor: an extractor would authenticate
    // before a bad or oversized body is refused (see `crate::auth`).
    let actor = authenticated(&ca, &headers).await?;
    let reason = body
        .and_then(|b| b.0.reason)
        .unwrap_or_else(|| "unspecified".into());
    let reason = lockbox_engine::crl::parse_reason(&reason)?;
    Ok(Json(ca.revoke(&serial, reason, &actor).await?).into_response())
}

pub(super) async fn unrevoke(
    State(ca): State<AppState>,
    Path(serial): Path<String>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    Ok(Json(ca.unrevoke(&serial, &actor).await?).into_response())
}

#[derive(Deserialize)]
pub(super) struct ViewQuery {
    restrict: Option<String>,
    limit: Option<i64>,
}

pub(super) async fn view(
    State(ca): State<AppState>,
    Query(q): Query<ViewQuery>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    let rows = ca
        .view(
            &actor,
            q.restrict.as_deref().unwrap_or(""),
            q.limit.unwrap_or(10_000),
        )
        .await?;
    Ok(Json(rows).into_response())
}
