//! End-to-end engine tests: a real CA in a temporary home, real requests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod common;

use std::str::FromStr;

use der::asn1::OctetString;
use der::{Decode, Encode};
use lockbox_client::{pki_data, sign_cmc};
use lockbox_codec::{ms, oids};
use lockbox_crypto::{KeyHandle, KeySpec, SoftwareKey};
use lockbox_engine::certbuild::{decode_certificate, sign_request};
use lockbox_engine::period::Period;
use lockbox_engine::{cert_fields, verify_issued_by};
use lockbox_engine::{codes, Ca, Disposition, EngineError, InitOptions, SubmitOptions};
use x509_cert::ext::Extension;
use x509_cert::name::Name;

use common::{admin, init_options, submit_options};

fn init_opts(dir: &std::path::Path, name: &str, subordinate: bool) -> InitOptions {
    InitOptions {
        subordinate,
        cdp_urls: vec!["http://pki.contoso.test/crl/ca.crl".into()],
        aia_urls: vec!["http://pki.contoso.test/ca.crt".into()],
        ocsp_urls: vec![],
        delta_cdp_urls: vec![],
        database: None,
        token: None,
        ..init_options(dir, name, KeySpec::Rsa2048)
    }
}

async fn new_ca() -> (tempfile::TempDir, Ca) {
    let dir = tempfile::tempdir().unwrap();
    Ca::init(init_opts(dir.path(), "Contoso Issuing CA", false))
        .await
        .unwrap();
    let ca = Ca::open(dir.path()).await.unwrap();
    (dir, ca)
}

fn csr(key: &SoftwareKey, dn: &str, exts: Vec<Extension>) -> Vec<u8> {
    sign_request(key, Name::from_str(dn).unwrap(), exts).unwrap()
}

fn opts(template: Option<&str>) -> SubmitOptions {
    submit_options(template, "CONTOSO\\alice")
}

fn code_of(r: Result<lockbox_engine::Outcome, EngineError>) -> u32 {
    match r {
        Ok(o) => panic!("expected an error, got {o:?}"),
        Err(e) => e.code(),
    }
}

async fn row_count(ca: &Ca) -> usize {
    ca.view(&admin(), "", 1000).await.unwrap().len()
}

#[tokio::test]
async fn issues_pkcs10_with_template_extensions_and_searchable_columns() {
    let (_d, ca) = new_ca().await;
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let o = ca
        .submit(
            &csr(&key, "CN=Alice Example,O=Contoso", vec![]),
            &opts(Some("User")),
        )
        .await
        .unwrap();
    assert_eq!(o.disposition, Disposition::Issued);
    let rec = ca.request(o.request_id).await.unwrap();
    let fields = rec.cert.clone().unwrap();
    assert_eq!(fields.common_name.as_deref(), Some("Alice Example"));
    assert_eq!(rec.requester, "CONTOSO\\alice");
    assert_eq!(fields.key_algorithm, "p256");
    let cert = decode_certificate(&fields.cert_der).unwrap();
    let ca_cert = decode_certificate(&ca.ca_certificate_der().unwrap()).unwrap();
    verify_issued_by(&cert, &ca_cert).unwrap();
    let exts = cert.tbs_certificate().extensions().unwrap();
    let has = |oid| exts.iter().any(|e| e.extn_id == oid);
    assert!(has(oids::MS_CERT_TYPE_NAME), "v1 template name extension");
    assert!(
        has(oids::CE_KEY_USAGE)
            && has(oids::CE_EXT_KEY_USAGE)
            && has(oids::CE_SUBJECT_KEY_IDENTIFIER)
    );
    assert!(has(const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS));
    // the stored searchable columns agree with the certificate
    assert_eq!(
        cert_fields(&fields.cert_der).unwrap().thumbprint,
        fields.thumbprint
    );
    let by_serial = ca
        .view(&admin(), &format!("SerialNumber={}", fields.serial), 10)
        .await
        .unwrap();
    assert_eq!(by_serial.len(), 1);
    let by_cn = ca
        .view(
            &admin(),
            "CommonName=Alice Example,CertificateTemplate=User",
            10,
        )
        .await
        .unwrap();
    assert_eq!(by_cn.len(), 1);
    assert_eq!(
        ca.view(&admin(), "CertificateTemplate=ExchangeUser", 10)
            .await
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn v2_template_extension_and_template_from_request() {
    let (_d, ca) = new_ca().await;
    let t = ca
        .duplicate_template(&admin(), "User", "ContosoUser")
        .await
        .unwrap();
    ca.set_ca_template(&admin(), "ContosoUser", true)
        .await
        .unwrap();
    // The template is named by the request's v1 type-name extension.
    let name_ext = Extension {
        extn_id: oids::MS_CERT_TYPE_NAME,
        critical: false,
        extn_value: OctetString::new(ms::encode_cert_type_name("ContosoUser").unwrap()).unwrap(),
    };
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let o = ca
        .submit(&csr(&key, "CN=Carol", vec![name_ext]), &opts(None))
        .await
        .unwrap();
    assert_eq!(o.template.as_deref(), Some("ContosoUser"));
    let der = ca.certificate(o.request_id).await.unwrap();
    let cert = decode_certificate(&der).unwrap();
    let ext = cert
        .tbs_certificate()
        .extensions()
        .unwrap()
        .iter()
        .find(|e| e.extn_id == oids::MS_CERTIFICATE_TEMPLATE)
        .expect("v2 template extension")
        .clone();
    let v = ms::CertificateTemplateExt::from_der(ext.extn_value.as_bytes()).unwrap();
    assert_eq!(v.template_id.to_string(), t.oid);
    assert!(cert
        .tbs_certificate()
        .extensions()
        .unwrap()
        .iter()
        .any(|e| e.extn_id == oids::MS_APPLICATION_POLICIES));
}

#[tokio::test]
async fn cmc_request_with_reg_info_template_is_issued() {
    let (_d, ca) = new_ca().await;
    let key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let req = csr(&key, "CN=Dave", vec![]);
    let cmc = sign_cmc(&key, &pki_data(&[req], Some("EFS")).unwrap(), vec![]).unwrap();
    let o = ca.submit(&cmc, &opts(None)).await.unwrap();
    assert_eq!(o.disposition, Disposition::Issued);
    assert_eq!(o.template.as_deref(), Some("EFS"));
    assert_eq!(ca.request(o.request_id).await.unwrap().request_kind, "cmc");
}

#[tokio::test]
async fn bad_inputs_are_refused_and_change_nothing() {
    let (_d, ca) = new_ca().await;
    let key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let ec = SoftwareKey::generate(KeySpec::P256).unwrap();
    let good = csr(&key, "CN=Eve", vec![]);

    // malformed DER / PEM / base64 / truncated / empty / oversized
    assert_eq!(
        code_of(
            ca.submit(&[0x30, 0x82, 0xff, 0xff, 0x01], &opts(Some("User")))
                .await
        ),
        codes::CRYPT_E_ASN1_BADTAG
    );
    assert_eq!(
        code_of(
            ca.submit(
                b"-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n",
                &opts(Some("User"))
            )
            .await
        ),
        codes::CRYPT_E_ASN1_BADTAG
    );
    assert_eq!(
        code_of(
            ca.submit(&good[..good.len() - 10], &opts(Some("User")))
                .await
        ),
        codes::CRYPT_E_ASN1_BADTAG
    );
    assert_eq!(
        code_of(ca.submit(b"", &opts(Some("User"))).await),
        codes::E_INVALIDARG
    );
    assert_eq!(
        code_of(ca.submit(&vec![0x30; 300_000], &opts(Some("User"))).await),
        codes::E_INVALIDARG
    );

    // wrong signature
    let mut tampered = good.clone();
    let n = tampered.len();
    tampered[n - 1] ^= 0x01;
    assert_eq!(
        code_of(ca.submit(&tampered, &opts(Some("User"))).await),
        codes::NTE_BAD_SIGNATURE
    );

    // template policy
    assert_eq!(
        code_of(ca.submit(&good, &opts(Some("NoSuchTemplate"))).await),
        codes::CERTSRV_E_UNSUPPORTED_CERT_TYPE
    );
    assert_eq!(
        code_of(ca.submit(&good, &opts(None)).await),
        codes::CERTSRV_E_NO_CERT_TYPE
    );
    // KeyRecoveryAgent exists but this CA does not issue it yet
    let err = ca
        .submit(&good, &opts(Some("KeyRecoveryAgent")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::CERTSRV_E_UNSUPPORTED_CERT_TYPE);
    assert!(
        err.to_string().contains("KeyRecoveryAgent"),
        "the message names the template: {err}"
    );
    // internal template can never be requested
    assert_eq!(
        code_of(ca.submit(&good, &opts(Some("CAExchange"))).await),
        codes::CERTSRV_E_UNSUPPORTED_CERT_TYPE
    );

    // key too small and wrong algorithm
    ca.duplicate_template(&admin(), "User", "BigKeys")
        .await
        .unwrap();
    ca.set_template(&admin(), "BigKeys", "min_key_size", "3072")
        .await
        .unwrap();
    ca.set_template(&admin(), "BigKeys", "key_algorithms", "rsa")
        .await
        .unwrap();
    ca.set_ca_template(&admin(), "BigKeys", true).await.unwrap();
    assert_eq!(
        code_of(ca.submit(&good, &opts(Some("BigKeys"))).await),
        codes::CERTSRV_E_KEY_LENGTH
    );
    assert_eq!(
        code_of(
            ca.submit(&csr(&ec, "CN=Eve", vec![]), &opts(Some("BigKeys")))
                .await
        ),
        codes::NTE_BAD_ALGID
    );

    // archival template without a key
    assert_eq!(
        code_of(ca.submit(&good, &opts(Some("ExchangeUser"))).await),
        codes::CERTSRV_E_ARCHIVED_KEY_REQUIRED
    );

    // empty subject without SAN
    let empty = sign_request(&key, Name::default(), vec![]).unwrap();
    let anon = submit_options(Some("User"), "anonymous");
    assert_eq!(
        code_of(ca.submit(&empty, &anon).await),
        codes::CERTSRV_E_BAD_REQUESTSUBJECT
    );

    // CMC with zero and with two PKCS#10s, and signed by a key that is not the request key
    let zero = sign_cmc(&key, &pki_data(&[], Some("User")).unwrap(), vec![]).unwrap();
    let err = ca.submit(&zero, &opts(None)).await.unwrap_err();
    assert!(err.to_string().contains("exactly one PKCS#10"), "{err}");
    let two = sign_cmc(
        &key,
        &pki_data(&[good.clone(), good.clone()], Some("User")).unwrap(),
        vec![],
    )
    .unwrap();
    let err = ca.submit(&two, &opts(None)).await.unwrap_err();
    assert!(err.to_string().contains("found 2"), "{err}");
    let other = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let wrong_signer = sign_cmc(
        &other,
        &pki_data(std::slice::from_ref(&good), Some("User")).unwrap(),
        vec![],
    )
    .unwrap();
    assert_eq!(
        code_of(ca.submit(&wrong_signer, &opts(None)).await),
        codes::NTE_BAD_SIGNATURE
    );
    // CMC whose content was altered after signing
    let mut altered = sign_cmc(
        &key,
        &pki_data(std::slice::from_ref(&good), Some("User")).unwrap(),
        vec![],
    )
    .unwrap();
    let pos = altered.windows(4).position(|w| w == b"User").unwrap();
    altered[pos] = b'X';
    assert_eq!(
        code_of(ca.submit(&altered, &opts(None)).await),
        codes::NTE_BAD_SIGNATURE
    );

    assert_eq!(row_count(&ca).await, 0, "no refused request left a row");
    // and the CA still works
    assert!(ca.submit(&good, &opts(Some("User"))).await.is_ok());
}

#[tokio::test]
async fn pending_requests_are_issued_or_denied_once() {
    let (_d, ca) = new_ca().await;
    ca.duplicate_template(&admin(), "User", "ApprovedUser")
        .await
        .unwrap();
    ca.set_template(&admin(), "ApprovedUser", "requires_approval", "true")
        .await
        .unwrap();
    ca.set_ca_template(&admin(), "ApprovedUser", true)
        .await
        .unwrap();
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let a = ca
        .submit(&csr(&key, "CN=Frank", vec![]), &opts(Some("ApprovedUser")))
        .await
        .unwrap();
    let b = ca
        .submit(&csr(&key, "CN=Grace", vec![]), &opts(Some("ApprovedUser")))
        .await
        .unwrap();
    assert_eq!(a.disposition, Disposition::Pending);
    assert!(a.certificate_pem.is_none());
    assert_eq!(ca.pending(&admin()).await.unwrap().len(), 2);
    assert!(matches!(
        ca.certificate(a.request_id).await,
        Err(EngineError::Conflict(_))
    ));
    let issued = ca.issue(a.request_id, &admin()).await.unwrap();
    assert_eq!(issued.disposition, Disposition::Issued);
    assert!(issued.certificate_pem.is_some());
    assert!(matches!(
        ca.issue(a.request_id, &admin()).await,
        Err(EngineError::Conflict(_))
    ));
    let denied = ca.deny(b.request_id, &admin()).await.unwrap();
    assert_eq!(denied.disposition, Disposition::Denied);
    assert!(matches!(
        ca.issue(b.request_id, &admin()).await,
        Err(EngineError::Conflict(_))
    ));
    assert!(matches!(
        ca.deny(b.request_id, &admin()).await,
        Err(EngineError::Conflict(_))
    ));
    assert!(matches!(
        ca.issue(9999, &admin()).await,
        Err(EngineError::NotFound(_))
    ));
    assert_eq!(ca.pending(&admin()).await.unwrap().len(), 0);
    assert_eq!(
        ca.view(&admin(), "Disposition=denied", 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn revocation_and_crl_numbers() {
    let (_d, ca) = new_ca().await;
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let o = ca
        .submit(&csr(&key, "CN=Heidi", vec![]), &opts(Some("User")))
        .await
        .unwrap();
    let serial = o.serial.clone().unwrap();
    let first = ca.publish_crl(&admin()).await.unwrap();
    assert_eq!(first.entries, 0);
    // serial typed with spaces and upper case, as operators paste it
    let spaced: String = serial
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    let r = ca.revoke(&spaced, 1, &admin()).await.unwrap();
    assert_eq!(r.disposition, Disposition::Revoked);
    assert!(matches!(
        ca.revoke(&serial, 1, &admin()).await,
        Err(EngineError::Conflict(_))
    ));
    assert!(matches!(
        ca.revoke("abcdef", 1, &admin()).await,
        Err(EngineError::NotFound(_))
    ));
    assert!(ca.revoke("not hex", 1, &admin()).await.is_err());
    let second = ca.publish_crl(&admin()).await.unwrap();
    assert_eq!(second.number, first.number + 1);
    assert_eq!(second.entries, 1);
    let crl: x509_cert::crl::CertificateList =
        x509_cert::crl::CertificateList::from_der(&second.der).unwrap();
    let listed = crl.tbs_cert_list.revoked_certificates.unwrap();
    assert_eq!(hex::encode(listed[0].serial_number.as_bytes()), serial);
    // current_crl reuses a complete, fresh CRL
    assert_eq!(ca.current_crl().await.unwrap(), second.der);
}

#[tokio::test]
async fn subordinate_ca_install_checks_key_and_chain() {
    let (_rd, root) = new_ca().await;
    let sub_dir = tempfile::tempdir().unwrap();
    let out = Ca::init(init_opts(sub_dir.path(), "Contoso Sub CA", true))
        .await
        .unwrap();
    let csr_pem = out.csr_pem.unwrap();
    let mut sub = Ca::open(sub_dir.path()).await.unwrap();
    assert!(
        sub.ca_certificate_der().is_err(),
        "no certificate before install"
    );

    let signed = root
        .submit(csr_pem.as_bytes(), &opts(Some("SubCA")))
        .await
        .unwrap();
    let sub_pem = signed.certificate_pem.unwrap();
    let root_pem =
        lockbox_codec::pem::encode_pem("CERTIFICATE", &root.ca_certificate_der().unwrap());

    // without the chain: refused; with a certificate for another key: refused
    assert!(sub
        .install_certificate(sub_pem.as_bytes(), None)
        .await
        .is_err());
    let stranger = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let other = root
        .submit(
            &csr(&stranger, "CN=Other Sub", vec![]),
            &opts(Some("SubCA")),
        )
        .await
        .unwrap();
    let err = sub
        .install_certificate(
            other.certificate_pem.unwrap().as_bytes(),
            Some(root_pem.as_bytes()),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    // a leaf (non-CA) certificate is refused
    let leaf = root
        .submit(csr_pem.as_bytes(), &opts(Some("User")))
        .await
        .unwrap();
    assert!(sub
        .install_certificate(
            leaf.certificate_pem.unwrap().as_bytes(),
            Some(root_pem.as_bytes())
        )
        .await
        .is_err());

    sub.install_certificate(sub_pem.as_bytes(), Some(root_pem.as_bytes()))
        .await
        .unwrap();
    let sub = Ca::open(sub_dir.path()).await.unwrap();
    assert_eq!(sub.chain_der().unwrap().len(), 2);
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let o = sub
        .submit(&csr(&key, "CN=Ivan", vec![]), &opts(Some("User")))
        .await
        .unwrap();
    let leaf = decode_certificate(&sub.certificate(o.request_id).await.unwrap()).unwrap();
    let sub_cert = decode_certificate(&sub.ca_certificate_der().unwrap()).unwrap();
    let root_cert = decode_certificate(&root.ca_certificate_der().unwrap()).unwrap();
    verify_issued_by(&leaf, &sub_cert).unwrap();
    verify_issued_by(&sub_cert, &root_cert).unwrap();
    assert!(verify_issued_by(&leaf, &root_cert).is_err());
}

#[tokio::test]
async fn passphrase_protected_ca_key() {
    let dir = tempfile::tempdir().unwrap();
    let pass_file = dir.path().join("pass.txt");
    std::fs::write(&pass_file, "s3cret passphrase\n").unwrap();
    let mut o = init_opts(&dir.path().join("ca"), "Protected CA", false);
    o.passphrase = Some(zeroize::Zeroizing::new(b"s3cret passphrase".to_vec()));
    o.passphrase_file = Some(pass_file.display().to_string());
    let out = Ca::init(o).await.unwrap();
    assert!(out.key_protected);
    let key_text = std::fs::read_to_string(dir.path().join("ca/keys/ca.key")).unwrap();
    assert!(key_text.contains("ENCRYPTED PRIVATE KEY"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("ca/keys/ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let ca = Ca::open(&dir.path().join("ca")).await.unwrap();
    assert!(ca.signing_key().is_ok());
    std::fs::write(&pass_file, "wrong\n").unwrap();
    let ca = Ca::open(&dir.path().join("ca")).await.unwrap();
    let err = ca.signing_key().unwrap_err();
    assert!(err.to_string().contains("passphrase"), "{err}");
}

#[tokio::test]
async fn init_refuses_existing_home_and_templates_are_data() {
    let (d, ca) = new_ca().await;
    assert!(Ca::init(init_opts(d.path(), "Again", false)).await.is_err());
    let names: Vec<String> = ca
        .templates()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    for n in [
        "User",
        "EFS",
        "ExchangeUser",
        "ExchangeUserSignature",
        "KeyRecoveryAgent",
        "CAExchange",
        "SubCA",
        "WebServer",
    ] {
        assert!(names.contains(&n.to_string()), "{n} missing");
    }
    assert!(
        ca.set_template(&admin(), "User", "validity", "2y")
            .await
            .is_err(),
        "v1 templates are fixed"
    );
    assert!(
        ca.duplicate_template(&admin(), "User", "EFS")
            .await
            .is_err(),
        "name taken"
    );
    let t = ca
        .duplicate_template(&admin(), "User", "User2y")
        .await
        .unwrap();
    let t2 = ca
        .set_template(&admin(), "User2y", "validity", "2y")
        .await
        .unwrap();
    assert_eq!(t2.major_version, t.major_version + 1);
    assert!(ca
        .set_ca_template(&admin(), "CAExchange", true)
        .await
        .is_err());
    ca.set_ca_template(&admin(), "User2y", true).await.unwrap();
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let o = ca
        .submit(&csr(&key, "CN=Judy", vec![]), &opts(Some("user2y")))
        .await
        .unwrap();
    let f = ca.request(o.request_id).await.unwrap().cert.unwrap();
    let two_years = Period::Years(2).add_to(f.not_before + 600).unwrap();
    assert!(
        (f.not_after - two_years).abs() < 5,
        "validity follows the template"
    );
    ca.set_ca_template(&admin(), "User2y", false).await.unwrap();
    assert!(ca
        .submit(&csr(&key, "CN=Judy", vec![]), &opts(Some("User2y")))
        .await
        .is_err());
    let _ = key.public_key_info().to_der().unwrap();
}

/// A PKCS#10 carrying the Windows enrollment name/value pair
/// `CertificateTemplate:EFS` (1.3.6.1.4.1.311.13.2.1), built by hand.
fn csr_with_template_attribute(key: &SoftwareKey, template: &str) -> Vec<u8> {
    use der::asn1::{Any, BitString, BmpString, SetOfVec};
    use x509_cert::attr::Attribute;
    use x509_cert::request::{CertReq, CertReqInfo, Version};
    let pair = ms::EnrollmentNameValuePair {
        name: BmpString::from_utf8("CertificateTemplate").unwrap(),
        value: BmpString::from_utf8(template).unwrap(),
    };
    let attr = Attribute {
        oid: oids::MS_ENROLLMENT_NAME_VALUE_PAIR,
        values: SetOfVec::try_from(vec![Any::encode_from(&pair).unwrap()]).unwrap(),
    };
    let info = CertReqInfo {
        version: Version::V1,
        subject: Name::from_str("CN=Mallory Example").unwrap(),
        public_key: key.public_key_info().clone(),
        attributes: SetOfVec::try_from(vec![attr]).unwrap(),
    };
    let sig = key.sign(&info.to_der().unwrap()).unwrap();
    CertReq {
        info,
        algorithm: key.signature_algorithm(),
        signature: BitString::from_bytes(&sig).unwrap(),
    }
    .to_der()
    .unwrap()
}

#[tokio::test]
async fn template_from_windows_name_value_attribute_and_override() {
    let (_d, ca) = new_ca().await;
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let req = csr_with_template_attribute(&key, "EFS");
    let o = ca.submit(&req, &opts(None)).await.unwrap();
    assert_eq!(o.template.as_deref(), Some("EFS"));
    // --template overrides what the request says
    let o = ca.submit(&req, &opts(Some("User"))).await.unwrap();
    assert_eq!(o.template.as_deref(), Some("User"));
    // a certsrv-style CertAttrib line does too
    let o = ca
        .submit(
            &req,
            &SubmitOptions {
                template: None,
                requester: "x".into(),
                attributes: vec![("CertificateTemplate".into(), "WebServer".into())],
                actor: None,
                on_behalf_of: None,
                renewing: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(o.template.as_deref(), Some("WebServer"));
}

#[tokio::test]
async fn empty_subject_is_filled_from_the_requester_and_ber_input_is_accepted() {
    let (_d, ca) = new_ca().await;
    let key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let empty = sign_request(&key, Name::default(), vec![]).unwrap();
    let o = ca.submit(&empty, &opts(Some("User"))).await.unwrap();
    let f = ca.request(o.request_id).await.unwrap().cert.unwrap();
    assert_eq!(f.subject, "CN=alice", "CONTOSO\\alice becomes CN=alice");
    // A CMC request re-encoded with an indefinite-length outer SEQUENCE (BER)
    let csr = csr(&key, "CN=Ber Test", vec![]);
    let cmc = sign_cmc(&key, &pki_data(&[csr], Some("User")).unwrap(), vec![]).unwrap();
    assert_eq!(cmc[0], 0x30);
    let header = if cmc[1] & 0x80 != 0 {
        2 + (cmc[1] & 0x7f) as usize
    } else {
        2
    };
    let mut ber = vec![0x30, 0x80];
    ber.extend_from_slice(&cmc[header..]);
    ber.extend_from_slice(&[0, 0]);
    let o = ca.submit(&ber, &opts(None)).await.unwrap();
    assert_eq!(o.disposition, Disposition::Issued);
}
