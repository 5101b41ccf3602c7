//! Regression tests for issue 12 items 6, 7, 9, 11, 12 and 13: who may sign
//! recovery blobs and exports, audit tamper evidence, case-insensitive
//! recovery search, KRA events after revocation, removing the last agent of
//! archived keys, and owner identity across export/import.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod common;

use std::str::FromStr;

use der::Encode;
use lockbox_client::recover_from_blob;
use lockbox_client::{
    build_archival_request, check_exchange_certificate, ArchivalOptions, KeyPayload,
};
use lockbox_codec::oids;
use lockbox_crypto::cms::{envelope, sign_data, Recipient};
use lockbox_crypto::keytransport::KeyTransport;
use lockbox_crypto::symmetric::ContentCipher;
use lockbox_crypto::{KeyHandle, KeySpec, SoftwareKey};
use lockbox_engine::certbuild::{
    ca_extensions, decode_certificate, sign_certificate, sign_request, CertSpec,
};
use lockbox_engine::period::now;
use lockbox_engine::Ca;
use x509_cert::name::Name;

use common::{admin, archive, new_ca, sql, submit_options as opts};

/// Issues a KRA certificate (RSA) for `cn` and returns its key and DER.
async fn issue_kra(ca: &Ca, cn: &str) -> (SoftwareKey, Vec<u8>) {
    let (key, issued) = common::issue_kra(ca, cn, "x").await;
    let der = ca.certificate(issued.request_id).await.unwrap();
    (key, der)
}

/// A CA with one KRA required.
async fn ca_with_kra(dir: &std::path::Path, name: &str) -> (Ca, SoftwareKey, Vec<u8>) {
    let ca = new_ca(dir, name).await;
    let (key, cert) = issue_kra(&ca, &format!("{name} Agent")).await;
    ca.set_kra_required(&admin(), 1).await.unwrap();
    (ca, key, cert)
}

fn self_signed(key: &SoftwareKey, cn: &str) -> Vec<u8> {
    let name = Name::from_str(&format!("CN={cn}")).unwrap();
    sign_certificate(
        key,
        CertSpec {
            issuer: name.clone(),
            subject: name,
            spki: key.public_key_info().clone(),
            serial: vec![0x17],
            not_before: now() - 60,
            not_after: now() + 86_400,
            extensions: vec![],
        },
    )
    .unwrap()
    .to_der()
    .unwrap()
}

// ----- item 6 ---------------------------------------------------------------

#[tokio::test]
async fn blobs_signed_by_an_end_entity_certificate_of_the_ca_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let (ca, kra_key, kra_cert) = ca_with_kra(&d.path().join("ca"), "Contoso CA").await;
    let ca_der = ca.ca_certificate_der().unwrap();
    let a = admin();
    // a genuine blob recovers
    let o = archive(
        &ca,
        "Bob Example",
        "bob@contoso.com",
        "bob@contoso.com",
        "bob",
    )
    .await;
    let blob = ca.get_key_by_request(&a, o.request_id).await.unwrap();
    recover_from_blob(&blob.blob, &ca_der, &kra_key, &kra_cert).unwrap();

    // the attacker holds an end-entity encryption certificate issued by the CA
    let attacker = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let p = ca
        .submit(
            &sign_request(&attacker, Name::from_str("CN=Mallory").unwrap(), vec![]).unwrap(),
            &opts(Some("User"), "mallory"),
        )
        .await
        .unwrap();
    let attacker_cert = ca.certificate(p.request_id).await.unwrap();
    // and a key of its own behind a self-signed "Bob Example" certificate
    let planted = SoftwareKey::generate(KeySpec::P256).unwrap();
    let fake_bob = self_signed(&planted, "Bob Example");
    let kra = decode_certificate(&kra_cert).unwrap();
    let env = envelope(
        planted.pkcs8_der(),
        &[Recipient::from_certificate(&kra)],
        ContentCipher::Aes256Cbc,
        KeyTransport::RsaPkcs1v15,
    )
    .unwrap();
    let forged = sign_data(
        &attacker,
        &decode_certificate(&attacker_cert).unwrap(),
        oids::ID_DATA,
        &env,
        &[fake_bob.clone(), attacker_cert.clone(), ca_der.clone()],
    )
    .unwrap();
    let err = recover_from_blob(&forged, &ca_der, &kra_key, &kra_cert)
        .err()
        .expect("a blob signed by an end-entity certificate must be refused");
    assert!(
        err.to_string().contains("not signed by the trusted CA"),
        "{err}"
    );

    // the CA's own key over a self-signed user certificate: refused too
    let ca_cert = decode_certificate(&ca_der).unwrap();
    let swapped = sign_data(
        ca.signing_key().unwrap().as_ref(),
        &ca_cert,
        oids::ID_DATA,
        &env,
        &[fake_bob, ca_der.clone()],
    )
    .unwrap();
    let err = recover_from_blob(&swapped, &ca_der, &kra_key, &kra_cert)
        .err()
        .expect("a user certificate the CA did not issue must be refused");
    assert!(
        err.to_string().contains("not issued by the trusted CA"),
        "{err}"
    );

    // a renewed certificate of the same CA (same subject, cA, keyCertSign,
    // signed by the trusted certificate's key) may sign
    let new_key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let renewed = sign_certificate(
        ca.signing_key().unwrap().as_ref(),
        CertSpec {
            issuer: ca_cert.tbs_certificate().subject().clone(),
            subject: ca_cert.tbs_certificate().subject().clone(),
            spki: new_key.public_key_info().clone(),
            serial: vec![0x52],
            not_before: now() - 60,
            not_after: now() + 86_400,
            extensions: ca_extensions(new_key.public_key_info(), false).unwrap(),
        },
    )
    .unwrap();
    let user = blob_user_certificate(&blob.blob);
    let genuine_env = lockbox_crypto::cms::verify_signed_data(&blob.blob)
        .unwrap()
        .econtent;
    let by_renewed = sign_data(
        &new_key,
        &renewed,
        oids::ID_DATA,
        &genuine_env,
        &[user, renewed.to_der().unwrap()],
    )
    .unwrap();
    recover_from_blob(&by_renewed, &ca_der, &kra_key, &kra_cert).unwrap();

    // key-history exports: the same rule
    let err = lockbox_engine::export::open_key_history(&forged, &ca_der, &kra_key, &kra_cert)
        .expect_err("an export signed by an end-entity certificate must be refused");
    assert!(err.to_string().contains("trusted source CA"), "{err}");
}

fn blob_user_certificate(blob: &[u8]) -> Vec<u8> {
    let sd = lockbox_crypto::cms::verify_signed_data(blob).unwrap();
    sd.certificates
        .into_iter()
        .find(|c| {
            !decode_certificate(c)
                .unwrap()
                .tbs_certificate()
                .extensions()
                .map(|e| e.iter().any(|x| x.extn_id == oids::CE_BASIC_CONSTRAINTS))
                .unwrap_or(false)
        })
        .unwrap()
}

// ----- item 7 ---------------------------------------------------------------

#[tokio::test]
async fn audit_verify_names_a_truncated_tail_deleted_heads_and_a_recomputed_chain() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("ca");
    let a = admin();
    let last;
    {
        let ca = new_ca(&home, "Contoso CA").await;
        for i in 0..5 {
            let key = SoftwareKey::generate(KeySpec::P256).unwrap();
            let csr =
                sign_request(&key, Name::from_str(&format!("CN=u{i}")).unwrap(), vec![]).unwrap();
            ca.submit(&csr, &opts(Some("User"), &format!("u{i}")))
                .await
                .unwrap();
        }
        let report = ca.audit_verify(&a).await.unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert!(
            report.external_heads >= 5,
            "every commit is sealed: {report:?}"
        );
        last = report.records;
        // the head file is private
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(home.join(lockbox_engine::HEADS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }
    let check = |what: &'static str, needle: &'static str, position: i64| {
        let d = d.path().to_path_buf();
        let home = home.clone();
        async move {
            let copy = d.join(what);
            common::copy_home(&home, &copy).await;
            (copy, needle, position)
        }
    };
    // 1. the newest records and their heads deleted (a truncated tail)
    let (copy, needle, position) = check("truncated", "truncated tail", last - 1).await;
    sql(
        &copy,
        &[
            format!("DELETE FROM audit_log WHERE seq >= {}", last - 1),
            format!("DELETE FROM audit_heads WHERE seq >= {}", last - 1),
        ],
    )
    .await;
    expect_problem(&copy, needle, position).await;
    // 2. every signed head deleted from the database
    let (copy, needle, position) = check("heads", "missing from the database", 1).await;
    sql(&copy, &["DELETE FROM audit_heads".to_string()]).await;
    expect_problem(&copy, needle, position).await;
    // 3. a record rewritten, the chain recomputed, the heads deleted
    let (copy, needle, position) = check("recomputed", "rewritten", 3).await;
    let records = {
        let ca = Ca::open(&copy).await.unwrap();
        ca.audit_list(&a, None, 10_000).await.unwrap()
    };
    let mut statements = vec!["DELETE FROM audit_heads".to_string()];
    let mut prev = records[1].hash.clone();
    for r in records.iter().skip(2) {
        let mut entry = r.entry.clone();
        if r.seq == 3 {
            entry.target = "999".into();
        }
        let hash = lockbox_engine::chain_hash(&lockbox_store::AuditRecord::chain_input(
            r.seq, &entry, &prev,
        ));
        statements.push(format!(
            "UPDATE audit_log SET target = '{}', prev_hash = '{prev}', hash = '{hash}' WHERE seq = {}",
            entry.target, r.seq
        ));
        prev = hash;
    }
    sql(&copy, &statements).await;
    expect_problem(&copy, needle, position).await;
    // 4. the head file outside the database removed
    let (copy, needle, position) = check("nofile", "is missing", 0).await;
    std::fs::remove_file(copy.join(lockbox_engine::HEADS_FILE)).unwrap();
    expect_problem(&copy, needle, position).await;
}

async fn expect_problem(home: &std::path::Path, needle: &str, position: i64) {
    let ca = Ca::open(home).await.unwrap();
    let report = ca.audit_verify(&admin()).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.problem.contains(needle) && p.position == position),
        "{needle} at {position}: {:?}",
        report.problems
    );
}

// ----- item 9 ---------------------------------------------------------------

#[tokio::test]
async fn recovery_search_ignores_case_in_names() {
    let d = tempfile::tempdir().unwrap();
    let (ca, _, _) = ca_with_kra(&d.path().join("ca"), "Contoso CA").await;
    let a = admin();
    ca.add_principal(
        &a,
        "Bobby",
        false,
        Some("Bobby@Contoso.com".into()),
        None,
        Some("CONTOSO\\Bobby".into()),
        None,
        false,
    )
    .await
    .unwrap();
    let o = archive(
        &ca,
        "Bob",
        "Bob.Upn@Contoso.com",
        "Bob.Mail@Contoso.com",
        "Bobby",
    )
    .await;
    for token in [
        "bob",
        "BOB",
        "bob.upn@contoso.com",
        "BOB.MAIL@CONTOSO.COM",
        "contoso\\bobby",
        "bobby",
    ] {
        let found = ca.find_candidates(&a, token).await.unwrap();
        assert_eq!(found.len(), 1, "token {token}");
        assert_eq!(found[0].request_id, o.request_id);
    }
    assert!(ca.find_candidates(&a, "bo").await.unwrap().is_empty());
}

// ----- item 11 --------------------------------------------------------------

async fn count_events(ca: &Ca, id: i64, needle: &str) -> usize {
    ca.events(&admin(), 1000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_id == id && e.message.contains(needle))
        .count()
}

#[tokio::test]
async fn a_kra_revoked_with_lockbox_revoke_is_logged_once() {
    let d = tempfile::tempdir().unwrap();
    let a = admin();
    let (ca, _, kra_cert) = ca_with_kra(&d.path().join("ca"), "Contoso CA").await;
    archive(&ca, "Ann", "ann@contoso.com", "ann@contoso.com", "ann").await;
    let serial = lockbox_engine::cert_fields(&kra_cert).unwrap().serial;
    // revoked through `lockbox revoke`, not a kra command: logged at revocation
    ca.revoke(&serial, 1, &a).await.unwrap();
    assert_eq!(count_events(&ca, 84, "revoked").await, 1);
    assert_eq!(count_events(&ca, 98, "").await, 1);
    // archival is refused, without a new event per request
    for cn in ["Ann Two", "Ann Three"] {
        let key = SoftwareKey::generate(KeySpec::P256).unwrap();
        let csr = sign_request(&key, Name::from_str(&format!("CN={cn}")).unwrap(), vec![]).unwrap();
        let xchg = check_exchange_certificate(
            &ca.current_exchange_certificate().await.unwrap(),
            &ca.ca_certificate_der().unwrap(),
        )
        .unwrap();
        let req = build_archival_request(
            &key,
            &csr,
            &xchg,
            &ArchivalOptions {
                template: Some("ExchangeUser".into()),
                cipher: ContentCipher::Aes256Cbc,
                transport: KeyTransport::RsaPkcs1v15,
                payload: KeyPayload::Pkcs8,
            },
        )
        .unwrap();
        let err = ca.submit(&req, &opts(None, "ann")).await.err().unwrap();
        assert_eq!(err.code(), 0x8009_400B, "{err}");
    }
    assert_eq!(count_events(&ca, 84, "revoked").await, 1, "no duplicates");
    assert_eq!(count_events(&ca, 98, "").await, 1, "no duplicates");
}

#[tokio::test]
async fn a_kra_found_revoked_at_archival_time_is_logged_once() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("ca");
    let (ca, _, kra_cert) = ca_with_kra(&home, "Contoso CA").await;
    let serial = lockbox_engine::cert_fields(&kra_cert).unwrap().serial;
    drop(ca);
    // the row revoked behind the CA's back (no revocation-time check ran)
    sql(
        &home,
        &[format!(
            "UPDATE requests SET disposition = 'revoked', revoked_at = 1, revocation_reason = 1 WHERE serial = '{serial}'"
        )],
    )
    .await;
    let ca = Ca::open(&home).await.unwrap();
    for _ in 0..2 {
        let key = SoftwareKey::generate(KeySpec::P256).unwrap();
        let csr = sign_request(&key, Name::from_str("CN=Ann").unwrap(), vec![]).unwrap();
        let xchg = check_exchange_certificate(
            &ca.current_exchange_certificate().await.unwrap(),
            &ca.ca_certificate_der().unwrap(),
        )
        .unwrap();
        let req = build_archival_request(
            &key,
            &csr,
            &xchg,
            &ArchivalOptions {
                template: Some("ExchangeUser".into()),
                cipher: ContentCipher::Aes256Cbc,
                transport: KeyTransport::RsaPkcs1v15,
                payload: KeyPayload::Pkcs8,
            },
        )
        .unwrap();
        assert!(ca.submit(&req, &opts(None, "ann")).await.is_err());
    }
    assert_eq!(count_events(&ca, 84, "Contoso CA Agent").await, 1);
    assert_eq!(count_events(&ca, 98, "").await, 1);
}

// ----- item 12 --------------------------------------------------------------

#[tokio::test]
async fn removing_the_last_agent_of_archived_keys_needs_force() {
    let d = tempfile::tempdir().unwrap();
    let a = admin();
    let (ca, _, kra_a) = ca_with_kra(&d.path().join("ca"), "Contoso CA").await;
    let only_a = archive(&ca, "Ann", "ann@contoso.com", "ann@contoso.com", "ann").await;
    let (_, kra_b) = issue_kra(&ca, "Second Agent").await;
    ca.set_kra_required(&a, 2).await.unwrap();
    let both = archive(&ca, "Ben", "ben@contoso.com", "ben@contoso.com", "ben").await;
    let thumb = |der: &[u8]| lockbox_engine::cert_fields(der).unwrap().thumbprint;
    let err = ca
        .kra_remove(&a, &thumb(&kra_a), false)
        .await
        .expect_err("refused without --force");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("request {}", only_a.request_id))
            && msg.contains(only_a.serial.as_deref().unwrap())
            && !msg.contains(&format!("request {} ", both.request_id)),
        "{msg}"
    );
    assert_eq!(err.code(), lockbox_engine::codes::E_INVALID_STATE);
    // an agent whose keys another agent can also open goes without --force
    if let Err(e) = ca.kra_remove(&a, &thumb(&kra_b), false).await {
        panic!("B is not the last agent of any key: {e}");
    }
    ca.kra_remove(&a, &thumb(&kra_a), true).await.unwrap();
    assert!(ca.kra_list(&a).await.unwrap().is_empty());
}

// ----- item 13 --------------------------------------------------------------

#[tokio::test]
async fn exported_keys_keep_their_owner_identity_on_the_destination() {
    use lockbox_engine::export::Selection;
    use lockbox_engine::import::ImportOptions;
    let d = tempfile::tempdir().unwrap();
    let a = admin();
    let (src, src_kra_key, src_kra_cert) = ca_with_kra(&d.path().join("src"), "Source CA").await;
    src.add_principal(
        &a,
        "alice",
        false,
        Some("alice@contoso.com".into()),
        Some("alice.mail@contoso.com".into()),
        Some("CONTOSO\\alice".into()),
        None,
        false,
    )
    .await
    .unwrap();
    // the certificate names differ from the directory names
    archive(
        &src,
        "Alice Example",
        "ae@old.contoso.com",
        "ae@old.contoso.com",
        "alice",
    )
    .await;
    let dest_key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let dest_cert = self_signed(&dest_key, "Dest Export");
    let export = src
        .export_keys(
            &a,
            &Selection::User("Alice Example".into()),
            &dest_cert,
            &src_kra_key,
            &src_kra_cert,
        )
        .await
        .unwrap();
    let (dst, _, _) = ca_with_kra(&d.path().join("dst"), "Dest CA").await;
    dst.set_foreign_enabled(&a, true).await.unwrap();
    let (_, _, items) = dst
        .import_key_history(
            &a,
            &export.file,
            &src.ca_certificate_der().unwrap(),
            &dest_key,
            &dest_cert,
            "alice.lbx",
            &ImportOptions {
                foreign: true,
                keys: true,
            },
        )
        .await
        .unwrap();
    assert!(items.iter().any(|i| i.outcome == "archived"), "{items:?}");
    for token in [
        "alice@contoso.com",
        "CONTOSO\\alice",
        "contoso\\ALICE",
        "alice",
        "alice.mail@contoso.com",
        "Alice Example",
    ] {
        assert_eq!(
            dst.find_candidates(&a, token).await.unwrap().len(),
            1,
            "token {token}"
        );
    }
}
