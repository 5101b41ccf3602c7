//! REST handlers for key recovery agents: list, add, remove and the required count.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::auth::{authenticated, Authenticated};
use crate::error::ApiResult;

pub(super) async fn kra_list(
    State(ca): State<AppState>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    Ok(Json(ca.kra_list(&actor).await?).into_response())
}

pub(super) async fn kra_add(
    State(ca): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    // By hand, after the body extractor: an extractor would authenticate
    // before a bad or oversized body is refused (see `crate::auth`).
    let actor = authenticated(&ca, &headers).await?;
    Ok((
        StatusCode::CREATED,
        Json(ca.kra_add(&actor, &body, None, None).await?),
    )
        .into_response())
}

/// `?force=true`: remove a KRA even when it is the last agent of some archived keys.
#[derive(Deserialize)]
pub(super) struct ForceQuery {
    #[serde(default)]
    force: bool,
}

pub(super) async fn kra_remove(
    State(ca): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ForceQuery>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    let t = ca.kra_remove(&actor, &id, q.force).await?;
    Ok(Json(json!({ "removed": t })).into_response())
}

pub(super) async fn kra_required(
    State(ca): State<AppState>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    ca.authorize(&actor, lockbox_engine::Op::ReadDatabase)
        .await?;
    Ok(Json(json!({ "required": ca.kra_required().await? })).into_response())
}

#[derive(Deserialize)]
pub(super) struct RequiredBody {
    required: usize,
}

pub(super) async fn kra_set_required(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Json(b): Json<RequiredBody>,
) -> ApiResult<Response> {
    // By hand, after the body extractor: an extractor would authenticate
    // before a bad or oversized body is refused (see `crate::auth`).
    let actor = authenticated(&ca, &headers).await?;
    ca.set_kra_required(&actor, b.required).await?;
    Ok(Json(json!({ "required": b.required })).into_response())
}
