//! The officer console (`/console/`): role-aware HTML pages for certificate
//! managers, CA administrators and auditors.
//!
//! Every page authenticates the caller (HTTP Basic against Lockbox principals,
//! or the API's other schemes) and asks the engine, which decides every
//! operation; the console only hides what the caller could not use anyway.
//! Markup is built with `maud`, which escapes every interpolated value. Every
//! form carries a CSRF token bound to the signed-in principal (HMAC under a
//! per-process key) and cross-origin posts are refused. No key material is
//! ever rendered: recovery blobs (encrypted to the KRAs) are downloads.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::extract::{Form, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use lockbox_engine::authz::{Op, Role};
use lockbox_engine::{Actor, Ca, Column, Disposition, EngineError, ErrorKind};
use maud::{html, Markup, DOCTYPE};

use crate::auth::caller;
use crate::error::http_status;
use crate::http::cross_origin;

/// The `/console/` routes (state: the CA).
pub(crate) fn routes() -> Router<Arc<Ca>> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(dashboard))
        .route("/console/console.css", get(stylesheet))
        .route("/console/requests", get(requests))
        .route("/console/requests/{id}/{action}", post(decide))
        .route("/console/revoke", post(revoke))
        .route("/console/recovery", get(recovery))
        .route("/console/recovery/blob", post(recovery_blob))
        .route("/console/kra", get(kras))
        .route("/console/kra/required", post(kra_required))
        .route("/console/templates", get(templates))
        .route("/console/templates/issue", post(template_issue))
        .route("/console/audit", get(audit))
        .route("/console/audit/verify", post(audit_verify))
        .route(
            "/console/restrictions",
            get(restrictions).post(set_restrictions),
        )
}

/// The signed-in caller, the CSRF token its forms carry and what it may use.
struct Session {
    nav: Nav,
    actor: Actor,
    csrf: String,
}

/// The per-process CSRF key; `None` when the system offers no randomness, in
/// which case every console form is refused (fail closed).
fn csrf_key() -> Option<&'static [u8; 32]> {
    static KEY: OnceLock<Option<[u8; 32]>> = OnceLock::new();
    KEY.get_or_init(|| match lockbox_crypto::random::random_bytes(32) {
        Ok(b) => {
            let mut k = [0u8; 32];
            k.copy_from_slice(&b);
            Some(k)
        }
        Err(e) => {
            tracing::error!(error = %e, "console: no randomness for the CSRF key; forms are refused");
            None
        }
    })
    .as_ref()
}

fn csrf_message(actor: &Actor) -> Vec<u8> {
    format!("lockbox-console-csrf\0{}", actor.name).into_bytes()
}

/// The CSRF token of a principal's forms.
fn csrf_token(actor: &Actor) -> String {
    csrf_key()
        .map(|k| hex::encode(lockbox_crypto::digest::hmac_sha256(k, &csrf_message(actor))))
        .unwrap_or_default()
}

fn csrf_ok(actor: &Actor, token: Option<&String>) -> bool {
    let Some(key) = csrf_key() else {
        return false;
    };
    token
        .and_then(|t| hex::decode(t.trim()).ok())
        .is_some_and(|t| lockbox_crypto::digest::hmac_sha256_verify(key, &csrf_message(actor), &t))
}

fn challenge() -> Response {
    let mut r = page_response(
        StatusCode::UNAUTHORIZED,
        html! {
            (DOCTYPE)
            html lang="en" { head { meta charset="utf-8"; title { "Sign in - Lockbox console" } }
            body { h1 { "Authentication required" } p { "Sign in with your Lockbox user name and password." } } }
        },
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Lockbox console\", charset=\"UTF-8\""),
    );
    r
}

async fn session(ca: &Ca, headers: &HeaderMap) -> Result<Session, Response> {
    match caller(ca, headers).await {
        Ok(Some(actor)) => Ok(Session {
            csrf: csrf_token(&actor),
            nav: nav_for(ca, &actor).await,
            actor,
        }),
        Err(e) if e.0.kind() == ErrorKind::Throttled => Err(e.into_response()),
        _ => Err(challenge()),
    }
}

impl FromRequestParts<Arc<Ca>> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ca: &Arc<Ca>) -> Result<Self, Response> {
        session(ca, &parts.headers).await
    }
}

/// A form post: authenticated, same origin, carrying the principal's CSRF token.
struct Posted {
    s: Session,
    form: HashMap<String, String>,
}

impl FromRequest<Arc<Ca>> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, ca: &Arc<Ca>) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let s = session(ca, &headers).await?;
        let form = match Form::<HashMap<String, String>>::from_request(req, ca).await {
            Ok(Form(f)) => f,
            Err(e) => return Err(error_page(ca, &s, StatusCode::BAD_REQUEST, &e.body_text())),
        };
        if cross_origin(&headers) || !csrf_ok(&s.actor, form.get("csrf")) {
            return Err(error_page(
                ca,
                &s,
                StatusCode::FORBIDDEN,
                "The form was refused: its anti-forgery token is missing or wrong, or it came from another site. Reload the page and try again.",
            ));
        }
        Ok(Posted { s, form })
    }
}

fn page_response(status: StatusCode, m: Markup) -> Response {
    let mut r = (status, axum::response::Html(m.into_string())).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `no-referrer` would make browsers send `Origin: null` with same-origin posts.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// What the navigation offers a caller: the engine's own decisions (asked
/// quietly, so nothing is audited), including role separation.
#[derive(Clone, Copy)]
struct Nav {
    database: bool,
    manager: bool,
    admin: bool,
    auditor: bool,
}

async fn nav_for(ca: &Ca, a: &Actor) -> Nav {
    Nav {
        database: ca.would_allow(a, Op::ReadDatabase).await,
        manager: ca.would_allow(a, Op::SearchKeys).await,
        admin: ca.would_allow(a, Op::Security).await,
        auditor: ca.would_allow(a, Op::ReadAudit).await,
    }
}

fn layout(ca: &Ca, s: &Session, title: &str, body: Markup) -> Markup {
    let n = s.nav;
    let roles: Vec<&str> = s.actor.roles.iter().map(|r| r.name()).collect();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " - Lockbox console" }
                link rel="stylesheet" href="/console/console.css";
            }
            body {
                header {
                    span.brand { "Lockbox — " (ca.config().ca.name) }
                    nav {
                        a href="/console/" { "Overview" }
                        @if n.database {
                            a href="/console/requests?view=pending" id="nav-pending" { "Pending" }
                            a href="/console/requests?view=issued" id="nav-issued" { "Issued" }
                            a href="/console/requests?view=revoked" id="nav-revoked" { "Revoked" }
                            a href="/console/requests?view=failed" id="nav-failed" { "Failed" }
                        }
                        @if n.manager { a href="/console/recovery" id="nav-recovery" { "Key recovery" } }
                        @if n.database { a href="/console/kra" id="nav-kra" { "Recovery agents" } }
                        a href="/console/templates" id="nav-templates" { "Templates" }
                        @if n.auditor { a href="/console/audit" id="nav-audit" { "Audit" } }
                        @if n.admin { a href="/console/restrictions" id="nav-restrictions" { "Manager restrictions" } }
                    }
                    span.user id="signed-in" {
                        "Signed in as " strong { (s.actor.name) }
                        @if !roles.is_empty() { " (" (roles.join(", ")) ")" }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

fn render(ca: &Ca, s: &Session, title: &str, body: Markup) -> Response {
    page_response(StatusCode::OK, layout(ca, s, title, body))
}

fn error_page(ca: &Ca, s: &Session, status: StatusCode, message: &str) -> Response {
    page_response(
        status,
        layout(
            ca,
            s,
            "Not done",
            html! { p.error id="error" role="alert" { (message) } },
        ),
    )
}

fn engine_error(ca: &Ca, s: &Session, e: &EngineError) -> Response {
    let status = http_status(e, StatusCode::UNPROCESSABLE_ENTITY);
    let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e, "console: internal error");
        "internal error (see the server log)".to_string()
    } else {
        format!("{e} (0x{:08x})", e.code())
    };
    error_page(ca, s, status, &message)
}

fn hidden_csrf(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

fn when(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

async fn stylesheet() -> Response {
    let mut r = CSS.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b}\
header{background:#1f3a5f;color:#fff;padding:.6em 1em;display:flex;flex-wrap:wrap;gap:1em;align-items:center}\
header a{color:#fff;margin-right:.8em}.brand{font-weight:bold}.user{margin-left:auto}\
main{padding:1em}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#eef}.error{color:#a00;font-weight:bold}.ok{color:#060;font-weight:bold}form.inline{display:inline}\
.mono{font-family:monospace}label.col{white-space:nowrap}details{margin:.5em 0}";

async fn dashboard(State(ca): State<Arc<Ca>>, s: Session) -> Response {
    let n = s.nav;
    let pending = if n.database {
        ca.pending(&s.actor).await.map(|p| p.len()).ok()
    } else {
        None
    };
    let body = html! {
        p { "Certification authority " strong { (ca.config().ca.name) } "." }
        @if let Some(p) = pending {
            p id="pending-count" { (p) " request(s) wait for a certificate manager." }
        }
        @if !n.database && !n.auditor {
            p { "Your account holds no CA role; the console offers you the template list only. Enroll at " a href="/certsrv/" { "/certsrv/" } "." }
        }
    };
    render(&ca, &s, "Overview", body)
}

#[derive(serde::Deserialize)]
struct ListQuery {
    view: Option<String>,
    columns: Option<String>,
    from: Option<i64>,
    done: Option<String>,
    id: Option<String>,
}

/// Rows per page of a request list.
const PAGE: i64 = 200;

async fn requests(
    State(ca): State<Arc<Ca>>,
    Query(q): Query<ListQuery>,
    Query(all): Query<HashMap<String, String>>,
    s: Session,
) -> Response {
    let chosen = match chosen_columns(&q, &all) {
        Ok(c) => c,
        Err(e) => return engine_error(&ca, &s, &e),
    };
    let view = q
        .view
        .as_deref()
        .filter(|v| matches!(*v, "issued" | "revoked" | "failed"))
        .unwrap_or("pending");
    let (title, disposition) = match view {
        "issued" => ("Issued Certificates", "issued"),
        "revoked" => ("Revoked Certificates", "revoked"),
        "failed" => ("Failed Requests", "denied"),
        _ => ("Pending Requests", "pending"),
    };
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
    let body = html! {
        @if let Some(d) = done {
            p.ok id="done" role="status" { "Request " (done_id) " " (d) "." }
        }
        (column_chooser(view, chosen.as_deref()))
        @if rows.is_empty() {
            p id="empty" { "No requests." }
        } @else if let Some(cols) = &chosen {
            table id="requests" {
                thead { tr {
                    @for c in cols { th { (column_title(*c)) } }
                    @if has_actions { th { "Action" } }
                } }
                tbody {
                    @for (r, act) in rows.iter().zip(&manageable) {
                        tr data-request-id=(r.request_id) {
                            @for c in cols {
                                @if *c == Column::ArchivedKey {
                                    td.archived { @if r.has_archived_key { "Yes" } @else { "No" } }
                                } @else {
                                    td { (lockbox_engine::view::cell(r, *c)) }
                                }
                            }
                            @if has_actions { @if *act { (actions(&s, r)) } @else { td {} } }
                        }
                    }
                }
            }
        } @else {
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
                    @for (r, act) in rows.iter().zip(&manageable) {
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
                            @if has_actions { @if *act { (actions(&s, r)) } @else { td {} } }
                        }
                    }
                }
            }
            @if more {
                @if let Some(next) = next {
                    p { a id="next-page" href={"/console/requests?view=" (view) "&from=" (next) (columns_param(chosen.as_deref()))} { "Next page" } }
                }
            }
        }
    };
    render(&ca, &s, title, body)
}

/// The columns an officer chose ("Add/Remove Columns"): checkboxes `c_NAME`
/// from the chooser, or `columns=A,B,...` in a link; `None`: the view's default.
fn chosen_columns(
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

fn columns_param(cols: Option<&[Column]>) -> String {
    cols.map(|c| {
        format!(
            "&columns={}",
            c.iter().map(|c| c.name()).collect::<Vec<_>>().join(",")
        )
    })
    .unwrap_or_default()
}

/// A column's heading, in the words of the CA snap-in.
fn column_title(c: Column) -> &'static str {
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
    }
}

/// "Add/Remove Columns": a GET form of checkboxes over every view column.
fn column_chooser(view: &str, chosen: Option<&[Column]>) -> Markup {
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
fn actions(s: &Session, r: &lockbox_engine::RequestRecord) -> Markup {
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

async fn decide(
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

async fn revoke(State(ca): State<Arc<Ca>>, Posted { s, form }: Posted) -> Response {
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

#[derive(serde::Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

async fn recovery(State(ca): State<Arc<Ca>>, Query(q): Query<SearchQuery>, s: Session) -> Response {
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

async fn recovery_blob(State(ca): State<Arc<Ca>>, Posted { s, form }: Posted) -> Response {
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
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => engine_error(&ca, &s, &e),
    }
}

async fn kras(State(ca): State<Arc<Ca>>, s: Session) -> Response {
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

async fn kra_required(State(ca): State<Arc<Ca>>, Posted { s, form }: Posted) -> Response {
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

async fn templates(State(ca): State<Arc<Ca>>, s: Session) -> Response {
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
async fn template_issue(State(ca): State<Arc<Ca>>, Posted { s, form }: Posted) -> Response {
    let name = form.get("name").map(String::as_str).unwrap_or("");
    let enabled = form.get("enabled").map(String::as_str) == Some("true");
    match ca.set_ca_template(&s.actor, name, enabled).await {
        Ok(_) => Redirect::to("/console/templates").into_response(),
        Err(e) => engine_error(&ca, &s, &e),
    }
}

async fn audit(State(ca): State<Arc<Ca>>, s: Session) -> Response {
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

async fn audit_verify(State(ca): State<Arc<Ca>>, Posted { s, .. }: Posted) -> Response {
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

async fn restrictions(State(ca): State<Arc<Ca>>, s: Session) -> Response {
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

fn list_field(form: &HashMap<String, String>, name: &str) -> Vec<String> {
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

async fn set_restrictions(State(ca): State<Arc<Ca>>, Posted { s, form }: Posted) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_are_bound_to_the_principal() {
        let alice = Actor::anonymous();
        let mut bob = Actor::anonymous();
        bob.name = "bob".into();
        let t = csrf_token(&alice);
        assert!(csrf_ok(&alice, Some(&t)));
        assert!(!csrf_ok(&bob, Some(&t)));
        assert!(!csrf_ok(&alice, None));
        assert!(!csrf_ok(&alice, Some(&"00".repeat(32))));
        assert!(!csrf_ok(&alice, Some(&"not hex".to_string())));
    }

    /// Issue 12 (weaknesses): a restricted manager reads only the rows it may
    /// act on (console and REST), gets 0x80094009 for another row, and the
    /// console shows Issue/Deny only on rows the caller may act on.
    #[tokio::test]
    async fn restricted_managers_see_and_act_only_within_their_restrictions() {
        use lockbox_engine::authz::Role;
        use lockbox_engine::period::Period;
        use lockbox_engine::{InitOptions, SubmitOptions};
        use tower::ServiceExt;
        let d = tempfile::tempdir().unwrap();
        Ca::init(InitOptions {
            home: d.path().to_path_buf(),
            name: "Contoso CA".into(),
            subject: None,
            key: lockbox_crypto::KeySpec::P256,
            validity: Period::Years(5),
            subordinate: false,
            passphrase: None,
            passphrase_file: None,
            cdp_urls: vec![],
            aia_urls: vec![],
        })
        .await
        .unwrap();
        let ca = Ca::open(d.path()).await.unwrap();
        let a = Actor::local_admin("admin");
        let pw = || Some(zeroize::Zeroizing::new("correct horse battery".to_string()));
        for u in ["alice", "carol", "max", "ada"] {
            ca.add_principal(&a, u, false, None, None, None, pw(), false)
                .await
                .unwrap();
        }
        ca.add_principal(&a, "Sales", true, None, None, None, None, false)
            .await
            .unwrap();
        ca.add_member(&a, "Sales", "alice").await.unwrap();
        ca.set_role(&a, "max", Role::CertificateManager, true)
            .await
            .unwrap();
        ca.set_role(&a, "ada", Role::CaAdministrator, true)
            .await
            .unwrap();
        for m in ["max", "ada"] {
            ca.set_restrictions(&a, m, vec!["Sales".into()], vec![])
                .await
                .unwrap();
        }
        ca.duplicate_template(&a, "User", "ApprovedUser")
            .await
            .unwrap();
        ca.set_template(&a, "ApprovedUser", "requires_approval", "true")
            .await
            .unwrap();
        ca.set_ca_template(&a, "ApprovedUser", true).await.unwrap();
        let mut ids = Vec::new();
        for u in ["alice", "carol"] {
            let actor = ca.actor_for(u).await.unwrap();
            let key = lockbox_crypto::SoftwareKey::generate(lockbox_crypto::KeySpec::P256).unwrap();
            let csr = lockbox_engine::certbuild::sign_request(
                &key,
                format!("CN={u}").parse().unwrap(),
                vec![],
            )
            .unwrap();
            let out = ca
                .submit(
                    &csr,
                    &SubmitOptions {
                        template: Some("ApprovedUser".into()),
                        requester: u.into(),
                        attributes: vec![],
                        actor: Some(actor),
                        on_behalf_of: None,
                    },
                )
                .await
                .unwrap();
            ids.push(out.request_id);
        }
        let (alice, carol) = (ids[0], ids[1]);
        let app = crate::router(Arc::new(ca));
        let get = |who: &str, path: String| {
            let app = app.clone();
            let basic =
                crate::http::base64_encode(format!("{who}:correct horse battery").as_bytes());
            async move {
                let resp = app
                    .oneshot(
                        axum::http::Request::get(path)
                            .header("authorization", format!("Basic {basic}"))
                            .body(axum::body::Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                let status = resp.status();
                let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .unwrap();
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        // the restricted manager's pending list holds only alice's row
        let (status, page) = get("max", "/console/requests?view=pending".into()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains(&format!("data-request-id=\"{alice}\"")),
            "{page}"
        );
        assert!(
            !page.contains(&format!("data-request-id=\"{carol}\"")),
            "{page}"
        );
        // a restricted administrator reads every row but gets buttons only where it may act
        let (_, page) = get("ada", "/console/requests?view=pending".into()).await;
        assert!(
            page.contains(&format!("data-request-id=\"{carol}\"")),
            "{page}"
        );
        assert!(page.contains(&format!("/console/requests/{alice}/issue")));
        assert!(
            !page.contains(&format!("/console/requests/{carol}/issue")),
            "{page}"
        );
        assert!(!page.contains(&format!("/console/requests/{carol}/deny")));
        // REST: the list is filtered, another row is 0x80094009
        let (_, list) = get("max", "/api/v1/requests".into()).await;
        let rows: serde_json::Value = serde_json::from_str(&list).unwrap();
        assert!(
            rows.as_array()
                .unwrap()
                .iter()
                .all(|r| r["requester"] == "alice"),
            "{list}"
        );
        let (status, body) = get("max", format!("/api/v1/requests/{carol}")).await;
        assert!(status.is_client_error());
        assert!(body.contains("0x80094009"), "{body}");
        let (_, body) = get("max", format!("/api/v1/view?restrict=RequestID%3D{carol}")).await;
        assert!(!body.contains("carol"), "{body}");
    }

    #[test]
    fn interpolated_text_is_escaped() {
        let evil = "<script>alert(1)</script>";
        let m = html! { td { (evil) } }.into_string();
        assert!(!m.contains("<script>"));
        assert!(m.contains("&lt;script&gt;"));
    }
}
