//! Certificate status for relying parties, judged by software nobody here
//! wrote: the OCSP responder with `openssl ocsp` and `curl`, delta CRLs,
//! certificate hold and release with `openssl verify -crl_check -use_deltas`,
//! `openssl crl` and pkilint.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};

mod common;
use common::*;

/// A CA with an OCSP URL, CDP and delta CDP URLs, and one User certificate
/// issued to an `openssl req` key; returns (home, ca.pem, user.pem, serial).
fn ca_with_user(d: &Path, ocsp_listen: &str) -> (PathBuf, PathBuf, PathBuf, String) {
    let home = d.join("ca");
    let ocsp_url = format!("http://{ocsp_listen}/ocsp");
    ok(lockbox(&[
        "init",
        "--home",
        s(&home),
        "--name",
        "Status Test CA",
        "--cdp-url",
        "http://pki.example.test/crl/ca.crl",
        "--delta-cdp-url",
        "http://pki.example.test/crl/ca+.crl",
        "--ocsp-url",
        &ocsp_url,
    ]));
    let ca_pem = d.join("ca.pem");
    ok(lockbox(&[
        "--home",
        s(&home),
        "ca",
        "cert",
        "--out",
        s(&ca_pem),
    ]));
    let user = d.join("user.pem");
    let csr = openssl_csr(d, "user", "/CN=Status User", &["-newkey", "rsa:2048"]);
    ok(lockbox(&[
        "submit",
        s(&csr),
        "--template",
        "User",
        "--out",
        s(&user),
        "--home",
        s(&home),
    ]));
    let serial = ok(openssl(&["x509", "-in", s(&user), "-noout", "-serial"]));
    let serial = serial.trim().trim_start_matches("serial=").to_string();
    (home, ca_pem, user, serial)
}

/// `openssl ocsp` for `cert` against the responder; returns stdout + stderr.
fn ocsp_status(ca_pem: &Path, cert: &Path, listen: &str, extra: &[&str]) -> String {
    let url = format!("http://{listen}/ocsp");
    let mut args = vec![
        "ocsp",
        "-issuer",
        s(ca_pem),
        "-cert",
        s(cert),
        "-url",
        &url,
        "-CAfile",
        s(ca_pem),
        "-resp_text",
    ];
    args.extend_from_slice(extra);
    let out = openssl(&args);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn ocsp_answers_good_revoked_hold_and_unknown_as_openssl_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let listen = free_listen_address();
    let (home, ca_pem, user, serial) = ca_with_user(d, &listen);
    let aia = ok(openssl(&[
        "x509",
        "-in",
        s(&user),
        "-noout",
        "-ext",
        "authorityInfoAccess",
    ]));
    assert!(
        aia.contains(&format!("OCSP - URI:http://{listen}/ocsp")),
        "{aia}"
    );
    let _server = Server::start_with(&home, &listen, &["--http"]);

    // Good, signed by a delegated responder openssl accepts, nonce echoed.
    let out = ocsp_status(&ca_pem, &user, &listen, &[]);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(": good"), "{out}");
    assert!(out.contains("OCSP Nonce"), "{out}");
    assert!(out.contains("Next Update"), "{out}");

    // The responder's certificate: OCSP signing, no-check, from this CA, lint clean.
    let ocsp_cert = home.join("certs/ocsp.pem");
    let text = ok(openssl(&["x509", "-in", s(&ocsp_cert), "-noout", "-text"]));
    assert!(text.contains("OCSP Signing"), "{text}");
    assert!(text.contains("OCSP No Check"), "{text}");
    assert!(ok(openssl(&["verify", "-CAfile", s(&ca_pem), s(&ocsp_cert)])).contains(": OK"));
    pkilint_cert(&ocsp_cert);
    let mode = std::fs::metadata(home.join("keys/ocsp.key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o077,
        0,
        "the OCSP key is private to its owner"
    );

    // On hold: revoked with reason certificateHold; released: good again.
    ok(lockbox(&[
        "revoke",
        &serial,
        "--reason",
        "certificateHold",
        "--home",
        s(&home),
    ]));
    let out = ocsp_status(&ca_pem, &user, &listen, &[]);
    assert!(
        out.contains(": revoked") && out.contains("certificateHold"),
        "{out}"
    );
    ok(lockbox(&[
        "revoke",
        "--unrevoke",
        &serial,
        "--home",
        s(&home),
    ]));
    assert!(ocsp_status(&ca_pem, &user, &listen, &[]).contains(": good"));

    // Revoked with a reason and a time.
    ok(lockbox(&[
        "revoke",
        &serial,
        "--reason",
        "keyCompromise",
        "--home",
        s(&home),
    ]));
    let out = ocsp_status(&ca_pem, &user, &listen, &[]);
    assert!(
        out.contains(": revoked")
            && out.contains("Reason: keyCompromise")
            && out.contains("Revocation Time"),
        "{out}"
    );
    // A revoked certificate cannot be "released": only a hold can.
    let refused = lockbox(&["revoke", "--unrevoke", &serial, "--home", s(&home)]);
    assert!(!refused.status.success());

    // A serial this CA never issued: unknown.
    let url = format!("http://{listen}/ocsp");
    let out = openssl(&[
        "ocsp",
        "-issuer",
        s(&ca_pem),
        "-serial",
        "0x0123456789",
        "-url",
        &url,
        "-CAfile",
        s(&ca_pem),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(": unknown"), "{text}");

    // Another CA's certificate: unauthorized.
    let other = openssl(&[
        "ocsp",
        "-issuer",
        s(&user),
        "-cert",
        s(&user),
        "-url",
        &url,
        "-CAfile",
        s(&ca_pem),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&other.stdout),
        String::from_utf8_lossy(&other.stderr)
    );
    assert!(text.contains("unauthorized"), "{text}");

    // GET (RFC 6960 appendix A) without a nonce: RFC 5019 cache headers.
    let req = d.join("req.der");
    ok(openssl(&[
        "ocsp",
        "-issuer",
        s(&ca_pem),
        "-cert",
        s(&user),
        "-no_nonce",
        "-reqout",
        s(&req),
    ]));
    let b64 = base64_of(&std::fs::read(&req).unwrap());
    let resp = d.join("resp.der");
    let headers = ok(tool(
        "curl",
        &[
            "-sS",
            "-D",
            "-",
            "-o",
            s(&resp),
            &format!(
                "http://{listen}/ocsp/{}",
                b64.replace('+', "%2B").replace('/', "%2F")
            ),
        ],
    ));
    let lower = headers.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/ocsp-response"),
        "{headers}"
    );
    assert!(lower.contains("cache-control: max-age="), "{headers}");
    assert!(
        lower.contains("public, no-transform, must-revalidate"),
        "{headers}"
    );
    assert!(
        lower.contains("last-modified:") && lower.contains("expires:"),
        "{headers}"
    );
    let out = openssl(&[
        "ocsp",
        "-respin",
        s(&resp),
        "-issuer",
        s(&ca_pem),
        "-cert",
        s(&user),
        "-CAfile",
        s(&ca_pem),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Response verify OK") && text.contains(": revoked"),
        "{text}"
    );

    // A revoked responder certificate is replaced before the next answer.
    let responder_serial = |p: &Path| ok(openssl(&["x509", "-in", s(p), "-noout", "-serial"]));
    let first = responder_serial(&ocsp_cert);
    let first_hex = first.trim().trim_start_matches("serial=").to_string();
    ok(lockbox(&[
        "revoke",
        &first_hex,
        "--reason",
        "keyCompromise",
        "--home",
        s(&home),
    ]));
    let out = ocsp_status(&ca_pem, &user, &listen, &[]);
    assert!(
        out.contains("Response verify OK") && out.contains(": revoked"),
        "{out}"
    );
    assert_ne!(
        responder_serial(&ocsp_cert),
        first,
        "a new responder certificate"
    );

    // Hostile bytes: malformedRequest, not an HTTP error page.
    let garbage = d.join("garbage.der");
    std::fs::write(&garbage, [0x30, 0x82, 0xff, 0xff, 0x01]).unwrap();
    let bad = d.join("bad.der");
    ok(tool(
        "curl",
        &[
            "-sS",
            "-o",
            s(&bad),
            "-H",
            "Content-Type: application/ocsp-request",
            "--data-binary",
            &format!("@{}", s(&garbage)),
            &url,
        ],
    ));
    assert_eq!(
        std::fs::read(&bad).unwrap(),
        vec![0x30, 0x03, 0x0a, 0x01, 0x01]
    );
}

fn base64_of(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("base64");
    child.stdin.take().unwrap().write_all(data).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

/// `openssl crl` of a DER file to PEM (openssl verify reads PEM CRL files).
fn crl_pem(der: &Path) -> PathBuf {
    let pem = der.with_extension("pem");
    ok(openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        s(der),
        "-out",
        s(&pem),
    ]));
    pem
}

fn verify_with(ca_pem: &Path, cert: &Path, crls: &[&Path], deltas: bool) -> (bool, String) {
    let mut args = vec!["verify", "-crl_check"];
    if deltas {
        args.push("-use_deltas");
    }
    for c in crls {
        args.push("-CRLfile");
        args.push(s(c));
    }
    args.extend_from_slice(&["-CAfile", s(ca_pem), s(cert)]);
    let out = openssl(&args);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn delta_crls_carry_holds_and_releases_that_openssl_honours() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (home, ca_pem, user, serial) = ca_with_user(d, "127.0.0.1:9");
    let fresh = ok(openssl(&[
        "x509",
        "-in",
        s(&user),
        "-noout",
        "-ext",
        "freshestCRL",
    ]));
    assert!(
        fresh.contains("http://pki.example.test/crl/ca+.crl"),
        "{fresh}"
    );

    // Base 1 lists nothing; the hold placed after it shows in delta 2.
    let base1 = d.join("base1.crl");
    ok(lockbox(&[
        "crl",
        "publish",
        "--out",
        s(&base1),
        "--home",
        s(&home),
    ]));
    ok(lockbox(&[
        "revoke",
        &serial,
        "--reason",
        "certificateHold",
        "--home",
        s(&home),
    ]));
    let delta2 = d.join("delta2.crl");
    let out = ok(lockbox(&[
        "crl",
        "publish",
        "--delta",
        "--out",
        s(&delta2),
        "--home",
        s(&home),
    ]));
    assert!(
        out.contains("base CRL 1") && out.contains("1 changed"),
        "{out}"
    );
    for crl in [&base1, &delta2] {
        let v = openssl_crl_check(crl, &ca_pem, &[]);
        assert!(
            String::from_utf8_lossy(&v.stderr).contains("verify OK"),
            "{v:?}"
        );
        pkilint_crl(crl);
    }
    let text = ok(openssl_crl_check(&delta2, &ca_pem, &["-text"]));
    assert!(
        text.contains("Delta CRL Indicator: critical") && text.contains("Certificate Hold"),
        "{text}"
    );
    let base_text = ok(openssl_crl_check(&base1, &ca_pem, &["-text"]));
    assert!(base_text.contains("Freshest CRL"), "{base_text}");
    let (b1, d2) = (crl_pem(&base1), crl_pem(&delta2));
    let (good, out) = verify_with(&ca_pem, &user, &[&b1], false);
    assert!(good, "the base alone does not know the hold: {out}");
    let (good, out) = verify_with(&ca_pem, &user, &[&b1, &d2], true);
    assert!(
        !good && out.contains("revoked"),
        "the delta carries the hold: {out}"
    );

    // Base 3 lists the hold; the release after it is removeFromCRL in delta 4.
    let base3 = d.join("base3.crl");
    ok(lockbox(&[
        "crl",
        "publish",
        "--out",
        s(&base3),
        "--home",
        s(&home),
    ]));
    ok(lockbox(&[
        "revoke",
        "--unrevoke",
        &serial,
        "--home",
        s(&home),
    ]));
    let view = ok(lockbox(&["view", "--home", s(&home), "--json"]));
    assert!(view.contains("\"Disposition\": \"issued\""), "{view}");
    let delta4 = d.join("delta4.crl");
    ok(lockbox(&[
        "crl",
        "publish",
        "--delta",
        "--out",
        s(&delta4),
        "--home",
        s(&home),
    ]));
    pkilint_crl(&delta4);
    let text = ok(openssl_crl_check(&delta4, &ca_pem, &["-text"]));
    assert!(text.contains("Remove From CRL"), "{text}");
    let (b3, d4) = (crl_pem(&base3), crl_pem(&delta4));
    let (good, out) = verify_with(&ca_pem, &user, &[&b3], false);
    assert!(
        !good && out.contains("revoked"),
        "base 3 lists the hold: {out}"
    );
    let (good, out) = verify_with(&ca_pem, &user, &[&b3, &d4], true);
    assert!(good, "the delta releases it: {out}");

    // A hold made permanent: the next delta lists the new reason.
    ok(lockbox(&[
        "revoke",
        &serial,
        "--reason",
        "certificateHold",
        "--home",
        s(&home),
    ]));
    ok(lockbox(&[
        "revoke",
        &serial,
        "--reason",
        "keyCompromise",
        "--home",
        s(&home),
    ]));
    let delta5 = d.join("delta5.crl");
    ok(lockbox(&[
        "crl",
        "publish",
        "--delta",
        "--out",
        s(&delta5),
        "--home",
        s(&home),
    ]));
    let text = ok(openssl_crl_check(&delta5, &ca_pem, &["-text"]));
    assert!(text.contains("Key Compromise"), "{text}");
    let (good, _) = verify_with(&ca_pem, &user, &[&b3, &crl_pem(&delta5)], true);
    assert!(!good);
}

#[test]
fn serve_publishes_base_and_delta_crls_on_its_schedule_at_stable_urls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (home, ca_pem, user, serial) = ca_with_user(d, "127.0.0.1:9");
    ok(lockbox(&[
        "config",
        "set",
        "crl.period",
        "1w",
        "--home",
        s(&home),
    ]));
    ok(lockbox(&[
        "config",
        "set",
        "crl.overlap",
        "12h",
        "--home",
        s(&home),
    ]));
    ok(lockbox(&[
        "config",
        "set",
        "crl.delta_period",
        "1d",
        "--home",
        s(&home),
    ]));
    let listen = free_listen_address();
    let public = free_listen_address();
    let _server = Server::start_with(&home, &listen, &["--http", "--public-http", &public]);
    // The schedule publishes a base and a delta at start.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let base = d.join("base.crl");
    let delta = d.join("delta.crl");
    loop {
        let b = tool(
            "curl",
            &[
                "-sSf",
                "-o",
                s(&base),
                &format!("http://{public}/crl/ca.crl"),
            ],
        );
        let dl = tool(
            "curl",
            &[
                "-sSf",
                "-o",
                s(&delta),
                &format!("http://{public}/crl/ca+.crl"),
            ],
        );
        if b.status.success() && dl.status.success() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "CRLs not served");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let text = ok(openssl_crl_check(&base, &ca_pem, &["-text"]));
    assert!(text.contains("Freshest CRL"), "{text}");
    // nextUpdate = thisUpdate + 1w + 12h.
    let dates = ok(openssl_crl_check(
        &base,
        &ca_pem,
        &["-lastupdate", "-nextupdate"],
    ));
    let when = |k: &str| {
        let line = dates.lines().find(|l| l.starts_with(k)).unwrap();
        let v = line.split_once('=').unwrap().1;
        ok(tool("date", &["-d", v, "+%s"]))
            .trim()
            .parse::<i64>()
            .unwrap()
    };
    assert_eq!(
        when("nextUpdate") - when("lastUpdate"),
        7 * 86_400 + 12 * 3_600,
        "{dates}"
    );

    // A revocation after the base: the served delta carries it at once.
    ok(lockbox(&[
        "revoke",
        &serial,
        "--reason",
        "keyCompromise",
        "--home",
        s(&home),
    ]));
    ok(tool(
        "curl",
        &[
            "-sSf",
            "-o",
            s(&delta),
            &format!("http://{public}/crl/ca+.crl"),
        ],
    ));
    let (b, dl) = (crl_pem(&base), crl_pem(&delta));
    let (good, out) = verify_with(&ca_pem, &user, &[&b, &dl], true);
    assert!(!good && out.contains("revoked"), "{out}");
    // The public listener answers nothing that takes credentials.
    let status = ok(tool(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{public}/api/v1/view"),
        ],
    ));
    assert_eq!(status.trim(), "404");
}
