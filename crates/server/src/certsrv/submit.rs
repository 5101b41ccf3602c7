//! `certfnsh.asp`: a submitted enrollment form.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use lockbox_engine::{Ca, SubmitOptions};
use maud::html;

use super::results::outcome_page;
use super::results::{engine_failure_page, failure_page};
use super::{page, web_user};
use crate::http::cross_origin;

pub(super) async fn finish(
    State(ca): State<Arc<Ca>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // Authenticated by hand, not with the `WebUser` extractor: the body is
    // read first (an oversized body is refused before any login attempt),
    // and an extractor would authenticate before reading it.
    let actor = match web_user(&ca, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if cross_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            page(
                "Request refused",
                html! { p { "Cross-site form submissions are not accepted." } },
            ),
        )
            .into_response();
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !is_form {
        return failure_page(
            StatusCode::BAD_REQUEST,
            "the form could not be read (expected application/x-www-form-urlencoded)",
            lockbox_engine::codes::E_INVALIDARG,
        );
    }
    let form = match lockbox_codec::certsrv::parse_enroll_form(&body) {
        Ok(f) => f,
        Err(e) => {
            return failure_page(
                StatusCode::BAD_REQUEST,
                &e.to_string(),
                lockbox_engine::codes::E_INVALIDARG,
            )
        }
    };
    let request = form.cert_request;
    let attributes = form.attributes;
    let opts = SubmitOptions {
        template: None,
        requester: actor.name.clone(),
        attributes,
        actor: Some(actor),
        on_behalf_of: None,
        renewing: None,
    };
    match ca.submit(request.as_bytes(), &opts).await {
        Ok(o) => outcome_page(&o),
        Err(e) => engine_failure_page(&e),
    }
}
