//! The templates page and enabling a template on the CA.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use lockbox_engine::Ca;
use lockbox_engine::Op;
use maud::html;

use super::{engine_error, hidden_csrf, render, Posted, Session};

pub(super) async fn templates(State(ca): State<Arc<Ca>>, s: Session) -> Response {
    let (all, on_ca) = match (ca.templates().await, ca.ca_templates().await) {
        (Ok(a), Ok(c)) => (a, c),
        (Err(e), _) | (_, Err(e)) => return engine_error(&ca, &s, &e),
    };
    let configure = ca.would_allow(&s.actor, Op::Configure).await;
    let body = html! {
        table id="templates" {
            thead { tr { th { "Name" } th { "Display name" } th { "Version" } th { "Issued by this CA" } th { "Archive key" } th { "Approval" } th { "Key" } th { "Validity" } th { "Enroll" } @if configure { th { "Action" } } } }
            tbody {
                @for t in all.iter().filter(|t| !t.internal) {
                    tr {
                        td { (t.name) } td { (t.display_name) }
                        td { (t.major_version) "." (t.minor_version) }
                        td { @if on_ca.contains(&t.name) { "Yes" } @else { "No" } }
                        td { @if t.archive_private_key { "Yes" } @else { "No" } }
                        td { @if t.requires_approval { "Certificate manager" } @else { "None" } }
                        td { (t.key_algorithms.join(", ")) " ≥ " (t.min_key_size) }
                        td { (t.validity.to_string()) }
                        td { (t.enroll.join(", ")) }
                        @if configure {
                            td {
                                form.inline method="post" action="/console/templates/issue" {
                                    (hidden_csrf(&s))
                                    input type="hidden" name="name" value=(t.name);
                                    @if on_ca.contains(&t.name) {
                                        input type="hidden" name="enabled" value="false";
                                        button type="submit" { "Stop issuing" }
                                    } @else {
                                        input type="hidden" name="enabled" value="true";
                                        button type="submit" { "Issue" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    render(&ca, &s, "Certificate Templates", body)
}

/// A CA administrator adds a template to, or removes it from, what this CA issues.
pub(super) async fn template_issue(
    State(ca): State<Arc<Ca>>,
    Posted { s, form }: Posted,
) -> Response {
    let name = form.get("name").map(String::as_str).unwrap_or("");
    let enabled = form.get("enabled").map(String::as_str) == Some("true");
    match ca.set_ca_template(&s.actor, name, enabled).await {
        Ok(_) => Redirect::to("/console/templates").into_response(),
        Err(e) => engine_error(&ca, &s, &e),
    }
}
