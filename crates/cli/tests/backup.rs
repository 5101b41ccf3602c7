//! Backup and restore: every key archived before the backup recovers from the
//! restored home (checked with openssl); later ones are absent; the audit
//! chain shows the restore point; damaged backups and wrong passphrases are
//! caught by `backup verify` and refused by `restore`.

mod common;
use common::*;

fn public_key(args: &[&str]) -> String {
    ok(openssl(args))
}

#[test]
fn restored_backup_recovers_every_key_archived_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = ca_with_one_kra(d);
    let (alice_pem, _, alice_serial) = enroll(&home, d, "alice", "Alice Example");

    // back up (online; a passphrase is required)
    let pass = d.join("backup.pass");
    std::fs::write(&pass, "backup passphrase 1\n").unwrap();
    let b1 = d.join("backup1");
    assert!(!lb(&home, &["backup", "--out", s(&b1)]).status.success());
    let out = ok(lb(
        &home,
        &["backup", "--out", s(&b1), "--passphrase-file", s(&pass)],
    ));
    assert!(out.contains("Backed up Contoso Issuing CA"), "{out}");
    // keys in the backup are encrypted, never plain
    let ca_key = std::fs::read_to_string(b1.join("keys/ca.key")).unwrap();
    assert!(ca_key.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{ca_key}");
    let out = ok(lb(
        &home,
        &["backup", "verify", s(&b1), "--passphrase-file", s(&pass)],
    ));
    assert!(out.contains("Backup verified."), "{out}");
    // a second backup into the same directory is refused
    assert!(!lb(
        &home,
        &["backup", "--out", s(&b1), "--passphrase-file", s(&pass)]
    )
    .status
    .success());

    // more work after the backup
    let (_, _, bob_serial) = enroll(&home, d, "bob", "Bob Example");

    // restore into a new home
    let h2 = d.join("restored");
    let out = ok(lb(&h2, &["restore", s(&b1), "--passphrase-file", s(&pass)]));
    assert!(out.contains("Restore complete"), "{out}");
    assert!(out.contains("CN=Agent: valid"), "{out}");
    // alice's key recovers there, and is alice's key
    let blob = d.join("alice.rec");
    ok(lb(&h2, &["getkey", &alice_serial, s(&blob)]));
    let pfx = d.join("alice.pfx");
    ok(recoverkey(
        &blob,
        &pfx,
        &d.join("kra.pfx"),
        "kra",
        "Rec0vered!",
        &h2.join("certs/ca.pem"),
    ));
    ok(openssl(&[
        "pkcs12",
        "-in",
        s(&pfx),
        "-passin",
        "pass:Rec0vered!",
        "-nocerts",
        "-nodes",
        "-out",
        s(&d.join("alice.recovered.key")),
    ]));
    assert_eq!(
        public_key(&["pkey", "-in", s(&d.join("alice.recovered.key")), "-pubout"]),
        public_key(&["x509", "-in", s(&alice_pem), "-noout", "-pubkey"])
    );
    // bob came after the backup: not there
    assert!(!lb(&h2, &["getkey", &bob_serial, s(&d.join("bob.rec"))])
        .status
        .success());
    // the audit chain verifies and records the restore point
    ok(lb(&h2, &["audit", "verify"]));
    let audit = ok(lb(&h2, &["audit", "list", "--json"]));
    assert!(
        audit.contains("\"restore\"") && audit.contains("backup_audit_records"),
        "{audit}"
    );
    // the restored CA issues again (its key loads)
    enroll(&h2, d, "carol", "Carol Example");

    // a live home is not overwritten without --force; with it, it is moved aside
    assert!(
        !lb(&h2, &["restore", s(&b1), "--passphrase-file", s(&pass)])
            .status
            .success()
    );
    let out = ok(lb(
        &h2,
        &["restore", s(&b1), "--passphrase-file", s(&pass), "--force"],
    ));
    assert!(out.contains("previous home was moved to"), "{out}");

    // damage is found; wrong passphrases are told apart
    let wrong = d.join("wrong.pass");
    std::fs::write(&wrong, "not the passphrase").unwrap();
    let out = lb(
        &home,
        &["backup", "verify", s(&b1), "--passphrase-file", s(&wrong)],
    );
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrong backup passphrase"));
    let mut cfg = std::fs::read(b1.join("lockbox.toml")).unwrap();
    cfg.extend_from_slice(b"\n# edited\n");
    std::fs::write(b1.join("lockbox.toml"), cfg).unwrap();
    let out = lb(
        &home,
        &["backup", "verify", s(&b1), "--passphrase-file", s(&pass)],
    );
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stdout).contains("lockbox.toml: content differs"));
    let h3 = d.join("h3");
    assert!(
        !lb(&h3, &["restore", s(&b1), "--passphrase-file", s(&pass)])
            .status
            .success()
    );
    assert!(
        !h3.join("ca.db").exists(),
        "nothing restored from a damaged backup"
    );
}

/// A Backup Operator backs up the running service over HTTPS; the download
/// verifies and restores; other roles are refused.
#[test]
fn backup_operator_backs_up_a_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = ca_with_one_kra(d);
    let (_alice, alice_key, _) = enroll(&home, d, "alice", "Alice Example");
    let token_of = |out: String| -> String {
        out.lines()
            .find(|l| l.starts_with("lbt_"))
            .expect("a token")
            .to_string()
    };
    let bob = token_of(ok(lb(&home, &["principal", "add", "bob", "--token"])));
    ok(lb(&home, &["role", "grant", "bob", "BackupOperator"]));
    let max = token_of(ok(lb(&home, &["principal", "add", "max", "--token"])));
    ok(lb(&home, &["role", "grant", "max", "CertificateManager"]));
    let listen = free_listen_address();
    let _server = Server::start(&home, &listen);
    let url = format!("https://{listen}");
    let ca_pem = home.join("certs/ca.pem");
    let pass = d.join("backup.pass");
    std::fs::write(&pass, "remote backup passphrase\n").unwrap();
    let remote = |token: &str, out: &std::path::Path| {
        lockbox_cmd(&[
            "--server",
            &url,
            "--ca-cert",
            s(&ca_pem),
            "--token",
            token,
            "backup",
            "--out",
            s(out),
            "--passphrase-file",
            s(&pass),
        ])
        .output()
        .unwrap()
    };
    // a certificate manager may not take backups
    let refused = remote(&max, &d.join("nope"));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("0x80070005")
            || String::from_utf8_lossy(&refused.stderr).contains("denied"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let b = d.join("remote-backup");
    let out = ok(remote(&bob, &b));
    assert!(out.contains("Backed up Contoso Issuing CA"), "{out}");
    let out = ok(lb(
        &home,
        &["backup", "verify", s(&b), "--passphrase-file", s(&pass)],
    ));
    assert!(out.contains("Backup verified."), "{out}");
    // the audit trail names the operator
    let audit = ok(lb(&home, &["audit", "list", "--json"]));
    assert!(
        audit.contains("\"bob\"") && audit.contains("backup"),
        "{audit}"
    );
    // and the download restores into a working CA that still holds alice's key
    let h2 = d.join("h2");
    ok(lb(&h2, &["restore", s(&b), "--passphrase-file", s(&pass)]));
    let listing = ok(lb(&h2, &["getkey", "Alice Example"]));
    assert!(listing.contains("Alice Example"), "{listing}");
    assert!(alice_key.exists());
}
