//! The officer restrictions page: who may manage whose requests.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use lockbox_engine::Ca;
use lockbox_engine::Role;
use maud::html;

use super::{engine_error, error_page, hidden_csrf, render, Posted, Session};

pub(super) async fn restrictions(State(ca): State<Arc<Ca>>, s: Session) -> Response {
    let grants = match ca.role_grants(&s.actor).await {
        Ok(g) => g,
        Err(e) => return engine_error(&ca, &s, &e),
    };
    let mut managers = Vec::new();
    for (who, role) in grants {
        if role == Role::CertificateManager.name() {
            let (groups, templates) = match ca.restrictions(&who).await {
                Ok(r) => r,
                Err(e) => return engine_error(&ca, &s, &e),
            };
            managers.push((who, groups, templates));
        }
    }
    let body = html! {
        p { "A restricted certificate manager may act only on requests of members of the listed groups and for the listed templates; empty lists leave it unrestricted." }
        table id="restrictions" {
            thead { tr { th { "Certificate manager" } th { "Groups" } th { "Templates" } } }
            tbody {
                @for (who, groups, templates) in &managers {
                    tr {
                        td { (who) }
                        td { @if groups.is_empty() { "(any)" } @else { (groups.join(", ")) } }
                        td { @if templates.is_empty() { "(any)" } @else { (templates.join(", ")) } }
                    }
                }
            }
        }
        h2 { "Set restrictions" }
        form method="post" action="/console/restrictions" {
            (hidden_csrf(&s))
            p { label for="manager" { "Manager: " }
                select id="manager" name="manager" { @for (who, _, _) in &managers { option value=(who) { (who) } } } }
            p { label for="groups" { "Groups (comma separated): " } input id="groups" name="groups" type="text"; }
            p { label for="templates" { "Templates (comma separated): " } input id="templates" name="templates" type="text"; }
            button type="submit" { "Apply" }
        }
    };
    render(&ca, &s, "Certificate Manager Restrictions", body)
}

pub(super) fn list_field(form: &HashMap<String, String>, name: &str) -> Vec<String> {
    form.get(name)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

pub(super) async fn set_restrictions(
    State(ca): State<Arc<Ca>>,
    Posted { s, form }: Posted,
) -> Response {
    let manager = form.get("manager").map(String::as_str).unwrap_or("").trim();
    if manager.is_empty() {
        return error_page(&ca, &s, StatusCode::BAD_REQUEST, "choose a manager");
    }
    match ca
        .set_restrictions(
            &s.actor,
            manager,
            list_field(&form, "groups"),
            list_field(&form, "templates"),
        )
        .await
    {
        Ok(()) => Redirect::to("/console/restrictions").into_response(),
        Err(e) => engine_error(&ca, &s, &e),
    }
}
