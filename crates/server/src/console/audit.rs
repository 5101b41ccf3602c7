//! The audit page: recent records and verification of the chain.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use lockbox_engine::Ca;
use maud::html;

use super::{engine_error, hidden_csrf, render, when, Posted, Session};

pub(super) async fn audit(State(ca): State<Arc<Ca>>, s: Session) -> Response {
    let (total, shown) = match ca.audit_latest(&s.actor, 500).await {
        Ok(r) => r,
        Err(e) => return engine_error(&ca, &s, &e),
    };
    let body = html! {
        form method="post" action="/console/audit/verify" {
            (hidden_csrf(&s))
            button type="submit" id="verify" { "Verify the audit chain" }
        }
        p { (total) " record(s); the latest " (shown.len()) " are shown, newest first." }
        table id="audit" {
            thead { tr { th { "#" } th { "When" } th { "Who" } th { "Category" } th { "Action" } th { "Target" } th { "Outcome" } } }
            tbody {
                @for r in shown.iter().rev() {
                    tr {
                        td { (r.seq) } td { (when(r.entry.at)) } td { (r.entry.actor) }
                        td { (r.entry.category) } td { (r.entry.action) } td { (r.entry.target) }
                        td { (r.entry.outcome) }
                    }
                }
            }
        }
    };
    render(&ca, &s, "Audit Trail", body)
}

pub(super) async fn audit_verify(State(ca): State<Arc<Ca>>, Posted { s, .. }: Posted) -> Response {
    let report = match ca.audit_verify(&s.actor).await {
        Ok(r) => r,
        Err(e) => return engine_error(&ca, &s, &e),
    };
    let body = html! {
        @if report.problems.is_empty() {
            p.ok id="verify-result" role="status" {
                "The audit chain is intact: " (report.records) " record(s), " (report.signed_heads) " signed head(s) verified."
            }
        } @else {
            p.error id="verify-result" role="alert" {
                "The audit chain is broken: " (report.problems.len()) " problem(s) in " (report.records) " record(s)."
            }
            ul { @for p in &report.problems { li { "#" (p.position) ": " (p.problem) } } }
        }
        p { a href="/console/audit" { "Back to the audit trail" } }
    };
    render(&ca, &s, "Audit Verification", body)
}
