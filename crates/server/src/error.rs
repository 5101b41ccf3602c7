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
        let message = public_message(&e, status, "api").unwrap_or_else(|| e.to_string());
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

/// What a caller may read of an internal (500) or unavailable (503) error:
/// the details (driver text naming hosts and ports, file paths) go to the
/// log only. `None` for every other status: the error's own text is for the
/// caller. `front` names the front end in the log.
pub(crate) fn public_message(e: &EngineError, status: StatusCode, front: &str) -> Option<String> {
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e, front, "internal error");
        Some("internal error (see the server log)".to_string())
    } else if status == StatusCode::SERVICE_UNAVAILABLE
        && matches!(
            e.code(),
            codes::NTE_DEVICE_NOT_READY | codes::SCARD_W_WRONG_CHV
        )
    {
        // The token's module path and label stay in the log.
        tracing::warn!(error = %e, front, "CA key token unavailable");
        Some(
            "the CA's key token is unavailable; nothing was signed or issued: try again shortly"
                .to_string(),
        )
    } else if status == StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(error = %e, front, "database unavailable");
        Some(
            "the CA database is unavailable; try again shortly (a request cut off while it was \
             being committed may have completed: check its status before submitting it again)"
                .to_string(),
        )
    } else {
        None
    }
}

/// A handler result whose error renders as [`ApiError`].
pub(crate) type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod public_message_tests {
    use super::*;
    use lockbox_engine::StoreError;

    /// A 503 tells every front end (REST, certsrv, console) the same fixed
    /// text: the driver's, which names the database host, stays in the log.
    #[test]
    fn an_unavailable_database_never_names_its_host() {
        let e = EngineError::Store(StoreError::Unavailable(
            "no PostgreSQL host of the database URL is available (db1.corp:5432: refused)".into(),
        ));
        let status = http_status(&e, StatusCode::OK);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        for front in ["api", "certsrv", "console"] {
            let m = public_message(&e, status, front).unwrap();
            assert!(!m.contains("db1.corp") && !m.contains("5432"), "{m}");
        }
        let nf = EngineError::NotFound("request 7".into());
        assert_eq!(
            public_message(&nf, http_status(&nf, StatusCode::OK), "api"),
            None
        );
    }
}
