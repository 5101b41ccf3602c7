//! Roles, role separation, manager restrictions, template permissions, the
//! audit trail's tamper evidence, and KRA states with their events.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod common;

use std::str::FromStr;

use lockbox_crypto::{KeySpec, SoftwareKey};
use lockbox_engine::ErrorKind;
use lockbox_engine::{Actor, Ca, Disposition, SubmitOptions};
use lockbox_engine::{Op, Role};
use x509_cert::name::Name;

use common::{admin, csr, issue_kra, new_ca, sql, submit_options};

async fn submit_as(
    ca: &Ca,
    actor: &Actor,
    template: &str,
) -> Result<lockbox_engine::Outcome, lockbox_engine::EngineError> {
    ca.submit(
        &csr(&actor.name),
        &SubmitOptions {
            template: Some(template.into()),
            requester: actor.name.clone(),
            attributes: vec![],
            actor: Some(actor.clone()),
            on_behalf_of: None,
            renewing: None,
        },
    )
    .await
}

async fn principals(ca: &Ca) {
    let a = admin();
    for (name, roles) in [
        ("ada", vec![Role::CaAdministrator]),
        ("max", vec![Role::CertificateManager]),
        ("bob", vec![Role::BackupOperator]),
        ("aud", vec![Role::Auditor]),
        ("nobody", vec![]),
        (
            "multi",
            vec![Role::CaAdministrator, Role::CertificateManager],
        ),
    ] {
        ca.add_principal(
            &a,
            name,
            false,
            Some(format!("{name}@contoso.com")),
            None,
            Some(format!("CONTOSO\\{name}")),
            None,
            false,
        )
        .await
        .unwrap();
        for r in roles {
            ca.set_role(&a, name, r, true).await.unwrap();
        }
    }
}

/// Returns which operations `who` may perform, as a compact string.
async fn max_of(ca: &Ca) -> lockbox_engine::Actor {
    ca.actor_for("max").await.unwrap()
}

async fn capabilities(ca: &Ca, who: &str) -> String {
    let actor = ca.actor_for(who).await.unwrap();
    let t = ca.template("User").await.unwrap();
    let mut out = String::new();
    let ops: Vec<(&str, Op<'_>)> = vec![
        ("C", Op::Configure),
        ("S", Op::Security),
        ("E", Op::Enroll(&t)),
        (
            "I",
            Op::Officer {
                action: "issue",
                requester: "nobody",
                template: Some("User"),
            },
        ),
        (
            "K",
            Op::RetrieveKey {
                requester: "nobody",
                template: Some("User"),
            },
        ),
        ("V", Op::ReadDatabase),
        ("P", Op::PublishCrl),
        ("B", Op::Backup),
        ("A", Op::ReadAudit),
        ("U", Op::ConfigureAudit),
    ];
    for (code, op) in ops {
        if ca.authorize(&actor, op).await.is_ok() {
            out.push_str(code);
        } else {
            out.push('.');
        }
    }
    out
}

#[tokio::test]
async fn every_role_against_every_operation_with_and_without_separation() {
    let d = tempfile::tempdir().unwrap();
    let ca = new_ca(d.path(), "Contoso CA").await;
    principals(&ca).await;
    //                                  C S E I K V P B A U
    let without = [
        ("ada", "CSEIKVPBA."),
        ("max", "..EIKVP..."),
        ("bob", "..E....B.."),
        ("aud", "..E..V..AU"),
        ("nobody", "..E......."),
        ("multi", "CSEIKVPBA."),
    ];
    for (who, expected) in without {
        assert_eq!(
            capabilities(&ca, who).await,
            expected,
            "{who}, role separation off"
        );
    }
    ca.set_role_separation(&admin(), true).await.unwrap();
    let with = [
        ("ada", "CSE..VP..."),
        ("max", "..EIKVP..."),
        ("bob", "..E....B.."),
        ("aud", "..E..V..AU"),
        ("nobody", "..E......."),
        ("multi", ".........."),
    ];
    for (who, expected) in with {
        assert_eq!(
            capabilities(&ca, who).await,
            expected,
            "{who}, role separation on"
        );
    }
    // the refusal code for a principal holding two roles
    let multi = ca.actor_for("multi").await.unwrap();
    let e = ca.authorize(&multi, Op::ReadDatabase).await.unwrap_err();
    assert_eq!(e.code(), 0x8009_4008);
    // refusals are in the audit trail
    let aud = ca.actor_for("aud").await.unwrap();
    let records = ca.audit_list(&aud, None, 10_000).await.unwrap();
    let refused = records
        .iter()
        .filter(|r| r.entry.outcome == "refused")
        .count();
    assert!(refused >= 20, "refusals audited: {refused}");
    assert!(records
        .iter()
        .any(|r| r.entry.outcome == "refused" && r.entry.actor == "multi"));
    // the console's tail view: the same last records, oldest first, and the count
    let (total, tail) = ca.audit_latest(&aud, 5).await.unwrap();
    let all = ca.audit_list(&aud, None, 1_000_000).await.unwrap();
    assert_eq!(total, all.last().unwrap().seq);
    assert_eq!(tail.len(), 5);
    assert_eq!(tail[..], all[all.len() - 5..]);
    assert!(ca.audit_latest(&max_of(&ca).await, 5).await.is_err());
    // the real operations honour the same decisions
    let max = ca.actor_for("max").await.unwrap();
    let nobody = ca.actor_for("nobody").await.unwrap();
    assert!(ca
        .set_ca_template(&max, "KeyRecoveryAgent", true)
        .await
        .is_err());
    assert!(ca.view(&nobody, "", 10).await.is_err());
    assert!(ca.view(&max, "", 10).await.is_ok());
    let issued = submit_as(&ca, &nobody, "User").await.unwrap();
    let serial = issued.serial.unwrap();
    assert!(ca.revoke(&serial, 1, &nobody).await.is_err());
    assert!(ca.revoke(&serial, 1, &max).await.is_ok());
}

#[tokio::test]
async fn managers_are_restricted_by_subject_group_and_template() {
    let d = tempfile::tempdir().unwrap();
    let ca = new_ca(d.path(), "Contoso CA").await;
    principals(&ca).await;
    let a = admin();
    for u in ["alice", "carol"] {
        ca.add_principal(&a, u, false, None, None, None, None, false)
            .await
            .unwrap();
    }
    ca.add_principal(&a, "Sales", true, None, None, None, None, false)
        .await
        .unwrap();
    ca.add_member(&a, "Sales", "alice").await.unwrap();
    ca.duplicate_template(&a, "User", "ApprovedUser")
        .await
        .unwrap();
    ca.set_template(&a, "ApprovedUser", "requires_approval", "true")
        .await
        .unwrap();
    ca.set_ca_template(&a, "ApprovedUser", true).await.unwrap();
    ca.duplicate_template(&a, "ApprovedUser", "ApprovedOther")
        .await
        .unwrap();
    ca.set_ca_template(&a, "ApprovedOther", true).await.unwrap();
    ca.set_restrictions(&a, "max", vec!["Sales".into()], vec!["ApprovedUser".into()])
        .await
        .unwrap();
    let max = ca.actor_for("max").await.unwrap();
    let alice = ca.actor_for("alice").await.unwrap();
    let carol = ca.actor_for("carol").await.unwrap();
    let r1 = submit_as(&ca, &alice, "ApprovedUser").await.unwrap();
    let r2 = submit_as(&ca, &carol, "ApprovedUser").await.unwrap();
    let r3 = submit_as(&ca, &alice, "ApprovedOther").await.unwrap();
    assert_eq!(r1.disposition, Disposition::Pending);
    assert!(
        ca.issue(r1.request_id, &max).await.is_ok(),
        "alice is in Sales, template allowed"
    );
    let e = ca.issue(r2.request_id, &max).await.unwrap_err();
    assert_eq!(
        e.code(),
        0x8009_4009,
        "carol is outside the manager's groups"
    );
    let e = ca.deny(r3.request_id, &max).await.unwrap_err();
    assert_eq!(e.code(), 0x8009_4009, "template outside the manager's list");
    // an unrestricted manager (the admin, roles not separated) may
    assert!(ca
        .issue(r2.request_id, &ca.actor_for("ada").await.unwrap())
        .await
        .is_ok());
}

#[tokio::test]
async fn template_permissions_allow_and_deny_enrollment() {
    let d = tempfile::tempdir().unwrap();
    let ca = new_ca(d.path(), "Contoso CA").await;
    principals(&ca).await;
    let a = admin();
    ca.set_ca_template(&a, "KeyRecoveryAgent", true)
        .await
        .unwrap();
    let nobody = ca.actor_for("nobody").await.unwrap();
    let e = submit_as(&ca, &nobody, "KeyRecoveryAgent")
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        0x8009_4012,
        "KRA enrollment is for CA administrators by default"
    );
    let e = submit_as(&ca, &nobody, "SubCA").await.unwrap_err();
    assert_eq!(e.code(), 0x8009_4012);
    ca.set_template_permission(
        &a,
        "KeyRecoveryAgent",
        "nobody",
        &["Read".into(), "Enroll".into()],
        true,
    )
    .await
    .unwrap();
    // now the permission check passes and the template's own key rule (RSA only) speaks
    assert_eq!(
        submit_as(&ca, &nobody, "KeyRecoveryAgent")
            .await
            .unwrap_err()
            .code(),
        0x8009_0008
    );
    assert!(submit_as(&ca, &nobody, "User").await.is_ok());
    ca.set_template_permission(&a, "User", "Authenticated Users", &["Enroll".into()], false)
        .await
        .unwrap();
    assert_eq!(
        submit_as(&ca, &nobody, "User").await.unwrap_err().code(),
        0x8009_4012,
        "deny wins"
    );
    assert!(ca
        .set_template_permission(&a, "User", "nobody", &["Fly".into()], true)
        .await
        .is_err());
}

#[tokio::test]
async fn audit_verify_finds_edited_deleted_and_reordered_records() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("ca");
    {
        let ca = new_ca(&home, "Contoso CA").await;
        let a = admin();
        for i in 0..6 {
            ca.submit(
                &csr(&format!("user{i}")),
                &SubmitOptions {
                    template: Some("User".into()),
                    requester: format!("CONTOSO\\u{i}"),
                    attributes: vec![],
                    actor: None,
                    on_behalf_of: None,
                    renewing: None,
                },
            )
            .await
            .unwrap();
        }
        ca.set_ca_template(&a, "KeyRecoveryAgent", true)
            .await
            .unwrap();
        ca.sign_audit_head().await.unwrap();
        let report = ca.audit_verify(&a).await.unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert!(report.records >= 8 && report.signed_heads >= 1);
    }
    let cases: [(&str, Vec<&str>, i64); 3] = [
        (
            "edited",
            vec!["UPDATE audit_log SET target = '999' WHERE seq = 3"],
            3,
        ),
        ("deleted", vec!["DELETE FROM audit_log WHERE seq = 4"], 4),
        (
            "reordered",
            vec![
                "UPDATE audit_log SET seq = -5 WHERE seq = 5",
                "UPDATE audit_log SET seq = 5 WHERE seq = 6",
                "UPDATE audit_log SET seq = 6 WHERE seq = -5",
            ],
            5,
        ),
    ];
    for (what, statements, position) in cases {
        let copy = d.path().join(what);
        common::copy_home(&home, &copy).await;
        sql(&copy, &statements).await;
        let ca = Ca::open(&copy).await.unwrap();
        let report = ca.audit_verify(&admin()).await.unwrap();
        assert!(!report.problems.is_empty(), "{what} not detected");
        assert_eq!(
            report.problems[0].position, position,
            "{what}: {:?}",
            report.problems
        );
    }
    // deleting the tail is caught by the signed head
    let copy = d.path().join("truncated");
    common::copy_home(&home, &copy).await;
    sql(
        &copy,
        &["DELETE FROM audit_log WHERE seq >= (SELECT MAX(seq) FROM audit_heads)"],
    )
    .await;
    let ca = Ca::open(&copy).await.unwrap();
    let report = ca.audit_verify(&admin()).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.problem.contains("signed head")),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn kra_states_statuses_events_and_archival_behaviour() {
    use lockbox_engine::cert_fields;
    use lockbox_engine::certbuild::{
        aki, decode_certificate, sign_certificate, ski, template_extensions, CertSpec,
    };
    use lockbox_engine::period::now;
    use lockbox_engine::template::builtins;
    let d = tempfile::tempdir().unwrap();
    let ca = new_ca(&d.path().join("ca"), "Contoso CA").await;
    let a = admin();
    let ca_cert = decode_certificate(&ca.ca_certificate_der().unwrap()).unwrap();
    let signer = ca.signing_key().unwrap();
    let kra_template = builtins()
        .into_iter()
        .find(|t| t.name == "KeyRecoveryAgent")
        .unwrap();
    // an expired KRA certificate made by this CA
    let key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let spki = lockbox_crypto::KeyHandle::public_key_info(&key).clone();
    let mut exts = template_extensions(&kra_template, false).unwrap();
    exts.push(ski(&spki).unwrap());
    exts.push(aki(ca_cert.tbs_certificate().subject_public_key_info()).unwrap());
    let expired = sign_certificate(
        signer.as_ref(),
        CertSpec {
            issuer: ca_cert.tbs_certificate().subject().clone(),
            subject: Name::from_str("CN=Old Agent").unwrap(),
            spki,
            serial: vec![0x42],
            not_before: now() - 800 * 86_400,
            not_after: now() - 86_400,
            extensions: exts,
        },
    )
    .unwrap();
    let expired_der = der::Encode::to_der(&expired).unwrap();
    let st = ca.kra_add(&a, &expired_der, None, None).await.unwrap();
    assert_eq!(st.status, "expired");
    // a certificate without the KRA EKU is refused when added
    let user = ca
        .submit(&csr("Plain User"), &submit_options(Some("User"), "x"))
        .await
        .unwrap();
    let e = ca
        .kra_add(&a, user.certificate_pem.unwrap().as_bytes(), None, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Key Recovery Agent EKU"));
    // a KRA from another CA: untrusted without chain, revocation unknown without a CRL, valid with one, revoked after revocation
    let other = new_ca(&d.path().join("other"), "Fabrikam CA").await;
    let (_fkey, fcert) = issue_kra(&other, "Fabrikam Agent", "x").await;
    let fpem = fcert.certificate_pem.clone().unwrap();
    let chain = lockbox_codec::pem::encode_pem("CERTIFICATE", &other.ca_certificate_der().unwrap());
    let st = ca.kra_add(&a, fpem.as_bytes(), None, None).await.unwrap();
    assert!(st.status.starts_with("untrusted issuer"), "{}", st.status);
    let crl_path = d.path().join("fabrikam.crl");
    let st = ca
        .kra_add(
            &a,
            fpem.as_bytes(),
            Some(chain.clone().into_bytes()),
            Some(crl_path.display().to_string()),
        )
        .await
        .unwrap();
    assert_eq!(st.status, "revocation unknown (CRL unavailable)");
    std::fs::write(&crl_path, other.publish_crl(&a).await.unwrap().der).unwrap();
    let list = ca.kra_list(&a).await.unwrap();
    assert_eq!(
        list.iter()
            .find(|k| k.subject.contains("Fabrikam"))
            .unwrap()
            .status,
        "valid"
    );
    ca.set_kra_required(&a, 1).await.unwrap();
    assert!(ca.set_kra_required(&a, 3).await.is_err());
    other
        .revoke(&fcert.serial.clone().unwrap(), 1, &a)
        .await
        .unwrap();
    std::fs::write(&crl_path, other.publish_crl(&a).await.unwrap().der).unwrap();
    let (valid, total) = ca.validate_kras().await.unwrap();
    assert_eq!((valid, total), (0, 2));
    let list = ca.kra_list(&a).await.unwrap();
    assert_eq!(
        list.iter()
            .find(|k| k.subject.contains("Fabrikam"))
            .unwrap()
            .status,
        "revoked"
    );
    let events = ca.events(&a, 200).await.unwrap();
    for id in [82, 84, 98] {
        assert!(
            events.iter().any(|e| e.event_id == id),
            "event {id} recorded: {events:?}"
        );
    }
    assert!(events
        .iter()
        .any(|e| e.event_id == 84 && e.message.contains("expired")));
    // entries that cannot be loaded, or are not KRA certificates, get their own status and events
    use lockbox_store::Change;
    let plain_user = ca.certificate(user.request_id).await.unwrap();
    ca.store()
        .apply(
            &[
                Change::AddKra {
                    thumbprint: "bad".into(),
                    cert_der: vec![0x30, 0x03, 0x02, 0x01, 0x00],
                    chain_der: None,
                    crl_source: None,
                    at: now(),
                },
                Change::AddKra {
                    thumbprint: "user".into(),
                    cert_der: plain_user,
                    chain_der: None,
                    crl_source: None,
                    at: now(),
                },
            ],
            &[],
        )
        .await
        .unwrap();
    ca.validate_kras().await.unwrap();
    let list = ca.kra_list(&a).await.unwrap();
    assert_eq!(
        list.iter().find(|k| k.thumbprint == "bad").unwrap().status,
        "cannot be loaded"
    );
    assert_eq!(
        list.iter().find(|k| k.thumbprint == "user").unwrap().status,
        "not a KRA certificate"
    );
    let events = ca.events(&a, 500).await.unwrap();
    assert!(events.iter().any(|e| e.event_id == 85));
    assert!(events
        .iter()
        .any(|e| e.event_id == 84 && e.message.contains("not a KRA certificate")));
    assert_eq!(cert_fields(&expired_der).unwrap().serial, "42");
}

// ---- fix-creds: issue 12 items 3, 4, 5 and the login weaknesses ----

async fn user(ca: &Ca, name: &str, token: bool) -> Option<String> {
    ca.add_principal(
        &admin(),
        name,
        false,
        Some(format!("{name}@contoso.com")),
        None,
        Some(format!("CONTOSO\\{name}")),
        Some(zeroize::Zeroizing::new("correct horse battery".to_string())),
        token,
    )
    .await
    .unwrap()
    .token
}

/// Issue 12 item 3: a second process (another `Ca` on the same home, as the
/// service beside the CLI) stops accepting a token at the next request after
/// the principal is removed, the token revoked, or a role revoked; a principal
/// re-created under the same name does not inherit the old token.
#[tokio::test]
async fn revoked_credentials_stop_working_in_every_process_at_once() {
    let d = tempfile::tempdir().unwrap();
    let cli = new_ca(d.path(), "Contoso CA").await;
    let service = Ca::open(d.path()).await.unwrap();
    let a = admin();
    let token = user(&cli, "max", true).await.unwrap();
    cli.set_role(&a, "max", Role::CertificateManager, true)
        .await
        .unwrap();
    let who = service.authenticate_token(&token).await.unwrap().unwrap();
    assert_eq!(who.name, "max");
    assert!(who.has(Role::CertificateManager));
    // role revocation: next request
    cli.set_role(&a, "max", Role::CertificateManager, false)
        .await
        .unwrap();
    let who = service.authenticate_token(&token).await.unwrap().unwrap();
    assert!(!who.has(Role::CertificateManager));
    // removal in the other process: next request
    cli.remove_principal(&a, "max").await.unwrap();
    assert!(
        service.authenticate_token(&token).await.unwrap().is_none(),
        "a removed principal's token still authenticates (cached)"
    );
    // re-created under the same name (another case): no inheritance
    user(&cli, "MAX", false).await;
    assert!(service.authenticate_token(&token).await.unwrap().is_none());
    // one token revoked, the other still good
    let t1 = cli.add_token(&a, "max").await.unwrap();
    let t2 = cli.add_token(&a, "Max").await.unwrap();
    assert!(service.authenticate_token(&t1).await.unwrap().is_some());
    assert!(service.authenticate_token(&t2).await.unwrap().is_some());
    let ids = cli.tokens(&a, "max").await.unwrap();
    assert_eq!(ids.len(), 2);
    let id1 = t1.split('_').nth(1).unwrap();
    assert!(ids.iter().any(|t| t.id == id1));
    cli.revoke_token(&a, "MAX", id1).await.unwrap();
    assert!(service.authenticate_token(&t1).await.unwrap().is_none());
    assert!(service.authenticate_token(&t2).await.unwrap().is_some());
    assert_eq!(
        cli.revoke_token(&a, "max", id1).await.unwrap_err().code(),
        0x8007_0002
    );
    let records = cli.audit_list(&a, None, 10_000).await.unwrap();
    for action in ["remove principal", "revoke token", "revoke role"] {
        assert!(
            records.iter().any(|r| r.entry.action == action),
            "{action} audited"
        );
    }
}

/// Issue 12 item 3: a client certificate the CA revoked stops authenticating
/// at its next use; `unmap-cert` by serial number removes a mapping.
#[tokio::test]
async fn revoked_or_unmapped_client_certificates_stop_authenticating() {
    let d = tempfile::tempdir().unwrap();
    let ca = new_ca(d.path(), "Contoso CA").await;
    let service = Ca::open(d.path()).await.unwrap();
    let a = admin();
    user(&ca, "max", false).await;
    let mut certs = Vec::new();
    for _ in 0..2 {
        let out = submit_as(&ca, &a, "User").await.unwrap();
        let der = ca.certificate(out.request_id).await.unwrap();
        ca.map_certificate(&a, "MAX", &der).await.unwrap();
        certs.push((out.serial.unwrap(), der));
    }
    for (_, der) in &certs {
        let who = service
            .authenticate_certificate(der)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(who.name, "max");
    }
    let maps = ca.certificate_mappings(&a, "max").await.unwrap();
    assert_eq!(maps.len(), 2);
    assert!(maps.iter().all(|m| m.serial.is_some()));
    ca.revoke(&certs[0].0, 1, &a).await.unwrap();
    assert!(
        service
            .authenticate_certificate(&certs[0].1)
            .await
            .unwrap()
            .is_none(),
        "a revoked client certificate still authenticates"
    );
    // unmap by serial, typed with spaces and upper case
    let spaced: String = certs[1]
        .0
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    ca.unmap_certificate(&a, "max", &spaced).await.unwrap();
    assert!(service
        .authenticate_certificate(&certs[1].1)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        ca.unmap_certificate(&a, "max", &certs[1].0)
            .await
            .unwrap_err()
            .code(),
        0x8007_0002
    );
    let records = ca.audit_list(&a, None, 10_000).await.unwrap();
    assert!(records
        .iter()
        .any(|r| r.entry.action == "unmap certificate"));
}

/// Issue 12 item 4: principal names are case-insensitive everywhere.
#[tokio::test]
async fn principal_names_differing_only_in_case_are_one_name() {
    let d = tempfile::tempdir().unwrap();
    let ca = new_ca(d.path(), "Contoso CA").await;
    principals(&ca).await;
    let a = admin();
    let e = ca
        .add_principal(&a, "MAX", false, None, None, None, None, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "MAX beside max: {e}");
    assert!(ca
        .add_principal(&a, "Max", true, None, None, None, None, false)
        .await
        .is_err());
    // every lookup by another case finds the one principal, with its roles
    let m = ca.actor_for("MAX").await.unwrap();
    assert_eq!(m.name, "max");
    assert!(m.has(Role::CertificateManager));
    // memberships, restrictions and template permissions by another case
    user(&ca, "alice", false).await;
    ca.add_principal(&a, "Sales", true, None, None, None, None, false)
        .await
        .unwrap();
    ca.add_member(&a, "SALES", "ALICE").await.unwrap();
    assert!(ca
        .actor_for("alice")
        .await
        .unwrap()
        .groups
        .contains(&"Sales".to_string()));
    ca.set_restrictions(&a, "MAX", vec!["sales".into()], vec!["user".into()])
        .await
        .unwrap();
    assert_eq!(
        ca.restrictions("max").await.unwrap(),
        (vec!["Sales".to_string()], vec!["User".to_string()])
    );
    let p = ca
        .set_template_permission(&a, "User", "ALICE", &["Enroll".into()], false)
        .await
        .unwrap();
    assert_eq!(p.principal, "alice");
    let alice = ca.actor_for("Alice").await.unwrap();
    assert_eq!(
        submit_as(&ca, &alice, "User").await.unwrap_err().code(),
        0x8009_4012
    );
    // role grants by another case land on the principal
    ca.set_role(&a, "NOBODY", Role::Auditor, true)
        .await
        .unwrap();
    let grants = ca.role_grants(&a).await.unwrap();
    assert!(grants.contains(&("nobody".to_string(), "Auditor".to_string())));
}

/// Issue 12 item 5: restrictions name existing principals and groups, and a
/// restriction on a group restricts its members.
#[tokio::test]
async fn manager_restrictions_resolve_names_and_apply_to_group_members() {
    let d = tempfile::tempdir().unwrap();
    let ca = new_ca(d.path(), "Contoso CA").await;
    principals(&ca).await;
    let a = admin();
    for u in ["alice", "carol", "carl", "dora"] {
        user(&ca, u, false).await;
    }
    for g in ["Sales", "Officers"] {
        ca.add_principal(&a, g, true, None, None, None, None, false)
            .await
            .unwrap();
    }
    ca.add_member(&a, "Sales", "alice").await.unwrap();
    // names that do not resolve are refused
    for (who, groups, templates) in [
        ("ghost@contoso.com", vec![], vec!["User"]),
        ("CONTOSO\\ghost", vec![], vec!["User"]),
        ("maxx", vec!["Sales"], vec![]),
        ("max", vec!["Salez"], vec![]),
        ("max", vec!["alice"], vec![]),
        ("max", vec![], vec!["Usr"]),
    ] {
        assert!(
            ca.set_restrictions(
                &a,
                who,
                groups.iter().map(|s| s.to_string()).collect(),
                templates.iter().map(|s| s.to_string()).collect()
            )
            .await
            .is_err(),
            "restriction of {who} {groups:?} {templates:?} accepted"
        );
    }
    // a UPN or down-level name that resolves is stored under the principal
    ca.set_restrictions(&a, "max@contoso.com", vec!["Sales".into()], vec![])
        .await
        .unwrap();
    assert_eq!(ca.restrictions("max").await.unwrap().0, vec!["Sales"]);
    ca.set_restrictions(&a, "CONTOSO\\max", vec![], vec![])
        .await
        .unwrap();
    // the group holds the role and the restriction; carl gets the role through it
    ca.add_member(&a, "Officers", "carl").await.unwrap();
    ca.set_role(&a, "Officers", Role::CertificateManager, true)
        .await
        .unwrap();
    ca.set_restrictions(&a, "Officers", vec!["Sales".into()], vec![])
        .await
        .unwrap();
    // dora holds the role directly and is a member of the restricted group
    ca.add_member(&a, "Officers", "dora").await.unwrap();
    ca.set_role(&a, "dora", Role::CertificateManager, true)
        .await
        .unwrap();
    ca.duplicate_template(&a, "User", "ApprovedUser")
        .await
        .unwrap();
    ca.set_template(&a, "ApprovedUser", "requires_approval", "true")
        .await
        .unwrap();
    ca.set_ca_template(&a, "ApprovedUser", true).await.unwrap();
    let alice = ca.actor_for("alice").await.unwrap();
    let carol = ca.actor_for("carol").await.unwrap();
    for officer in ["carl", "dora"] {
        let o = ca.actor_for(officer).await.unwrap();
        assert!(o.has(Role::CertificateManager));
        let outside = submit_as(&ca, &carol, "ApprovedUser").await.unwrap();
        let inside = submit_as(&ca, &alice, "ApprovedUser").await.unwrap();
        let e = ca.issue(outside.request_id, &o).await.unwrap_err();
        assert_eq!(e.code(), 0x8009_4009, "{officer} acts outside Sales");
        assert!(ca.issue(inside.request_id, &o).await.is_ok(), "{officer}");
        // view and pending lists hold only the rows the manager may act on
        let rows = ca.view(&o, "", 1000).await.unwrap();
        assert!(rows.iter().all(|r| r.requester == "alice"), "{officer}");
        assert!(rows.iter().any(|r| r.request_id == inside.request_id));
        // the limit counts the rows the manager may read
        let first = ca.view(&o, "", 1).await.unwrap();
        assert_eq!(first.len(), 1, "{officer}");
        assert_eq!(first[0].requester, "alice");
        assert!(!ca
            .pending(&o)
            .await
            .unwrap()
            .iter()
            .any(|r| r.request_id == outside.request_id));
        assert_eq!(
            ca.read_request(&o, outside.request_id)
                .await
                .unwrap_err()
                .code(),
            0x8009_4009
        );
        assert!(
            !ca.may_manage(&o, &ca.request(outside.request_id).await.unwrap())
                .await
        );
    }
    // an unrestricted reader still sees every row
    let ada = ca.actor_for("ada").await.unwrap();
    assert!(ca
        .view(&ada, "", 1000)
        .await
        .unwrap()
        .iter()
        .any(|r| r.requester == "carol"));
}

/// Issue 12 weaknesses: a restricted manager asking for a key outside its
/// restrictions gets 0x80094009, not 0x80070002.
#[tokio::test]
async fn restricted_manager_getkey_outside_restrictions_is_0x80094009() {
    let d = tempfile::tempdir().unwrap();
    let ca = new_ca(d.path(), "Contoso CA").await;
    principals(&ca).await;
    let a = admin();
    user(&ca, "carol", false).await;
    ca.add_principal(&a, "Sales", true, None, None, None, None, false)
        .await
        .unwrap();
    ca.set_restrictions(&a, "max", vec!["Sales".into()], vec![])
        .await
        .unwrap();
    let carol = ca.actor_for("carol").await.unwrap();
    let out = submit_as(&ca, &carol, "User").await.unwrap();
    let id = out.request_id.to_string();
    sql(
        d.path(),
        &[&format!(
            "UPDATE requests SET archived_key = {} WHERE request_id = {id}",
            common::blob_literal(&[0x30, 0x00])
        )],
    )
    .await;
    let max = ca.actor_for("max").await.unwrap();
    let e = ca.get_key(&max, "carol").await.unwrap_err();
    assert_eq!(e.code(), 0x8009_4009, "{e}");
    assert_eq!(
        ca.get_key(&max, "nobody-at-all").await.unwrap_err().code(),
        0x8007_0002
    );
}

/// Issue 12 weaknesses: failed logins are audited without the secret and
/// throttled per (principal, source) pair and per source address;
/// verification leaves the request threads free.
#[tokio::test]
async fn failed_logins_are_audited_and_throttled() {
    use lockbox_engine::{Credential, LOGIN_FAILURES_PER_PAIR};
    let d = tempfile::tempdir().unwrap();
    let ca = new_ca(d.path(), "Contoso CA").await;
    let token = user(&ca, "max", true).await.unwrap();
    let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let wrong = |name: &'static str| Credential::Password {
        name,
        password: "Tr0ub4dor&3-secret",
    };
    // the guesser rotates through the principal's names: one counter
    for n in ["max", "MAX", "max@contoso.com", "CONTOSO\\max", "Max"]
        .into_iter()
        .take(LOGIN_FAILURES_PER_PAIR as usize)
    {
        assert!(ca.login(wrong(n), Some(ip)).await.unwrap().is_none());
    }
    // now even the right password is refused from that address for a while
    // (no check made)
    let right = Credential::Password {
        name: "MAX",
        password: "correct horse battery",
    };
    let e = ca.login(right, Some(ip)).await.unwrap_err();
    assert_eq!(e.code(), 0x8007_0775, "{e}");
    assert_eq!(e.kind(), ErrorKind::Throttled);
    // the same principal from another address is not locked out, nor is
    // another name
    let other: std::net::IpAddr = "192.0.2.8".parse().unwrap();
    assert!(ca.login(right, Some(other)).await.unwrap().is_some());
    user(&ca, "aud", false).await;
    let aud = Credential::Password {
        name: "CONTOSO\\aud",
        password: "correct horse battery",
    };
    assert!(ca.login(aud, Some(other)).await.unwrap().is_some());
    // a spray of names from one address is throttled by address
    let names: Vec<String> = (0..40).map(|i| format!("user{i}")).collect();
    let mut throttled = false;
    for n in &names {
        let c = Credential::Password {
            name: n,
            password: "Tr0ub4dor&3-secret",
        };
        match ca.login(c, Some(other)).await {
            Ok(None) => {}
            Err(e) if e.kind() == ErrorKind::Throttled => {
                throttled = true;
                break;
            }
            r => panic!("{r:?}"),
        }
    }
    assert!(throttled, "one address spraying names is never throttled");
    // that address is refused for every name, even with the right password;
    // the same principal from elsewhere still logs in
    let e = ca.login(aud, Some(other)).await.unwrap_err();
    assert_eq!(e.code(), 0x8007_0775, "{e}");
    let elsewhere: std::net::IpAddr = "192.0.2.11".parse().unwrap();
    assert!(ca.login(aud, Some(elsewhere)).await.unwrap().is_some());
    // a name carrying terminal escapes is recorded without them
    let fourth: std::net::IpAddr = "192.0.2.10".parse().unwrap();
    let escaped = Credential::Password {
        name: "ad\u{1b}[31mmin",
        password: "x",
    };
    assert!(ca.login(escaped, Some(fourth)).await.unwrap().is_none());
    // bad token secrets and unknown certificates are audited too
    let (id, _) = token.trim_start_matches("lbt_").split_once('_').unwrap();
    let forged = format!("lbt_{id}_{}", "ab".repeat(24));
    let third: std::net::IpAddr = "192.0.2.9".parse().unwrap();
    assert!(ca
        .login(Credential::Token(&forged), Some(third))
        .await
        .unwrap()
        .is_none());
    assert!(ca
        .login(Credential::Certificate(&"00".repeat(20)), Some(third))
        .await
        .unwrap()
        .is_none());
    let records = ca.audit_list(&admin(), None, 10_000).await.unwrap();
    let logins: Vec<_> = records
        .iter()
        .filter(|r| r.entry.action == "login" && r.entry.outcome == "refused")
        .collect();
    assert!(logins.len() >= 7, "{}", logins.len());
    assert!(logins.iter().all(|r| r.entry.category == "security"));
    for r in &logins {
        let text = format!("{:?}", r.entry);
        assert!(!text.contains("Tr0ub4dor"), "secret in audit: {text}");
        assert!(!text.contains(&"ab".repeat(24)), "token secret in audit");
        assert!(!r.entry.actor.contains('\u{1b}') && !r.entry.details.contains('\u{1b}'));
    }
    assert!(logins.iter().any(|r| r.entry.target == "token"
        && r.entry.details.contains(id)
        && r.entry.details.contains("192.0.2.9")));
    assert!(logins.iter().any(|r| r.entry.target == "certificate"));
    assert!(logins
        .iter()
        .any(|r| r.entry.actor == "max" && r.entry.details.contains("192.0.2.7")));
}

/// Review of issue 12 (fix-lockout): a guesser cannot lock a victim out.
/// Guesses for `victim` from source A get 429 after the limit, while
/// `victim` with the right password from source B still logs in; an IPv6
/// source is its /64, and an IPv4 address counts as itself also when it
/// arrives IPv4-mapped (so all IPv4 clients of a dual-stack listener are not
/// one source).
#[tokio::test]
async fn a_password_guesser_cannot_lock_out_a_victim_from_another_source() {
    use lockbox_engine::{Credential, LOGIN_FAILURES_PER_PAIR};
    let d = tempfile::tempdir().unwrap();
    let ca = new_ca(d.path(), "Contoso CA").await;
    user(&ca, "victim", false).await;
    let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
    let wrong = Credential::Password {
        name: "victim",
        password: "Tr0ub4dor&3",
    };
    let right = Credential::Password {
        name: "Victim",
        password: "correct horse battery",
    };
    let throttled = |r: Result<Option<_>, lockbox_engine::EngineError>| match r {
        Err(e) => e.code() == 0x8007_0775 && e.kind() == ErrorKind::Throttled,
        Ok(_) => false,
    };
    // (source A, another address of A's source, an unrelated source B)
    for (a, a2, b) in [
        ("198.51.100.1", "198.51.100.1", "198.51.100.2"),
        ("2001:db8:1:2::10", "2001:db8:1:2::99", "2001:db8:1:3::10"),
        ("::ffff:203.0.113.5", "203.0.113.5", "::ffff:203.0.113.6"),
    ] {
        let (a, a2, b) = (ip(a), ip(a2), ip(b));
        for _ in 0..LOGIN_FAILURES_PER_PAIR {
            assert!(ca.login(wrong, Some(a)).await.unwrap().is_none(), "{a}");
        }
        // the guesser is slowed: refused unchecked from its source
        assert!(throttled(ca.login(wrong, Some(a)).await), "{a}");
        assert!(throttled(ca.login(right, Some(a2)).await), "{a2}");
        // the victim elsewhere is not locked out, again and again
        for _ in 0..3 {
            assert!(ca.login(right, Some(b)).await.unwrap().is_some(), "{b}");
            assert!(ca.login(wrong, Some(b)).await.unwrap().is_none(), "{b}");
            assert!(throttled(ca.login(wrong, Some(a)).await), "{a}");
        }
        assert!(ca.login(right, Some(b)).await.unwrap().is_some(), "{b}");
    }
}

/// Issue 12 weaknesses: Argon2 runs off the request threads: on a
/// single-threaded runtime, other tasks keep running while passwords are
/// checked (inline, the thread stalls for a whole check each time).
#[tokio::test(flavor = "current_thread")]
async fn password_checks_do_not_block_the_request_threads() {
    use lockbox_crypto::password::{hash_secret, verify_secret};
    let d = tempfile::tempdir().unwrap();
    let ca = std::sync::Arc::new(new_ca(d.path(), "Contoso CA").await);
    user(&ca, "max", false).await;
    // how long one Argon2 check takes here (the cheapest of three)
    let hash = hash_secret(b"correct horse battery").unwrap();
    let one = (0..3)
        .map(|_| {
            let t = std::time::Instant::now();
            assert!(!verify_secret(b"wrong", &hash));
            t.elapsed()
        })
        .min()
        .unwrap();
    let mut best = std::time::Duration::MAX;
    for _ in 0..3 {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ticker = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut worst = std::time::Duration::ZERO;
                let mut last = std::time::Instant::now();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    worst = worst.max(last.elapsed());
                    last = std::time::Instant::now();
                }
                worst
            })
        };
        tokio::task::yield_now().await;
        let mut checks = Vec::new();
        for _ in 0..4 {
            let ca = ca.clone();
            checks.push(tokio::spawn(async move {
                ca.authenticate_password("max", "wrong password!")
                    .await
                    .unwrap()
            }));
        }
        for c in checks {
            assert!(c.await.unwrap().is_none());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        best = best.min(ticker.await.unwrap());
    }
    assert!(
        best < one * 3 / 4,
        "the runtime thread stalled {best:?} (one check takes {one:?})"
    );
}

/// Importing a key history writes archived keys like a PKCS#12 import does,
/// so it needs the same Configure right; a caller without it is refused
/// before the file is even read.
#[tokio::test]
async fn key_history_import_needs_configure() {
    let d = tempfile::tempdir().unwrap();
    let ca = new_ca(d.path(), "History CA").await;
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let e = ca
        .import_key_history(
            &Actor::anonymous(),
            b"not a key history",
            b"",
            &key,
            b"",
            "history.p7m",
            &lockbox_engine::import::ImportOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden, "{e}");
}

/// `db status` counts whole tables, across every manager restriction, so
/// only the CA administrator may read it.
#[tokio::test]
async fn db_status_is_the_administrators() {
    let d = tempfile::tempdir().unwrap();
    let ca = new_ca(d.path(), "Status CA").await;
    let s = ca.db_status(&admin()).await.unwrap();
    assert_eq!(
        s.backend,
        if common::on_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    );
    assert!(s.audit_records > 0);
    let e = ca.db_status(&Actor::anonymous()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden, "{e}");
}
