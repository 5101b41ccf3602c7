//! AD CS web enrollment (`/certsrv/`) as existing clients use it.
//!
//! The pages are plain HTML whose markers are the ones clients parse: an issued
//! result links `certnew.cer?ReqID=N&`, a pending one states `Your Request Id is N.`
//! under "Certificate Pending", a refusal gives `The disposition message is "..."`,
//! and retrieving a certificate that is not issued answers an HTML page with
//! `Disposition message:` followed by two tabs and the message. Authentication
//! is HTTP Basic against Lockbox principals (or the API's other schemes).

mod pages;
mod results;
mod retrieve;
mod submit;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use lockbox_engine::{Actor, Ca, ErrorKind};
use maud::{html, Markup, DOCTYPE};

use crate::auth::{enrollee, Enrollee};
use crate::error::ApiError;
use pages::{advanced_form, browser_form, ca_page, crl, enroll_script, home};
use retrieve::{certnew_cer, certnew_p7b, pending_status};
use submit::finish;

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
}

/// Who is calling: a principal, or anonymous (Authenticated Users) when the
/// CA allows it. Otherwise a Basic challenge, as IIS sends.
pub(super) async fn web_user(ca: &Ca, headers: &HeaderMap) -> Result<Actor, Response> {
    enrollee(ca, headers).await.map_err(refusal)
}

/// A refused enrollee: 429 while throttled, otherwise IIS's Basic challenge.
fn refusal(e: ApiError) -> Response {
    if e.0.kind() == ErrorKind::Throttled {
        e.into_response()
    } else {
        challenge()
    }
}

/// The certsrv caller as an extractor: the enrollee (a principal, or
/// anonymous when the CA allows it), refused as by [`web_user`].
pub(super) struct WebUser(pub(super) Actor);

impl FromRequestParts<Arc<Ca>> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ca: &Arc<Ca>) -> Result<Self, Response> {
        match Enrollee::from_request_parts(parts, ca).await {
            Ok(Enrollee(a)) => Ok(WebUser(a)),
            Err(e) => Err(refusal(e)),
        }
    }
}

/// IIS's answer to a caller without credentials: 401 with a Basic challenge.
pub(super) fn challenge() -> Response {
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
pub(super) fn page(title: &str, body: Markup) -> Html<String> {
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

#[cfg(test)]
mod tests {
    use super::results::disposition_line;
    use super::*;
    use crate::http::cross_origin;

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
