//! EST (RFC 7030) driven by `curl` and `openssl` the way RFC 7030's
//! examples do: base64 PKCS#10 in, base64 certs-only CMS out, read by
//! `openssl pkcs7`; HTTP Basic for enrollment and the TLS client
//! certificate for re-enrollment.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};

mod common;
use common::*;

/// `curl` against the HTTPS service; returns (status, body file).
fn curl(d: &Path, name: &str, args: &[&str]) -> (String, PathBuf) {
    let out = d.join(name);
    let mut a = vec!["-s", "-o", s(&out), "-w", "%{http_code}"];
    a.extend_from_slice(args);
    (ok(tool("curl", &a)), out)
}

/// A base64 file's content decoded to DER (RFC 7030 bodies are base64).
fn debase64(b64: &Path, out: &Path) {
    let decoded = tool("base64", &["-d", s(b64)]);
    assert!(decoded.status.success(), "{decoded:?}");
    std::fs::write(out, decoded.stdout).unwrap();
}

/// A base64 PKCS#10 for `subj` with a new RSA key (`d/NAME.key`).
fn csr_b64(d: &Path, name: &str, subj: &str) -> PathBuf {
    let der = d.join(format!("{name}.csr.der"));
    ok(openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        s(&d.join(format!("{name}.key"))),
        "-subj",
        subj,
        "-outform",
        "DER",
        "-out",
        s(&der),
    ]));
    let b64 = d.join(format!("{name}.b64"));
    let enc = tool("base64", &[s(&der)]);
    std::fs::write(&b64, enc.stdout).unwrap();
    b64
}

/// The certificates of a base64 certs-only CMS, as `openssl pkcs7 -print_certs` PEM.
fn certs_of(d: &Path, b64: &Path, out: &str) -> PathBuf {
    let der = d.join(format!("{out}.p7"));
    debase64(b64, &der);
    let pem = d.join(format!("{out}.pem"));
    ok(openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        s(&der),
        "-print_certs",
        "-out",
        s(&pem),
    ]));
    pem
}

#[test]
fn est_enrolls_and_reenrolls_with_curl_and_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("ca");
    ok(lockbox(&[
        "init",
        "--home",
        s(&home),
        "--name",
        "EST Test CA",
    ]));
    let ca_pem = d.join("ca.pem");
    ok(lb(&home, &["ca", "cert", "--out", s(&ca_pem)]));
    let pw = d.join("alice.pw");
    std::fs::write(&pw, "correct horse battery\n").unwrap();
    ok(lb(
        &home,
        &[
            "principal",
            "add",
            "alice",
            "--upn",
            "alice@contoso.test",
            "--password-file",
            s(&pw),
        ],
    ));
    let listen = free_listen_address();
    let _server = Server::start(&home, &listen);
    let base = format!("https://{listen}/.well-known/est");
    let tls = ["--cacert", s(&ca_pem)];

    // cacerts: the CA certificate, base64 certs-only
    let mut args = tls.to_vec();
    let url = format!("{base}/cacerts");
    args.push(&url);
    let (status, body) = curl(d, "cacerts.b64", &args);
    assert_eq!(status, "200");
    let cacerts = certs_of(d, &body, "cacerts");
    assert!(std::fs::read_to_string(&cacerts)
        .unwrap()
        .contains("EST Test CA"));

    // simpleenroll: Basic authentication, base64 PKCS#10
    let csr = csr_b64(d, "alice1", "/CN=ignored");
    let url = format!("{base}/simpleenroll");
    let data = format!("@{}", s(&csr));
    let post = |name: &str, url: &str, auth: &[&str], data: &str| {
        let mut a = tls.to_vec();
        a.extend_from_slice(auth);
        a.extend_from_slice(&[
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            data,
            url,
        ]);
        curl(d, name, &a)
    };
    let (status, _) = post("anon.txt", &url, &[], &data);
    assert_eq!(status, "401", "no credentials");
    let (status, _) = post("bad.txt", &url, &["-u", "alice:wrong"], &data);
    assert_eq!(status, "401", "wrong password");
    let (status, body) = post(
        "alice1.b64",
        &url,
        &["-u", "alice:correct horse battery"],
        &data,
    );
    assert_eq!(
        status,
        "200",
        "{}",
        std::fs::read_to_string(&body).unwrap_or_default()
    );
    let cert1 = certs_of(d, &body, "alice1");
    assert!(ok(openssl(&["verify", "-CAfile", s(&ca_pem), s(&cert1)])).contains(": OK"));
    let subject = ok(openssl(&["x509", "-in", s(&cert1), "-noout", "-subject"]));
    assert!(
        subject.contains("alice"),
        "names from the principal record: {subject}"
    );
    // a label names the template; an unknown one is refused
    let (status, _) = post(
        "label.b64",
        &format!("{base}/User/simpleenroll"),
        &["-u", "alice:correct horse battery"],
        &format!("@{}", s(&csr_b64(d, "alice2", "/CN=x"))),
    );
    assert_eq!(status, "200");
    let (status, _) = post(
        "nolabel.txt",
        &format!("{base}/NoSuchTemplate/simpleenroll"),
        &["-u", "alice:correct horse battery"],
        &data,
    );
    assert!(status.starts_with('4'), "{status}");
    // garbage is a 400, not a certificate
    let junk = d.join("junk.b64");
    std::fs::write(&junk, "bm90IGEgcmVxdWVzdA==").unwrap();
    let (status, _) = post(
        "junk.txt",
        &url,
        &["-u", "alice:correct horse battery"],
        &format!("@{}", s(&junk)),
    );
    assert_eq!(status, "400");

    // simplereenroll: with the certificate being renewed as the TLS client certificate
    ok(lb(&home, &["principal", "map-cert", "alice", s(&cert1)]));
    let re = csr_b64(d, "alice3", "/CN=ignored too");
    let reurl = format!("{base}/simplereenroll");
    let (status, _) = post(
        "re-nocert.txt",
        &reurl,
        &["-u", "alice:correct horse battery"],
        &format!("@{}", s(&re)),
    );
    assert_eq!(status, "403", "reenroll needs the TLS client certificate");
    let key1 = d.join("alice1.key");
    let (status, body) = post(
        "alice3.b64",
        &reurl,
        &["--cert", s(&cert1), "--key", s(&key1)],
        &format!("@{}", s(&re)),
    );
    assert_eq!(
        status,
        "200",
        "{}",
        std::fs::read_to_string(&body).unwrap_or_default()
    );
    let cert3 = certs_of(d, &body, "alice3");
    assert_eq!(
        ok(openssl(&["x509", "-in", s(&cert1), "-noout", "-subject"])),
        ok(openssl(&["x509", "-in", s(&cert3), "-noout", "-subject"]))
    );
    let serial1 = ok(openssl(&["x509", "-in", s(&cert1), "-noout", "-serial"]));
    let serial1 = serial1
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    let rows: serde_json::Value = serde_json::from_str(&ok(lb(
        &home,
        &[
            "view",
            "--json",
            "--restrict",
            &format!("SerialNumber={serial1}"),
            "--out",
            "SupersededBy",
        ],
    )))
    .unwrap();
    assert!(
        !rows[0]["SupersededBy"].is_null() && rows[0]["SupersededBy"] != "",
        "{rows}"
    );

    // a template that needs approval: 202 with Retry-After; the same request
    // repeated is the same request, and brings the certificate once issued
    ok(lb(
        &home,
        &["template", "duplicate", "User", "ApprovedUser"],
    ));
    ok(lb(
        &home,
        &["template", "set", "ApprovedUser", "requires_approval=true"],
    ));
    ok(lb(&home, &["ca", "templates", "add", "ApprovedUser"]));
    let waiting = format!("@{}", s(&csr_b64(d, "alice4", "/CN=x")));
    let approved_url = format!("{base}/ApprovedUser/simpleenroll");
    let alice_basic = ["-u", "alice:correct horse battery", "-D", "-"];
    for round in 0..2 {
        let (out, _) = post(
            &format!("wait{round}.txt"),
            &approved_url,
            &alice_basic,
            &waiting,
        );
        let (headers, status) = out.split_at(out.len() - 3);
        assert_eq!(status, "202", "round {round}: {out}");
        assert!(
            headers.to_ascii_lowercase().contains("retry-after: "),
            "{headers}"
        );
    }
    let pending: serde_json::Value =
        serde_json::from_str(&ok(lb(&home, &["pending", "list", "--json"]))).unwrap();
    let pending = pending.as_array().unwrap();
    assert_eq!(
        pending.len(),
        1,
        "one request however often it is repeated: {pending:?}"
    );
    ok(lb(&home, &["issue", &pending[0]["RequestID"].to_string()]));
    let (status, body) = post(
        "approved.b64",
        &approved_url,
        &["-u", "alice:correct horse battery"],
        &waiting,
    );
    assert_eq!(status, "200");
    let approved = certs_of(d, &body, "approved");
    assert!(ok(openssl(&["verify", "-CAfile", s(&ca_pem), s(&approved)])).contains(": OK"));

    // csrattrs: nothing asked for; serverkeygen: not offered yet
    let mut a = tls.to_vec();
    let u = format!("{base}/csrattrs");
    a.push(&u);
    assert_eq!(curl(d, "attrs", &a).0, "204");
    let (status, _) = post(
        "skg.txt",
        &format!("{base}/serverkeygen"),
        &["-u", "alice:correct horse battery"],
        &data,
    );
    assert_eq!(status, "501");
}
