//! REST handlers for archived keys: recovery candidates, recovery blobs
//! and the candidates for a PKCS#7 message.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lockbox_engine::{codes, EngineError};
use serde::Deserialize;

use super::AppState;
use crate::auth::{authenticated, Authenticated};
use crate::error::{ApiError, ApiResult};

#[derive(Deserialize)]
pub(super) struct KeyQuery {
    token: Option<String>,
    request_id: Option<i64>,
}

pub(super) async fn key_candidates(
    State(ca): State<AppState>,
    Query(q): Query<KeyQuery>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    Ok(Json(
        ca.find_candidates(&actor, q.token.as_deref().unwrap_or(""))
            .await?,
    )
    .into_response())
}

pub(super) async fn key_history(
    State(ca): State<AppState>,
    Query(q): Query<KeyQuery>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    Ok(Json(
        ca.key_history(&actor, q.token.as_deref().unwrap_or(""))
            .await?,
    )
    .into_response())
}

pub(super) async fn key_blob(
    State(ca): State<AppState>,
    Query(q): Query<KeyQuery>,
    // After the query, which is refused first as before.
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    let blob = match (q.request_id, q.token.as_deref()) {
        (Some(id), _) => ca.get_key_by_request(&actor, id).await?,
        (None, Some(t)) => ca.get_key(&actor, t).await?,
        (None, None) => {
            return Err(ApiError(EngineError::bad_input(
                codes::E_INVALIDARG,
                "give token or request_id",
            )))
        }
    };
    // A recovery blob is an archived key: never cached (`no-store` from
    // the shared layer, `crate::http::security_headers`).
    Ok(Json(blob).into_response())
}

pub(super) async fn key_candidates_for_message(
    State(ca): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    // By hand, after the body extractor: an extractor would authenticate
    // before a bad or oversized body is refused (see `crate::auth`).
    let actor = authenticated(&ca, &headers).await?;
    Ok(Json(ca.candidates_for_message(&actor, &body).await?).into_response())
}
