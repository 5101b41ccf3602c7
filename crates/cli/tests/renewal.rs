//! User renewal and re-key keeping the key history, judged by software
//! nobody here wrote: renewals signed with `openssl cms -sign` (the PKCS#7
//! form Windows sends), certificates read by `openssl x509`, recovered keys
//! opened by `openssl pkcs12` and a message encrypted with `openssl cms` to
//! the oldest certificate decrypted with its recovered key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::*;

/// `request new --archive --renew OLD --renew-key OLDKEY` then `submit`:
/// a re-key with archival signed with the old key; returns (cert, key, serial).
fn rekey(
    home: &Path,
    d: &Path,
    stem: &str,
    old: &Path,
    old_key: &Path,
) -> (PathBuf, PathBuf, String) {
    let req = d.join(format!("{stem}.req"));
    let key = d.join(format!("{stem}.key"));
    let pem = d.join(format!("{stem}.pem"));
    ok(lb(
        home,
        &[
            "request",
            "new",
            "--template",
            "ExchangeUser",
            "--archive",
            "--renew",
            s(old),
            "--renew-key",
            s(old_key),
            "--out",
            s(&req),
            "--key-out",
            s(&key),
        ],
    ));
    let out: serde_json::Value = serde_json::from_str(&ok(lb(
        home,
        &["submit", s(&req), "--out", s(&pem), "--json"],
    )))
    .unwrap();
    assert_eq!(out["archived"], true, "{out}");
    (pem, key, out["serial"].as_str().unwrap().to_string())
}

fn subject_of(pem: &Path) -> String {
    ok(openssl(&[
        "x509",
        "-in",
        s(pem),
        "-noout",
        "-subject",
        "-nameopt",
        "RFC2253",
    ]))
}

/// A request ID cell as text ("" when empty), whether JSON gives a number or a string.
fn id(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(t) => t.clone(),
        other => other.to_string(),
    }
}

fn row(home: &Path, serial: &str) -> serde_json::Value {
    let rows: serde_json::Value = serde_json::from_str(&ok(lb(
        home,
        &[
            "view",
            "--json",
            "--restrict",
            &format!("SerialNumber={serial}"),
            "--out",
            "RequestID,Disposition,CertificateTemplate,RenewalOf,SupersededBy,ArchivedKey",
        ],
    )))
    .unwrap();
    rows[0].clone()
}

#[test]
fn a_user_who_renewed_twice_has_three_keys_in_the_history_and_the_script_recovers_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = ca_with_one_kra(d);
    let kra_pfx = d.join("kra.pfx");
    let (c1, k1, s1) = enroll(&home, d, "alice1", "Alice Example");
    let (c2, k2, s2) = rekey(&home, d, "alice2", &c1, &k1);
    let (c3, _k3, s3) = rekey(&home, d, "alice3", &c2, &k2);
    assert_eq!(subject_of(&c1), subject_of(&c3), "the subject is kept");
    // view marks the superseded certificates and links the renewals
    let (r1, r2, r3) = (row(&home, &s1), row(&home, &s2), row(&home, &s3));
    assert_eq!(id(&r1["SupersededBy"]), id(&r2["RequestID"]), "{r1}");
    assert_eq!(id(&r2["RenewalOf"]), id(&r1["RequestID"]), "{r2}");
    assert_eq!(id(&r2["SupersededBy"]), id(&r3["RequestID"]), "{r2}");
    assert_eq!(id(&r3["SupersededBy"]), "", "{r3}");
    assert_eq!(r3["CertificateTemplate"], "ExchangeUser");
    // a certificate is renewed once
    let again = lb(
        &home,
        &[
            "request",
            "new",
            "--template",
            "ExchangeUser",
            "--archive",
            "--renew",
            s(&c1),
            "--renew-key",
            s(&k1),
            "--out",
            s(&d.join("x.req")),
            "--key-out",
            s(&d.join("x.key")),
        ],
    );
    ok(again);
    let refused = lb(&home, &["submit", s(&d.join("x.req"))]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already renewed"));

    // the key history: three certificates, three archived keys, from any of its serials
    for token in ["Alice Example", s1.as_str(), s3.as_str()] {
        let h: serde_json::Value =
            serde_json::from_str(&ok(lb(&home, &["getkey", "--history", token, "--json"])))
                .unwrap();
        let serials: Vec<&str> = h
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["serial"].as_str().unwrap())
            .collect();
        assert_eq!(
            serials,
            vec![s1.as_str(), s2.as_str(), s3.as_str()],
            "{token}: {h}"
        );
        assert!(h.as_array().unwrap().iter().all(|e| e["archived"] == true));
    }
    let text = ok(lb(&home, &["getkey", "--history", &s1]));
    assert!(
        text.contains("3 certificate(s), 3 archived key(s)"),
        "{text}"
    );
    assert!(text.contains("superseded by request"), "{text}");

    // the batch script recovers all three into one PKCS#12
    let script = ok(lb(&home, &["getkey", "--history", "--script", &s1]));
    std::fs::write(d.join("recover.sh"), &script).unwrap();
    let run = Command::new("sh")
        .arg(d.join("recover.sh"))
        .current_dir(d)
        .env("KRA_PFX", &kra_pfx)
        .env("KRA_PASSWORD", "kra")
        .env("LOCKBOX", env!("CARGO_BIN_EXE_lockbox"))
        .env("LOCKBOX_HOME", &home)
        .output()
        .unwrap();
    let text = ok(run);
    let password = text.trim().rsplit(' ').next().unwrap().to_string();
    let p12 = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "p12"))
        .expect("the script's PKCS#12");
    let keys_pem = d.join("history-keys.pem");
    pkcs12_keys(&p12, &password, Some(&keys_pem));
    let keys = std::fs::read_to_string(&keys_pem).unwrap();
    assert_eq!(
        keys.matches("BEGIN PRIVATE KEY").count(),
        3,
        "three keys recovered"
    );

    // a message encrypted to the oldest certificate opens with a recovered key
    let msg = d.join("msg.txt");
    std::fs::write(&msg, b"encrypted to Alice's first key").unwrap();
    let enc = d.join("msg.p7m");
    ok(openssl(&[
        "cms",
        "-encrypt",
        "-aes256",
        "-in",
        s(&msg),
        "-out",
        s(&enc),
        s(&c1),
    ]));
    let dec = d.join("msg.out");
    ok(openssl(&[
        "cms",
        "-decrypt",
        "-in",
        s(&enc),
        "-recip",
        s(&c1),
        "-inkey",
        s(&keys_pem),
        "-out",
        s(&dec),
    ]));
    assert_eq!(std::fs::read(&dec).unwrap(), std::fs::read(&msg).unwrap());
}

#[test]
fn a_pkcs7_renewal_from_openssl_keeps_names_and_template_and_refuses_what_it_must() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = p256_ca(d, "Renewal CA");
    let csr1 = openssl_csr(
        d,
        "bob1",
        "/CN=Bob Builder/O=Contoso",
        &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-addext",
            "subjectAltName=email:bob@contoso.test",
        ],
    );
    let c1 = d.join("bob1.pem");
    ok(lb(
        &home,
        &["submit", s(&csr1), "--template", "User", "--out", s(&c1)],
    ));
    // the new request names someone else: the CA keeps the old names
    let csr2 = d.join("bob2.csr.der");
    ok(openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        s(&d.join("bob2.key")),
        "-subj",
        "/CN=Mallory",
        "-outform",
        "DER",
        "-out",
        s(&csr2),
    ]));
    let p7 = d.join("renew.p7b");
    ok(openssl(&[
        "cms",
        "-sign",
        "-signer",
        s(&c1),
        "-inkey",
        s(&d.join("bob1.key")),
        "-in",
        s(&csr2),
        "-binary",
        "-nodetach",
        "-outform",
        "DER",
        "-out",
        s(&p7),
    ]));
    // another template than the renewed certificate's is refused
    let wrong = lb(&home, &["submit", s(&p7), "--template", "WebServer"]);
    assert!(!wrong.status.success());
    let c2 = d.join("bob2.pem");
    ok(lb(&home, &["submit", s(&p7), "--out", s(&c2)]));
    assert_eq!(subject_of(&c1), subject_of(&c2));
    let san = ok(openssl(&[
        "x509",
        "-in",
        s(&c2),
        "-noout",
        "-ext",
        "subjectAltName",
    ]));
    assert!(san.contains("email:bob@contoso.test"), "{san}");
    let ca_pem = d.join("ca.pem");
    ok(lb(&home, &["ca", "cert", "--out", s(&ca_pem)]));
    assert!(ok(openssl(&["verify", "-CAfile", s(&ca_pem), s(&c2)])).contains(": OK"));
    let s2 = ok(openssl(&["x509", "-in", s(&c2), "-noout", "-serial"]));
    let s2 = s2.trim().trim_start_matches("serial=").to_ascii_lowercase();
    let r2 = row(&home, &s2);
    assert_eq!(r2["CertificateTemplate"], "User", "{r2}");
    assert_eq!(id(&r2["RenewalOf"]), "1", "{r2}");

    // a revoked certificate renews nothing
    ok(lb(&home, &["revoke", &s2, "--reason", "keyCompromise"]));
    let csr3 = d.join("bob3.csr.der");
    ok(openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        s(&d.join("bob3.key")),
        "-subj",
        "/CN=Bob",
        "-outform",
        "DER",
        "-out",
        s(&csr3),
    ]));
    let p7b = d.join("renew3.p7b");
    ok(openssl(&[
        "cms",
        "-sign",
        "-signer",
        s(&c2),
        "-inkey",
        s(&d.join("bob2.key")),
        "-in",
        s(&csr3),
        "-binary",
        "-nodetach",
        "-noattr",
        "-outform",
        "DER",
        "-out",
        s(&p7b),
    ]));
    let revoked = lb(&home, &["submit", s(&p7b)]);
    assert!(!revoked.status.success());
    assert!(
        String::from_utf8_lossy(&revoked.stderr).contains("CRYPT_E_REVOKED"),
        "{revoked:?}"
    );

    // a signer certificate this CA did not issue is refused
    let stranger_key = d.join("stranger.key");
    let stranger = d.join("stranger.pem");
    ok(openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        s(&stranger_key),
        "-subj",
        "/CN=Renewal CA",
        "-days",
        "2",
        "-out",
        s(&stranger),
    ]));
    let p7s = d.join("stranger.p7b");
    ok(openssl(&[
        "cms",
        "-sign",
        "-signer",
        s(&stranger),
        "-inkey",
        s(&stranger_key),
        "-in",
        s(&csr3),
        "-binary",
        "-nodetach",
        "-outform",
        "DER",
        "-out",
        s(&p7s),
    ]));
    let foreign = lb(&home, &["submit", s(&p7s), "--template", "User"]);
    assert!(!foreign.status.success());
    assert!(
        String::from_utf8_lossy(&foreign.stderr).contains("NTE_BAD_SIGNATURE"),
        "{foreign:?}"
    );
    // nothing was recorded for the refusals
    let rows: serde_json::Value =
        serde_json::from_str(&ok(lb(&home, &["view", "--json"]))).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
}
