//! Backup and restore: every key archived before the backup recovers from the
//! restored home (checked with openssl); later ones are absent; the audit
//! chain shows the restore point; damaged backups and wrong passphrases are
//! caught by `backup verify` and refused by `restore`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

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
    pkcs12_keys(&pfx, "Rec0vered!", Some(&d.join("alice.recovered.key")));
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
        !h3.join("ca.db").exists() && !h3.join("lockbox.toml").exists(),
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
    let token_of = |out: String| token_in(&out);
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
    // a Backup Operator never receives the exchange keys (issue 12)
    assert!(exchange_keys(&b).is_empty());
    assert_eq!(exchange_keys(&home).len(), 1);
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

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
fn set_mode(p: &std::path::Path, m: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// Exchange key files in `dir/keys`.
fn exchange_keys(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("xchg-"))
        .collect()
}

/// Issue 12 item 8 (run with the usual umask 022): the home is 0700 and every
/// file holding keys, hashes, envelopes, databases, tokens or requests is
/// 0600, after init, after a first enrollment with the service running (WAL
/// and shared memory present), in a backup and a restored home, and for
/// `request new --out/--key-out`; the service warns at start about anything
/// looser. Weakness: exchange keys stay out of backups unless the local
/// administrator asks, and the restored CA makes a new exchange certificate.
#[cfg(unix)]
#[test]
fn secrets_are_private_and_backups_leave_out_exchange_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = ca_with_one_kra(d);
    assert_eq!(mode(&home), 0o700);
    for f in ["keys", "certs"] {
        assert_eq!(mode(&home.join(f)), 0o700, "{f}");
    }
    // (a CA on PostgreSQL has no database file in its home)
    let db_files: &[&str] = if on_postgres() { &[] } else { &["ca.db"] };
    for f in ["keys/ca.key", "lockbox.toml", "admin.token"]
        .iter()
        .chain(db_files)
    {
        assert_eq!(mode(&home.join(f)), 0o600, "{f}");
    }
    // request new: the request (it may carry the key) and the key
    for f in ["kra.req", "kra.key"] {
        assert_eq!(mode(&d.join(f)), 0o600, "{f}");
    }
    // an existing, looser --out is tightened
    let stale = d.join("stale.req");
    std::fs::write(&stale, "stale").unwrap();
    set_mode(&stale, 0o644);
    ok(request_new(
        &home,
        "User",
        "CN=Pat",
        &[],
        &stale,
        &d.join("stale.key"),
    ));
    assert_eq!(mode(&stale), 0o600);

    // a first archival enrollment while the service runs
    let listen = free_listen_address();
    let server = Server::start(&home, &listen);
    let (_, alice_key, _) = enroll(&home, d, "alice", "Alice Example");
    assert_eq!(mode(&alice_key), 0o600);
    assert_eq!(mode(&d.join("alice.req")), 0o600);
    let wal: &[&str] = if on_postgres() {
        &[]
    } else {
        &["ca.db-wal", "ca.db-shm"]
    };
    for f in ["tls/server.key"].iter().chain(wal) {
        assert_eq!(mode(&home.join(f)), 0o600, "{f}");
    }
    let xchg = exchange_keys(&home);
    assert_eq!(xchg.len(), 1);
    assert_eq!(mode(&home.join("keys").join(&xchg[0])), 0o600);
    drop(server);

    // a backup: private directory and files, no exchange key
    let pass = d.join("backup.pass");
    std::fs::write(&pass, "backup passphrase 1\n").unwrap();
    let b = d.join("backup");
    ok(lb(
        &home,
        &["backup", "--out", s(&b), "--passphrase-file", s(&pass)],
    ));
    assert_eq!(mode(&b), 0o700);
    for f in ["ca.db", "lockbox.toml", "keys/ca.key", "tls/server.key"] {
        assert_eq!(mode(&b.join(f)), 0o600, "{f}");
    }
    assert!(exchange_keys(&b).is_empty());
    // the local administrator may ask for them
    let b2 = d.join("backup-with-exchange-keys");
    ok(lb(
        &home,
        &[
            "backup",
            "--out",
            s(&b2),
            "--passphrase-file",
            s(&pass),
            "--include-exchange-keys",
        ],
    ));
    assert_eq!(exchange_keys(&b2), xchg);
    let out = ok(lb(
        &home,
        &["backup", "verify", s(&b2), "--passphrase-file", s(&pass)],
    ));
    assert!(out.contains("Backup verified."), "{out}");

    // restored without exchange keys: private, and archival gets a new exchange certificate
    let h2 = d.join("restored");
    ok(lb(&h2, &["restore", s(&b), "--passphrase-file", s(&pass)]));
    assert_eq!(mode(&h2), 0o700);
    for f in ["lockbox.toml", "keys/ca.key"].iter().chain(db_files) {
        assert_eq!(mode(&h2.join(f)), 0o600, "{f}");
    }
    enroll(&h2, d, "carol", "Carol Example");
    // a new wrapping key, and a new exchange certificate sealed to it
    assert_eq!(exchange_keys(&h2), vec!["xchg-wrap.key".to_string()]);
    assert_ne!(
        std::fs::read(h2.join("keys/xchg-wrap.key")).unwrap(),
        std::fs::read(home.join("keys/xchg-wrap.key")).unwrap()
    );
    assert_ne!(
        ok(lb(&h2, &["ca", "cert", "--exchange"])),
        ok(lb(&home, &["ca", "cert", "--exchange"]))
    );

    // the service warns at start about anything group- or world-accessible
    set_mode(&home, 0o755);
    set_mode(&home.join("keys/ca.key"), 0o644);
    let log = d.join("serve.log");
    let listen = free_listen_address();
    let child = lockbox_cmd(&["serve", "--home", s(&home), "--listen", &listen])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let server = Server::running(child, &listen);
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("WARNING")
            && text.contains("ca.key is accessible to other users (mode 0644")
            && text.contains("mode 0755"),
        "{text}"
    );
}

/// Issue 14 review: `restore --force` does not move a home a running
/// `lockbox serve` uses (the service holds serve.lock from before it opens
/// the database); once the service stops, the same restore goes through.
#[test]
fn restore_force_refuses_the_home_of_a_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = p256_ca(d, "Busy CA");
    let pass = d.join("backup.pass");
    std::fs::write(&pass, "backup passphrase 1\n").unwrap();
    let b = d.join("backup");
    ok(lb(
        &home,
        &["backup", "--out", s(&b), "--passphrase-file", s(&pass)],
    ));
    let listen = free_listen_address();
    let server = Server::start(&home, &listen);
    let busy = lb(
        &home,
        &["restore", s(&b), "--passphrase-file", s(&pass), "--force"],
    );
    let err = String::from_utf8_lossy(&busy.stderr).to_string();
    assert!(
        !busy.status.success() && err.contains("lockbox serve` is running"),
        "{err}"
    );
    assert!(home.join("lockbox.toml").is_file(), "the live home stayed");
    drop(server);
    ok(lb(
        &home,
        &["restore", s(&b), "--passphrase-file", s(&pass), "--force"],
    ));
}
