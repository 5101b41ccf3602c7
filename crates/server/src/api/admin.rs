//! REST handlers for administration: templates, CA templates, CRLs, audit, events and backup.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lockbox_engine::{codes, EngineError};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::auth::{authenticated, Authenticated};
use crate::error::{ApiError, ApiResult};
use crate::http::base64_encode;

pub(super) async fn crl(State(ca): State<AppState>) -> ApiResult<Response> {
    let der = ca.current_crl().await?;
    Ok(([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response())
}

/// `/crl/NAME`: `ca.crl`, `ca+.crl` (delta), `ca(K).crl`, `ca(K)+.crl` (CA key K).
pub(super) async fn crl_file(
    State(ca): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    match ca.crl_file(&name).await? {
        Some(der) => Ok(([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response()),
        None => Ok(StatusCode::NOT_FOUND.into_response()),
    }
}

pub(super) async fn delta_crl(State(ca): State<AppState>) -> ApiResult<Response> {
    let der = ca.current_delta_crl().await?;
    Ok(([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response())
}

/// `?key_index=K`: the CRL of an earlier CA key.
#[derive(Deserialize)]
pub(super) struct KeyIndexQuery {
    key_index: Option<u32>,
}

pub(super) async fn delta_crl_publish(
    State(ca): State<AppState>,
    Query(q): Query<KeyIndexQuery>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    let info = ca.publish_crl_of_key(&actor, true, q.key_index).await?;
    let mut body = serde_json::to_value(&info).unwrap_or_default();
    body["der_base64"] = json!(base64_encode(&info.der));
    Ok(Json(body).into_response())
}

pub(super) async fn crl_publish(
    State(ca): State<AppState>,
    Query(q): Query<KeyIndexQuery>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    let info = ca.publish_crl_of_key(&actor, false, q.key_index).await?;
    let mut body = serde_json::to_value(&info).unwrap_or_default();
    body["der_base64"] = json!(base64_encode(&info.der));
    Ok(Json(body).into_response())
}

pub(super) async fn templates(State(ca): State<AppState>) -> ApiResult<Response> {
    Ok(Json(ca.templates().await?).into_response())
}

pub(super) async fn template(
    State(ca): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(ca.template(&name).await?).into_response())
}

#[derive(Deserialize)]
pub(super) struct SetBody {
    key: String,
    value: String,
}

pub(super) async fn template_set(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(b): Json<SetBody>,
) -> ApiResult<Response> {
    // By hand, after the body extractor: an extractor would authenticate
    // before a bad or oversized body is refused (see `crate::auth`).
    let actor = authenticated(&ca, &headers).await?;
    Ok(Json(ca.set_template(&actor, &name, &b.key, &b.value).await?).into_response())
}

#[derive(Deserialize)]
pub(super) struct DuplicateBody {
    new_name: String,
}

pub(super) async fn template_duplicate(
    State(ca): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(b): Json<DuplicateBody>,
) -> ApiResult<Response> {
    // By hand, after the body extractor: an extractor would authenticate
    // before a bad or oversized body is refused (see `crate::auth`).
    let actor = authenticated(&ca, &headers).await?;
    Ok((
        StatusCode::CREATED,
        Json(ca.duplicate_template(&actor, &name, &b.new_name).await?),
    )
        .into_response())
}

pub(super) async fn ca_templates(State(ca): State<AppState>) -> ApiResult<Response> {
    Ok(Json(ca.ca_templates().await?).into_response())
}

pub(super) async fn ca_template_add(
    State(ca): State<AppState>,
    Path(name): Path<String>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    let name = ca.set_ca_template(&actor, &name, true).await?;
    Ok(Json(json!({ "template": name, "enabled": true })).into_response())
}

pub(super) async fn ca_template_remove(
    State(ca): State<AppState>,
    Path(name): Path<String>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    let name = ca.set_ca_template(&actor, &name, false).await?;
    Ok(Json(json!({ "template": name, "enabled": false })).into_response())
}

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    since: Option<i64>,
    limit: Option<i64>,
}

pub(super) async fn audit_list(
    State(ca): State<AppState>,
    Query(q): Query<AuditQuery>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    Ok(Json(
        ca.audit_list(&actor, q.since, q.limit.unwrap_or(1000))
            .await?,
    )
    .into_response())
}

#[derive(Deserialize)]
pub(super) struct BackupBody {
    passphrase: String,
}

/// `POST /api/v1/backup` (Backup Operator or CA administrator): an online
/// backup, keys encrypted under the passphrase in the body, returned as a tar
/// stream (`lockbox --server URL backup --out DIR` unpacks and verifies it).
pub(super) async fn backup(
    State(ca): State<AppState>,
    headers: HeaderMap,
    body: Option<Json<BackupBody>>,
) -> ApiResult<Response> {
    // By hand, after the body extractor: an extractor would authenticate
    // before a bad or oversized body is refused (see `crate::auth`).
    let actor = authenticated(&ca, &headers).await?;
    let Some(Json(body)) = body else {
        return Err(ApiError(EngineError::bad_input(
            codes::E_INVALIDARG,
            "send {\"passphrase\": \"...\"} as JSON",
        )));
    };
    let pass = zeroize::Zeroizing::new(body.passphrase.into_bytes());
    // Under the CA home (mode 0700, same protection as the database), not in
    // a shared or RAM-backed /tmp; removed when the response is built.
    let tmp = tempfile::Builder::new()
        .prefix(".backup-")
        .tempdir_in(ca.home().root())
        .map_err(|e| ApiError(EngineError::Config(format!("temporary directory: {e}"))))?;
    let dir = tmp.path().join("backup");
    ca.backup(&actor, &dir, &pass).await?;
    let archive = tmp.path().join("backup.tar");
    let file = tokio::task::spawn_blocking(move || -> Result<std::fs::File, EngineError> {
        let f = std::fs::File::create(&archive)
            .map_err(|e| EngineError::Config(format!("creating the archive: {e}")))?;
        lockbox_engine::backup::pack(&dir, std::io::BufWriter::new(&f))?;
        // The open handle outlives the temporary directory (removed on return).
        std::fs::File::open(&archive)
            .map_err(|e| EngineError::Config(format!("reopening the archive: {e}")))
    })
    .await
    .map_err(|e| ApiError(EngineError::Config(format!("packing the backup: {e}"))))??;
    drop(tmp);
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    let mut resp = axum::body::Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"lockbox-backup.tar\""),
    );
    Ok(resp)
}

pub(super) async fn audit_verify(
    State(ca): State<AppState>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    Ok(Json(ca.audit_verify(&actor).await?).into_response())
}

pub(super) async fn events(
    State(ca): State<AppState>,
    Query(q): Query<AuditQuery>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Response> {
    Ok(Json(ca.events(&actor, q.limit.unwrap_or(200)).await?).into_response())
}
