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

mod audit;
mod kra;
mod recovery;
mod requests;
mod restrictions;
mod templates;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::extract::{Form, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use lockbox_engine::Op;
use lockbox_engine::{Actor, Ca, EngineError, ErrorKind};
use maud::{html, Markup, DOCTYPE};

use crate::auth::Authenticated;
use crate::error::http_status;
use crate::http::cross_origin;
use audit::{audit, audit_verify};
use kra::{kra_required, kras};
use recovery::{recovery, recovery_blob};
use requests::{decide, requests, revoke};
use restrictions::{restrictions, set_restrictions};
use templates::{template_issue, templates};

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

/// The console's caller, through the shared [`Authenticated`] extractor:
/// refused with a Basic challenge (429 while throttled).
impl FromRequestParts<Arc<Ca>> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ca: &Arc<Ca>) -> Result<Self, Response> {
        match Authenticated::from_request_parts(parts, ca).await {
            Ok(Authenticated(actor)) => Ok(Session {
                csrf: csrf_token(&actor),
                nav: nav_for(ca, &actor).await,
                actor,
            }),
            Err(e) if e.0.kind() == ErrorKind::Throttled => Err(e.into_response()),
            Err(_) => Err(challenge()),
        }
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
        // The caller first, then the form (as before).
        let (mut parts, body) = req.into_parts();
        let s = Session::from_request_parts(&mut parts, ca).await?;
        let headers = parts.headers.clone();
        let req = Request::from_parts(parts, body);
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

/// A console page (its security headers come from the shared layer,
/// [`crate::http::security_headers`]).
fn page_response(status: StatusCode, m: Markup) -> Response {
    (status, axum::response::Html(m.into_string())).into_response()
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
    let message = crate::error::public_message(e, status, "console")
        .unwrap_or_else(|| format!("{e} (0x{:08x})", e.code()));
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
        use lockbox_engine::period::Period;
        use lockbox_engine::Role;
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
            ocsp_urls: vec![],
            delta_cdp_urls: vec![],
            database: None,
            token: None,
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
                        renewing: None,
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
