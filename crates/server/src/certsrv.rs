//! AD CS web enrollment (`/certsrv/`) as existing clients use it.
//!
//! The pages are plain HTML whose markers are the ones clients parse: an issued
//! result links `certnew.cer?ReqID=N&`, a pending one states `Your Request Id is N.`
//! under "Certificate Pending", a refusal gives `The disposition message is "..."`,
//! and retrieving a certificate that is not issued answers an HTML page with
//! `Disposition message:` followed by two tabs and the message. Authentication
//! is HTTP Basic against Lockbox principals (or the API's other schemes).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use lockbox_codec::pem::encode_pem;
use lockbox_engine::{Actor, Ca, Disposition, EngineError, ErrorKind, Outcome, SubmitOptions};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::auth::{anonymous_enrollee, caller, readable_request};
use crate::error::http_status;
use crate::http::{base64_encode, cross_origin};

/// The `/certsrv/` routes (state: the CA).
pub(crate) fn routes() -> Router<Arc<Ca>> {
    Router::new()
        .route("/certsrv", get(home))
        .route("/certsrv/", get(home))
        .route("/certsrv/default.asp", get(home))
        .route("/certsrv/certrqxt.asp", get(advanced_form))
        .route("/certsrv/certrqma.asp", get(browser_form))
        .route("/certsrv/lockbox-enroll.js", get(enroll_script))
        .route("/certsrv/certfnsh.asp", get(advanced_form).post(finish))
        .route("/certsrv/certnew.cer", get(certnew_cer))
        .route("/certsrv/certnew.p7b", get(certnew_p7b))
        .route("/certsrv/certcarc.asp", get(ca_page))
        .route("/certsrv/certckpn.asp", get(pending_status))
        .route("/certsrv/certcrl.crl", get(crl))
        .layer(axum::middleware::map_response(page_headers))
}

/// Hardening headers on every certsrv HTML page (the enrollment page holds a
/// key and a password): scripts from this origin only, no framing, no caching.
async fn page_headers(mut r: Response) -> Response {
    let html = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if html {
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// Who is calling: a principal, or anonymous (Authenticated Users) when the
/// CA allows it. Otherwise a Basic challenge, as IIS sends.
async fn web_user(ca: &Ca, headers: &HeaderMap) -> Result<Actor, Response> {
    match caller(ca, headers).await {
        Ok(Some(a)) => Ok(a),
        Ok(None) => anonymous_enrollee(ca).ok_or_else(challenge),
        Err(e) if e.0.kind() == ErrorKind::Throttled => Err(e.into_response()),
        Err(_) => Err(challenge()),
    }
}

fn challenge() -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        page(
            "Authentication required",
            html! { p { "Sign in with your Lockbox user name and password." } },
        ),
    )
        .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Lockbox certsrv\", charset=\"UTF-8\""),
    );
    r
}

/// A certsrv page: `maud` escapes every interpolated value; the few
/// `PreEscaped` fragments are fixed markup and numbers that clients parse.
fn page(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html {
                head { meta charset="utf-8"; title { "Lockbox Certificate Services - " (title) } }
                body {
                    p { a href="/certsrv/" { "Home" } }
                    h3 { (title) }
                    (body)
                }
            }
        }
        .into_string(),
    )
}

async fn home(State(ca): State<Arc<Ca>>, headers: HeaderMap) -> Response {
    let user = match web_user(&ca, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
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

async fn advanced_form(State(ca): State<Arc<Ca>>, headers: HeaderMap) -> Response {
    if let Err(r) = web_user(&ca, &headers).await {
        return r;
    }
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
async fn browser_form(State(ca): State<Arc<Ca>>, headers: HeaderMap) -> Response {
    // An archived key must belong to someone who can later ask for it back:
    // this page always asks who the user is (the browser then sends the same
    // credentials with the requests the script makes under /certsrv/).
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
        if ca
            .would_allow(&user, lockbox_engine::authz::Op::Enroll(t))
            .await
        {
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
async fn enroll_script() -> Response {
    let mut r = include_str!("../assets/enroll.js").into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn finish(
    State(ca): State<Arc<Ca>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
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
    };
    match ca.submit(request.as_bytes(), &opts).await {
        Ok(o) => outcome_page(&o),
        Err(e) => engine_failure_page(&e),
    }
}

fn outcome_page(o: &Outcome) -> Response {
    let id = o.request_id;
    match o.disposition {
        Disposition::Issued => {
            // Windows' result page: clients look for `certnew.cer?ReqID=N&`
            // (Certipy, certsrv) and `location="certnew.cer?ReqID=N&` (impacket).
            let script = format!(
                "var nReqId={id}; var sCertUrl=\"certnew.cer?ReqID={id}&\";\nfunction getEncoding() {{ return \"Enc=b64\"; }}\nfunction handleGetCert() {{ location=\"certnew.cer?ReqID={id}&\"+getEncoding(); }}"
            );
            let body = html! {
                p { "The certificate you requested (request " (id) ") has been issued." }
                p { "Download it: "
                    a href={"certnew.cer?ReqID=" (id) "&Enc=bin"} { "DER encoded" } " or "
                    a href={"certnew.cer?ReqID=" (id) "&Enc=b64"} { "Base 64 encoded" } "; with its chain: "
                    a href={"certnew.p7b?ReqID=" (id) "&Enc=bin"} { "PKCS #7" } "." }
                script { (PreEscaped(script)) }
            };
            page("Certificate Issued", body).into_response()
        }
        Disposition::Pending => {
            let body = html! {
                p { "The request was received and waits for a certificate manager to approve it. Come back to the "
                    a href={"certckpn.asp?ReqID=" (id)} { "status page" } " later to collect the certificate." }
                p { "Your Request Id is " (id) "." }
            };
            page("Certificate Pending", body).into_response()
        }
        Disposition::Denied | Disposition::Revoked => {
            denied_page(StatusCode::OK, id, &o.message, o.status_code)
        }
    }
}

/// A message as clients capture it: up to the next double quote, so it holds none.
fn quoted(message: &str) -> String {
    message.replace('"', "'")
}

/// `The disposition message is "..."`, the line clients parse (the quotes
/// must be literal; the message itself is escaped).
fn disposition_line(prefix: &str, message: &str) -> Markup {
    html! {
        p { (PreEscaped("The disposition message is \"")) (prefix) (quoted(message)) (PreEscaped("\"")) }
    }
}

fn code_text(code: u32) -> String {
    format!("0x{code:08x} ({})", lockbox_engine::codes::name(code))
}

fn denied_page(status: StatusCode, id: i64, message: &str, code: u32) -> Response {
    let body = html! {
        p { "Your Request Id is " (id) ". The request was denied." }
        (disposition_line("", message))
        p { "Status: " (format!("0x{code:08x}")) " (" (code as i32) " " (lockbox_engine::codes::name(code)) ")" }
    };
    (status, page("Certificate Request Denied", body)).into_response()
}

fn failure_page(status: StatusCode, message: &str, code: u32) -> Response {
    let body = html! {
        p { "The request could not be processed." }
        (disposition_line("", message))
        p { "Error Number: " (code_text(code)) }
    };
    (status, page("Certificate Request Denied", body)).into_response()
}

fn engine_failure_page(e: &EngineError) -> Response {
    if let EngineError::Denied { code, message } = e {
        // The policy module's refusal, in the form clients parse for the code.
        let body = html! {
            p { "The request was denied." }
            (disposition_line(&format!("Denied by Policy Module  0x{code:08x}, "), message))
            p { "Error Number: " (code_text(*code)) }
        };
        return (StatusCode::OK, page("Certificate Request Denied", body)).into_response();
    }
    let status = http_status(e, StatusCode::OK);
    let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e, "certsrv: internal error");
        "internal error (see the server log)".to_string()
    } else {
        e.to_string()
    };
    failure_page(status, &message, e.code())
}

/// `ReqID`, `Enc` and `Renewal` as certsrv clients send them.
#[derive(serde::Deserialize)]
struct CertQuery {
    #[serde(rename = "ReqID")]
    req_id: Option<String>,
    #[serde(rename = "Enc")]
    enc: Option<String>,
    #[serde(rename = "Renewal")]
    renewal: Option<String>,
}

/// The certificates asked for: the CA's (with its chain) or a request's.
enum Wanted {
    Ca,
    Request(i64),
}

fn wanted(q: &CertQuery) -> Result<Wanted, Box<Response>> {
    let id = q.req_id.as_deref().unwrap_or("").trim();
    if id.eq_ignore_ascii_case("CACert") {
        // This CA has never renewed its certificate: only renewal 0 exists.
        let renewal = q.renewal.as_deref().unwrap_or("0").trim();
        if renewal != "0" {
            return Err(Box::new(failure_page(
                StatusCode::NOT_FOUND,
                &format!("this CA has no renewal {renewal}"),
                lockbox_engine::codes::E_INVALIDARG,
            )));
        }
        return Ok(Wanted::Ca);
    }
    id.parse::<i64>().map(Wanted::Request).map_err(|_| {
        Box::new(failure_page(
            StatusCode::BAD_REQUEST,
            "ReqID must be a request number or CACert",
            lockbox_engine::codes::E_INVALIDARG,
        ))
    })
}

fn binary(q: &CertQuery) -> bool {
    q.enc
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case("bin"))
}

/// A request without a certificate: the page clients read the disposition from.
async fn not_issued_page(ca: &Ca, id: i64) -> Response {
    match ca.request(id).await {
        Ok(rec) => {
            let code = rec.status_code as u32;
            // certsrv clients read the message after "Disposition message:"
            // and two tabs (Windows' layout, odd markup included).
            let body = html! {
                table {
                    tr { td { "Request ID:" } td { (id) } }
                    tr { td { "Disposition:" } td { (rec.disposition.as_str()) } }
                    (PreEscaped("<tr><td>Disposition message:</td>\n\t\t"))
                    (rec.disposition_message)
                    (PreEscaped("\n</td></tr>"))
                    tr { td { "Status:" } td { (format!("0x{code:08x}")) " (" (code as i32) " " (lockbox_engine::codes::name(code)) ")" } }
                }
            };
            (StatusCode::OK, page("Certificate Not Available", body)).into_response()
        }
        Err(e) => engine_failure_page(&e),
    }
}

/// A request's certificate for `user` (its requester, or a reader of the
/// database; anyone else gets the same answer whether the request exists or
/// not); a request without one answers the page clients read the
/// disposition from.
async fn request_certificate(ca: &Ca, user: &Actor, id: i64) -> Result<Vec<u8>, Response> {
    let rec = readable_request(ca, Some(user), id)
        .await
        .map_err(|e| engine_failure_page(&e))?;
    match rec.cert {
        Some(c) => Ok(c.cert_der),
        None => Err(not_issued_page(ca, id).await),
    }
}

async fn certnew_cer(
    State(ca): State<Arc<Ca>>,
    headers: HeaderMap,
    Query(q): Query<CertQuery>,
) -> Response {
    let user = match web_user(&ca, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let der = match wanted(&q) {
        Err(r) => return *r,
        Ok(Wanted::Ca) => match ca.ca_certificate_der() {
            Ok(d) => d,
            Err(e) => return engine_failure_page(&e),
        },
        Ok(Wanted::Request(id)) => match request_certificate(&ca, &user, id).await {
            Ok(d) => d,
            Err(r) => return r,
        },
    };
    let disposition = "attachment; filename=\"certnew.cer\"";
    let body = if binary(&q) {
        der
    } else {
        encode_pem("CERTIFICATE", &der).into_bytes()
    };
    (
        [
            (header::CONTENT_TYPE, "application/pkix-cert"),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

async fn certnew_p7b(
    State(ca): State<Arc<Ca>>,
    headers: HeaderMap,
    Query(q): Query<CertQuery>,
) -> Response {
    let user = match web_user(&ca, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let chain = match ca.chain_der() {
        Ok(c) => c,
        Err(e) => return engine_failure_page(&e),
    };
    let certs = match wanted(&q) {
        Err(r) => return *r,
        Ok(Wanted::Ca) => chain,
        Ok(Wanted::Request(id)) => match request_certificate(&ca, &user, id).await {
            Ok(d) => std::iter::once(d).chain(chain).collect(),
            Err(r) => return r,
        },
    };
    let p7b = match lockbox_crypto::cms::certs_only(&certs) {
        Ok(p) => p,
        Err(e) => return engine_failure_page(&EngineError::Config(e.to_string())),
    };
    let body = if binary(&q) {
        p7b
    } else {
        encode_pem("PKCS7", &p7b).into_bytes()
    };
    (
        [
            (header::CONTENT_TYPE, "application/x-pkcs7-certificates"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"certnew.p7b\"",
            ),
        ],
        body,
    )
        .into_response()
}

async fn ca_page(State(ca): State<Arc<Ca>>, headers: HeaderMap) -> Response {
    if let Err(r) = web_user(&ca, &headers).await {
        return r;
    }
    let ca_b64 = ca
        .ca_certificate_der()
        .map(|d| base64_encode(&d))
        .unwrap_or_default();
    // base64 only (the script block is not escaped)
    let ca_b64: String = ca_b64
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        .collect();
    let body = html! {
        p { "Certification authority: " (ca.config().ca.name) ". Renewals of its certificate: 0." }
        ul {
            li { a href="certnew.cer?ReqID=CACert&Renewal=0&Enc=bin" { "Download CA certificate (DER)" } " or "
                 a href="certnew.cer?ReqID=CACert&Renewal=0&Enc=b64" { "(Base 64)" } }
            li { a href="certnew.p7b?ReqID=CACert&Renewal=0&Enc=bin" { "Download CA certificate chain" } }
            li { a href="certcrl.crl?Type=base" { "Download latest base CRL" } }
        }
        script { (PreEscaped(format!("\nvar nRenewals=0;\nvar sCaCert=\"{ca_b64}\";\n"))) }
    };
    page("Download a CA Certificate, Certificate Chain, or CRL", body).into_response()
}

#[derive(serde::Deserialize)]
struct StatusQuery {
    #[serde(rename = "ReqID")]
    req_id: Option<i64>,
}

async fn pending_status(
    State(ca): State<Arc<Ca>>,
    headers: HeaderMap,
    q: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let user = match web_user(&ca, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Ok(Query(q)) = q else {
        return failure_page(
            StatusCode::BAD_REQUEST,
            "ReqID must be a request number",
            lockbox_engine::codes::E_INVALIDARG,
        );
    };
    let Some(id) = q.req_id else {
        let body = html! {
            span id="lockbox-user" hidden { (user.name) }
            form method="get" action="certckpn.asp" {
                p { label for="ReqID" { "Request ID:" } " "
                    input id="ReqID" name="ReqID" type="number" min="1"; " "
                    input type="submit" value="Check"; }
            }
            h4 { "Requests made from this browser" }
            div id="browser-pending" {}
            script src="lockbox-enroll.js" {}
        };
        return page("View the Status of a Pending Certificate Request", body).into_response();
    };
    let rec = match readable_request(&ca, Some(&user), id).await {
        Ok(r) => r,
        Err(e) => return engine_failure_page(&e),
    };
    let o = Outcome {
        request_id: id,
        disposition: rec.disposition,
        status_code: rec.status_code as u32,
        message: rec.disposition_message.clone(),
        template: rec.template.clone(),
        serial: None,
        certificate_pem: None,
        archived: false,
        encrypted_key_hash: None,
        body_part_id: None,
        cmc_response: None,
    };
    outcome_page(&o)
}

async fn crl(State(ca): State<Arc<Ca>>) -> Response {
    match ca.current_crl().await {
        Ok(der) => ([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response(),
        Err(e) => engine_failure_page(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_parse_crlf_and_lf() {
        let a = lockbox_codec::certsrv::parse_cert_attrib(
            "CertificateTemplate:User\r\nSAN:upn=a@b.c\nnonsense\n:x",
        );
        assert_eq!(
            a,
            vec![
                ("CertificateTemplate".to_string(), "User".to_string()),
                ("SAN".to_string(), "upn=a@b.c".to_string()),
            ]
        );
    }

    #[test]
    fn html_is_escaped_and_quotes_never_end_the_message() {
        let line = disposition_line("", "<b>bad \"name\"</b>").into_string();
        assert_eq!(
            line,
            "<p>The disposition message is \"&lt;b&gt;bad 'name'&lt;/b&gt;\"</p>"
        );
    }

    #[test]
    fn foreign_origins_are_cross_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("ca.example:8443"));
        assert!(!cross_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://ca.example:8443"),
        );
        assert!(!cross_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(cross_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(cross_origin(&h));
    }
}
