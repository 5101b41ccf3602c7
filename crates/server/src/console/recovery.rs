//! The key recovery page: candidate search and the recovery-blob download.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lockbox_engine::Ca;
use maud::html;

use super::{engine_error, error_page, hidden_csrf, render, when, Posted, Session};

#[derive(serde::Deserialize)]
pub(super) struct SearchQuery {
    q: Option<String>,
}

pub(super) async fn recovery(
    State(ca): State<Arc<Ca>>,
    Query(q): Query<SearchQuery>,
    s: Session,
) -> Response {
    let token = q.q.as_deref().unwrap_or("").trim().to_string();
    let candidates = if token.is_empty() {
        None
    } else {
        match ca.find_candidates(&s.actor, &token).await {
            Ok(c) => Some(c),
            Err(e) => return engine_error(&ca, &s, &e),
        }
    };
    let body = html! {
        p { "Find the archived keys of a user by common name, UPN, DOMAIN\\user, e-mail, requester, serial number, thumbprint or key ID. The recovery blob you download is encrypted to the key recovery agents; give it to one of them." }
        form method="get" action="/console/recovery" {
            label for="q" { "User or certificate: " }
            input id="q" name="q" type="search" value=(token) required;
            " " button type="submit" id="search" { "Find" }
        }
        @if let Some(c) = &candidates {
            @if c.is_empty() {
                p id="empty" { "No archived key matches." }
            } @else {
                table id="candidates" {
                    thead { tr { th { "Request ID" } th { "Serial Number" } th { "Subject" } th { "UPN" } th { "Template" } th { "Valid" } th { "Requester" } th { "Blob" } } }
                    tbody {
                        @for k in c {
                            tr data-request-id=(k.request_id) {
                                td { (k.request_id) }
                                td.mono { (k.serial) }
                                td { (k.subject) }
                                td { (k.upn.as_deref().unwrap_or("")) }
                                td { (k.template.as_deref().unwrap_or("")) @if let Some(v) = &k.version { " (" (v) ")" } }
                                td { (when(k.not_before)) " – " (when(k.not_after)) }
                                td { (k.requester) }
                                td {
                                    form.inline method="post" action="/console/recovery/blob" {
                                        (hidden_csrf(&s))
                                        input type="hidden" name="request_id" value=(k.request_id);
                                        button type="submit" name="download" { "Download recovery blob" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    render(&ca, &s, "Key Recovery", body)
}

pub(super) async fn recovery_blob(
    State(ca): State<Arc<Ca>>,
    Posted { s, form }: Posted,
) -> Response {
    let Some(id) = form
        .get("request_id")
        .and_then(|v| v.trim().parse::<i64>().ok())
    else {
        return error_page(&ca, &s, StatusCode::BAD_REQUEST, "request_id is missing");
    };
    match ca.get_key_by_request(&s.actor, id).await {
        Ok(b) => {
            let mut r = b.blob.into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pkcs7-mime"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!(
                "attachment; filename=\"{}.rec\"",
                b.candidate.serial
            )) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(e) => engine_error(&ca, &s, &e),
    }
}
