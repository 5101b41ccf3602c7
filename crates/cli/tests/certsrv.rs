//! Web enrollment (`/certsrv/`) against clients nobody here wrote: the
//! `certsrv` PyPI package and Certipy's web enrollment code
//! (tests/interop/certsrv_web.py), over HTTPS with Basic authentication.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::*;

fn script(dir: &Path, args: &[&str]) -> Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/certsrv_web.py");
    Command::new(tools_python())
        .arg(path)
        .args(args)
        // requests lets these override the client's own CA file (psf/requests#3829)
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .current_dir(dir)
        .output()
        .expect("run python")
}

#[test]
fn certsrv_clients_enroll_and_collect_pending_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("ca");
    let h = s(&home);
    ok(lockbox(&["init", "--home", h, "--name", "Contoso Web CA"]));
    let ca_pem = d.join("ca.pem");
    ok(lockbox(&["ca", "cert", "--home", h, "--out", s(&ca_pem)]));
    std::fs::write(d.join("pw"), "Corr3ct horse\n").unwrap();
    ok(lockbox(&[
        "--home",
        h,
        "principal",
        "add",
        "webalice",
        "--upn",
        "webalice@contoso.com",
        "--password-file",
        s(&d.join("pw")),
    ]));
    ok(lockbox(&[
        "--home",
        h,
        "template",
        "duplicate",
        "User",
        "Approved",
    ]));
    ok(lockbox(&[
        "--home",
        h,
        "template",
        "set",
        "Approved",
        "requires_approval=true",
    ]));
    ok(lockbox(&[
        "--home",
        h,
        "ca",
        "templates",
        "add",
        "Approved",
    ]));

    let listen = free_listen_address();
    let _server = Server::start(&home, &listen);

    let pw = "Corr3ct horse";
    let out = ok(script(d, &["submit", &listen, s(&ca_pem), "webalice", pw]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    // the names come from webalice's principal record, not from the request
    assert_eq!(v["issued_subject"], "CN=webalice", "{v}");
    assert_eq!(v["chain_length"], 1);
    assert_eq!(v["pending_message"], "Taken Under Submission", "{v}");
    assert!(
        v["denied_message"]
            .as_str()
            .unwrap()
            .contains("template that is not supported"),
        "{v}"
    );
    assert_eq!(v["cross_site_status"], 403, "{v}");
    assert_eq!(v["junk_status"], 400, "{v}");
    assert_eq!(v["junk_escaped"], true, "{v}");
    assert_eq!(v["junk_has_error_number"], true, "{v}");
    let pending = v["pending_id"].as_i64().unwrap().to_string();

    // impacket's ntlmrelayx AD CS client (its own request and page parsing)
    let out = ok(script(
        d,
        &["impacket", &listen, s(&ca_pem), "webalice", pw, "User"],
    ));
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    assert_eq!(v["impacket_pfx"], true, "{v}");
    assert_eq!(v["impacket_subject"], "CN=webalice", "{v}");
    assert_eq!(v["impacket_key_matches"], true, "{v}");

    // the officer approves; the user collects it the way certsrv clients do
    ok(lockbox(&["--home", h, "issue", &pending]));
    let out = ok(script(
        d,
        &["retrieve", &listen, s(&ca_pem), "webalice", pw, &pending],
    ));
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    assert_eq!(v["retrieved_subject"], "CN=webalice", "{v}");

    // another principal may not collect or inspect webalice's request
    ok(lockbox(&[
        "--home",
        h,
        "principal",
        "add",
        "webmallory",
        "--password-file",
        s(&d.join("pw")),
    ]));
    let out = ok(script(
        d,
        &["foreign", &listen, s(&ca_pem), "webmallory", pw, &pending],
    ));
    let f: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    assert_eq!(f["cer_status"], 403, "{f}");
    assert_eq!(f["p7b_status"], 403, "{f}");
    assert_eq!(f["status_page"], 403, "{f}");
    assert_eq!(f["ca_cert_status"], 200, "{f}");
    assert_eq!(v["certipy_retrieved"], true);

    // the requests are recorded under the authenticated principal
    let rows: serde_json::Value = serde_json::from_str(&ok(lockbox(&[
        "--home",
        h,
        "view",
        "--json",
        "--restrict",
        "CommonName=webalice",
    ])))
    .unwrap();
    let row = &rows.as_array().unwrap()[0];
    assert!(row.to_string().contains("webalice"), "{row}");
}
