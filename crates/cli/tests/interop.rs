//! End-to-end tests of the `lockbox` binary against software nobody here
//! wrote: the `openssl` CLI (req, verify, crl) and pkilint.
//! `.ci/run` installs both; these tests fail (not skip) when they are missing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};

mod common;
use common::*;
use std::process::{Command, Output};

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is required for this test: {e}"))
}

fn init_root(dir: &Path) -> PathBuf {
    let home = dir.join("root");
    ok(lockbox(&[
        "init",
        "--home",
        s(&home),
        "--name",
        "Contoso Root CA",
        "--validity",
        "10y",
        "--cdp-url",
        "http://pki.contoso.test/crl/ca.crl",
        "--aia-url",
        "http://pki.contoso.test/ca.crt",
    ]));
    home
}

fn row_count(home: &Path) -> usize {
    let out = ok(lockbox(&["view", "--home", s(home), "--json"]));
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn root_ca_issues_openssl_requests_that_verify_and_lint_clean() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = init_root(d);
    let ca_pem = d.join("ca.pem");
    ok(lockbox(&[
        "--home",
        s(&home),
        "ca",
        "cert",
        "--out",
        s(&ca_pem),
    ]));
    pkilint_cert(&ca_pem);
    let text = ok(run(
        "openssl",
        &["x509", "-in", s(&ca_pem), "-noout", "-text"],
    ));
    assert!(
        text.contains("CA:TRUE") && text.contains("Certificate Sign, CRL Sign"),
        "{text}"
    );

    let rsa = openssl_csr(
        d,
        "alice",
        "/CN=Alice Example/O=Contoso",
        &["-newkey", "rsa:2048"],
    );
    let ec = openssl_csr(
        d,
        "web",
        "/CN=www.contoso.test",
        &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-addext",
            "subjectAltName=DNS:www.contoso.test",
        ],
    );
    let alice = d.join("alice.pem");
    let web = d.join("web.pem");
    let out = ok(lockbox(&[
        "submit",
        s(&rsa),
        "--template",
        "User",
        "--out",
        s(&alice),
        "--home",
        s(&home),
    ]));
    assert!(
        out.contains("RequestId: 1") && out.contains("issued"),
        "{out}"
    );
    ok(lockbox(&[
        "submit",
        s(&ec),
        "--template",
        "WebServer",
        "--out",
        s(&web),
        "--home",
        s(&home),
    ]));
    for cert in [&alice, &web] {
        let v = ok(run("openssl", &["verify", "-CAfile", s(&ca_pem), s(cert)]));
        assert!(v.contains(": OK"), "{v}");
        pkilint_cert(cert);
    }
    let web_text = ok(run("openssl", &["x509", "-in", s(&web), "-noout", "-text"]));
    assert!(
        web_text.contains("DNS:www.contoso.test")
            && web_text.contains("TLS Web Server Authentication"),
        "{web_text}"
    );
    assert!(
        web_text.contains("pki.contoso.test/crl/ca.crl"),
        "CDP present"
    );

    // revoke, publish, and have openssl check the CRL and the revocation
    let serial = ok(run(
        "openssl",
        &["x509", "-in", s(&alice), "-noout", "-serial"],
    ));
    let serial = serial.trim().trim_start_matches("serial=").to_string();
    ok(lockbox(&[
        "revoke",
        &serial,
        "--reason",
        "keyCompromise",
        "--home",
        s(&home),
    ]));
    let crl = d.join("ca.crl");
    let out = ok(lockbox(&[
        "crl",
        "publish",
        "--out",
        s(&crl),
        "--home",
        s(&home),
    ]));
    assert!(out.contains("1 revoked"), "{out}");
    let v = openssl_crl_check(&crl, &ca_pem, &[]);
    assert!(
        String::from_utf8_lossy(&v.stderr).contains("verify OK")
            || String::from_utf8_lossy(&v.stdout).contains("verify OK"),
        "{v:?}"
    );
    pkilint_crl(&crl);
    let crl_pem = d.join("ca.crl.pem");
    ok(run(
        "openssl",
        &["crl", "-inform", "DER", "-in", s(&crl), "-out", s(&crl_pem)],
    ));
    // openssl verify of CERT against the CA and its CRL
    let verify_with_crl = |cert: &Path| {
        run(
            "openssl",
            &[
                "verify",
                "-crl_check",
                "-CRLfile",
                s(&crl_pem),
                "-CAfile",
                s(&ca_pem),
                s(cert),
            ],
        )
    };
    let revoked = verify_with_crl(&alice);
    assert!(
        !revoked.status.success() && String::from_utf8_lossy(&revoked.stdout).contains("revoked")
            || String::from_utf8_lossy(&revoked.stderr).contains("revoked")
    );
    let good = ok(verify_with_crl(&web));
    assert!(good.contains(": OK"));

    // view with restrictions and chosen columns (certutil -view habit)
    let csv = ok(lockbox(&[
        "view",
        "--home",
        s(&home),
        "--restrict",
        "CertificateTemplate=WebServer,NotBefore>=2020-01-01",
        "--out",
        "RequestID,SerialNumber,CommonName,NotBefore",
        "--csv",
    ]));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "RequestID,SerialNumber,CommonName,NotBefore");
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].starts_with("2,") && lines[1].contains("www.contoso.test"));
    let json: serde_json::Value = serde_json::from_str(&ok(lockbox(&[
        "view",
        "--json",
        "--home",
        s(&home),
        "--restrict",
        "Disposition=revoked",
    ])))
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
}

#[test]
fn subordinate_ca_chain_verifies_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = init_root(d);
    let sub = d.join("sub");
    let req = d.join("sub.req");
    let out = ok(lockbox(&[
        "init",
        "--home",
        s(&sub),
        "--name",
        "Contoso Issuing CA 1",
        "--key",
        "p384",
        "--subordinate",
        "--csr-out",
        s(&req),
    ]));
    assert!(out.contains("request written"), "{out}");
    // the subordinate request is a real PKCS#10 openssl accepts
    ok(run(
        "openssl",
        &["req", "-in", s(&req), "-verify", "-noout"],
    ));
    let root_pem = d.join("root.pem");
    let sub_pem = d.join("sub.pem");
    ok(lockbox(&[
        "ca",
        "cert",
        "--home",
        s(&root),
        "--out",
        s(&root_pem),
    ]));
    ok(lockbox(&[
        "submit",
        s(&req),
        "--template",
        "SubCA",
        "--home",
        s(&root),
        "--out",
        s(&sub_pem),
    ]));
    // before install the subordinate cannot issue
    let csr = openssl_csr(d, "bob", "/CN=Bob", &["-newkey", "rsa:2048"]);
    let early = lockbox(&["submit", s(&csr), "--template", "User", "--home", s(&sub)]);
    assert!(!early.status.success());
    // install without the chain fails; with it succeeds
    assert!(!lockbox(&["ca", "install", s(&sub_pem), "--home", s(&sub)])
        .status
        .success());
    ok(lockbox(&[
        "ca",
        "install",
        s(&sub_pem),
        "--chain",
        s(&root_pem),
        "--home",
        s(&sub),
    ]));
    let leaf = d.join("bob.pem");
    ok(lockbox(&[
        "submit",
        s(&csr),
        "--template",
        "User",
        "--home",
        s(&sub),
        "--out",
        s(&leaf),
    ]));
    let v = ok(run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            s(&root_pem),
            "-untrusted",
            s(&sub_pem),
            s(&leaf),
        ],
    ));
    assert!(v.contains(": OK"), "{v}");
    assert!(
        !run("openssl", &["verify", "-CAfile", s(&root_pem), s(&leaf)])
            .status
            .success()
    );
    pkilint_cert(&sub_pem);
    pkilint_cert(&leaf);
    let chain = d.join("chain.pem");
    ok(lockbox(&[
        "ca",
        "cert",
        "--chain",
        "--out",
        s(&chain),
        "--home",
        s(&sub),
    ]));
    assert_eq!(
        std::fs::read_to_string(&chain)
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    let crl = d.join("sub.crl");
    ok(lockbox(&[
        "crl",
        "publish",
        "--out",
        s(&crl),
        "--home",
        s(&sub),
    ]));
    pkilint_crl(&crl);
}

#[test]
fn bad_input_gets_clear_errors_exit_codes_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = init_root(d);
    // `lockbox submit REQ --template User` to this CA
    let submit_user =
        |req: &Path| lockbox(&["submit", s(req), "--template", "User", "--home", s(&home)]);
    let small = openssl_csr(d, "small", "/CN=Small", &["-newkey", "rsa:1024"]);
    let out = submit_user(&small);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("0x80094811") && err.contains("minimum size"),
        "{err}"
    );

    let good = openssl_csr(d, "good", "/CN=Good", &["-newkey", "rsa:2048"]);
    let unknown = lockbox(&["submit", s(&good), "--template", "Nope", "--home", s(&home)]);
    assert_eq!(unknown.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("0x80094800"));
    let json_err = lockbox(&[
        "submit",
        s(&good),
        "--template",
        "Nope",
        "--home",
        s(&home),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json_err.stdout).unwrap();
    assert_eq!(v["error"]["name"], "CERTSRV_E_UNSUPPORTED_CERT_TYPE");

    let garbage = d.join("garbage.req");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE REQUEST-----\nnot base64 at all\n-----END CERTIFICATE REQUEST-----\n").unwrap();
    assert_eq!(submit_user(&garbage).status.code(), Some(3));

    let der = d.join("good.der");
    ok(run(
        "openssl",
        &["req", "-in", s(&good), "-outform", "DER", "-out", s(&der)],
    ));
    let mut bytes = std::fs::read(&der).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 0x40;
    let tampered = d.join("tampered.der");
    std::fs::write(&tampered, &bytes).unwrap();
    let out = submit_user(&tampered);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("signature"));
    std::fs::write(&tampered, &bytes[..n / 2]).unwrap();
    assert_eq!(submit_user(&tampered).status.code(), Some(3));

    let big = d.join("big.req");
    std::fs::write(&big, vec![b'A'; 400_000]).unwrap();
    let out = submit_user(&big);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("limit"));

    assert!(
        lockbox(&["submit", s(&d.join("missing.req")), "--home", s(&home)])
            .status
            .code()
            == Some(1)
    );
    assert_eq!(row_count(&home), 0, "refusals left no rows");
    // DER input of the good request is accepted
    ok(submit_user(&der));
    assert_eq!(row_count(&home), 1);
}

#[test]
fn global_options_work_before_and_after_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let home = init_root(dir.path());
    let a = ok(lockbox(&["ca", "cert", "--home", s(&home)]));
    let b = ok(lockbox(&["--home", s(&home), "ca", "cert"]));
    assert_eq!(a, b);
    let c = ok(lockbox_cmd(&["ca", "cert"])
        .env("LOCKBOX_HOME", &home)
        .output()
        .unwrap());
    assert_eq!(a, c);
    let t: serde_json::Value = serde_json::from_str(&ok(lockbox(&[
        "ca",
        "templates",
        "list",
        "--json",
        "--home",
        s(&home),
    ])))
    .unwrap();
    assert!(t.as_array().unwrap().iter().any(|x| x == "ExchangeUser"));
    let t2: serde_json::Value = serde_json::from_str(&ok(lockbox(&[
        "--json",
        "--home",
        s(&home),
        "ca",
        "templates",
        "list",
    ])))
    .unwrap();
    assert_eq!(t, t2);
    assert!(!lockbox(&["ca", "cert"]).status.success(), "no home given");
}

#[test]
fn approval_workflow_and_template_editing_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = init_root(d);
    let h = s(&home);
    ok(lockbox(&[
        "template",
        "duplicate",
        "User",
        "ApprovedUser",
        "--home",
        h,
    ]));
    ok(lockbox(&[
        "template",
        "set",
        "ApprovedUser",
        "requires_approval=true",
        "validity=2y",
        "--home",
        h,
    ]));
    let shown: serde_json::Value = serde_json::from_str(&ok(lockbox(&[
        "template",
        "show",
        "ApprovedUser",
        "--json",
        "--home",
        h,
    ])))
    .unwrap();
    assert_eq!(shown["requires_approval"], true);
    assert_eq!(shown["schema_version"], 2);
    assert!(
        !lockbox(&["template", "set", "User", "validity=3y", "--home", h])
            .status
            .success(),
        "v1 is fixed"
    );
    ok(lockbox(&[
        "ca",
        "templates",
        "add",
        "ApprovedUser",
        "--home",
        h,
    ]));
    let csr = openssl_csr(d, "erin", "/CN=Erin", &["-newkey", "rsa:2048"]);
    let out = ok(lockbox(&[
        "submit",
        s(&csr),
        "--template",
        "ApprovedUser",
        "--home",
        h,
    ]));
    assert!(out.contains("pending"), "{out}");
    let pending = ok(lockbox(&["pending", "list", "--home", h]));
    assert!(
        pending.contains("ApprovedUser") && pending.contains("1 row(s)"),
        "{pending}"
    );
    assert_eq!(
        lockbox(&["request", "retrieve", "1", "--home", h])
            .status
            .code(),
        Some(5)
    );
    let cert = d.join("erin.pem");
    ok(lockbox(&["issue", "1", "--out", s(&cert), "--home", h]));
    let again = d.join("erin2.pem");
    ok(lockbox(&[
        "request",
        "retrieve",
        "1",
        "--out",
        s(&again),
        "--home",
        h,
    ]));
    assert_eq!(
        std::fs::read(&cert).unwrap(),
        std::fs::read(&again).unwrap()
    );
    let text = ok(run(
        "openssl",
        &["x509", "-in", s(&cert), "-noout", "-text"],
    ));
    assert!(
        text.contains("1.3.6.1.4.1.311.21.7"),
        "v2 template extension present"
    );
    pkilint_cert(&cert);
    ok(lockbox(&[
        "submit",
        s(&csr),
        "--template",
        "ApprovedUser",
        "--home",
        h,
    ]));
    ok(lockbox(&["deny", "2", "--home", h]));
    assert_eq!(lockbox(&["issue", "2", "--home", h]).status.code(), Some(5));
    assert_eq!(
        lockbox(&["issue", "99", "--home", h]).status.code(),
        Some(4)
    );
}

/// Issue 12, item 10: a CSR with `emailAddress` in the subject and no SAN is
/// issued with the address in the SAN (RFC 5280 4.2.1.6); and item 2: names
/// built from a principal record (`--on-behalf-of`) lint clean too.
#[test]
fn subject_email_is_copied_to_the_san_and_record_names_lint_clean() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = init_root(d);
    let h = s(&home);
    let csr = openssl_csr(
        d,
        "eve",
        "/CN=Eve Example/emailAddress=eve@contoso.test",
        &["-newkey", "rsa:2048"],
    );
    let eve = d.join("eve.pem");
    ok(lockbox(&[
        "submit",
        s(&csr),
        "--template",
        "User",
        "--out",
        s(&eve),
        "--home",
        h,
    ]));
    let lint = run("lint_pkix_cert", &["lint", s(&eve)]);
    let findings = String::from_utf8_lossy(&lint.stdout);
    assert!(
        !findings.contains("pkix.subject_email_address_not_in_san"),
        "{findings}"
    );
    let text = ok(run("openssl", &["x509", "-in", s(&eve), "-noout", "-text"]));
    assert!(text.contains("email:eve@contoso.test"), "{text}");
    pkilint_cert(&eve);

    // the local administrator enrolls for a principal: the names come from its record
    ok(lockbox(&[
        "--home",
        h,
        "principal",
        "add",
        "alice",
        "--upn",
        "alice@contoso.test",
        "--email",
        "alice.example@contoso.test",
    ]));
    let other = openssl_csr(
        d,
        "other",
        "/CN=Mallory/O=Elsewhere",
        &["-newkey", "rsa:2048"],
    );
    let alice = d.join("alice.pem");
    let out = ok(lockbox(&[
        "submit",
        s(&other),
        "--template",
        "User",
        "--on-behalf-of",
        "alice",
        "--out",
        s(&alice),
        "--home",
        h,
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["disposition"], "issued", "{v}");
    let text = ok(run(
        "openssl",
        &["x509", "-in", s(&alice), "-noout", "-text"],
    ));
    assert!(
        text.contains("Subject: CN = alice") && !text.contains("Mallory"),
        "{text}"
    );
    assert!(text.contains("email:alice.example@contoso.test"), "{text}");
    pkilint_cert(&alice);
    let row: serde_json::Value = serde_json::from_str(&ok(lockbox(&[
        "view",
        "--home",
        h,
        "--json",
        "--restrict",
        "CommonName=alice",
        "--out",
        "RequestID,RequesterName",
    ])))
    .unwrap();
    assert_eq!(row[0]["RequesterName"], "alice", "{row}");
}
