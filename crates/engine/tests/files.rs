//! Issue 12 (branch fix-files): private files in the CA home, template
//! settings that are either honoured or refused, audit records for the CA's
//! own certificates, and backups without the exchange keys.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod common;

use lockbox_engine::backup::BackupOptions;
use lockbox_engine::ErrorKind;
use lockbox_engine::{codes, Actor, Ca, EngineError, Role, SubmitOptions};

use common::{admin, csr, submit_options};

async fn new_ca() -> (tempfile::TempDir, Ca) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("ca");
    let ca = common::new_ca(&home, "Contoso Issuing CA").await;
    (dir, ca)
}

fn as_requester(template: &str, requester: &str) -> SubmitOptions {
    submit_options(Some(template), requester)
}

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Item 8: the home is 0700 and every secret in it 0600 from creation on,
/// whatever the umask; the start-up check names anything looser.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_and_secrets_are_private_and_loose_ones_are_reported() {
    let (_dir, ca) = new_ca().await;
    let home = ca.home().root().to_path_buf();
    assert_eq!(mode(&home), 0o700);
    assert_eq!(mode(&home.join("keys")), 0o700);
    // (a CA on PostgreSQL has no database file in its home)
    let sqlite = !common::on_postgres();
    for f in ["keys/ca.key", "lockbox.toml", "ca.db"] {
        if f != "ca.db" || sqlite {
            assert_eq!(mode(&home.join(f)), 0o600, "{f}");
        }
    }
    // the open CA has written: WAL and shared memory exist, private like the database
    ca.current_exchange_certificate().await.unwrap();
    for f in ["ca.db-wal", "ca.db-shm"].into_iter().filter(|_| sqlite) {
        assert!(home.join(f).exists(), "{f}");
        assert_eq!(mode(&home.join(f)), 0o600, "{f}");
    }
    let xchg: Vec<_> = std::fs::read_dir(home.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("xchg-"))
        .collect();
    assert_eq!(xchg.len(), 1);
    assert_eq!(mode(&xchg[0]), 0o600);
    assert!(lockbox_engine::permission_findings(ca.home(), ca.config()).is_empty());
    // loosened by hand: each is named
    use std::os::unix::fs::PermissionsExt;
    let set = |p: &std::path::Path, m| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    set(&home, 0o755);
    set(&home.join("keys/ca.key"), 0o644);
    let mut loose = vec![("ca.key", "0644"), ("ca", "0755")];
    if sqlite {
        set(&home.join("ca.db-wal"), 0o640);
        loose.push(("ca.db-wal", "0640"));
    }
    let findings = lockbox_engine::permission_findings(ca.home(), ca.config());
    assert_eq!(findings.len(), loose.len(), "{findings:?}");
    for (name, m) in loose {
        assert!(
            findings
                .iter()
                .any(|f| f.contains(&format!("{name} is accessible")) && f.contains(m)),
            "{name}: {findings:?}"
        );
    }
}

/// Item 14: settings Lockbox does not act on are refused with a clear message;
/// unknown template names in `superseded_templates` are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_template_settings_are_refused() {
    let (_dir, ca) = new_ca().await;
    ca.duplicate_template(&admin(), "User", "ContosoUser")
        .await
        .unwrap();
    let refused = |r: Result<_, EngineError>| match r {
        Ok(t) => panic!("accepted: {t:?}"),
        Err(e) => e.to_string(),
    };
    let m = refused(
        ca.set_template(&admin(), "ContosoUser", "publish_to_directory", "true")
            .await,
    );
    assert!(
        m.contains("publish_to_directory is not supported yet"),
        "{m}"
    );
    let m = refused(
        ca.set_template(&admin(), "ContosoUser", "superseded_templates", "User")
            .await,
    );
    assert!(
        m.contains("superseded_templates is not supported yet"),
        "{m}"
    );
    let m = refused(
        ca.set_template(&admin(), "ContosoUser", "superseded_templates", "Nope")
            .await,
    );
    assert!(m.contains("no template named 'Nope'"), "{m}");
    // switching them off is fine, and nothing claims a behaviour that does not exist
    let t = ca
        .set_template(&admin(), "ContosoUser", "publish_to_directory", "false")
        .await
        .unwrap();
    assert!(!t.publish_to_directory && t.superseded_templates.is_empty());
    for t in ca.templates().await.unwrap() {
        assert!(!t.publish_to_directory, "{}", t.name);
    }
}

/// Item 14: `do_not_reenroll_if_duplicate` refuses a second enrollment by the
/// same requester while its certificate is valid; another requester, a
/// revoked certificate, or one inside `renewal_overlap` lets it through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn do_not_reenroll_if_duplicate_and_renewal_overlap_work() {
    let (_dir, ca) = new_ca().await;
    let a = admin();
    ca.duplicate_template(&a, "User", "OnceUser").await.unwrap();
    ca.set_template(&a, "OnceUser", "do_not_reenroll_if_duplicate", "true")
        .await
        .unwrap();
    ca.set_ca_template(&a, "OnceUser", true).await.unwrap();
    let first = ca
        .submit(&csr("Alice"), &as_requester("OnceUser", "alice"))
        .await
        .unwrap();
    let serial = first.serial.clone().unwrap();
    let again = ca
        .submit(&csr("Alice"), &as_requester("OnceUser", "alice"))
        .await;
    match again {
        Err(e) => {
            assert_eq!(e.code(), codes::E_ALREADY_EXISTS, "{e}");
            assert_eq!(e.kind(), ErrorKind::Denied);
            assert!(e.to_string().contains(&serial), "{e}");
        }
        Ok(o) => panic!("re-enrolled: {o:?}"),
    }
    // someone else, and other templates, are not affected
    ca.submit(&csr("Bob"), &as_requester("OnceUser", "bob"))
        .await
        .unwrap();
    ca.submit(&csr("Alice"), &as_requester("User", "alice"))
        .await
        .unwrap();
    // once revoked, alice may enroll again
    ca.revoke(&serial, 4, &a).await.unwrap();
    let second = ca
        .submit(&csr("Alice"), &as_requester("OnceUser", "alice"))
        .await
        .unwrap();
    assert!(ca
        .submit(&csr("Alice"), &as_requester("OnceUser", "alice"))
        .await
        .is_err());
    // renewal opens renewal_overlap before expiry: alice's one-year certificate
    // is inside a 400-day window, so she may renew...
    ca.set_template(&a, "OnceUser", "validity", "2y")
        .await
        .unwrap();
    ca.set_template(&a, "OnceUser", "renewal_overlap", "400d")
        .await
        .unwrap();
    assert!(second.serial.is_some());
    ca.submit(&csr("Alice"), &as_requester("OnceUser", "alice"))
        .await
        .unwrap();
    // ...but her new two-year certificate is not
    assert!(ca
        .submit(&csr("Alice"), &as_requester("OnceUser", "alice"))
        .await
        .is_err());
}

/// Weakness: issuing the CA exchange certificate and the service's TLS
/// certificate leaves an audit record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_and_tls_certificates_are_audited() {
    let (_dir, ca) = new_ca().await;
    ca.current_exchange_certificate().await.unwrap();
    ca.server_tls_identity(&["localhost".into()]).await.unwrap();
    let records = ca.audit_list(&admin(), None, 1000).await.unwrap();
    let actions: Vec<String> = records.iter().map(|r| r.entry.action.clone()).collect();
    assert!(
        actions.iter().any(|a| a == "exchange certificate issued"),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a == "TLS server certificate issued"),
        "{actions:?}"
    );
    // the records name the issued rows, and the chain still verifies
    assert!(records
        .iter()
        .filter(|r| r.entry.action.ends_with("certificate issued"))
        .all(|r| r.entry.target.parse::<i64>().is_ok()));
    assert!(ca.audit_verify(&admin()).await.unwrap().problems.is_empty());
}

/// Weakness: exchange keys stay out of backups unless the local administrator
/// asks; a Backup Operator cannot ask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_leave_out_exchange_keys_unless_the_local_administrator_asks() {
    let (dir, ca) = new_ca().await;
    ca.current_exchange_certificate().await.unwrap();
    let pass = b"backup passphrase";
    let has_xchg = |m: &lockbox_engine::backup::Manifest| {
        m.files.iter().any(|f| f.path.starts_with("keys/xchg-"))
    };
    let m = ca
        .backup(&admin(), &dir.path().join("b1"), pass)
        .await
        .unwrap();
    assert!(!has_xchg(&m), "{:?}", m.files);
    assert!(m.files.iter().any(|f| f.path == "keys/ca.key"));
    let with = BackupOptions {
        include_exchange_keys: true,
    };
    let m = ca
        .backup_with(&admin(), &dir.path().join("b2"), pass, with)
        .await
        .unwrap();
    assert!(has_xchg(&m), "{:?}", m.files);
    let operator = Actor {
        name: "bob".into(),
        groups: vec![],
        roles: vec![Role::BackupOperator],
        local_admin: false,
    };
    let e = ca
        .backup_with(&operator, &dir.path().join("b3"), pass, with)
        .await
        .unwrap_err();
    assert_eq!(e.code(), codes::E_ACCESSDENIED, "{e}");
    assert!(!dir.path().join("b3").exists());
    // restored without exchange keys, the CA makes a new exchange certificate
    let home2 = dir.path().join("restored");
    let r = lockbox_engine::backup::restore(&dir.path().join("b1"), &home2, pass, false, "admin")
        .await
        .unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let old = ca.current_exchange_certificate().await.unwrap();
    let ca2 = Ca::open(&home2).await.unwrap();
    let new = ca2.current_exchange_certificate().await.unwrap();
    assert_ne!(old, new);
    assert_eq!(ca2.exchange_certificates().await.unwrap(), vec![new]);
}
