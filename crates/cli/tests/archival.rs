//! Key archival through the `lockbox` command, against clients and tools
//! nobody here wrote: Certipy's key-archival request builder, `openssl
//! pkcs12` and Python `cryptography` reading the resulting PKCS#12.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};

mod common;
use common::*;
use std::process::Command;

/// A CA with one issued KRA certificate configured.
fn archival_ca(d: &Path) -> PathBuf {
    let home = d.join("ca");
    ok(lb(&home, &["init", "--name", "Contoso Issuing CA"]));
    ok(lb(&home, &["ca", "templates", "add", "KeyRecoveryAgent"]));
    let req = d.join("kra.req");
    ok(request_new(
        &home,
        "KeyRecoveryAgent",
        "CN=Recovery Agent",
        &[],
        &req,
        &d.join("kra.key"),
    ));
    assert!(ok(lb(&home, &["submit", s(&req)])).contains("pending"));
    let kra = d.join("kra.pem");
    ok(lb(&home, &["issue", "1", "--out", s(&kra)]));
    // Archival is refused until KRAs are configured
    let early = d.join("early.req");
    ok(request_new(
        &home,
        "ExchangeUser",
        "CN=Early",
        &["--archive"],
        &early,
        &d.join("early.key"),
    ));
    let refused = lb(&home, &["submit", s(&early)]);
    assert_eq!(refused.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("0x8009400a"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // required > configured is refused (seed figure 39)
    assert!(!lb(&home, &["kra", "required", "2"]).status.success());
    ok(lb(&home, &["kra", "add", s(&kra)]));
    ok(lb(&home, &["kra", "required", "1"]));
    let list: serde_json::Value =
        serde_json::from_str(&ok(lb(&home, &["kra", "list", "--json"]))).unwrap();
    assert_eq!(list["certificates"][0]["status"], "valid");
    assert_eq!(list["required"], 1);
    home
}

#[test]
fn windows_style_archival_round_trip_to_a_pkcs12_that_openssl_and_python_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = archival_ca(d);
    let xchg = d.join("xchg.pem");
    ok(lb(&home, &["ca", "cert", "--exchange", "--out", s(&xchg)]));
    let text = ok(Command::new("openssl")
        .args([
            "x509",
            "-in",
            s(&xchg),
            "-noout",
            "-subject",
            "-ext",
            "extendedKeyUsage,keyUsage",
        ])
        .output()
        .unwrap());
    assert!(
        text.contains("Contoso Issuing CA-Xchg")
            && text.contains("1.3.6.1.4.1.311.21.5")
            && text.contains("Key Encipherment"),
        "{text}"
    );

    let req = d.join("alice.req");
    let key = d.join("alice.key");
    ok(request_new(
        &home,
        "ExchangeUser",
        "CN=Alice Example",
        &["--archive", "--keyblob", "--3des"],
        &req,
        &key,
    ));
    let dump = ok(lb(&home, &["dump", s(&req)]));
    assert!(
        dump.contains("Recipient Info") && dump.contains("1.3.6.1.4.1.311.21.21"),
        "{dump}"
    );
    let rsp = d.join("alice.rsp");
    let cert = d.join("alice.pem");
    let out: serde_json::Value = serde_json::from_str(&ok(lb(
        &home,
        &[
            "submit",
            s(&req),
            "--response-out",
            s(&rsp),
            "--out",
            s(&cert),
            "--json",
        ],
    )))
    .unwrap();
    assert_eq!(out["archived"], true);
    let pfx = d.join("alice.pfx");
    // `request accept` of the response with Alice's key, into a PKCS#12 PFX
    // with PASSWORD
    let accept = |pfx: &Path, password: &str, extra: &[&str]| {
        let mut args = vec![
            "request",
            "accept",
            s(&rsp),
            "--key",
            s(&key),
            "--pfx-out",
            s(pfx),
            "-p",
            password,
        ];
        args.extend_from_slice(extra);
        lb(&home, &args)
    };
    let ca_pem = home.join("certs/ca.pem");
    ok(accept(
        &pfx,
        "Pa55word!",
        &["--request", s(&req), "--ca-cert", s(&ca_pem)],
    ));
    let info = Command::new("openssl")
        .args([
            "pkcs12",
            "-in",
            s(&pfx),
            "-passin",
            "pass:Pa55word!",
            "-nodes",
            "-info",
        ])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&info.stdout),
        String::from_utf8_lossy(&info.stderr)
    );
    assert!(
        info.status.success() && all.contains("AES-256-CBC") && all.contains("PRIVATE KEY"),
        "{all}"
    );
    let py = tools_python();
    let code = format!(
        "from cryptography.hazmat.primitives.serialization import pkcs12\nk, c, extra = pkcs12.load_key_and_certificates(open(r'{}','rb').read(), b'Pa55word!')\nassert c.subject.rfc4514_string() == 'CN=Alice Example', c.subject\nassert k.public_key().public_numbers() == c.public_key().public_numbers()\nprint('ok', len(extra))",
        s(&pfx)
    );
    let r = ok(Command::new(&py).args(["-c", &code]).output().unwrap());
    assert!(r.starts_with("ok 1"), "{r}");
    // the view shows the archived key column
    let csv = ok(lb(
        &home,
        &[
            "view",
            "--restrict",
            "ArchivedKey=true",
            "--out",
            "RequestID,CommonName,ArchivedKey",
            "--csv",
        ],
    ));
    assert!(csv.contains("Alice Example,yes"), "{csv}");
    // a tampered response is refused
    let mut bytes = std::fs::read(&rsp).unwrap();
    let n = bytes.len();
    bytes[n - 40] ^= 0x01;
    std::fs::write(&rsp, &bytes).unwrap();
    assert!(!accept(&d.join("x.pfx"), "x", &[]).status.success());
}

#[test]
fn certipy_key_archival_requests_are_archived_and_issued() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = archival_ca(d);
    let xchg = d.join("xchg.pem");
    ok(lb(&home, &["ca", "cert", "--exchange", "--out", s(&xchg)]));
    let req = d.join("certipy.req");
    let key = d.join("certipy.key");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/certipy_archival.py");
    ok(Command::new(tools_python())
        .args([s(&script), s(&xchg), s(&req), s(&key), "bob"])
        .output()
        .unwrap());
    let cert = d.join("bob.pem");
    let out: serde_json::Value = serde_json::from_str(&ok(lb(
        &home,
        &[
            "submit",
            s(&req),
            "--template",
            "ExchangeUser",
            "--out",
            s(&cert),
            "--json",
        ],
    )))
    .unwrap();
    assert_eq!(out["disposition"], "issued");
    assert_eq!(out["archived"], true);
    assert!(ok(lb(&home, &["verifykeys", s(&key), s(&cert)])).contains("matches"));
    // Certipy's request for a template that does not archive is refused with 0x80094810
    let refused = lb(&home, &["submit", s(&req), "--template", "User"]);
    assert_eq!(refused.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("0x80094810"));
    // the exchange key (written out by the local administrator) decrypts the
    // request offline, step by step
    let xkey = d.join("xchg.key");
    ok(lb(&home, &["ca", "exchange-key", "--out", s(&xkey)]));
    let dump = ok(lb(
        &home,
        &["dump", "--privatekey", "--key", s(&xkey), s(&req)],
    ));
    assert!(
        dump.contains("[ok] private key matches the PKCS#10 public key")
            && dump.contains("CALG_RSA_KEYX"),
        "{dump}"
    );
}

/// Issue 12 item 14: a template with `use_aes_for_key_transport` refuses an
/// archival request whose key was sent to the CA under 3DES (before any
/// decryption, with its own code and message) and accepts AES; the built-in
/// ExchangeUser keeps accepting 3DES (Windows Server 2003 clients).
#[test]
fn use_aes_for_key_transport_refuses_3des_archival_requests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = ca_with_one_kra(d);
    ok(lb(
        &home,
        &["template", "duplicate", "ExchangeUser", "AesUser"],
    ));
    ok(lb(
        &home,
        &[
            "template",
            "set",
            "AesUser",
            "use_aes_for_key_transport=true",
        ],
    ));
    ok(lb(&home, &["ca", "templates", "add", "AesUser"]));
    let request = |template: &str, name: &str, des: bool| -> PathBuf {
        let req = d.join(format!("{name}.req"));
        let key = d.join(format!("{name}.key"));
        let subject = format!("CN={name}");
        let extra: &[&str] = if des {
            &["--archive", "--3des"]
        } else {
            &["--archive"]
        };
        ok(request_new(&home, template, &subject, extra, &req, &key));
        req
    };
    let refused = lb(&home, &["submit", s(&request("AesUser", "des", true))]);
    assert_eq!(refused.status.code(), Some(3));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("0x80090008") && err.contains("use_aes_for_key_transport"),
        "{err}"
    );
    ok(lb(&home, &["submit", s(&request("AesUser", "aes", false))]));
    ok(lb(
        &home,
        &["submit", s(&request("ExchangeUser", "legacy", true))],
    ));
}
