//! Result pages in the layout certsrv clients parse: issued, pending,
//! denied, failed, not available.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lockbox_engine::{Ca, Disposition, EngineError, Outcome};
use maud::{html, Markup, PreEscaped};

use super::page;
use crate::error::http_status;

pub(super) fn outcome_page(o: &Outcome) -> Response {
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
pub(super) fn disposition_line(prefix: &str, message: &str) -> Markup {
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

pub(super) fn failure_page(status: StatusCode, message: &str, code: u32) -> Response {
    let body = html! {
        p { "The request could not be processed." }
        (disposition_line("", message))
        p { "Error Number: " (code_text(code)) }
    };
    (status, page("Certificate Request Denied", body)).into_response()
}

pub(super) fn engine_failure_page(e: &EngineError) -> Response {
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
    let message =
        crate::error::public_message(e, status, "certsrv").unwrap_or_else(|| e.to_string());
    failure_page(status, &message, e.code())
}

/// A request without a certificate: the page clients read the disposition from.
pub(super) async fn not_issued_page(ca: &Ca, id: i64) -> Response {
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
