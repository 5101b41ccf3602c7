//! Renewal requests the engine sees from Windows: a PKCS#10 carrying the
//! renewal certificate attribute (1.3.6.1.4.1.311.13.1), and pending
//! renewals an officer issues later.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::str::FromStr;

use common::*;
use der::asn1::{Any, BitString, SetOfVec};
use der::{Decode, Encode};
use lockbox_codec::oids;
use lockbox_crypto::{KeyHandle, KeySpec, SoftwareKey};
use lockbox_engine::{codes, Ca};
use x509_cert::attr::Attribute;
use x509_cert::certificate::Certificate;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};

/// A PKCS#10 for `key` and `subject` carrying `renewed` in the renewal
/// certificate attribute, signed by `key`.
fn renewal_pkcs10(key: &SoftwareKey, subject: &str, renewed: &[u8]) -> Vec<u8> {
    let attr = Attribute {
        oid: oids::MS_RENEWAL_CERTIFICATE,
        values: SetOfVec::try_from(vec![Any::from_der(renewed).unwrap()]).unwrap(),
    };
    let info = CertReqInfo {
        version: Version::V1,
        subject: Name::from_str(subject).unwrap(),
        public_key: key.public_key_info().clone(),
        attributes: SetOfVec::try_from(vec![attr]).unwrap(),
    };
    let signature = key.sign(&info.to_der().unwrap()).unwrap();
    CertReq {
        info,
        algorithm: key.signature_algorithm(),
        signature: BitString::from_bytes(&signature).unwrap(),
    }
    .to_der()
    .unwrap()
}

async fn issued(ca: &Ca, key: &SoftwareKey, cn: &str) -> Vec<u8> {
    let csr = lockbox_engine::certbuild::sign_request(
        key,
        Name::from_str(&format!("CN={cn}")).unwrap(),
        vec![],
    )
    .unwrap();
    let o = ca
        .submit(&csr, &submit_options(Some("User"), "CONTOSO\\admin"))
        .await
        .unwrap();
    let pem = o.certificate_pem.unwrap();
    lockbox_codec::pem::decode_input(pem.as_bytes())
        .unwrap()
        .der
}

#[tokio::test]
async fn a_pkcs10_naming_the_certificate_it_renews_is_a_renewal_only_with_that_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), "Renewal Attribute CA").await;
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let old = issued(&ca, &key, "Alice").await;
    // same key, the old certificate named: a renewal keeping its names
    let req = renewal_pkcs10(&key, "CN=Somebody Else", &old);
    let o = ca
        .submit(&req, &submit_options(None, "CONTOSO\\admin"))
        .await
        .unwrap();
    let row = ca.request(o.request_id).await.unwrap();
    assert_eq!(row.renewal_of, Some(1));
    assert_eq!(row.template.as_deref(), Some("User"));
    let cert = Certificate::from_der(&row.cert.unwrap().cert_der).unwrap();
    assert_eq!(cert.tbs_certificate().subject().to_string(), "CN=Alice");
    let old_row = ca.request(1).await.unwrap();
    assert_eq!(old_row.superseded_by, Some(o.request_id));
    // a new key cannot claim the renewal with its own signature
    let other = SoftwareKey::generate(KeySpec::P256).unwrap();
    let old2 = ca
        .request(o.request_id)
        .await
        .unwrap()
        .cert
        .unwrap()
        .cert_der;
    let forged = renewal_pkcs10(&other, "CN=Alice", &old2);
    let e = ca
        .submit(&forged, &submit_options(None, "CONTOSO\\admin"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), codes::NTE_BAD_SIGNATURE, "{e}");
}

#[tokio::test]
async fn a_pending_renewal_is_refused_when_its_certificate_was_revoked_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), "Pending Renewal CA").await;
    let a = admin();
    ca.duplicate_template(&a, "User", "ApprovedUser")
        .await
        .unwrap();
    ca.set_template(&a, "ApprovedUser", "requires_approval", "true")
        .await
        .unwrap();
    ca.set_ca_template(&a, "ApprovedUser", true).await.unwrap();
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let csr =
        lockbox_engine::certbuild::sign_request(&key, Name::from_str("CN=Bob").unwrap(), vec![])
            .unwrap();
    let first = ca
        .submit(
            &csr,
            &submit_options(Some("ApprovedUser"), "CONTOSO\\admin"),
        )
        .await
        .unwrap();
    let issued = ca.issue(first.request_id, &a).await.unwrap();
    let old = lockbox_codec::pem::decode_input(issued.certificate_pem.unwrap().as_bytes())
        .unwrap()
        .der;
    let renewal = ca
        .submit(
            &renewal_pkcs10(&key, "CN=Bob", &old),
            &submit_options(None, "CONTOSO\\admin"),
        )
        .await
        .unwrap();
    assert!(renewal.serial.is_none(), "pending");
    let serial = issued.serial.unwrap();
    ca.revoke(&serial, 1, &a).await.unwrap();
    let e = ca.issue(renewal.request_id, &a).await.unwrap_err();
    assert_eq!(e.code(), codes::CRYPT_E_REVOKED, "{e}");
    assert!(ca.request(renewal.request_id).await.unwrap().cert.is_none());
}
