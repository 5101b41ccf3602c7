//! Web enrollment and the officer console in headless Chromium (Debian
//! `chromium` driven by `playwright-core`, tests/browser/flow.mjs), over HTTPS
//! with a certificate issued by the CA itself: browser-side archival
//! enrollment (WebCrypto key, CMC archival request, PKCS#12 download), a
//! pending request approved in the console and collected from the status
//! page, recovery by a certificate manager (blob download) and a key recovery
//! agent (`lockbox recoverkey`), and the auditor's verification. The files the
//! browser produced are checked with openssl, not with Lockbox code.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::Path;
use std::process::Command;

mod common;
use common::*;

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The public key (PEM) of a certificate or key file, as openssl prints it.
fn pubkey_of_cert(pem: &Path) -> String {
    ok(openssl(&["x509", "-in", s(pem), "-noout", "-pubkey"]))
}

fn pubkey_of_key(pem: &Path) -> String {
    ok(openssl(&["pkey", "-in", s(pem), "-pubout"]))
}

/// Splits a PKCS#12 into its certificate and key with openssl.
fn open_pfx(pfx: &Path, pass: &str, stem: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = stem.with_extension("crt.pem");
    let key = stem.with_extension("key.pem");
    let passin = format!("pass:{pass}");
    ok(openssl(&[
        "pkcs12",
        "-in",
        s(pfx),
        "-passin",
        &passin,
        "-clcerts",
        "-nokeys",
        "-out",
        s(&cert),
    ]));
    pkcs12_keys(pfx, pass, Some(&key));
    (cert, key)
}

/// The strings in the JSON array `v`.
fn strings(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h.as_str())
        .collect()
}

/// PNG signature and a non-empty IHDR size.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        b.len() > 24 && b.starts_with(b"\x89PNG\r\n\x1a\n") && &b[12..16] == b"IHDR",
        "{} is not a PNG",
        path.display()
    );
    let w = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
    let h = u32::from_be_bytes([b[20], b[21], b[22], b[23]]);
    (w, h)
}

#[test]
fn browser_archival_enrollment_console_approval_and_recovery() {
    let node_modules = repo().join("tests/browser/node_modules/playwright-core");
    assert!(
        node_modules.exists() && Path::new("/usr/bin/chromium").exists(),
        "run scripts/test.sh (it installs chromium and tests/browser's npm packages)"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = ca_with_one_kra(d);
    let ca_pem = home.join("certs/ca.pem");
    std::fs::write(d.join("pw-user"), "Us3r password\n").unwrap();
    std::fs::write(d.join("pw-officer"), "Off1cer password\n").unwrap();
    std::fs::write(d.join("pw-auditor"), "Aud1tor password\n").unwrap();
    std::fs::write(d.join("pw-admin"), "Adm1n password\n").unwrap();
    for (who, pw) in [
        ("webalice", "pw-user"),
        ("officer", "pw-officer"),
        ("auditor", "pw-auditor"),
        ("caadmin", "pw-admin"),
    ] {
        ok(lb(
            &home,
            &["principal", "add", who, "--password-file", s(&d.join(pw))],
        ));
    }
    ok(lb(
        &home,
        &["role", "grant", "officer", "CertificateManager"],
    ));
    ok(lb(&home, &["role", "grant", "auditor", "Auditor"]));
    ok(lb(&home, &["role", "grant", "caadmin", "CAAdministrator"]));
    ok(lb(
        &home,
        &["template", "duplicate", "ExchangeUser", "ExchangeApproved"],
    ));
    ok(lb(
        &home,
        &[
            "template",
            "set",
            "ExchangeApproved",
            "requires_approval=true",
        ],
    ));
    ok(lb(&home, &["ca", "templates", "add", "ExchangeApproved"]));

    let listen = free_listen_address();
    let _server = Server::start(&home, &listen);
    // The service's TLS certificate is issued by the CA itself.
    let s_client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &listen,
            "-CAfile",
            s(&ca_pem),
            "-verify_return_error",
            "-brief",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl");
    let tls = String::from_utf8_lossy(&s_client.stderr).to_string()
        + &String::from_utf8_lossy(&s_client.stdout);
    assert!(tls.contains("Verification: OK"), "{tls}");

    // LOCKBOX_BROWSER_OUT keeps the screenshots and files for a look afterwards.
    let out_dir = std::env::var_os("LOCKBOX_BROWSER_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| d.join("browser"));
    std::fs::create_dir_all(&out_dir).unwrap();
    let pfx_pass = "Pfx pass 123";
    let run = Command::new("node")
        .arg(repo().join("tests/browser/flow.mjs"))
        .current_dir(repo().join("tests/browser"))
        .env("BASE", format!("https://{listen}"))
        .env("OUT", &out_dir)
        .env("USER", "webalice")
        .env("USER_PASS", "Us3r password")
        .env("OFFICER", "officer")
        .env("OFFICER_PASS", "Off1cer password")
        .env("AUDITOR", "auditor")
        .env("AUDITOR_PASS", "Aud1tor password")
        .env("ADMIN", "caadmin")
        .env("ADMIN_PASS", "Adm1n password")
        .env("ARCHIVE_TEMPLATE", "ExchangeUser")
        .env("APPROVAL_TEMPLATE", "ExchangeApproved")
        .env("PFX_PASS", pfx_pass)
        .output()
        .expect("node is required");
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    let stderr = String::from_utf8_lossy(&run.stderr).to_string();
    let line = stdout.lines().last().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout} stderr {stderr}"));
    assert!(
        run.status.success() && v.get("error").is_none(),
        "browser flow failed: {v:#}\n{stderr}"
    );

    // What the pages showed.
    assert_eq!(v["secure_context"], true, "{v:#}");
    let issued_id = v["issued_id"].as_i64().unwrap();
    let pending_id = v["pending_id"].as_i64().unwrap();
    assert!(
        v["before_approval"]
            .as_str()
            .unwrap()
            .contains("Taken Under Submission"),
        "{v:#}"
    );
    let headers = strings(&v["console_headers"]);
    assert!(headers.contains(&"Archived Key"), "{headers:?}");
    assert_eq!(v["issued_row_archived"], "Yes", "{v:#}");
    let chosen = strings(&v["chosen_headers"]);
    assert_eq!(
        chosen,
        [
            "Request ID",
            "Requester Name",
            "Certificate Hash",
            "Archived Key",
            "Action"
        ],
        "{v:#}"
    );
    assert!(
        v["chosen_row"].as_str().unwrap().contains("webalice\t")
            && v["chosen_row"].as_str().unwrap().contains("Yes"),
        "{v:#}"
    );
    assert!(
        v["issue_done"]
            .as_str()
            .unwrap()
            .contains(&format!("Request {pending_id} issued")),
        "{v:#}"
    );
    assert_eq!(v["forged_status"], 403, "{v:#}");
    assert!(
        v["wrong_password"]
            .as_str()
            .unwrap()
            .contains("wrong password"),
        "{v:#}"
    );
    assert!(
        v["keys_left"]
            .as_str()
            .unwrap()
            .contains("holds no request keys"),
        "{v:#}"
    );
    assert_eq!(v["no_token_status"], 403, "{v:#}");
    assert!(v["candidates"].as_i64().unwrap() >= 2, "{v:#}");
    assert!(
        v["revoked_row"].as_str().unwrap().contains("keyCompromise"),
        "{v:#}"
    );
    assert_eq!(v["kra_status"][0], "valid", "{v:#}");
    assert!(
        v["officer_audit_status"]
            .as_str()
            .unwrap()
            .contains("0x80070005")
            || !v["officer_audit_status"].as_str().unwrap().is_empty(),
        "an officer is refused the audit trail: {v:#}"
    );
    let auditor_nav = strings(&v["auditor_nav"]);
    assert!(
        auditor_nav.contains(&"Audit") && !auditor_nav.contains(&"Key recovery"),
        "{auditor_nav:?}"
    );
    assert!(
        v["audit_verify"]
            .as_str()
            .unwrap()
            .contains("The audit chain is intact"),
        "{v:#}"
    );
    assert_eq!(v["auditor_recovery_status"], 403, "{v:#}");
    assert_eq!(v["injected_elements"], 0, "{v:#}");
    // the administrator's restriction binds the officer at once
    assert!(
        v["restrictions_row"]
            .as_str()
            .unwrap()
            .contains("ExchangeApproved"),
        "{v:#}"
    );
    assert_eq!(
        v["restricted_candidates"],
        serde_json::json!([pending_id]),
        "{v:#}"
    );
    // the administrator stopped the CA issuing the approval template
    let row_after = v["template_row_after"].as_str().unwrap();
    assert!(
        row_after.contains("\tNo\t") && row_after.trim_end().ends_with("Issue"),
        "{v:#}"
    );
    let offered = strings(&v["offered_templates"]);
    assert!(
        offered.contains(&"ExchangeUser") && !offered.contains(&"ExchangeApproved"),
        "{offered:?}"
    );

    // Screenshots: real PNGs of a sensible size, each of a key element that showed the expected text.
    let shots = v["screenshots"].as_array().unwrap();
    assert_eq!(shots.len(), 8, "{v:#}");
    for shot in shots {
        let (w, h) = png_size(Path::new(shot["full"].as_str().unwrap()));
        assert!(w >= 800 && h >= 300, "{shot}: {w}x{h}");
        let (w, h) = png_size(Path::new(shot["element"].as_str().unwrap()));
        assert!(w > 10 && h > 5, "{shot}: {w}x{h}");
    }
    let text_of = |name: &str| -> String {
        shots
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["text"].as_str())
            .unwrap_or("")
            .to_string()
    };
    assert!(text_of("01-browser-enrollment-issued").contains("PKCS #12"));
    assert!(text_of("02-browser-enrollment-pending")
        .contains(&format!("Your Request Id is {pending_id}")));
    assert!(text_of("03-console-pending").contains("Yes"));
    assert!(text_of("04-console-issued").contains("Archived Key"));
    assert!(text_of("06-console-recovery").contains("webalice"));
    assert!(text_of("07-console-kra").contains("valid"));
    assert!(text_of("08-console-audit-verified").contains("intact"));

    // The PKCS#12 files the browser built open in openssl; key and certificate match;
    // the certificates chain to the CA.
    for (name, id) in [
        ("browser-issued.p12", issued_id),
        ("browser-approved.p12", pending_id),
    ] {
        let (cert, key) = open_pfx(&out_dir.join(name), pfx_pass, &d.join(format!("pfx-{id}")));
        assert_eq!(pubkey_of_cert(&cert), pubkey_of_key(&key), "{name}");
        let verified = ok(openssl(&[
            "verify",
            "-CAfile",
            s(&ca_pem),
            "-purpose",
            "smimeencrypt",
            s(&cert),
        ]));
        assert!(verified.contains(": OK"), "{verified}");
        // Python `cryptography` reads it too
        let py = Command::new(tools_python())
            .args([
                "-c",
                "import sys\nfrom cryptography.hazmat.primitives.serialization import pkcs12\nk, c, extra = pkcs12.load_key_and_certificates(open(sys.argv[1], 'rb').read(), sys.argv[2].encode())\nprint(c.subject.rfc4514_string(), k.key_size, len(extra))",
                s(&out_dir.join(name)),
                pfx_pass,
            ])
            .output()
            .expect("python");
        let printed = ok(py);
        // the CA names the certificate from webalice's principal record
        assert_eq!(printed.trim(), "CN=webalice 2048 1", "{name}");
        // the wrong password is refused by the MAC
        assert!(!openssl(&[
            "pkcs12",
            "-in",
            s(&out_dir.join(name)),
            "-passin",
            "pass:wrong",
            "-noout"
        ])
        .status
        .success());
    }

    // The CA archived both keys before issuing.
    let rows: serde_json::Value = serde_json::from_str(&ok(lb(
        &home,
        &[
            "view",
            "--restrict",
            "Requester=webalice",
            "--out",
            "RequestID,ArchivedKey",
            "--json",
        ],
    )))
    .unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r["ArchivedKey"] == true || r["ArchivedKey"] == "yes"),
        "{rows:?}"
    );

    // The key recovery agent opens the blob the officer downloaded: the key is
    // the one the browser made.
    let recovered = d.join("recovered.pfx");
    ok(recoverkey(
        &out_dir.join("recovery.rec"),
        &recovered,
        &d.join("kra.pfx"),
        "kra",
        "Rec0vered!",
        &ca_pem,
    ));
    let (rcert, rkey) = open_pfx(&recovered, "Rec0vered!", &d.join("recovered"));
    let (bcert, _) = open_pfx(
        &out_dir.join("browser-issued.p12"),
        pfx_pass,
        &d.join("again"),
    );
    assert_eq!(pubkey_of_key(&rkey), pubkey_of_cert(&bcert));
    assert_eq!(pubkey_of_cert(&rcert), pubkey_of_cert(&bcert));
}
