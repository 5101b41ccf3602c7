//! REST handlers for the CA itself: health, the OpenAPI document, the CA
//! certificate, its chain and the exchange certificate.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lockbox_codec::pem::encode_pem;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::error::ApiResult;

pub(super) async fn health(State(ca): State<AppState>) -> impl IntoResponse {
    Json(json!({ "status": "ok", "ca": ca.config().ca.name }))
}

pub(super) async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document())
}

#[derive(Deserialize)]
pub(crate) struct FormatQuery {
    /// `der` for DER, anything else for PEM.
    pub(crate) format: Option<String>,
}

/// A certificate as PEM (default) or DER (`format=der`).
pub(crate) fn cert_response(der: Vec<u8>, format: Option<&str>) -> Response {
    match format {
        Some("der") => ([(header::CONTENT_TYPE, "application/pkix-cert")], der).into_response(),
        _ => (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            encode_pem("CERTIFICATE", &der),
        )
            .into_response(),
    }
}

pub(super) async fn ca_certificate(
    State(ca): State<AppState>,
    Query(q): Query<FormatQuery>,
) -> ApiResult<Response> {
    Ok(cert_response(ca.ca_certificate_der()?, q.format.as_deref()))
}

pub(super) async fn ca_chain(State(ca): State<AppState>) -> ApiResult<Response> {
    let pem: String = ca
        .chain_der()?
        .iter()
        .map(|c| encode_pem("CERTIFICATE", c))
        .collect();
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
}

pub(super) async fn ca_cross(State(ca): State<AppState>) -> ApiResult<Response> {
    let pem: String = ca
        .cross_certificates()?
        .iter()
        .map(|c| encode_pem("CERTIFICATE", c))
        .collect();
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
}

pub(super) async fn ca_exchange(
    State(ca): State<AppState>,
    Query(q): Query<FormatQuery>,
) -> ApiResult<Response> {
    Ok(cert_response(
        ca.current_exchange_certificate().await?,
        q.format.as_deref(),
    ))
}
