//! Key recovery through the `lockbox` command: getkey (certificate manager),
//! recoverkey (key recovery agent), mergepfx, batch scripts and .p7m
//! messages, checked with `openssl` and Python `cryptography`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::*;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A CA with `kras` issued KRA certificates (each also as a PKCS#12, password "kra"), one required.
fn recovery_ca(d: &Path, kras: usize) -> (PathBuf, Vec<PathBuf>) {
    let home = d.join("ca");
    ok(lb(&home, &["init", "--name", "Contoso Issuing CA"]));
    ok(lb(&home, &["ca", "templates", "add", "KeyRecoveryAgent"]));
    let mut pfxs = Vec::new();
    for i in 0..kras {
        let req = d.join(format!("kra{i}.req"));
        let key = d.join(format!("kra{i}.key"));
        let pem = d.join(format!("kra{i}.pem"));
        ok(request_new(
            &home,
            "KeyRecoveryAgent",
            &format!("CN=Agent {i}"),
            &[],
            &req,
            &key,
        ));
        let out: serde_json::Value =
            serde_json::from_str(&ok(lb(&home, &["submit", s(&req), "--json"]))).unwrap();
        ok(lb(
            &home,
            &["issue", &out["request_id"].to_string(), "--out", s(&pem)],
        ));
        let pfx = d.join(format!("kra{i}.pfx"));
        pkcs12_export(&key, &pem, &pfx, "kra", &[]);
        pfxs.push(pfx);
    }
    ok(lb(&home, &["kra", "required", "1"]));
    (home, pfxs)
}

#[test]
fn recovered_key_decrypts_mail_and_loads_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (home, kras) = recovery_ca(d, 1);
    let (alice_pem, _alice_key, serial) = enroll(&home, d, "alice", "Alice Example");
    // a message encrypted to Alice with openssl, before she lost her key
    std::fs::write(d.join("secret.txt"), "the quarterly numbers").unwrap();
    ok(openssl(&[
        "cms",
        "-encrypt",
        "-aes256",
        "-in",
        s(&d.join("secret.txt")),
        "-out",
        s(&d.join("msg.p7m")),
        "-outform",
        "DER",
        s(&alice_pem),
    ]));
    // the manager finds and retrieves; serial typed with spaces as in the seed
    let spaced: String = serial
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    let listing = ok(lb(&home, &["getkey", &spaced]));
    assert!(
        listing.contains("Cert Hash(sha1)") && listing.contains("CN=Alice Example"),
        "{listing}"
    );
    let blob = d.join("alice.rec");
    let out = ok(lb(&home, &["getkey", &spaced, s(&blob)]));
    assert!(
        out.contains("Recipient Info") && out.contains("CN=Contoso Issuing CA"),
        "{out}"
    );
    // the agent recovers offline (trusting the CA certificate only)
    let ca_pem = home.join("certs/ca.pem");
    let pfx = d.join("alice.pfx");
    let out = recoverkey(&blob, &pfx, &kras[0], "kra", "Rec0vered!", &ca_pem);
    ok(out);
    // openssl reads the PKCS#12 and its key decrypts the old message
    let key_pem = d.join("recovered.key");
    pkcs12_keys(&pfx, "Rec0vered!", Some(&key_pem));
    let plain = ok(openssl(&[
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        s(&d.join("msg.p7m")),
        "-recip",
        s(&alice_pem),
        "-inkey",
        s(&key_pem),
    ]));
    assert_eq!(plain, "the quarterly numbers");
    // Python cryptography loads it too
    let py = std::env::var("LOCKBOX_CERTIPY_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/lockbox-tools/certipy-venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let code = format!("from cryptography.hazmat.primitives.serialization import pkcs12\nk, c, extra = pkcs12.load_key_and_certificates(open(r'{}','rb').read(), b'Rec0vered!')\nassert c.subject.rfc4514_string() == 'CN=Alice Example'\nprint('ok')", s(&pfx));
    assert_eq!(
        ok(Command::new(&py)
            .args(["-c", &code])
            .output()
            .expect("python with cryptography"))
        .trim(),
        "ok"
    );
    // legacy PKCS#12 for old Windows
    let legacy = d.join("legacy.pfx");
    ok(lockbox_cmd(&[
        "recoverkey",
        s(&blob),
        s(&legacy),
        "--kra",
        s(&kras[0]),
        "--kra-password",
        "kra",
        "-p",
        "x",
        "--legacy",
        "--ca-cert",
        s(&ca_pem),
    ])
    .output()
    .unwrap());
    let info = openssl(&[
        "pkcs12",
        "-in",
        s(&legacy),
        "-passin",
        "pass:x",
        "-info",
        "-noout",
        "-legacy",
    ]);
    assert!(
        String::from_utf8_lossy(&info.stderr).contains("3DES")
            || String::from_utf8_lossy(&info.stderr).contains("pbeWithSHA1And3-KeyTripleDES"),
        "{}",
        stderr(&info)
    );
    // the encrypted message leads straight to the key (seed 000's manual procedure in one step)
    let dump = ok(lb(&home, &["dump", s(&d.join("msg.p7m"))]));
    assert!(dump.contains(&serial), "{dump}");
    let outdir = d.join("from-p7m");
    ok(lb(
        &home,
        &["getkey", "--p7m", s(&d.join("msg.p7m")), s(&outdir)],
    ));
    assert!(outdir.join(format!("{serial}.rec")).exists());
    // retrievals are audited with the request ID
    let audit = ok(lb(&home, &["audit", "list"]));
    assert!(audit.contains("retrieved an archived key"), "{audit}");
    // batch: a second certificate for Alice, then the script recovers her whole key history
    let (_pem2, _key2, serial2) = enroll(&home, d, "alice2", "Alice Example");
    let script = ok(lb(&home, &["getkey", "--script", "Alice Example"]));
    assert!(script.contains(&serial) && script.contains(&serial2));
    std::fs::write(d.join("recover.sh"), &script).unwrap();
    let run = Command::new("sh")
        .arg(d.join("recover.sh"))
        .current_dir(d)
        .env("KRA_PFX", &kras[0])
        .env("KRA_PASSWORD", "kra")
        .env("LOCKBOX", env!("CARGO_BIN_EXE_lockbox"))
        .output()
        .unwrap();
    let text = ok(run);
    let password = text.trim().rsplit(' ').next().unwrap().to_string();
    let keys = pkcs12_keys(&d.join("Alice_Example.p12"), &password, None);
    assert_eq!(
        keys.matches("BEGIN PRIVATE KEY").count(),
        2,
        "both keys recovered"
    );
    // recover-user does the same in one step when one person holds both roles
    let all = d.join("alice-all.p12");
    ok(lb(
        &home,
        &[
            "recover-user",
            "Alice Example",
            "--kra",
            s(&kras[0]),
            "--kra-password",
            "kra",
            "--out",
            s(&all),
            "-p",
            "pw",
        ],
    ));
    let keys = pkcs12_keys(&all, "pw", None);
    assert_eq!(keys.matches("BEGIN PRIVATE KEY").count(), 2);
    // without a password and without a terminal, recoverkey refuses
    let r = lockbox_cmd(&[
        "recoverkey",
        s(&blob),
        s(&d.join("x.pfx")),
        "--kra",
        s(&kras[0]),
        "--kra-password",
        "kra",
        "--ca-cert",
        s(&ca_pem),
    ])
    .output()
    .unwrap();
    assert!(
        !r.status.success() && stderr(&r).contains("password"),
        "{}",
        stderr(&r)
    );
}

#[test]
fn round_robin_agents_ambiguity_batch_and_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (home, kras) = recovery_ca(d, 2);
    let ca_pem = home.join("certs/ca.pem");
    enroll(&home, d, "bob1", "Bob Example");
    enroll(&home, d, "bob2", "Bob Example");
    // two matches: listed, then refused as ambiguous
    let amb = lb(&home, &["getkey", "Bob Example", s(&d.join("x.rec"))]);
    assert_eq!(amb.status.code(), Some(3));
    assert!(stderr(&amb).contains("0x8002802c"), "{}", stderr(&amb));
    let list: serde_json::Value =
        serde_json::from_str(&ok(lb(&home, &["getkey", "Bob Example", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    // each blob opens with the KRA it lists, and the other KRA is told who can
    let mut opened = 0;
    for c in list.as_array().unwrap() {
        let serial = c["serial"].as_str().unwrap();
        let blob = d.join(format!("{serial}.rec"));
        let out: serde_json::Value =
            serde_json::from_str(&ok(lb(&home, &["getkey", serial, s(&blob), "--json"]))).unwrap();
        let recips = out["recipients"].as_array().unwrap();
        assert_eq!(recips.len(), 1);
        for kra in &kras {
            let r = recoverkey(
                &blob,
                &d.join(format!("{serial}.pfx")),
                kra,
                "kra",
                "pw",
                &ca_pem,
            );
            if r.status.success() {
                opened += 1;
            } else {
                assert!(stderr(&r).contains("KRAs that can"), "{}", stderr(&r));
            }
        }
    }
    assert_eq!(opened, 2, "each blob opened by exactly one agent");
    // mergepfx with certutil's comma syntax
    let pfxs: Vec<PathBuf> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| d.join(format!("{}.pfx", c["serial"].as_str().unwrap())))
        .collect();
    let merged = d.join("bob.p12");
    ok(lockbox(&[
        "mergepfx",
        &format!("{},{}", s(&pfxs[0]), s(&pfxs[1])),
        s(&merged),
        "-p",
        "pw,pw,final",
    ]));
    let certs = ok(openssl(&[
        "pkcs12",
        "-in",
        s(&merged),
        "-passin",
        "pass:final",
        "-nokeys",
    ]));
    assert_eq!(
        certs.matches("subject=CN = Bob Example").count()
            + certs.matches("subject=CN=Bob Example").count(),
        2,
        "{certs}"
    );
    assert!(
        !lockbox(&[
            "mergepfx",
            s(&pfxs[0]),
            s(&d.join("m.p12")),
            "-p",
            "wrong,x"
        ])
        .status
        .success(),
        "wrong input password"
    );
    // tampered blob signature, blob from another CA, corrupt envelope
    let good =
        std::fs::read(d.join(format!("{}.rec", list[0]["serial"].as_str().unwrap()))).unwrap();
    let mut tampered = good.clone();
    let n = tampered.len();
    tampered[n - 5] ^= 0x01;
    std::fs::write(d.join("tampered.rec"), &tampered).unwrap();
    for kra in &kras {
        let r = recoverkey(
            &d.join("tampered.rec"),
            &d.join("t.pfx"),
            kra,
            "kra",
            "x",
            &ca_pem,
        );
        assert!(
            !r.status.success() && stderr(&r).contains("signature"),
            "{}",
            stderr(&r)
        );
    }
    let other = d.join("other");
    ok(lb(&other, &["init", "--name", "Fabrikam CA"]));
    let r = recoverkey(
        &d.join(format!("{}.rec", list[0]["serial"].as_str().unwrap())),
        &d.join("o.pfx"),
        &kras[0],
        "kra",
        "x",
        &other.join("certs/ca.pem"),
    );
    assert!(
        !r.status.success() && stderr(&r).contains("trusted CA"),
        "{}",
        stderr(&r)
    );
    let r = recoverkey(
        &d.join(format!("{}.rec", list[0]["serial"].as_str().unwrap())),
        &d.join("w.pfx"),
        &kras[0],
        "not-it",
        "x",
        &ca_pem,
    );
    assert!(
        !r.status.success() && stderr(&r).contains("password"),
        "{}",
        stderr(&r)
    );
    let mut corrupt = good.clone();
    let pos = corrupt.windows(2).rposition(|w| w == [0x04, 0x82]).unwrap() + 40;
    corrupt[pos] ^= 0xff;
    std::fs::write(d.join("corrupt.rec"), &corrupt).unwrap();
    let r = recoverkey(
        &d.join("corrupt.rec"),
        &d.join("c.pfx"),
        &kras[0],
        "kra",
        "x",
        &ca_pem,
    );
    assert!(!r.status.success(), "corrupt blob refused");
    // a KRA certificate missing from the CA's store: 0x80092004
    let kra_list: serde_json::Value =
        serde_json::from_str(&ok(lb(&home, &["kra", "list", "--json"]))).unwrap();
    for k in kra_list["certificates"].as_array().unwrap() {
        ok(lb(
            &home,
            &[
                "kra",
                "remove",
                k["thumbprint"].as_str().unwrap(),
                "--force",
            ],
        ));
    }
    let r = lb(
        &home,
        &[
            "getkey",
            list[0]["serial"].as_str().unwrap(),
            s(&d.join("gone.rec")),
        ],
    );
    assert!(
        stderr(&r).contains("0x80092004") && stderr(&r).contains("Cannot find the KRA certificate"),
        "{}",
        stderr(&r)
    );
}
