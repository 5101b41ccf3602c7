//! Issue 14: the CA exchange keys live in the database, sealed to the home's
//! exchange wrapping key, so every node of a CA (each with a copy of the
//! home, one database) uses the exchange certificate any node made, and of
//! nodes renewing at once exactly one records a new certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::str::FromStr;

use common::{admin, archive, issue_kra, new_ca, submit_options};
use lockbox_crypto::{KeySpec, SoftwareKey};
use lockbox_engine::{Ca, Disposition};
use x509_cert::name::Name;

/// Node B (a copy of the home taken before node A made its exchange
/// certificate) opens archival requests encrypted to A's certificate: the
/// key came from the database, not from a file (there is none).
#[tokio::test]
async fn a_second_node_opens_archival_to_the_first_nodes_exchange_certificate() {
    let d = tempfile::tempdir().unwrap();
    let a_home = d.path().join("a");
    let ca_a = new_ca(&a_home, "Nodes CA").await;
    issue_kra(&ca_a, "KRA One", "admin").await;
    ca_a.set_kra_required(&admin(), 1).await.unwrap();
    // node B's home is copied now, before any exchange certificate exists
    let b_home = d.path().join("b");
    common::copy_home(&a_home, &b_home).await;
    let shared_db = common::database_url(&a_home);
    if !common::on_postgres() {
        // SQLite: point B at A's file, as PostgreSQL nodes share one database
        let cfg = std::fs::read_to_string(b_home.join("lockbox.toml")).unwrap();
        let path = shared_db.strip_prefix("sqlite:").unwrap();
        std::fs::write(
            b_home.join("lockbox.toml"),
            cfg.replace(
                "url = \"sqlite:ca.db\"",
                &format!("url = \"sqlite:{path}\""),
            ),
        )
        .unwrap();
        std::fs::remove_file(b_home.join("ca.db")).unwrap();
    } else {
        let fresh = common::database_url(&b_home);
        let cfg = std::fs::read_to_string(b_home.join("lockbox.toml")).unwrap();
        std::fs::write(b_home.join("lockbox.toml"), cfg.replace(&fresh, &shared_db)).unwrap();
    }
    let ca_b = Ca::open(&b_home).await.unwrap();

    let out = archive(
        &ca_a,
        "Alice",
        "alice@contoso.com",
        "alice@contoso.com",
        "alice",
    )
    .await;
    assert_eq!(out.disposition, Disposition::Issued);
    let xchg_a = ca_a.current_exchange_certificate().await.unwrap();
    assert_eq!(ca_b.current_exchange_certificate().await.unwrap(), xchg_a);
    // no key file: the key is in the database only
    let files: Vec<String> = std::fs::read_dir(a_home.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files
            .iter()
            .all(|f| !f.starts_with("xchg-") || f == "xchg-wrap.key"),
        "{files:?}"
    );
    // B opens a request made to A's certificate
    let out = archive(&ca_b, "Bob", "bob@contoso.com", "bob@contoso.com", "bob").await;
    assert_eq!(out.disposition, Disposition::Issued, "{}", out.message);
    assert!(out.archived);
    // a home whose wrapping key differs opens nothing of this database
    std::fs::remove_file(b_home.join("keys/xchg-wrap.key")).unwrap();
    let ca_c = Ca::open(&b_home).await.unwrap();
    let key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let csr =
        lockbox_engine::certbuild::sign_request(&key, Name::from_str("CN=Carol").unwrap(), vec![])
            .unwrap();
    let req = common::exchange_user_request(&ca_a, &key, &csr).await;
    let e = ca_c
        .submit(&req, &submit_options(None, "carol"))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("exchange wrapping key"),
        "a foreign wrapping key must not open the sealed exchange key: {e}"
    );
}

/// Of two CA instances on one database renewing at once, exactly one
/// records an exchange certificate, and both use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_renewing_at_once_record_one_exchange_certificate() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("ca");
    drop(new_ca(&home, "Race CA").await);
    let (a, b) = (
        Ca::open(&home).await.unwrap(),
        Ca::open(&home).await.unwrap(),
    );
    let (xa, xb) = tokio::join!(
        a.current_exchange_certificate(),
        b.current_exchange_certificate()
    );
    let (xa, xb) = (xa.unwrap(), xb.unwrap());
    assert_eq!(xa, xb);
    assert_eq!(a.exchange_certificates().await.unwrap(), vec![xa.clone()]);
    let rows = a
        .view(&admin(), "CertificateTemplate=CAExchange", 100)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one exchange certificate row");
}

/// The exchange private key goes out only to the local administrator (a CA
/// administrator over the network is refused), and is the key of the
/// current exchange certificate.
#[tokio::test]
async fn only_the_local_administrator_exports_an_exchange_key() {
    let d = tempfile::tempdir().unwrap();
    let ca = new_ca(&d.path().join("ca"), "Export CA").await;
    let remote_admin = lockbox_engine::Actor {
        name: "alice".into(),
        groups: vec![],
        roles: vec![lockbox_engine::Role::CaAdministrator],
        local_admin: false,
    };
    let e = ca
        .export_exchange_key(&remote_admin, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), lockbox_engine::ErrorKind::Forbidden, "{e}");
    let pem = ca.export_exchange_key(&admin(), None).await.unwrap();
    let key = lockbox_engine::load_private_key(pem.as_bytes(), None).unwrap();
    let xchg = ca.current_exchange_certificate().await.unwrap();
    let cert = lockbox_engine::certbuild::decode_certificate(&xchg).unwrap();
    assert_eq!(
        lockbox_crypto::KeyHandle::public_key_info(&key),
        cert.tbs_certificate().subject_public_key_info()
    );
}

/// A sealed exchange key changed in the database (a DBA, a damaged dump) is
/// refused before anything is decrypted, with the one error every failure
/// gives (no padding oracle on the wrapping key): replaced, truncated, or
/// (on PostgreSQL, which can flip a byte in SQL) with one padding byte changed.
#[tokio::test]
async fn a_tampered_sealed_key_is_refused_with_one_error() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("ca");
    let ca = new_ca(&home, "Tamper CA").await;
    let good = ca.export_exchange_key(&admin(), None).await.unwrap();
    assert!(good.contains("PRIVATE KEY"));
    let mut messages = vec![];
    let mut tampers = vec![
        format!(
            "UPDATE exchange_keys SET sealed_key = {}",
            common::blob_literal(&[7u8; 400])
        ),
        format!(
            "UPDATE exchange_keys SET sealed_key = {}",
            common::blob_literal(&[1u8; 10])
        ),
    ];
    if common::on_postgres() {
        // the envelope's last byte (CBC padding) flipped
        tampers.push(
            "UPDATE exchange_keys SET sealed_key = set_byte(sealed_key, length(sealed_key) - 1, \
             get_byte(sealed_key, length(sealed_key) - 1) # 1)"
                .into(),
        );
    }
    for tamper in tampers {
        let copy = d.path().join(format!("copy{}", messages.len()));
        common::copy_home(&home, &copy).await;
        common::sql(&copy, &[tamper]).await;
        let c = Ca::open(&copy).await.unwrap();
        let e = c.export_exchange_key(&admin(), None).await.unwrap_err();
        messages.push((e.kind(), e.to_string()));
    }
    assert!(
        messages
            .iter()
            .all(|m| m == &messages[0] && m.1.contains("does not open")),
        "{messages:?}"
    );
}

/// A CAExchange row this CA did not sign (written into the database by
/// someone else, here another CA's exchange certificate with its sealed key)
/// is never handed to clients as the exchange certificate.
#[tokio::test]
async fn an_exchange_certificate_this_ca_did_not_sign_is_ignored() {
    use lockbox_store::{Change, NewRequest, Store};
    let d = tempfile::tempdir().unwrap();
    let (home_a, home_b) = (d.path().join("a"), d.path().join("b"));
    let a = new_ca(&home_a, "Victim CA").await;
    let b = new_ca(&home_b, "Other CA").await;
    let xchg_b = b.current_exchange_certificate().await.unwrap();
    let fields = lockbox_engine::cert_fields(&xchg_b).unwrap();
    let (store_a, store_b) = (
        common::open_store(&common::database_url(&home_a)).await,
        common::open_store(&common::database_url(&home_b)).await,
    );
    let row = store_b
        .get_by_serial(&fields.serial)
        .await
        .unwrap()
        .unwrap();
    let sealed = store_b.exchange_key(&fields.serial).await.unwrap().unwrap();
    store_a
        .insert_request(
            &NewRequest {
                request_der: row.request_der.clone(),
                request_kind: row.request_kind.clone(),
                requester: row.requester.clone(),
                template: Some("CAExchange".into()),
                request_subject: row.request_subject.clone(),
                request_common_name: row.common_name.clone(),
                request_upn: None,
                request_email: None,
                disposition: Disposition::Issued,
                disposition_message: "Issued".into(),
                status_code: 0,
                submitted_at: row.submitted_at,
                cert: row.cert.clone(),
                archived_key: None,
                kra_hashes: None,
                renewal_of: None,
            },
            &[],
        )
        .await
        .unwrap();
    store_a
        .apply(
            &[Change::PutExchangeKey {
                serial: fields.serial.clone(),
                sealed_key: sealed,
                at: 1,
            }],
            &[],
        )
        .await
        .unwrap();
    let a = {
        drop(a);
        Ca::open(&home_a).await.unwrap()
    };
    assert!(
        !a.exchange_certificates().await.unwrap().contains(&xchg_b),
        "another CA's exchange certificate was offered"
    );
    let own = a.current_exchange_certificate().await.unwrap();
    assert_ne!(own, xchg_b);
}
