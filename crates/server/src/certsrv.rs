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
use lockbox_engine::{Actor, Ca, Disposition, EngineError, Outcome, SubmitOptions};

use crate::api::{anonymous_enrollee, base64_encode, caller, cross_origin, http_status};

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
        Err(_) => Err(challenge()),
    }
}

fn challenge() -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Html(page(
            "Authentication required",
            "<p>Sign in with your Lockbox user name and password.</p>",
        )),
    )
        .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Lockbox certsrv\", charset=\"UTF-8\""),
    );
    r
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Lockbox Certificate Services - {t}</title></head>\n<body>\n<p><a href=\"/certsrv/\">Home</a></p>\n<h3>{t}</h3>\n{body}\n</body></html>\n",
        t = esc(title)
    )
}

async fn home(State(ca): State<Arc<Ca>>, headers: HeaderMap) -> Response {
    let user = match web_user(&ca, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let body = format!(
        "<p>Signed in as {user}. This certification authority ({ca}) issues certificates and archives encryption keys.</p>\n<ul>\n<li><a href=\"certrqma.asp\">Request a certificate</a> (the key is generated in this browser and archived by the CA when the template asks for it)</li>\n<li><a href=\"certrqxt.asp\">Submit an advanced certificate request</a> (PKCS #10 or CMC, base64)</li>\n<li><a href=\"certckpn.asp\">View the status of a pending certificate request</a></li>\n<li><a href=\"certcarc.asp\">Download a CA certificate, certificate chain, or CRL</a></li>\n</ul>",
        user = esc(&user.name),
        ca = esc(&ca.config().ca.name),
    );
    Html(page("Welcome", &body)).into_response()
}

async fn advanced_form(State(ca): State<Arc<Ca>>, headers: HeaderMap) -> Response {
    if let Err(r) = web_user(&ca, &headers).await {
        return r;
    }
    let body = "<form method=\"post\" action=\"certfnsh.asp\">\n<input type=\"hidden\" name=\"Mode\" value=\"newreq\">\n<p><label for=\"CertRequest\">Saved request (base64 PKCS #10 or CMC):</label><br>\n<textarea id=\"CertRequest\" name=\"CertRequest\" rows=\"12\" cols=\"72\"></textarea></p>\n<p><label for=\"CertAttrib\">Additional attributes (one Name:Value per line, e.g. CertificateTemplate:User):</label><br>\n<textarea id=\"CertAttrib\" name=\"CertAttrib\" rows=\"3\" cols=\"72\"></textarea></p>\n<input type=\"hidden\" name=\"TargetStoreFlags\" value=\"0\">\n<input type=\"hidden\" name=\"SaveCert\" value=\"yes\">\n<p><input type=\"submit\" id=\"btnSubmit\" value=\"Submit\"></p>\n</form>";
    Html(page(
        "Submit a Certificate Request or Renewal Request",
        body,
    ))
    .into_response()
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
    let mut options = String::new();
    for t in templates
        .iter()
        .filter(|t| on_ca.contains(&t.name) && !t.ca)
    {
        // `would_allow`: listing is not an attempt, so nothing is audited.
        if !ca
            .would_allow(&user, lockbox_engine::authz::Op::Enroll(t))
            .await
        {
            continue;
        }
        options.push_str(&format!(
            "<option value=\"{n}\"{sel}>{d}{a}</option>\n",
            n = esc(&t.name),
            d = esc(&t.display_name),
            a = if t.archive_private_key {
                " (key archived)"
            } else {
                ""
            },
            sel = if t.archive_private_key && !options.contains(" selected") {
                " selected"
            } else {
                ""
            },
        ));
    }
    let body = format!(
        "<span id=\"lockbox-user\" hidden>{who}</span>\n<noscript><p>This page needs JavaScript: the key is made in your browser.</p></noscript>\n<form id=\"enroll\">\n<p><label for=\"template\">Certificate template:</label> <select id=\"template\" name=\"template\">\n{options}</select></p>\n<p><label for=\"cn\">Name:</label> <input id=\"cn\" name=\"cn\" type=\"text\" value=\"{cn}\" required></p>\n<p><label for=\"bits\">Key size:</label> <select id=\"bits\" name=\"bits\"><option>2048</option><option>3072</option><option>4096</option></select></p>\n<p><label for=\"password\">Password for the PKCS #12 file:</label> <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"8\" required></p>\n<p><input type=\"submit\" id=\"btnEnroll\" value=\"Submit\"></p>\n</form>\n<p id=\"result\" role=\"status\"></p>\n<p id=\"download\"></p>\n<script src=\"lockbox-enroll.js\"></script>",
        cn = esc(user.name.rsplit('\\').next().unwrap_or(&user.name)),
        who = esc(&user.name),
    );
    Html(page("Request a Certificate", &body)).into_response()
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
            Html(page(
                "Request refused",
                "<p>Cross-site form submissions are not accepted.</p>",
            )),
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
            let body = format!(
                "<p>The certificate you requested (request {id}) has been issued.</p>\n<p>Download it: <a href=\"certnew.cer?ReqID={id}&amp;Enc=bin\">DER encoded</a> or <a href=\"certnew.cer?ReqID={id}&amp;Enc=b64\">Base 64 encoded</a>; with its chain: <a href=\"certnew.p7b?ReqID={id}&amp;Enc=bin\">PKCS #7</a>.</p>\n<script>var nReqId={id}; var sCertUrl=\"certnew.cer?ReqID={id}&\";\nfunction getEncoding() {{ return \"Enc=b64\"; }}\nfunction handleGetCert() {{ location=\"certnew.cer?ReqID={id}&\"+getEncoding(); }}</script>"
            );
            Html(page("Certificate Issued", &body)).into_response()
        }
        Disposition::Pending => {
            let body = format!(
                "<p>The request was received and waits for a certificate manager to approve it. Come back to the <a href=\"certckpn.asp?ReqID={id}\">status page</a> later to collect the certificate.</p>\n<p>Your Request Id is {id}.</p>"
            );
            Html(page("Certificate Pending", &body)).into_response()
        }
        Disposition::Denied | Disposition::Revoked => {
            denied_page(StatusCode::OK, id, &o.message, o.status_code)
        }
    }
}

fn quoted(message: &str) -> String {
    // Clients capture up to the next double quote.
    esc(&message.replace('"', "'"))
}

fn denied_page(status: StatusCode, id: i64, message: &str, code: u32) -> Response {
    let body = format!(
        "<p>Your Request Id is {id}. The request was denied.</p>\n<p>The disposition message is \"{m}\"</p>\n<p>Status: 0x{code:08x} ({signed} {name})</p>",
        m = quoted(message),
        signed = code as i32,
        name = esc(lockbox_engine::codes::name(code)),
    );
    (status, Html(page("Certificate Request Denied", &body))).into_response()
}

fn failure_page(status: StatusCode, message: &str, code: u32) -> Response {
    let body = format!(
        "<p>The request could not be processed.</p>\n<p>The disposition message is \"{m}\"</p>\n<p>Error Number: 0x{code:08x} ({name})</p>",
        m = quoted(message),
        name = esc(lockbox_engine::codes::name(code)),
    );
    (status, Html(page("Certificate Request Denied", &body))).into_response()
}

fn engine_failure_page(e: &EngineError) -> Response {
    if let EngineError::Denied { code, message } = e {
        // The policy module's refusal, in the form clients parse for the code.
        let body = format!(
            "<p>The request was denied.</p>\n<p>The disposition message is \"Denied by Policy Module  0x{code:08x}, {m}\"</p>\n<p>Error Number: 0x{code:08x} ({name})</p>",
            m = quoted(message),
            name = esc(lockbox_engine::codes::name(*code)),
        );
        return (
            StatusCode::OK,
            Html(page("Certificate Request Denied", &body)),
        )
            .into_response();
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
            let body = format!(
                "<table>\n<tr><td>Request ID:</td><td>{id}</td></tr>\n<tr><td>Disposition:</td><td>{d}</td></tr>\n<tr><td>Disposition message:</td>\n\t\t{m}\n</td></tr>\n<tr><td>Status:</td><td>0x{code:08x} ({signed} {name})</td></tr>\n</table>",
                d = esc(rec.disposition.as_str()),
                m = esc(&rec.disposition_message),
                code = rec.status_code as u32,
                signed = rec.status_code as u32 as i32,
                name = esc(lockbox_engine::codes::name(rec.status_code as u32)),
            );
            (
                StatusCode::OK,
                Html(page("Certificate Not Available", &body)),
            )
                .into_response()
        }
        Err(e) => engine_failure_page(&e),
    }
}

/// A user sees their own requests; readers of the CA database see all.
async fn may_read(ca: &Ca, user: &Actor, requester: &str, id: i64) -> Result<(), Response> {
    if requester.eq_ignore_ascii_case(&user.name)
        || ca
            .authorize(user, lockbox_engine::authz::Op::ReadDatabase)
            .await
            .is_ok()
    {
        return Ok(());
    }
    Err(failure_page(
        StatusCode::FORBIDDEN,
        &format!("request {id} is not yours"),
        lockbox_engine::codes::E_ACCESSDENIED,
    ))
}

/// Checks that `user` may read request `id` (unknown IDs fall through to the
/// handler's own not-found answer).
async fn may_read_request(ca: &Ca, user: &Actor, id: i64) -> Result<(), Response> {
    match ca.request(id).await {
        Ok(rec) => may_read(ca, user, &rec.requester, id).await,
        Err(_) => Ok(()),
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
        Ok(Wanted::Request(id)) => match may_read_request(&ca, &user, id).await {
            Err(r) => return r,
            Ok(()) => match ca.certificate(id).await {
                Ok(d) => d,
                Err(EngineError::Conflict(_)) => return not_issued_page(&ca, id).await,
                Err(e) => return engine_failure_page(&e),
            },
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
        Ok(Wanted::Request(id)) => match may_read_request(&ca, &user, id).await {
            Err(r) => return r,
            Ok(()) => match ca.certificate(id).await {
                Ok(d) => std::iter::once(d).chain(chain).collect(),
                Err(EngineError::Conflict(_)) => return not_issued_page(&ca, id).await,
                Err(e) => return engine_failure_page(&e),
            },
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
    let body = format!(
        "<p>Certification authority: {name}. Renewals of its certificate: 0.</p>\n<ul>\n<li><a href=\"certnew.cer?ReqID=CACert&amp;Renewal=0&amp;Enc=bin\">Download CA certificate (DER)</a> or <a href=\"certnew.cer?ReqID=CACert&amp;Renewal=0&amp;Enc=b64\">(Base 64)</a></li>\n<li><a href=\"certnew.p7b?ReqID=CACert&amp;Renewal=0&amp;Enc=bin\">Download CA certificate chain</a></li>\n<li><a href=\"certcrl.crl?Type=base\">Download latest base CRL</a></li>\n</ul>\n<script>\nvar nRenewals=0;\nvar sCaCert=\"{ca_b64}\";\n</script>",
        name = esc(&ca.config().ca.name),
        ca_b64 = esc(&ca_b64.replace(['\r', '\n'], "")),
    );
    Html(page(
        "Download a CA Certificate, Certificate Chain, or CRL",
        &body,
    ))
    .into_response()
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
        let body = format!(
            "<span id=\"lockbox-user\" hidden>{who}</span>\n<form method=\"get\" action=\"certckpn.asp\">\n<p><label for=\"ReqID\">Request ID:</label> <input id=\"ReqID\" name=\"ReqID\" type=\"number\" min=\"1\"> <input type=\"submit\" value=\"Check\"></p>\n</form>\n<h4>Requests made from this browser</h4>\n<div id=\"browser-pending\"></div>\n<script src=\"lockbox-enroll.js\"></script>",
            who = esc(&user.name)
        );
        return Html(page(
            "View the Status of a Pending Certificate Request",
            &body,
        ))
        .into_response();
    };
    let rec = match ca.request(id).await {
        Ok(r) => r,
        Err(e) => return engine_failure_page(&e),
    };
    if let Err(r) = may_read(&ca, &user, &rec.requester, id).await {
        return r;
    }
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
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert!(!quoted("bad \"name\"").contains('"'));
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
