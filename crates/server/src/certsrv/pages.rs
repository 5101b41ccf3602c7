//! The static pages: home, the two request forms, the enrollment script,
//! the CA download page and the CRL.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use lockbox_engine::Ca;
use maud::{html, PreEscaped};

use super::results::engine_failure_page;
use super::{challenge, page, WebUser};
use crate::auth::caller;
use crate::http::base64_encode;

pub(super) async fn home(State(ca): State<Arc<Ca>>, WebUser(user): WebUser) -> Response {
    let body = html! {
        p { "Signed in as " (user.name) ". This certification authority (" (ca.config().ca.name) ") issues certificates and archives encryption keys." }
        ul {
            li { a href="certrqma.asp" { "Request a certificate" } " (the key is generated in this browser and archived by the CA when the template asks for it)" }
            li { a href="certrqxt.asp" { "Submit an advanced certificate request" } " (PKCS #10 or CMC, base64)" }
            li { a href="certckpn.asp" { "View the status of a pending certificate request" } }
            li { a href="certcarc.asp" { "Download a CA certificate, certificate chain, or CRL" } }
        }
    };
    page("Welcome", body).into_response()
}

pub(super) async fn advanced_form(_: WebUser) -> Response {
    let body = html! {
        form method="post" action="certfnsh.asp" {
            input type="hidden" name="Mode" value="newreq";
            p { label for="CertRequest" { "Saved request (base64 PKCS #10 or CMC):" } br;
                textarea id="CertRequest" name="CertRequest" rows="12" cols="72" {} }
            p { label for="CertAttrib" { "Additional attributes (one Name:Value per line, e.g. CertificateTemplate:User):" } br;
                textarea id="CertAttrib" name="CertAttrib" rows="3" cols="72" {} }
            input type="hidden" name="TargetStoreFlags" value="0";
            input type="hidden" name="SaveCert" value="yes";
            p { input type="submit" id="btnSubmit" value="Submit"; }
        }
    };
    page("Submit a Certificate Request or Renewal Request", body).into_response()
}

/// The browser enrollment page: the key is generated and, for archiving
/// templates, enveloped to the CA exchange certificate by `lockbox-enroll.js`.
pub(super) async fn browser_form(State(ca): State<Arc<Ca>>, headers: HeaderMap) -> Response {
    // An archived key must belong to someone who can later ask for it back:
    // this page always asks who the user is (the browser then sends the same
    // credentials with the requests the script makes under /certsrv/).
    // So not the `WebUser` extractor: no anonymous enrollee here, and a
    // throttled caller gets the challenge too, as before.
    let user = match caller(&ca, &headers).await {
        Ok(Some(u)) => u,
        _ => return challenge(),
    };
    let (templates, on_ca) = match (ca.templates().await, ca.ca_templates().await) {
        (Ok(t), Ok(c)) => (t, c),
        (Err(e), _) | (_, Err(e)) => return engine_failure_page(&e),
    };
    let mut offered = Vec::new();
    for t in templates
        .iter()
        .filter(|t| on_ca.contains(&t.name) && !t.ca)
    {
        // `would_allow`: listing is not an attempt, so nothing is audited.
        if ca.would_allow(&user, lockbox_engine::Op::Enroll(t)).await {
            offered.push(t);
        }
    }
    // The first archiving template is preselected.
    let preselected = offered
        .iter()
        .position(|t| t.archive_private_key)
        .unwrap_or(0);
    let cn = user.name.rsplit('\\').next().unwrap_or(&user.name);
    let body = html! {
        span id="lockbox-user" hidden { (user.name) }
        noscript { p { "This page needs JavaScript: the key is made in your browser." } }
        form id="enroll" {
            p { label for="template" { "Certificate template:" } " "
                select id="template" name="template" {
                    @for (i, t) in offered.iter().enumerate() {
                        option value=(t.name) selected[i == preselected] {
                            (t.display_name) @if t.archive_private_key { " (key archived)" }
                        }
                    }
                }
            }
            p { label for="cn" { "Name:" } " " input id="cn" name="cn" type="text" value=(cn) required; }
            p { label for="bits" { "Key size:" } " "
                select id="bits" name="bits" { option { "2048" } option { "3072" } option { "4096" } } }
            p { label for="password" { "Password for the PKCS #12 file:" } " "
                input id="password" name="password" type="password" autocomplete="new-password" minlength="8" required; }
            p { input type="submit" id="btnEnroll" value="Submit"; }
        }
        p id="result" role="status" {}
        p id="download" {}
        script src="lockbox-enroll.js" {}
    };
    page("Request a Certificate", body).into_response()
}

/// The enrollment script (WebCrypto key generation, CMC archival request, PKCS#12).
pub(super) async fn enroll_script() -> Response {
    let mut r = include_str!("../../assets/enroll.js").into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    r
}

pub(super) async fn ca_page(State(ca): State<Arc<Ca>>, _: WebUser) -> Response {
    let ca_b64 = ca
        .ca_certificate_der()
        .map(|d| base64_encode(&d))
        .unwrap_or_default();
    // base64 only (the script block is not escaped)
    let ca_b64: String = ca_b64
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        .collect();
    let renewals = ca.renewals();
    let body = html! {
        p { "Certification authority: " (ca.config().ca.name) ". Renewals of its certificate: " (renewals) "." }
        ul {
            @for n in (0..=renewals).rev() {
                li { "CA certificate " (n) (if n == renewals { " (current)" } else { "" }) ": "
                     a href=(format!("certnew.cer?ReqID=CACert&Renewal={n}&Enc=bin")) { "DER" } ", "
                     a href=(format!("certnew.cer?ReqID=CACert&Renewal={n}&Enc=b64")) { "Base 64" } ", "
                     a href=(format!("certnew.p7b?ReqID=CACert&Renewal={n}&Enc=bin")) { "chain" } }
            }
            li { a href="certcrl.crl?Type=base" { "Download latest base CRL" } }
            li { a href="certcrl.crl?Type=delta" { "Download latest delta CRL" } }
        }
        script { (PreEscaped(format!("\nvar nRenewals={renewals};\nvar sCaCert=\"{ca_b64}\";\n"))) }
    };
    page("Download a CA Certificate, Certificate Chain, or CRL", body).into_response()
}

/// `certcrl.crl?Type=base|delta`: the current key's CRL.
#[derive(serde::Deserialize)]
pub(super) struct CrlQuery {
    #[serde(rename = "Type")]
    kind: Option<String>,
}

pub(super) async fn crl(
    State(ca): State<Arc<Ca>>,
    axum::extract::Query(q): axum::extract::Query<CrlQuery>,
) -> Response {
    let delta = q
        .kind
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("delta"));
    let crl = if delta {
        ca.current_delta_crl().await
    } else {
        ca.current_crl().await
    };
    match crl {
        Ok(der) => ([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response(),
        Err(e) => engine_failure_page(&e),
    }
}
