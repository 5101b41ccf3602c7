//! Recovery candidate search by every token type, restrictions and auditing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod common;

use std::str::FromStr;

use der::asn1::OctetString;
use lockbox_crypto::{KeySpec, SoftwareKey};
use lockbox_engine::certbuild::sign_request;
use lockbox_engine::{Ca, Role};
use x509_cert::name::Name;

use common::{admin, archive, issue_kra, new_ca, submit_options};

async fn setup() -> (tempfile::TempDir, Ca) {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), "Contoso CA").await;
    let a = admin();
    issue_kra(&ca, "Agent", "x").await;
    ca.set_kra_required(&a, 1).await.unwrap();
    (dir, ca)
}

#[tokio::test]
async fn every_token_type_finds_the_key_and_only_archived_rows_count() {
    let (_d, ca) = setup().await;
    let a = admin();
    ca.add_principal(
        &a,
        "alice",
        false,
        Some("alice@contoso.com".into()),
        None,
        Some("CONTOSO\\alice".into()),
        None,
        false,
    )
    .await
    .unwrap();
    let o = archive(
        &ca,
        "Alice Example",
        "alice@contoso.com",
        "alice.example@contoso.com",
        "CONTOSO\\alice",
    )
    .await;
    let rec = ca.request(o.request_id).await.unwrap();
    let f = rec.cert.clone().unwrap();
    let spaced = |h: &str| {
        h.as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
            .collect::<Vec<_>>()
            .join(" ")
    };
    for token in [
        "Alice Example".to_string(),
        "alice@contoso.com".to_string(),
        "alice.example@contoso.com".to_string(),
        "CONTOSO\\alice".to_string(),
        "alice".to_string(),
        f.serial.clone(),
        spaced(&f.serial),
        spaced(&f.thumbprint),
        f.key_id.clone(),
    ] {
        let found = ca.find_candidates(&a, &token).await.unwrap();
        assert_eq!(found.len(), 1, "token {token}");
        assert_eq!(found[0].request_id, o.request_id);
    }
    // a certificate without an archived key is no candidate
    let plain = ca
        .submit(
            &sign_request(
                &SoftwareKey::generate(KeySpec::P256).unwrap(),
                Name::from_str("CN=Alice Example").unwrap(),
                vec![],
            )
            .unwrap(),
            &submit_options(Some("User"), "x"),
        )
        .await
        .unwrap();
    assert!(plain.serial.is_some());
    assert_eq!(
        ca.find_candidates(&a, "Alice Example").await.unwrap().len(),
        1
    );
    assert!(ca
        .find_candidates(&a, "nobody@nowhere")
        .await
        .unwrap()
        .is_empty());
    // retrieval is audited with the request ID
    ca.get_key(&a, &f.serial).await.unwrap();
    let audit = ca.audit_list(&a, None, 1000).await.unwrap();
    assert!(audit
        .iter()
        .any(|r| r.entry.action == "retrieved an archived key"
            && r.entry.target == o.request_id.to_string()));
}

#[tokio::test]
async fn only_managers_within_their_restrictions_search_and_retrieve() {
    let (_d, ca) = setup().await;
    let a = admin();
    for (n, g) in [("alice", "Sales"), ("bob", "Engineering")] {
        ca.add_principal(&a, n, false, None, None, None, None, false)
            .await
            .unwrap();
        // the group may exist already (second iteration)
        let _ = ca
            .add_principal(&a, g, true, None, None, None, None, false)
            .await;
        ca.add_member(&a, g, n).await.unwrap();
    }
    let oa = archive(&ca, "Alice", "alice@c.com", "alice@c.com", "alice").await;
    let ob = archive(&ca, "Bob", "bob@c.com", "bob@c.com", "bob").await;
    ca.add_principal(&a, "max", false, None, None, None, None, false)
        .await
        .unwrap();
    ca.add_principal(&a, "kra-holder", false, None, None, None, None, false)
        .await
        .unwrap();
    ca.set_role(&a, "max", Role::CertificateManager, true)
        .await
        .unwrap();
    ca.set_restrictions(&a, "max", vec!["Sales".into()], vec![])
        .await
        .unwrap();
    let max = ca.actor_for("max").await.unwrap();
    let nobody = ca.actor_for("kra-holder").await.unwrap();
    // a principal without the manager role may neither search nor retrieve (a KRA cannot retrieve)
    assert!(ca.find_candidates(&nobody, "Alice").await.is_err());
    assert!(ca.get_key_by_request(&nobody, oa.request_id).await.is_err());
    // the restricted manager sees and retrieves Sales only
    assert_eq!(ca.find_candidates(&max, "Alice").await.unwrap().len(), 1);
    assert!(ca.find_candidates(&max, "Bob").await.unwrap().is_empty());
    assert!(ca.get_key_by_request(&max, oa.request_id).await.is_ok());
    let e = ca
        .get_key_by_request(&max, ob.request_id)
        .await
        .unwrap_err();
    assert_eq!(e.code(), 0x8009_4009);
    let audit = ca.audit_list(&a, None, 1000).await.unwrap();
    assert!(audit.iter().any(|r| r.entry.outcome == "refused"
        && r.entry.actor == "max"
        && r.entry.category == "keys"));
    let _ = OctetString::new(vec![1]).unwrap();
}
