//! The one error type of the HTTP front ends: an engine error as an HTTP
//! status and a stable JSON body, used by REST, certsrv and console.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lockbox_engine::{codes, EngineError, ErrorKind};
use serde_json::json;

/// An engine error as an HTTP response with a stable JSON body.
pub struct ApiError(pub EngineError);

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError(e)
    }
}

/// The HTTP status for an engine error kind (`denied_as`: policy refusals,
/// which the REST API and the form-based protocols report differently).
pub(crate) fn http_status(e: &EngineError, denied_as: StatusCode) -> StatusCode {
    match e.kind() {
        ErrorKind::BadInput => StatusCode::BAD_REQUEST,
        ErrorKind::Denied => denied_as,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Throttled => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = http_status(&e, StatusCode::UNPROCESSABLE_ENTITY);
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "internal error");
            "internal error (see the server log)".to_string()
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            // The driver's text names hosts and ports: it stays in the log.
            tracing::warn!(error = %e, "database unavailable");
            "the CA database is unavailable; nothing was done, try again shortly".to_string()
        } else {
            e.to_string()
        };
        let code = e.code();
        let body = json!({
            "error": {
                "kind": e.kind().as_str(),
                "code": code,
                "status": format!("0x{code:08x}"),
                "name": codes::name(code),
                "message": message,
            }
        });
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lockbox\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(lockbox_engine::LOGIN_WINDOW.as_secs()),
            );
        }
        resp
    }
}

/// A handler result whose error renders as [`ApiError`].
pub(crate) type ApiResult<T> = Result<T, ApiError>;
