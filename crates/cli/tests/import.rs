//! `importkms` / `importcert` with PKCS#12 files made by openssl (default and
//! -legacy) and Python `cryptography`; every imported key recovers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::*;

fn public_key(path: &Path, key: bool) -> String {
    let out = if key {
        openssl(&["pkey", "-in", s(path), "-pubout"])
    } else {
        openssl(&["x509", "-in", s(path), "-noout", "-pubkey"])
    };
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A self-signed RSA-2048 certificate (`out`) for `subj`, valid `days`,
/// and its unencrypted key (`key`), made by `openssl req -x509`.
fn self_signed_rsa(key: &Path, subj: &str, days: u32, out: &Path) {
    ok(openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        s(key),
        "-subj",
        subj,
        "-days",
        &days.to_string(),
        "-out",
        s(out),
    ]));
}

#[test]
fn pkcs12_files_from_other_tools_import_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("ca");
    ca_issuing_a_kra(&home, d, "Contoso Issuing CA", "CN=Agent", "kra");
    let input = d.join("in");
    std::fs::create_dir_all(&input).unwrap();
    // 1. a certificate this CA issued, exported with openssl's default (AES) PKCS#12: manual archival
    openssl_csr(d, "dan", "/CN=Dan Example", &["-newkey", "rsa:2048"]);
    ok(lb(
        &home,
        &[
            "submit",
            s(&d.join("dan.csr")),
            "--template",
            "User",
            "--out",
            s(&d.join("dan.pem")),
        ],
    ));
    pkcs12_export(
        &d.join("dan.key"),
        &d.join("dan.pem"),
        &input.join("dan.pfx"),
        "pw",
        &[],
    );
    // 2. a self-signed v1-style certificate as the old KMS issued, openssl -legacy (3DES/RC2)
    self_signed_rsa(
        &d.join("kms.key"),
        "/CN=Old Kms User/emailAddress=old@contoso.com",
        400,
        &d.join("kms.pem"),
    );
    pkcs12_export(
        &d.join("kms.key"),
        &d.join("kms.pem"),
        &input.join("kms.pfx"),
        "pw",
        &["-legacy"],
    );
    // 3. a signature-only certificate, made by Python cryptography
    let code = format!(
        r#"
import datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
def make(cn, sign_only):
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    b = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key()).serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=300))
    b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=sign_only, key_encipherment=not sign_only, data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
    c = b.sign(k, hashes.SHA256())
    return pkcs12.serialize_key_and_certificates(cn.encode(), k, c, None, serialization.BestAvailableEncryption(b"pw"))
open(r"{sig}", "wb").write(make("Signing Only", True))
open(r"{enc}", "wb").write(make("Py Foreign User", False))
"#,
        sig = s(&input.join("sig.p12")),
        enc = s(&input.join("py.p12"))
    );
    ok(Command::new(tools_python())
        .args(["-c", &code])
        .output()
        .expect("python with cryptography"));
    // 4. a key without a certificate (the seed's unmatched Key ID)
    ok(openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        s(&d.join("lone.key")),
    ]));
    ok(openssl(&[
        "pkcs12",
        "-export",
        "-nocerts",
        "-inkey",
        s(&d.join("lone.key")),
        "-out",
        s(&input.join("lone.pfx")),
        "-passout",
        "pass:pw",
    ]));

    // Key import needs archival configured
    let early = lb(&home, &["importkms", s(&input), "-p", "pw"]);
    assert!(
        !early.status.success() && String::from_utf8_lossy(&early.stderr).contains("0x8009400a"),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );
    ok(lb(&home, &["kra", "required", "1"]));

    // Without -f and the CA setting, foreign certificates are refused, each naming the certificate
    let report = d.join("r1.csv");
    let out = lb(
        &home,
        &[
            "importkms",
            s(&input),
            "-p",
            "pw",
            "--report",
            s(&report),
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ignored_signature_certificates"], 1, "{v}");
    assert_eq!(
        v["certificates_imported"], 1,
        "only Dan's (this CA's) certificate"
    );
    assert_eq!(v["certificates_not_imported"], 2, "two foreign refused");
    assert_eq!(v["unmatched_keys"], 1);
    let csv = std::fs::read_to_string(&report).unwrap();
    assert!(csv.starts_with("owner,email,upn,key_id,serial,issuer,template,source,outcome,error"));
    assert!(
        csv.contains("refused foreign")
            && csv.contains("give -f")
            && csv.contains("unmatched")
            && csv.contains("ignored signature"),
        "{csv}"
    );
    assert!(
        csv.contains("old@contoso.com"),
        "owner e-mail tracked: {csv}"
    );
    let out = lb(&home, &["importkms", s(&input), "-p", "pw", "-f", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["foreign_certificates_imported"], 0,
        "the CA setting is still off"
    );
    ok(lb(&home, &["config", "set", "kra.enable_foreign", "true"]));
    let text = ok(lb(&home, &["importkms", s(&input), "-p", "pw", "-f"]));
    assert!(
        text.contains("Foreign certificates imported: 2")
            && text.contains("completed successfully"),
        "{text}"
    );
    // idempotent: nothing new the second time
    let v: serde_json::Value = serde_json::from_slice(
        &lb(&home, &["importkms", s(&input), "-p", "pw", "-f", "--json"]).stdout,
    )
    .unwrap();
    assert_eq!(v["keys_archived"], 0, "{v}");
    assert_eq!(v["already_present"], 4, "{v}");
    // every imported key recovers to the same key
    for (token, cert) in [
        ("Dan Example", d.join("dan.pem")),
        ("Old Kms User", d.join("kms.pem")),
    ] {
        let blob = d.join(format!("{token}.rec"));
        ok(lb(&home, &["getkey", token, s(&blob)]));
        let pfx = d.join(format!("{token}.pfx"));
        ok(lb(
            &home,
            &[
                "recoverkey",
                s(&blob),
                s(&pfx),
                "--kra",
                s(&d.join("kra.pfx")),
                "--kra-password",
                "kra",
                "-p",
                "x",
            ],
        ));
        let key = d.join(format!("{token}.key.pem"));
        pkcs12_keys(&pfx, "x", Some(&key));
        assert_eq!(public_key(&key, true), public_key(&cert, false), "{token}");
    }
    // the foreign row records the importing principal and the original owner
    let rows: serde_json::Value = serde_json::from_str(&ok(lb(
        &home,
        &[
            "view",
            "--restrict",
            "CommonName=Old Kms User",
            "--out",
            "RequestID,RequesterName,EMail,ArchivedKey",
            "--json",
        ],
    )))
    .unwrap();
    assert_eq!(rows[0]["EMail"], "old@contoso.com");
    assert_eq!(rows[0]["ArchivedKey"], "yes");
    // a damaged file is counted and listed, the rest still imports
    std::fs::write(input.join("zz-bad.pfx"), b"not a pfx").unwrap();
    let out = lb(&home, &["importkms", s(&input), "-p", "pw", "-f"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("zz-bad.pfx: not processed"));
    // importcert: certificates without keys, no KRA needed
    let other = d.join("other");
    ok(lb(&other, &["init", "--name", "Other CA"]));
    let certs = d.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(d.join("kms.pem"), certs.join("kms.pem")).unwrap();
    let out = ok(lb(&other, &["importcert", s(&certs), "-f"]));
    assert!(out.contains("Certificates not imported: 1"), "{out}");
    ok(lb(&other, &["config", "set", "kra.enable_foreign", "true"]));
    assert!(ok(lb(&other, &["importcert", s(&certs), "-f"])).contains("Certificates imported: 1"));
}

fn ca_with_kra(d: &Path, name: &str) -> (PathBuf, PathBuf) {
    let home = d.join(name);
    let pfx = ca_issuing_a_kra(
        &home,
        d,
        name,
        &format!("CN={name} Agent"),
        &format!("{name}-kra"),
    );
    ok(lb(&home, &["kra", "required", "1"]));
    (home, pfx)
}

#[test]
fn key_history_moves_between_servers_in_a_signed_lock_box() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (src, src_kra) = ca_with_kra(d, "SourceCA");
    let (dst, dst_kra) = ca_with_kra(d, "DestCA");
    // Alice's key history on the source
    let mut alice_keys = Vec::new();
    for i in 0..2 {
        let req = d.join(format!("alice{i}.req"));
        let key = d.join(format!("alice{i}.key"));
        ok(request_new(
            &src,
            "ExchangeUser",
            "CN=Alice Example",
            &["--archive"],
            &req,
            &key,
        ));
        ok(lb(&src, &["submit", s(&req)]));
        alice_keys.push(key);
    }
    // the destination's export (lock box) certificate
    let dest_key = d.join("export.key");
    let dest_pem = d.join("export.pem");
    self_signed_rsa(&dest_key, "/CN=DestCA Export", 30, &dest_pem);
    // `export-keys` of Alice's keys from the source to the destination's
    // certificate, into OUT
    let export_alice = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "export-keys",
            "--user",
            "Alice Example",
            "--to",
            s(&dest_pem),
            "--out",
            s(out),
            "--kra",
            s(&src_kra),
            "--kra-password",
            "kra",
        ];
        args.extend_from_slice(extra);
        lb(&src, &args)
    };
    let lbx = d.join("alice.lbx");
    ok(export_alice(&lbx, &[]));
    let src_ca = src.join("certs/ca.pem");
    ok(lb(&dst, &["config", "set", "kra.enable_foreign", "true"]));
    let rows_before = ok(lb(&dst, &["view", "--json"]));
    // a tampered file, an unknown signer, another destination: refused before anything is written
    let mut bad = std::fs::read(&lbx).unwrap();
    let n = bad.len();
    bad[n - 20] ^= 0x01;
    let tampered = d.join("bad").join("tampered.lbx");
    std::fs::create_dir_all(tampered.parent().unwrap()).unwrap();
    std::fs::write(&tampered, &bad).unwrap();
    let dst_ca = dst.join("certs/ca.pem");
    let other_key = d.join("other.key");
    let other_pem = d.join("other.pem");
    self_signed_rsa(&other_key, "/CN=Someone Else", 30, &other_pem);
    for (file, source_ca, key, cert, why) in [
        (&tampered, &src_ca, &dest_key, &dest_pem, "signature"),
        (&lbx, &dst_ca, &dest_key, &dest_pem, "trusted source"),
        (&lbx, &src_ca, &other_key, &other_pem, "lock box"),
    ] {
        let out = lb(
            &dst,
            &[
                "importkms",
                "-f",
                s(file),
                "--source-ca",
                s(source_ca),
                "--dest-key",
                s(key),
                "--dest-cert",
                s(cert),
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success() && text.contains(why), "{why}: {text}");
    }
    assert_eq!(
        ok(lb(&dst, &["view", "--json"])),
        rows_before,
        "nothing written"
    );
    // the real import
    let text = ok(lb(
        &dst,
        &[
            "importkms",
            "-f",
            s(&lbx),
            "--source-ca",
            s(&src_ca),
            "--dest-key",
            s(&dest_key),
            "--dest-cert",
            s(&dest_pem),
        ],
    ));
    assert!(
        text.contains("Processing KMS exports from: CN=SourceCA")
            && text.contains("Keys archived: 2"),
        "{text}"
    );
    // both keys recover on the destination with the destination's agent
    let list: serde_json::Value =
        serde_json::from_str(&ok(lb(&dst, &["getkey", "Alice Example", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let mut recovered = Vec::new();
    for c in list.as_array().unwrap() {
        let serial = c["serial"].as_str().unwrap();
        let blob = d.join(format!("{serial}.rec"));
        ok(lb(&dst, &["getkey", serial, s(&blob)]));
        let pfx = d.join(format!("{serial}.pfx"));
        ok(lb(
            &dst,
            &[
                "recoverkey",
                s(&blob),
                s(&pfx),
                "--kra",
                s(&dst_kra),
                "--kra-password",
                "kra",
                "-p",
                "x",
            ],
        ));
        let key = d.join(format!("{serial}.key"));
        pkcs12_keys(&pfx, "x", Some(&key));
        recovered.push(public_key(&key, true));
    }
    for k in &alice_keys {
        assert!(
            recovered.contains(&public_key(k, true)),
            "every exported key arrived"
        );
    }
    // --remove deletes the source's copies after the file is written and verified
    let lbx2 = d.join("again.lbx");
    ok(export_alice(&lbx2, &["--remove", "--yes"]));
    let left: serde_json::Value =
        serde_json::from_str(&ok(lb(&src, &["getkey", "Alice Example", "--json"]))).unwrap();
    assert_eq!(left.as_array().unwrap().len(), 0);
}
