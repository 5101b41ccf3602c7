//! Whose names a certificate carries (issue 12, items 2 and 10): the CA builds
//! them from the requester's principal record unless the template lets the
//! enrollee supply them; anonymous callers never get archiving or
//! client-authentication templates; enrollment agents and the local operator;
//! a subject e-mail address is copied into the SAN.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod common;

use std::str::FromStr;

use der::asn1::Ia5String;
use der::Decode;
use lockbox_codec::names::{parse_alt_names, AltNames};
use lockbox_codec::oids;
use lockbox_crypto::{KeySpec, SoftwareKey};
use lockbox_engine::certbuild::{extension, sign_request};
use lockbox_engine::ErrorKind;
use lockbox_engine::AUTHENTICATED_USERS;
use lockbox_engine::{Actor, Ca, Outcome, Role, SubmitOptions};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::Name;

use common::{admin, exchange_user_request, issue_kra, new_ca, upn_and_email};

const TEMPLATE_DENIED: u32 = 0x8009_4012;

fn anonymous() -> Actor {
    // as the HTTP front ends build it when anonymous enrollment is on
    let mut a = Actor::anonymous();
    a.groups.push(AUTHENTICATED_USERS.into());
    a
}

fn opts(
    template: Option<&str>,
    actor: Option<&Actor>,
    on_behalf_of: Option<&str>,
) -> SubmitOptions {
    SubmitOptions {
        template: template.map(str::to_string),
        requester: actor.map_or_else(|| "LOCAL\\operator".to_string(), |a| a.name.clone()),
        attributes: vec![],
        actor: actor.cloned(),
        on_behalf_of: on_behalf_of.map(str::to_string),
        renewing: None,
    }
}

/// A CA with one issued, required KRA and principals alice and mallory.
async fn setup() -> (tempfile::TempDir, Ca) {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), "Contoso CA").await;
    let a = admin();
    // the local operator's pending request keeps its names when issued
    let (_key, kra) = issue_kra(&ca, "Agent", "LOCAL\\operator").await;
    assert_eq!(subject_and_alt(&kra).0, "CN=Agent");
    ca.set_kra_required(&a, 1).await.unwrap();
    for n in ["alice", "mallory"] {
        ca.add_principal(
            &a,
            n,
            false,
            Some(format!("{n}@contoso.com")),
            Some(format!("{n}.mail@contoso.com")),
            Some(format!("CONTOSO\\{n}")),
            None,
            false,
        )
        .await
        .unwrap();
    }
    (dir, ca)
}

/// A CSR for `subject` whose SAN names `upn` and `email`.
fn csr_naming(key: &SoftwareKey, subject: &str, upn: &str, email: &str) -> Vec<u8> {
    let mut names = upn_and_email(upn, email);
    names.push(GeneralName::DnsName(
        Ia5String::new("evil.example").unwrap(),
    ));
    let san = SubjectAltName(names);
    let ext = extension(oids::CE_SUBJECT_ALT_NAME, false, &san).unwrap();
    sign_request(key, Name::from_str(subject).unwrap(), vec![ext]).unwrap()
}

/// An ExchangeUser archival request (CMC) naming Alice in subject and SAN.
async fn archival_request_naming_alice(ca: &Ca) -> Vec<u8> {
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let csr = csr_naming(
        &key,
        "CN=Alice",
        "alice@contoso.com",
        "alice.mail@contoso.com",
    );
    exchange_user_request(ca, &key, &csr).await
}

/// Subject DN and SAN identities of an issued certificate.
fn subject_and_alt(o: &Outcome) -> (String, AltNames) {
    let pem = o.certificate_pem.as_deref().expect("issued");
    let der = lockbox_codec::pem::decode_input(pem.as_bytes())
        .unwrap()
        .der;
    let cert = x509_cert::Certificate::from_der(&der).unwrap();
    let tbs = cert.tbs_certificate();
    let alt = tbs
        .extensions()
        .map(|e| e.as_slice())
        .unwrap_or(&[])
        .iter()
        .find(|e| e.extn_id == oids::CE_SUBJECT_ALT_NAME)
        .map(|e| parse_alt_names(e.extn_value.as_bytes()).unwrap())
        .unwrap_or_default();
    (tbs.subject().to_string(), alt)
}

#[tokio::test]
async fn a_principal_gets_its_own_names_and_cannot_archive_under_anothers() {
    let (_d, ca) = setup().await;
    let a = admin();
    let alice = ca.actor_for("alice").await.unwrap();
    let mallory = ca.actor_for("mallory").await.unwrap();
    let own = ca
        .submit(
            &archival_request_naming_alice(&ca).await,
            &opts(None, Some(&alice), None),
        )
        .await
        .unwrap();
    // mallory asks for CN=Alice with alice's UPN and e-mail (and a DNS name)
    let forged = ca
        .submit(
            &archival_request_naming_alice(&ca).await,
            &opts(None, Some(&mallory), None),
        )
        .await
        .unwrap();
    assert!(forged.archived);
    let (subject, alt) = subject_and_alt(&forged);
    assert_eq!(subject, "CN=mallory");
    assert_eq!(alt.upns, vec!["mallory@contoso.com".to_string()]);
    assert_eq!(alt.emails, vec!["mallory.mail@contoso.com".to_string()]);
    assert!(alt.dns.is_empty(), "names in the request are ignored");
    let (subject, alt) = subject_and_alt(&own);
    assert_eq!(subject, "CN=alice");
    assert_eq!(alt.upns, vec!["alice@contoso.com".to_string()]);
    // the row holds the names of the certificate, not the request's
    let row = ca.request(forged.request_id).await.unwrap();
    assert_eq!(row.request_subject, "CN=mallory");
    assert_eq!(row.requester, "mallory");
    // recovery by any of alice's names finds alice's key only
    for token in [
        "alice",
        "alice@contoso.com",
        "alice.mail@contoso.com",
        "CONTOSO\\alice",
    ] {
        let found = ca.find_candidates(&a, token).await.unwrap();
        assert_eq!(
            found.iter().map(|c| c.request_id).collect::<Vec<_>>(),
            vec![own.request_id],
            "token {token}"
        );
        let blob = ca.get_key(&a, token).await.unwrap();
        assert_eq!(blob.candidate.request_id, own.request_id);
    }
    // a pending request gets the requester's names when it is issued too
    ca.duplicate_template(&a, "User", "Approved").await.unwrap();
    ca.set_template(&a, "Approved", "requires_approval", "true")
        .await
        .unwrap();
    ca.set_ca_template(&a, "Approved", true).await.unwrap();
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let csr = csr_naming(&key, "CN=Alice", "alice@contoso.com", "alice@contoso.com");
    let p = ca
        .submit(&csr, &opts(Some("Approved"), Some(&mallory), None))
        .await
        .unwrap();
    assert!(p.certificate_pem.is_none());
    let issued = ca.issue(p.request_id, &a).await.unwrap();
    assert_eq!(subject_and_alt(&issued).0, "CN=mallory");
}

#[tokio::test]
async fn enrollee_supplied_names_only_for_templates_that_say_so() {
    let (_d, ca) = setup().await;
    let a = admin();
    let mallory = ca.actor_for("mallory").await.unwrap();
    ca.duplicate_template(&a, "WebServer", "OpenWeb")
        .await
        .unwrap();
    ca.set_template(&a, "OpenWeb", "enroll", AUTHENTICATED_USERS)
        .await
        .unwrap();
    ca.set_ca_template(&a, "OpenWeb", true).await.unwrap();
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let csr = sign_request(&key, Name::from_str("CN=www.contoso.com").unwrap(), vec![]).unwrap();
    let o = ca
        .submit(&csr, &opts(Some("OpenWeb"), Some(&mallory), None))
        .await
        .unwrap();
    assert_eq!(subject_and_alt(&o).0, "CN=www.contoso.com");
    // a duplicate of User with the flag set takes the request's names as well
    ca.duplicate_template(&a, "User", "Named").await.unwrap();
    ca.set_template(&a, "Named", "enrollee_supplies_subject", "true")
        .await
        .unwrap();
    ca.set_ca_template(&a, "Named", true).await.unwrap();
    let o = ca
        .submit(&csr, &opts(Some("Named"), Some(&mallory), None))
        .await
        .unwrap();
    assert_eq!(subject_and_alt(&o).0, "CN=www.contoso.com");
    // and User itself does not
    let o = ca
        .submit(&csr, &opts(Some("User"), Some(&mallory), None))
        .await
        .unwrap();
    assert_eq!(subject_and_alt(&o).0, "CN=mallory");
}

#[tokio::test]
async fn anonymous_callers_never_archive_nor_get_client_authentication() {
    let (_d, ca) = setup().await;
    let a = admin();
    let anon = anonymous();
    assert!(
        !ca.config().server.allow_anonymous_enrollment,
        "new CAs start with anonymous enrollment off"
    );
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let csr = sign_request(&key, Name::from_str("CN=Alice").unwrap(), vec![]).unwrap();
    for t in ["User", "EFS", "ExchangeUserSignature"] {
        let e = ca
            .submit(&csr, &opts(Some(t), Some(&anon), None))
            .await
            .unwrap_err();
        assert_eq!(e.code(), TEMPLATE_DENIED, "{t}: {e}");
    }
    let e = ca
        .submit(
            &archival_request_naming_alice(&ca).await,
            &opts(None, Some(&anon), None),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), TEMPLATE_DENIED, "{e}");
    // even a template open to everyone that supplies its own names, once it
    // authenticates clients or archives keys
    ca.duplicate_template(&a, "WebServer", "OpenWeb")
        .await
        .unwrap();
    ca.set_template(&a, "OpenWeb", "enroll", AUTHENTICATED_USERS)
        .await
        .unwrap();
    ca.set_ca_template(&a, "OpenWeb", true).await.unwrap();
    let ok = ca
        .submit(&csr, &opts(Some("OpenWeb"), Some(&anon), None))
        .await
        .unwrap();
    assert_eq!(subject_and_alt(&ok).0, "CN=Alice");
    ca.set_template(&a, "OpenWeb", "ekus", "1.3.6.1.5.5.7.3.1,1.3.6.1.5.5.7.3.2")
        .await
        .unwrap();
    let e = ca
        .submit(&csr, &opts(Some("OpenWeb"), Some(&anon), None))
        .await
        .unwrap_err();
    assert_eq!(e.code(), TEMPLATE_DENIED, "{e}");
    // refusals are audited
    let audit = ca.audit_list(&a, None, 1000).await.unwrap();
    assert!(audit
        .iter()
        .any(|r| r.entry.outcome == "refused" && r.entry.actor == "anonymous"));
}

#[tokio::test]
async fn enrollment_agents_and_the_local_operator() {
    let (_d, ca) = setup().await;
    let a = admin();
    ca.add_principal(&a, "agent", false, None, None, None, None, false)
        .await
        .unwrap();
    ca.set_role(&a, "agent", Role::EnrollmentAgent, true)
        .await
        .unwrap();
    assert_eq!(
        Role::parse("enrollmentagent").unwrap(),
        Role::EnrollmentAgent
    );
    let agent = ca.actor_for("agent").await.unwrap();
    let mallory = ca.actor_for("mallory").await.unwrap();
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let csr = sign_request(&key, Name::from_str("CN=Someone Else").unwrap(), vec![]).unwrap();
    // the agent enrolls for alice: alice is the requester, her record gives the names
    let o = ca
        .submit(
            &csr,
            &opts(Some("User"), Some(&agent), Some("alice@contoso.com")),
        )
        .await
        .unwrap();
    let (subject, alt) = subject_and_alt(&o);
    assert_eq!(subject, "CN=alice");
    assert_eq!(alt.upns, vec!["alice@contoso.com".to_string()]);
    assert_eq!(ca.request(o.request_id).await.unwrap().requester, "alice");
    // without the role: refused with the permission code
    let e = ca
        .submit(&csr, &opts(Some("User"), Some(&mallory), Some("alice")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), TEMPLATE_DENIED, "{e}");
    // an unknown principal
    let e = ca
        .submit(&csr, &opts(Some("User"), Some(&agent), Some("nobody")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    // the local administrator may too
    let o = ca
        .submit(&csr, &opts(Some("User"), None, Some("mallory")))
        .await
        .unwrap();
    assert_eq!(subject_and_alt(&o).0, "CN=mallory");
    // without --on-behalf-of the local operator keeps the request's names, audited as such
    let o = ca
        .submit(&csr, &opts(Some("User"), None, None))
        .await
        .unwrap();
    assert_eq!(subject_and_alt(&o).0, "CN=Someone Else");
    let audit = ca.audit_list(&a, None, 1000).await.unwrap();
    let rec = audit
        .iter()
        .find(|r| {
            r.entry.action == "certificate issued" && r.entry.target == o.request_id.to_string()
        })
        .unwrap();
    assert!(
        rec.entry
            .details
            .contains("local administrator as operator"),
        "{}",
        rec.entry.details
    );
    // EnrollmentAgent counts for role separation like any other role
    ca.set_role(&a, "agent", Role::CertificateManager, true)
        .await
        .unwrap();
    ca.set_role_separation(&a, true).await.unwrap();
    let agent = ca.actor_for("agent").await.unwrap();
    let e = ca
        .submit(&csr, &opts(Some("User"), Some(&agent), Some("alice")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), 0x8009_4008, "{e}");
}

#[tokio::test]
async fn a_subject_email_address_is_written_to_the_san() {
    let (_d, ca) = setup().await;
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let csr = sign_request(
        &key,
        Name::from_str("CN=Eve,emailAddress=eve@contoso.com").unwrap(),
        vec![],
    )
    .unwrap();
    let o = ca
        .submit(&csr, &opts(Some("User"), None, None))
        .await
        .unwrap();
    let (subject, alt) = subject_and_alt(&o);
    assert!(subject.contains("CN=Eve"), "{subject}");
    assert_eq!(alt.emails, vec!["eve@contoso.com".to_string()]);
    // a SAN without it gets it added, keeping what was there
    let san = SubjectAltName(vec![GeneralName::DnsName(
        Ia5String::new("eve.contoso.com").unwrap(),
    )]);
    let ext = extension(oids::CE_SUBJECT_ALT_NAME, false, &san).unwrap();
    let csr = sign_request(
        &key,
        Name::from_str("CN=Eve,emailAddress=eve@contoso.com").unwrap(),
        vec![ext],
    )
    .unwrap();
    let o = ca
        .submit(&csr, &opts(Some("User"), None, None))
        .await
        .unwrap();
    let (_, alt) = subject_and_alt(&o);
    assert_eq!(alt.emails, vec!["eve@contoso.com".to_string()]);
    assert_eq!(alt.dns, vec!["eve.contoso.com".to_string()]);
}

/// No enrollee gets a certificate under the CA's own name (the trust rule for
/// CA-signed objects accepts a renewed CA certificate by that name): refused
/// for the local operator and for the SubCA template alike, with no row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_certificate_is_issued_under_the_ca_name() {
    let (_dir, ca) = setup().await;
    let a = admin();
    ca.set_ca_template(&a, "SubCA", true).await.unwrap();
    let before = ca.view(&a, "", 1000).await.unwrap().len();
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let csr = sign_request(&key, Name::from_str("CN=Contoso CA").unwrap(), vec![]).unwrap();
    for template in ["SubCA", "WebServer"] {
        ca.set_ca_template(&a, template, true).await.unwrap();
        let e = ca
            .submit(&csr, &opts(Some(template), None, None))
            .await
            .unwrap_err();
        assert_eq!(e.code(), 0x8009_4001, "{template}: {e}");
    }
    assert_eq!(ca.view(&a, "", 1000).await.unwrap().len(), before);
    // another name still works
    let csr = sign_request(&key, Name::from_str("CN=Contoso Sub CA").unwrap(), vec![]).unwrap();
    ca.submit(&csr, &opts(Some("SubCA"), None, None))
        .await
        .unwrap();
}
