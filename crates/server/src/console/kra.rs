//! The key recovery agents page and the required-agent count.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use lockbox_engine::Ca;
use maud::html;

use super::{engine_error, error_page, hidden_csrf, render, when, Posted, Session};

pub(super) async fn kras(State(ca): State<Arc<Ca>>, s: Session) -> Response {
    let list = match ca.kra_list(&s.actor).await {
        Ok(l) => l,
        Err(e) => return engine_error(&ca, &s, &e),
    };
    let required = match ca.kra_required().await {
        Ok(n) => n,
        Err(e) => return engine_error(&ca, &s, &e),
    };
    let usable = list.iter().filter(|k| k.status == "valid").count();
    let admin = s.nav.admin;
    let body = html! {
        p id="kra-summary" {
            "Keys are archived to " strong { (required) } " of " (list.len()) " configured recovery agent certificate(s); " (usable) " are valid."
            @if usable < required || required == 0 { " " span.error { "Archival requests will be refused until enough valid agents are configured." } }
        }
        table id="kras" {
            thead { tr { th { "Subject" } th { "Issuer" } th { "Serial Number" } th { "Expires" } th { "Thumbprint" } th { "Status" } } }
            tbody {
                @for k in &list {
                    tr {
                        td { (k.subject) } td { (k.issuer) } td.mono { (k.serial) }
                        td { (when(k.not_after)) } td.mono { (k.thumbprint) }
                        td.status { (k.status) }
                    }
                }
            }
        }
        @if admin {
            form method="post" action="/console/kra/required" {
                (hidden_csrf(&s))
                label for="required" { "Number of recovery agents to use: " }
                input id="required" name="required" type="number" min="1" max=(list.len().max(1)) value=(required);
                " " button type="submit" { "Apply" }
            }
        }
    };
    render(&ca, &s, "Key Recovery Agents", body)
}

pub(super) async fn kra_required(
    State(ca): State<Arc<Ca>>,
    Posted { s, form }: Posted,
) -> Response {
    let Some(n) = form
        .get("required")
        .and_then(|v| v.trim().parse::<usize>().ok())
    else {
        return error_page(&ca, &s, StatusCode::BAD_REQUEST, "give a number");
    };
    match ca.set_kra_required(&s.actor, n).await {
        Ok(()) => Redirect::to("/console/kra").into_response(),
        Err(e) => engine_error(&ca, &s, &e),
    }
}
