//! CA certificate renewal, with the same key and with a new one, judged by
//! software nobody here wrote: `openssl verify` (with the cross-certificates),
//! `openssl crl`, `openssl ocsp`, `curl` on certsrv, pkilint; a key archived
//! before the renewal is recovered after it and its blob verifies against
//! either CA certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::Path;

mod common;
use common::*;

fn serial_of(pem: &Path) -> String {
    let s = ok(openssl(&["x509", "-in", s(pem), "-noout", "-serial"]));
    s.trim().trim_start_matches("serial=").to_ascii_lowercase()
}

fn der_of(pem: &Path) -> Vec<u8> {
    let out = openssl(&["x509", "-in", s(pem), "-outform", "DER"]);
    assert!(out.status.success());
    out.stdout
}

fn get(url: &str, out: &Path) -> String {
    ok(tool(
        "curl",
        &["-s", "-o", s(out), "-w", "%{http_code}", url],
    ))
}

fn ocsp(issuer: &Path, cert: &Path, url: &str) -> String {
    let out = openssl(&[
        "ocsp",
        "-issuer",
        s(issuer),
        "-cert",
        s(cert),
        "-url",
        url,
        "-CAfile",
        s(issuer),
    ]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_renewal_with_a_new_key_keeps_everything_signed_before_it_valid() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let public = free_listen_address();
    let cdp = format!("http://{public}/crl/ca.crl");
    let ocsp_url = format!("http://{public}/ocsp");
    let home = ca_with_one_kra_init(d, &["--cdp-url", &cdp, "--ocsp-url", &ocsp_url]);
    let kra_pfx = d.join("kra.pfx");
    let ca0 = d.join("ca0.pem");
    ok(lb(&home, &["ca", "cert", "--out", s(&ca0)]));
    let (alice, _alice_key, alice_serial) = enroll(&home, d, "alice", "Alice Example");
    let (bob, _, bob_serial) = enroll(&home, d, "bob", "Bob Example");
    ok(lb(
        &home,
        &["revoke", &bob_serial, "--reason", "keyCompromise"],
    ));

    let ca1 = d.join("ca1.pem");
    let out = ok(lb(
        &home,
        &[
            "ca",
            "renew",
            "--new-key",
            "--validity",
            "5y",
            "--out",
            s(&ca1),
        ],
    ));
    assert!(out.contains("renewal 1 (key 1, new key)"), "{out}");
    pkilint_cert(&ca1);
    // heads the old key signed still verify
    let audit = ok(lb(&home, &["audit", "verify"]));
    assert!(!audit.to_lowercase().contains("bad signature"), "{audit}");
    // every generation stays available
    let again0 = d.join("again0.pem");
    ok(lb(
        &home,
        &["ca", "cert", "--renewal", "0", "--out", s(&again0)],
    ));
    assert_eq!(der_of(&again0), der_of(&ca0));
    let again1 = d.join("again1.pem");
    ok(lb(
        &home,
        &["ca", "cert", "--renewal", "1", "--out", s(&again1)],
    ));
    assert_eq!(der_of(&again1), der_of(&ca1));
    assert!(!lb(&home, &["ca", "cert", "--renewal", "2"])
        .status
        .success());
    // the cross-certificates: the old key certifies the new one and back
    let cross = d.join("cross.pem");
    ok(lb(&home, &["ca", "cert", "--cross", "--out", s(&cross)]));
    let cross_text = std::fs::read_to_string(&cross).unwrap();
    let parts: Vec<&str> = cross_text
        .split_inclusive("-----END CERTIFICATE-----\n")
        .collect();
    assert_eq!(parts.len(), 2, "{cross_text}");
    let (old_to_new, new_to_old) = (d.join("cross01.pem"), d.join("cross10.pem"));
    std::fs::write(&old_to_new, parts[0]).unwrap();
    std::fs::write(&new_to_old, parts[1]).unwrap();
    assert!(ok(openssl(&["verify", "-CAfile", s(&ca0), s(&old_to_new)])).contains(": OK"));
    assert!(ok(openssl(&["verify", "-CAfile", s(&ca1), s(&new_to_old)])).contains(": OK"));

    // new certificates come from the new key, with its CRL name and full validity
    let (carol, _, _) = enroll(&home, d, "carol", "Carol Example");
    assert!(ok(openssl(&["verify", "-CAfile", s(&ca1), s(&carol)])).contains(": OK"));
    let cdp_text = ok(openssl(&[
        "x509",
        "-in",
        s(&carol),
        "-noout",
        "-ext",
        "crlDistributionPoints",
    ]));
    assert!(
        cdp_text.contains(&format!("http://{public}/crl/ca(1).crl")),
        "{cdp_text}"
    );
    // a relying party that trusts only the old certificate reaches it through the cross-certificate
    assert!(ok(openssl(&[
        "verify",
        "-CAfile",
        s(&ca0),
        "-untrusted",
        s(&old_to_new),
        s(&carol)
    ]))
    .contains(": OK"));
    // what the old key issued still verifies with the old certificate
    assert!(ok(openssl(&["verify", "-CAfile", s(&ca0), s(&alice)])).contains(": OK"));

    // the key archived before the renewal is recovered after it; the blob
    // (signed by the new key) verifies against either CA certificate
    let blob = d.join("alice.rec");
    ok(lb(&home, &["getkey", &alice_serial, s(&blob)]));
    for (anchor, out) in [(&ca0, "alice-a.p12"), (&ca1, "alice-b.p12")] {
        let p12 = d.join(out);
        ok(recoverkey(&blob, &p12, &kra_pfx, "kra", "pw", anchor));
        let keys = pkcs12_keys(&p12, "pw", None);
        assert_eq!(keys.matches("BEGIN PRIVATE KEY").count(), 1);
    }
    // the exchange certificate now comes from the new key
    let xchg = d.join("xchg.pem");
    ok(lb(&home, &["ca", "cert", "--exchange", "--out", s(&xchg)]));
    assert!(ok(openssl(&[
        "verify",
        "-CAfile",
        s(&ca1),
        "-purpose",
        "any",
        s(&xchg)
    ]))
    .contains(": OK"));

    // served: the old key's CRL lists Bob and verifies with the old
    // certificate; the new key's CRL verifies with the new one; OCSP answers both
    let listen = free_listen_address();
    let _server = Server::start_with(&home, &listen, &["--http", "--public-http", &public]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let crl0 = d.join("ca0.crl");
    while get(&format!("http://{public}/crl/ca.crl"), &crl0) != "200" {
        assert!(std::time::Instant::now() < deadline, "no CRL served");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let v = openssl_crl_check(&crl0, &ca0, &["-text"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    assert!(
        text.contains("verify OK") && text.contains(&bob_serial.to_ascii_uppercase()),
        "{text}"
    );
    pkilint_crl(&crl0);
    let crl1 = d.join("ca1.crl");
    assert_eq!(get(&format!("http://{public}/crl/ca(1).crl"), &crl1), "200");
    let v = openssl_crl_check(&crl1, &ca1, &[]);
    assert!(
        String::from_utf8_lossy(&v.stderr).contains("verify OK"),
        "{v:?}"
    );
    assert_eq!(
        get(&format!("http://{public}/crl/ca(2).crl"), &d.join("x.crl")),
        "404"
    );
    let crl0_pem = d.join("ca0-crl.pem");
    ok(openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        s(&crl0),
        "-out",
        s(&crl0_pem),
    ]));
    let revoked = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        s(&crl0_pem),
        "-CAfile",
        s(&ca0),
        s(&bob),
    ]);
    assert!(!revoked.status.success());
    let out = ocsp(&ca0, &bob, &ocsp_url);
    assert!(
        out.contains("Response verify OK") && out.contains(": revoked"),
        "{out}"
    );
    let out = ocsp(&ca0, &alice, &ocsp_url);
    assert!(
        out.contains("Response verify OK") && out.contains(": good"),
        "{out}"
    );
    let out = ocsp(&ca1, &carol, &ocsp_url);
    assert!(
        out.contains("Response verify OK") && out.contains(": good"),
        "{out}"
    );
    // each CA key answers through its own responder certificate
    for (pem, ca) in [("certs/ocsp.pem", &ca0), ("certs/ocsp-1.pem", &ca1)] {
        let v = ok(openssl(&["verify", "-CAfile", s(ca), s(&home.join(pem))]));
        assert!(v.contains(": OK"), "{pem}: {v}");
    }
}

#[test]
fn a_renewal_with_the_same_key_lifts_the_cap_on_validity_and_certsrv_serves_each_generation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("ca");
    ok(lockbox(&[
        "init",
        "--home",
        s(&home),
        "--name",
        "Short CA",
        "--validity",
        "30d",
    ]));
    let ca0 = d.join("ca0.pem");
    ok(lb(&home, &["ca", "cert", "--out", s(&ca0)]));
    let csr = openssl_csr(d, "u1", "/CN=User One", &["-newkey", "rsa:2048"]);
    let u1 = d.join("u1.pem");
    ok(lb(
        &home,
        &["submit", s(&csr), "--template", "User", "--out", s(&u1)],
    ));
    let end = |p: &Path| ok(openssl(&["x509", "-in", s(p), "-noout", "-enddate"]));
    assert_eq!(end(&u1), end(&ca0), "capped at the CA certificate's end");

    let out = ok(lb(&home, &["ca", "renew", "--validity", "10y"]));
    assert!(out.contains("renewal 1 (key 0)"), "{out}");
    let ca1 = d.join("ca1.pem");
    ok(lb(&home, &["ca", "cert", "--out", s(&ca1)]));
    assert_ne!(serial_of(&ca0), serial_of(&ca1));
    let csr2 = openssl_csr(d, "u2", "/CN=User Two", &["-newkey", "rsa:2048"]);
    let u2 = d.join("u2.pem");
    ok(lb(
        &home,
        &["submit", s(&csr2), "--template", "User", "--out", s(&u2)],
    ));
    assert_ne!(end(&u2), end(&ca1));
    assert_ne!(end(&u2), end(&ca0), "full template validity after renewal");
    // same key: both certificates verify what either issued
    for anchor in [&ca0, &ca1] {
        for cert in [&u1, &u2] {
            assert!(ok(openssl(&["verify", "-CAfile", s(anchor), s(cert)])).contains(": OK"));
        }
    }
    // --key without --new-key is refused
    assert!(!lb(&home, &["ca", "renew", "--key", "p256"])
        .status
        .success());

    // certsrv over plain HTTP, as a principal with an API token
    let listen = free_listen_address();
    let _server = Server::start_with(&home, &listen, &["--http"]);
    let page = d.join("certcarc.html");
    let token = principal_with_token(&home, "reader");
    let auth = format!("Authorization: Bearer {token}");
    let fetch = |path: &str, out: &Path| -> String {
        ok(tool(
            "curl",
            &[
                "-s",
                "-H",
                &auth,
                "-o",
                s(out),
                "-w",
                "%{http_code}",
                &format!("http://{listen}{path}"),
            ],
        ))
    };
    assert_eq!(fetch("/certsrv/certcarc.asp", &page), "200");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("var nRenewals=1;"), "{html}");
    for (n, pem) in [(0, &ca0), (1, &ca1)] {
        let got = d.join(format!("r{n}.cer"));
        assert_eq!(
            fetch(
                &format!("/certsrv/certnew.cer?ReqID=CACert&Renewal={n}&Enc=bin"),
                &got
            ),
            "200"
        );
        assert_eq!(std::fs::read(&got).unwrap(), der_of(pem), "renewal {n}");
        let p7b = d.join(format!("r{n}.p7b"));
        assert_eq!(
            fetch(
                &format!("/certsrv/certnew.p7b?ReqID=CACert&Renewal={n}&Enc=bin"),
                &p7b
            ),
            "200"
        );
        let certs = ok(openssl(&[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            s(&p7b),
            "-print_certs",
            "-noout",
        ]));
        assert!(certs.contains("Short CA"), "{certs}");
    }
    assert_eq!(
        fetch(
            "/certsrv/certnew.cer?ReqID=CACert&Renewal=2&Enc=bin",
            &d.join("x.cer")
        ),
        "404"
    );
}

#[test]
fn a_subordinate_ca_renews_through_its_parent_with_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = d.join("root");
    ok(lockbox(&[
        "init",
        "--home",
        s(&root),
        "--name",
        "Parent Root",
    ]));
    let root_pem = d.join("root.pem");
    ok(lb(&root, &["ca", "cert", "--out", s(&root_pem)]));
    let sub = d.join("sub");
    let req1 = d.join("sub1.req");
    ok(lockbox(&[
        "init",
        "--home",
        s(&sub),
        "--name",
        "Child CA",
        "--key",
        "p256",
        "--subordinate",
        "--csr-out",
        s(&req1),
    ]));
    let sub1 = d.join("sub1.pem");
    ok(lb(
        &root,
        &["submit", s(&req1), "--template", "SubCA", "--out", s(&sub1)],
    ));
    ok(lb(
        &sub,
        &["ca", "install", s(&sub1), "--chain", s(&root_pem)],
    ));
    let csr = openssl_csr(d, "early", "/CN=Early", &["-newkey", "rsa:2048"]);
    let early = d.join("early.pem");
    ok(lb(
        &sub,
        &["submit", s(&csr), "--template", "User", "--out", s(&early)],
    ));

    // a root-style renewal is refused; the request goes to the parent
    assert!(!lb(&sub, &["ca", "renew", "--new-key"]).status.success());
    let req2 = d.join("sub2.req");
    let out = ok(lb(
        &sub,
        &["ca", "renew", "--new-key", "--csr-out", s(&req2)],
    ));
    assert!(out.contains("Renewal request written"), "{out}");
    ok(openssl(&["req", "-in", s(&req2), "-verify", "-noout"]));
    // meanwhile the CA keeps issuing with its current certificate
    let csr_mid = openssl_csr(d, "mid", "/CN=Middle", &["-newkey", "rsa:2048"]);
    let mid = d.join("mid.pem");
    ok(lb(
        &sub,
        &[
            "submit",
            s(&csr_mid),
            "--template",
            "User",
            "--out",
            s(&mid),
        ],
    ));
    let verify = |ca: &Path, cert: &Path| {
        openssl(&[
            "verify",
            "-CAfile",
            s(&root_pem),
            "-untrusted",
            s(ca),
            s(cert),
        ])
        .status
        .success()
    };
    assert!(verify(&sub1, &mid));
    // a second request while one is pending is refused
    assert!(
        !lb(&sub, &["ca", "renew", "--csr-out", s(&d.join("x.req"))])
            .status
            .success()
    );

    let sub2 = d.join("sub2.pem");
    ok(lb(
        &root,
        &["submit", s(&req2), "--template", "SubCA", "--out", s(&sub2)],
    ));
    // the first certificate again is not the pending key's
    assert!(
        !lb(&sub, &["ca", "install", s(&sub1), "--chain", s(&root_pem)])
            .status
            .success()
    );
    let out = ok(lb(
        &sub,
        &["ca", "install", s(&sub2), "--chain", s(&root_pem)],
    ));
    assert!(out.contains("renewal 1, key 1"), "{out}");
    let csr_late = openssl_csr(d, "late", "/CN=Late", &["-newkey", "rsa:2048"]);
    let late = d.join("late.pem");
    ok(lb(
        &sub,
        &[
            "submit",
            s(&csr_late),
            "--template",
            "User",
            "--out",
            s(&late),
        ],
    ));
    assert!(verify(&sub2, &late));
    assert!(!verify(&sub1, &late));
    assert!(verify(&sub1, &early), "what the old key issued stays valid");
    let got0 = d.join("got0.pem");
    ok(lb(
        &sub,
        &["ca", "cert", "--renewal", "0", "--out", s(&got0)],
    ));
    assert_eq!(der_of(&got0), der_of(&sub1));
    let chain = ok(lb(&sub, &["ca", "cert", "--chain"]));
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "{chain}");
    // both keys keep their CRLs
    let crl0 = d.join("sub0.crl");
    ok(lb(
        &sub,
        &["crl", "publish", "--key-index", "0", "--out", s(&crl0)],
    ));
    let v = openssl_crl_check(&crl0, &sub1, &[]);
    assert!(
        String::from_utf8_lossy(&v.stderr).contains("verify OK"),
        "{v:?}"
    );
    let crl1 = d.join("sub1.crl");
    ok(lb(&sub, &["crl", "publish", "--out", s(&crl1)]));
    let v = openssl_crl_check(&crl1, &sub2, &[]);
    assert!(
        String::from_utf8_lossy(&v.stderr).contains("verify OK"),
        "{v:?}"
    );
    pkilint_crl(&crl1);
}
