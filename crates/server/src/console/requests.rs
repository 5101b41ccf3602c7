//! The requests page: the request list with its columns and filters, and
//! the approve, deny and revoke actions.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use lockbox_engine::{Ca, Column, Disposition, EngineError};
use maud::{html, Markup};

use super::{engine_error, error_page, hidden_csrf, render, when, Posted, Session};

#[derive(serde::Deserialize)]
pub(super) struct ListQuery {
    view: Option<String>,
    columns: Option<String>,
    from: Option<i64>,
    done: Option<String>,
    id: Option<String>,
}

/// Rows per page of a request list.
pub(super) const PAGE: i64 = 200;

pub(super) async fn requests(
    State(ca): State<Arc<Ca>>,
    Query(q): Query<ListQuery>,
    Query(all): Query<HashMap<String, String>>,
    s: Session,
) -> Response {
    let chosen = match chosen_columns(&q, &all) {
        Ok(c) => c,
        Err(e) => return engine_error(&ca, &s, &e),
    };
    let (view, title, disposition) = list_view(&q);
    let from = q.from.unwrap_or(1).max(1);
    let restrict = format!("Disposition={disposition},RequestID>={from}");
    let rows = match ca.view(&s.actor, &restrict, PAGE + 1).await {
        Ok(r) => r,
        Err(e) => return engine_error(&ca, &s, &e),
    };
    let more = rows.len() as i64 > PAGE;
    let next = rows.get(PAGE as usize).map(|r| r.request_id);
    let rows = &rows[..rows.len().min(PAGE as usize)];
    let has_actions = s.nav.manager && (disposition == "pending" || disposition == "issued");
    // Buttons only on the rows this manager may act on (its restrictions).
    let mut manageable = Vec::with_capacity(rows.len());
    for r in rows {
        manageable.push(has_actions && ca.may_manage(&s.actor, r).await);
    }
    let list = List {
        s: &s,
        rows,
        manageable: &manageable,
        has_actions,
        disposition,
    };
    let body = html! {
        (done_notice(&q))
        (column_chooser(view, chosen.as_deref()))
        @if rows.is_empty() {
            p id="empty" { "No requests." }
        } @else if let Some(cols) = &chosen {
            (list.chosen_table(cols))
        } @else {
            (list.default_table())
            @if more {
                @if let Some(next) = next {
                    p { a id="next-page" href={"/console/requests?view=" (view) "&from=" (next) (columns_param(chosen.as_deref()))} { "Next page" } }
                }
            }
        }
    };
    render(&ca, &s, title, body)
}

/// The list asked for: (view, page title, disposition searched); pending
/// unless `view` names another.
fn list_view(q: &ListQuery) -> (&'static str, &'static str, &'static str) {
    let view = q
        .view
        .as_deref()
        .filter(|v| matches!(*v, "issued" | "revoked" | "failed"))
        .unwrap_or("pending");
    match view {
        "issued" => ("issued", "Issued Certificates", "issued"),
        "revoked" => ("revoked", "Revoked Certificates", "revoked"),
        "failed" => ("failed", "Failed Requests", "denied"),
        _ => ("pending", "Pending Requests", "pending"),
    }
}

/// "Request N issued." after an action redirected here (`done`, `id`).
fn done_notice(q: &ListQuery) -> Markup {
    let done = q.done.as_deref().map(|d| match d {
        "issued" => "issued",
        "denied" => "denied",
        "revoked" => "revoked",
        _ => "updated",
    });
    let done_id: String =
        q.id.as_deref()
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .take(64)
            .collect();
    html! {
        @if let Some(d) = done {
            p.ok id="done" role="status" { "Request " (done_id) " " (d) "." }
        }
    }
}

/// One page of rows, with the actions this manager may take on each.
struct List<'a> {
    s: &'a Session,
    rows: &'a [lockbox_engine::RequestRecord],
    manageable: &'a [bool],
    has_actions: bool,
    disposition: &'static str,
}

impl List<'_> {
    /// The table with the columns the officer chose.
    fn chosen_table(&self, cols: &[Column]) -> Markup {
        let (s, has_actions) = (self.s, self.has_actions);
        html! {
            table id="requests" {
                thead { tr {
                    @for c in cols { th { (column_title(*c)) } }
                    @if has_actions { th { "Action" } }
                } }
                tbody {
                    @for (r, act) in self.rows.iter().zip(self.manageable) {
                        tr data-request-id=(r.request_id) {
                            @for c in cols {
                                @if *c == Column::ArchivedKey {
                                    td.archived { @if r.has_archived_key { "Yes" } @else { "No" } }
                                } @else {
                                    td { (lockbox_engine::view::cell(r, *c)) }
                                }
                            }
                            @if has_actions { @if *act { (actions(s, r)) } @else { td {} } }
                        }
                    }
                }
            }
        }
    }

    /// The view's default columns.
    fn default_table(&self) -> Markup {
        let (s, has_actions, disposition) = (self.s, self.has_actions, self.disposition);
        html! {
            table id="requests" {
                thead { tr {
                    th { "Request ID" } th { "Requester" } th { "Template" } th { "Subject" }
                    @if disposition != "pending" && disposition != "denied" { th { "Serial Number" } th { "Expires" } }
                    @if disposition == "revoked" { th { "Revoked" } th { "Reason" } }
                    th { "Archived Key" }
                    th { "Submitted" }
                    @if disposition == "denied" || disposition == "pending" { th { "Disposition Message" } }
                    @if has_actions { th { "Action" } }
                } }
                tbody {
                    @for (r, act) in self.rows.iter().zip(self.manageable) {
                        tr data-request-id=(r.request_id) {
                            td { (r.request_id) }
                            td { (r.requester) }
                            td { (r.template.as_deref().unwrap_or("")) }
                            td { (r.cert.as_ref().map(|c| c.subject.as_str()).unwrap_or(r.request_subject.as_str())) }
                            @if disposition != "pending" && disposition != "denied" {
                                td.mono { (r.cert.as_ref().map(|c| c.serial.as_str()).unwrap_or("")) }
                                td { (r.cert.as_ref().map(|c| when(c.not_after)).unwrap_or_default()) }
                            }
                            @if disposition == "revoked" {
                                td { (r.revoked_at.map(when).unwrap_or_default()) }
                                td { (r.revocation_reason.map(lockbox_engine::crl::reason_name).unwrap_or("")) }
                            }
                            td.archived { @if r.has_archived_key { "Yes" } @else { "No" } }
                            td { (when(r.submitted_at)) }
                            @if disposition == "denied" || disposition == "pending" { td { (r.disposition_message) } }
                            @if has_actions { @if *act { (actions(s, r)) } @else { td {} } }
                        }
                    }
                }
            }
        }
    }
}

/// The columns an officer chose ("Add/Remove Columns"): checkboxes `c_NAME`
/// from the chooser, or `columns=A,B,...` in a link; `None`: the view's default.
pub(super) fn chosen_columns(
    q: &ListQuery,
    all: &HashMap<String, String>,
) -> Result<Option<Vec<Column>>, EngineError> {
    let ticked: Vec<Column> = Column::ALL
        .iter()
        .copied()
        .filter(|c| all.contains_key(&format!("c_{}", c.name())))
        .collect();
    if !ticked.is_empty() {
        return Ok(Some(ticked));
    }
    match q
        .columns
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(text) => Ok(Some(lockbox_engine::view::parse_columns(Some(text))?)),
        None => Ok(None),
    }
}

pub(super) fn columns_param(cols: Option<&[Column]>) -> String {
    cols.map(|c| {
        format!(
            "&columns={}",
            c.iter().map(|c| c.name()).collect::<Vec<_>>().join(",")
        )
    })
    .unwrap_or_default()
}

/// A column's heading, in the words of the CA snap-in.
pub(super) fn column_title(c: Column) -> &'static str {
    match c {
        Column::RequestId => "Request ID",
        Column::Disposition => "Request Disposition",
        Column::Requester => "Requester Name",
        Column::Template => "Certificate Template",
        Column::SerialNumber => "Serial Number",
        Column::Subject => "Subject",
        Column::CommonName => "Issued Common Name",
        Column::Upn => "User Principal Name",
        Column::Email => "Issued Email Address",
        Column::KeyId => "Issued Subject Key Identifier",
        Column::Thumbprint => "Certificate Hash",
        Column::NotBefore => "Certificate Effective Date",
        Column::NotAfter => "Certificate Expiration Date",
        Column::SubmittedWhen => "Request Submission Date",
        Column::ResolvedWhen => "Request Resolution Date",
        Column::RevokedWhen => "Revocation Date",
        Column::RevocationReason => "Revocation Reason",
        Column::StatusCode => "Request Status Code",
        Column::KeyLength => "Public Key Length",
        Column::ArchivedKey => "Archived Key",
        Column::RenewalOf => "Renewal Of",
        Column::SupersededBy => "Superseded By",
    }
}

/// "Add/Remove Columns": a GET form of checkboxes over every view column.
pub(super) fn column_chooser(view: &str, chosen: Option<&[Column]>) -> Markup {
    html! {
        details id="columns" {
            summary { "Add/Remove Columns" }
            form method="get" action="/console/requests" {
                input type="hidden" name="view" value=(view);
                @for c in Column::ALL {
                    label.col {
                        input type="checkbox" name={"c_" (c.name())} value="1"
                            checked[chosen.is_some_and(|cs| cs.contains(&c))];
                        " " (column_title(c))
                    }
                    " "
                }
                button type="submit" id="apply-columns" { "Apply" }
            }
        }
    }
}

/// The officer's buttons for a row: Issue/Deny when pending, Revoke when issued.
pub(super) fn actions(s: &Session, r: &lockbox_engine::RequestRecord) -> Markup {
    html! {
        td {
            @if r.disposition == Disposition::Pending {
                form.inline method="post" action={"/console/requests/" (r.request_id) "/issue"} {
                    (hidden_csrf(s)) button type="submit" name="issue" { "Issue" }
                }
                " "
                form.inline method="post" action={"/console/requests/" (r.request_id) "/deny"} {
                    (hidden_csrf(s)) button type="submit" name="deny" { "Deny" }
                }
            }
            @if let (Disposition::Issued, Some(c)) = (r.disposition, &r.cert) {
                form.inline method="post" action="/console/revoke" {
                    (hidden_csrf(s))
                    input type="hidden" name="serial" value=(c.serial);
                    select name="reason" aria-label="Revocation reason" {
                        @for (name, _) in lockbox_engine::crl::REASONS {
                            option value=(name) { (name) }
                        }
                    }
                    " "
                    button type="submit" name="revoke" { "Revoke" }
                }
            }
        }
    }
}

pub(super) async fn decide(
    State(ca): State<Arc<Ca>>,
    Path((id, action)): Path<(i64, String)>,
    Posted { s, .. }: Posted,
) -> Response {
    let result = match action.as_str() {
        "issue" => ca.issue(id, &s.actor).await,
        "deny" => ca.deny(id, &s.actor).await,
        _ => return error_page(&ca, &s, StatusCode::NOT_FOUND, "unknown action"),
    };
    match result {
        Ok(o) => {
            let done = match o.disposition {
                Disposition::Issued => "issued",
                _ => "denied",
            };
            Redirect::to(&format!(
                "/console/requests?view=pending&done={done}&id={id}"
            ))
            .into_response()
        }
        Err(e) => engine_error(&ca, &s, &e),
    }
}

pub(super) async fn revoke(State(ca): State<Arc<Ca>>, Posted { s, form }: Posted) -> Response {
    let serial = form.get("serial").map(String::as_str).unwrap_or("");
    let reason = match lockbox_engine::crl::parse_reason(
        form.get("reason")
            .map(String::as_str)
            .unwrap_or("unspecified"),
    ) {
        Ok(r) => r,
        Err(e) => return engine_error(&ca, &s, &e),
    };
    match ca.revoke(serial, reason, &s.actor).await {
        Ok(rec) => Redirect::to(&format!(
            "/console/requests?view=revoked&done=revoked&id={}",
            rec.request_id
        ))
        .into_response(),
        Err(e) => engine_error(&ca, &s, &e),
    }
}
