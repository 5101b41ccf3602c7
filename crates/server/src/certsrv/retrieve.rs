//! Retrieval: `certnew.cer`, `certnew.p7b` and the pending-request status page.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use lockbox_codec::pem::encode_pem;
use lockbox_engine::{Actor, Ca, EngineError, Outcome};
use maud::html;

use super::results::{engine_failure_page, failure_page};
use super::results::{not_issued_page, outcome_page};
use super::{page, WebUser};
use crate::auth::readable_request;

/// `ReqID`, `Enc` and `Renewal` as certsrv clients send them.
#[derive(serde::Deserialize)]
pub(super) struct CertQuery {
    #[serde(rename = "ReqID")]
    req_id: Option<String>,
    #[serde(rename = "Enc")]
    enc: Option<String>,
    #[serde(rename = "Renewal")]
    renewal: Option<String>,
}

/// The certificates asked for: the CA's of a renewal index (with its
/// chain) or a request's.
enum Wanted {
    Ca(Vec<u8>),
    Request(i64),
}

fn wanted(ca: &Ca, q: &CertQuery) -> Result<Wanted, Box<Response>> {
    let id = q.req_id.as_deref().unwrap_or("").trim();
    if id.eq_ignore_ascii_case("CACert") {
        // `Renewal=N` picks the N-th CA certificate (0: the first); none: the current one.
        let renewal = q.renewal.as_deref().map(str::trim);
        let n = match renewal {
            None | Some("") => ca.renewals(),
            Some(r) => r.parse::<u32>().unwrap_or(u32::MAX),
        };
        return match ca.ca_certificate_of_renewal(n) {
            Some(der) => Ok(Wanted::Ca(der)),
            None => Err(Box::new(failure_page(
                StatusCode::NOT_FOUND,
                &format!(
                    "this CA has no renewal {} (it has {} renewals)",
                    renewal.unwrap_or_default(),
                    ca.renewals()
                ),
                lockbox_engine::codes::E_INVALIDARG,
            ))),
        };
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

pub(super) async fn certnew_cer(
    State(ca): State<Arc<Ca>>,
    Query(q): Query<CertQuery>,
    // After the query: a malformed query is refused before authentication.
    WebUser(user): WebUser,
) -> Response {
    let der = match wanted(&ca, &q) {
        Err(r) => return *r,
        Ok(Wanted::Ca(d)) => d,
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

pub(super) async fn certnew_p7b(
    State(ca): State<Arc<Ca>>,
    Query(q): Query<CertQuery>,
    // After the query: a malformed query is refused before authentication.
    WebUser(user): WebUser,
) -> Response {
    let chain = match ca.chain_der() {
        Ok(c) => c,
        Err(e) => return engine_failure_page(&e),
    };
    let certs: Vec<Vec<u8>> = match wanted(&ca, &q) {
        Err(r) => return *r,
        // That CA certificate, then the parents of the current one.
        Ok(Wanted::Ca(d)) => std::iter::once(d)
            .chain(chain.into_iter().skip(1))
            .collect(),
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

#[derive(serde::Deserialize)]
pub(super) struct StatusQuery {
    #[serde(rename = "ReqID")]
    req_id: Option<i64>,
}

pub(super) async fn pending_status(
    State(ca): State<Arc<Ca>>,
    WebUser(user): WebUser,
    q: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
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
