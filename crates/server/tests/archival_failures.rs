//! The exchange key is no oracle: once a client's key envelope names one of
//! the CA's exchange certificates, every failure (RSA padding, content
//! decryption, PRIVATEKEYBLOB or PKCS#8 parsing, a signature-key header, a key
//! that is not the request's, an encrypted-key hash that does not bind the
//! envelope, a signature-only key usage) gets the same answer, byte for byte,
//! on every front end: the REST API, CMC over HTTP (`/cmc`) and certsrv —
//! with the exchange key in software and with it on a PKCS#11 token
//! (SoftHSM2), where raw RSA and Lockbox's constant-time unpadding replace
//! the token's own padding check.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::str::FromStr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
use lockbox_client::{check_exchange_certificate, pki_data, sign_cmc};
use lockbox_codec::cmc::{CmcAddAttributes, TaggedAttribute};
use lockbox_codec::keyblob::{pkcs8_to_blob, CALG_RSA_KEYX, CALG_RSA_SIGN};
use lockbox_codec::oids;
use lockbox_crypto::cms::{envelope, Recipient};
use lockbox_crypto::keytransport::KeyTransport;
use lockbox_crypto::symmetric::ContentCipher;
use lockbox_crypto::{KeySpec, SoftwareKey};
use lockbox_engine::certbuild::sign_request;
use lockbox_engine::period::Period;
use lockbox_engine::{Actor, Ca, InitOptions, SubmitOptions};
use tower::ServiceExt;
use x509_cert::attr::Attribute;
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use zeroize::Zeroizing;

const PASSWORD: &str = "correct horse battery";

fn admin() -> Actor {
    Actor::local_admin("CONTOSO\\admin")
}

/// A CA with one KRA and a principal `alice` who may enroll for ExchangeUser
/// (its keys on `token` when given).
async fn ca_with_kra(dir: &std::path::Path, token: Option<lockbox_engine::InitToken>) -> Ca {
    Ca::init(InitOptions {
        home: dir.to_path_buf(),
        name: "Oracle Test CA".into(),
        subject: None,
        key: KeySpec::Rsa2048,
        validity: Period::Years(2),
        subordinate: false,
        passphrase: None,
        passphrase_file: None,
        cdp_urls: vec![],
        aia_urls: vec![],
        ocsp_urls: vec![],
        delta_cdp_urls: vec![],
        database: None,
        token,
    })
    .await
    .unwrap();
    let ca = Ca::open(dir).await.unwrap();
    ca.set_ca_template(&admin(), "KeyRecoveryAgent", true)
        .await
        .unwrap();
    let kra_key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let csr = sign_request(&kra_key, Name::from_str("CN=Agent").unwrap(), vec![]).unwrap();
    let opts = SubmitOptions {
        template: Some("KeyRecoveryAgent".into()),
        requester: "CONTOSO\\admin".into(),
        attributes: vec![],
        actor: None,
        on_behalf_of: None,
        renewing: None,
    };
    let pending = ca.submit(&csr, &opts).await.unwrap();
    let issued = ca.issue(pending.request_id, &admin()).await.unwrap();
    if ca.kra_list(&admin()).await.unwrap().is_empty() {
        ca.kra_add(&admin(), issued.serial.unwrap().as_bytes(), None, None)
            .await
            .unwrap();
    }
    ca.set_kra_required(&admin(), 1).await.unwrap();
    ca.add_principal(
        &admin(),
        "alice",
        false,
        None,
        None,
        None,
        Some(Zeroizing::new(PASSWORD.to_string())),
        false,
    )
    .await
    .unwrap();
    ca
}

fn key_usage(usages: KeyUsages) -> Extension {
    Extension {
        extn_id: oids::CE_KEY_USAGE,
        critical: true,
        extn_value: OctetString::new(KeyUsage(usages.into()).to_der().unwrap()).unwrap(),
    }
}

/// A CMC archival request signed by `signer` for `csr`, carrying `env` as the
/// archived key and `hash` as the signed encrypted-key hash: what any
/// requester can build.
fn cmc_request(signer: &SoftwareKey, csr: &[u8], env: &[u8], hash: &[u8]) -> Vec<u8> {
    let mut pki = pki_data(&[csr.to_vec()], Some("ExchangeUser")).unwrap();
    let hash_attr = Attribute {
        oid: oids::MS_ENCRYPTED_KEY_HASH,
        values: SetOfVec::try_from(vec![Any::encode_from(
            &OctetString::new(hash.to_vec()).unwrap(),
        )
        .unwrap()])
        .unwrap(),
    };
    let add = CmcAddAttributes {
        data_reference: 0,
        cert_references: vec![1],
        attributes: SetOfVec::try_from(vec![hash_attr]).unwrap(),
    };
    pki.control_sequence.push(TaggedAttribute {
        body_part_id: 101,
        attr_type: oids::MS_CMC_ADD_ATTRIBUTES,
        attr_values: SetOfVec::try_from(vec![Any::encode_from(&add).unwrap()]).unwrap(),
    });
    let archived = Attribute {
        oid: oids::MS_ARCHIVED_KEY,
        values: SetOfVec::try_from(vec![Any::from_der(env).unwrap()]).unwrap(),
    };
    sign_cmc(signer, &pki, vec![archived]).unwrap()
}

fn seal(payload: &[u8], xchg: &Certificate) -> Vec<u8> {
    envelope(
        payload,
        &[Recipient::from_certificate(xchg)],
        ContentCipher::Aes256Cbc,
        KeyTransport::RsaPkcs1v15,
    )
    .unwrap()
}

fn sha256(d: &[u8]) -> Vec<u8> {
    lockbox_crypto::digest::sha256(d).to_vec()
}

/// The good request and one request per failure class.
fn requests(xchg: &Certificate) -> (Vec<u8>, Vec<(&'static str, Vec<u8>)>) {
    let user = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let other = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let name = Name::from_str("CN=alice").unwrap();
    let csr = sign_request(&user, name.clone(), vec![]).unwrap();
    let signing_only =
        sign_request(&user, name, vec![key_usage(KeyUsages::DigitalSignature)]).unwrap();
    let pkcs8 = user.pkcs8_der().to_vec();
    let good_env = seal(&pkcs8, xchg);
    let with = |env: &[u8]| cmc_request(&user, &csr, env, &sha256(env));

    // RSA key transport block overwritten: PKCS#1 v1.5 padding fails.
    let mut bad_padding = good_env.clone();
    let pos = bad_padding
        .windows(4)
        .position(|w| w == [0x04, 0x82, 0x01, 0x00])
        .unwrap()
        + 4;
    bad_padding[pos..pos + 256].fill(0x01);
    // Last ciphertext block changed: CBC padding (or the key) breaks.
    let mut bad_content = good_env.clone();
    let n = bad_content.len();
    bad_content[n - 3] ^= 0x20;
    let keyx_blob = pkcs8_to_blob(&pkcs8, CALG_RSA_KEYX).unwrap();
    let sign_blob = pkcs8_to_blob(&pkcs8, CALG_RSA_SIGN).unwrap();
    let sign_env = seal(&sign_blob, xchg);
    // An attacker's own EC key signs a request around an RSA payload.
    let ec_user = SoftwareKey::generate(KeySpec::P256).unwrap();
    let ec_csr = sign_request(&ec_user, Name::from_str("CN=alice").unwrap(), vec![]).unwrap();

    // Addressed to the exchange certificate, but the content key encrypted
    // to another RSA key: the exchange key's decryption fails in the padding.
    let other_recipient = lockbox_crypto::cms::Recipient {
        spki: lockbox_crypto::KeyHandle::public_key_info(&other).clone(),
        ..Recipient::from_certificate(xchg)
    };
    let to_another_key = envelope(
        &pkcs8,
        &[other_recipient],
        ContentCipher::Aes256Cbc,
        KeyTransport::RsaPkcs1v15,
    )
    .unwrap();

    let cases = vec![
        ("rsa padding", with(&bad_padding)),
        ("encrypted to another key", with(&to_another_key)),
        ("content decryption", with(&bad_content)),
        ("signature-key blob header", with(&sign_env)),
        (
            "blob one byte short",
            with(&seal(&keyx_blob[..keyx_blob.len() - 1], xchg)),
        ),
        ("not a key", with(&seal(b"plainly not a private key", xchg))),
        (
            "bad pkcs8",
            with(&seal(&[0x30, 0x03, 0x02, 0x01, 0x00], xchg)),
        ),
        ("key of another pair", with(&seal(other.pkcs8_der(), xchg))),
        (
            "hash mismatch",
            cmc_request(&user, &csr, &good_env, &sha256(b"another envelope")),
        ),
        (
            "signature-only key usage",
            cmc_request(&user, &signing_only, &good_env, &sha256(&good_env)),
        ),
        (
            "an EC request carrying someone's RSA key",
            cmc_request(&ec_user, &ec_csr, &good_env, &sha256(&good_env)),
        ),
        (
            "an EC request carrying a signature-key blob",
            cmc_request(&ec_user, &ec_csr, &sign_env, &sha256(&sign_env)),
        ),
    ];
    (with(&good_env), cases)
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

async fn send(app: &axum::Router, req: Request<Body>) -> Answer {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap()
        .to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

fn basic() -> String {
    let pair = format!("alice:{PASSWORD}");
    format!("Basic {}", b64(pair.as_bytes()))
}

fn b64(d: &[u8]) -> String {
    lockbox_codec::pem::encode_pem("X", d)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

fn rest(body: &[u8]) -> Request<Body> {
    Request::post("/api/v1/requests?template=ExchangeUser")
        .header(header::AUTHORIZATION, basic())
        .header(header::CONTENT_TYPE, "application/pkcs10")
        .body(Body::from(body.to_vec()))
        .unwrap()
}

fn cmc(body: &[u8]) -> Request<Body> {
    Request::post("/cmc")
        .header(header::AUTHORIZATION, basic())
        .header(header::CONTENT_TYPE, "application/pkcs7-mime")
        .body(Body::from(body.to_vec()))
        .unwrap()
}

fn certsrv(body: &[u8]) -> Request<Body> {
    let form = format!(
        "Mode=newreq&CertRequest={}&CertAttrib={}&TargetStoredFlags=0&SaveCert=yes",
        url_escape(&b64(body)),
        url_escape("CertificateTemplate:ExchangeUser"),
    );
    Request::post("/certsrv/certfnsh.asp")
        .header(header::AUTHORIZATION, basic())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap()
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_after_the_exchange_key_answers_the_same_on_every_front_end() {
    let dir = tempfile::tempdir().unwrap();
    one_answer_for_every_failure(ca_with_kra(dir.path(), None).await).await;
}

/// The same with the CA key and the exchange key on a SoftHSM2 token (the
/// test script installs SoftHSM2 and sets `LOCKBOX_REQUIRE_SOFTHSM`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_exchange_key_on_a_token_padding_failures_answer_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let Some(hsm) =
        lockbox_crypto::pkcs11::softhsm::SoftHsm::create(&dir.path().join("hsm")).unwrap()
    else {
        assert!(
            std::env::var_os("LOCKBOX_REQUIRE_SOFTHSM").is_none(),
            "LOCKBOX_REQUIRE_SOFTHSM is set but SoftHSM2 is not installed"
        );
        eprintln!("SoftHSM2 not installed: token variant skipped");
        return;
    };
    hsm.init_token("oracle", "4711-pin").unwrap();
    // This test binary's only token user: the module reads it at first use.
    std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
    let pin = dir.path().join("pin");
    std::fs::write(&pin, "4711-pin\n").unwrap();
    std::fs::set_permissions(&pin, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let token = lockbox_engine::InitToken {
        module: hsm.module.display().to_string(),
        token_label: "oracle".into(),
        pin_file: Some(pin.display().to_string()),
        key_label: None,
        exchange_on_token: true,
    };
    let ca = ca_with_kra(&dir.path().join("ca"), Some(token)).await;
    ca.current_exchange_certificate().await.unwrap();
    let status = ca.key_status(&admin()).await.unwrap();
    assert_eq!(status.len(), 2, "CA key and exchange key: {status:?}");
    assert!(
        status.iter().all(|k| k.available
            && matches!(
                k.location,
                lockbox_engine::keysource::KeyLocation::Token { .. }
            )),
        "{status:?}"
    );
    one_answer_for_every_failure(ca).await;
}

async fn one_answer_for_every_failure(ca: Ca) {
    let xchg_der = ca.current_exchange_certificate().await.unwrap();
    let xchg = check_exchange_certificate(&xchg_der, &ca.ca_certificate_der().unwrap()).unwrap();
    let (good, cases) = requests(&xchg);

    // The engine itself: one error value for every class.
    let opts = SubmitOptions {
        template: Some("ExchangeUser".into()),
        requester: "alice".into(),
        attributes: vec![],
        actor: Some(ca.actor_for("alice").await.unwrap()),
        on_behalf_of: None,
        renewing: None,
    };
    let mut engine_errors = Vec::new();
    for (class, req) in &cases {
        let e = ca.submit(req, &opts).await.expect_err(class);
        engine_errors.push((class, e.kind(), e.code(), e.to_string()));
    }
    for (class, kind, code, msg) in &engine_errors {
        assert_eq!(*code, 0x8009_400C, "{class}: {msg}");
        assert_eq!(
            (kind, msg),
            (&engine_errors[0].1, &engine_errors[0].3),
            "{class} differs from {}",
            engine_errors[0].0
        );
    }

    let app = lockbox_server::router(Arc::new(ca));
    type Front = fn(&[u8]) -> Request<Body>;
    let fronts: [(&str, Front); 3] = [("REST", rest), ("/cmc", cmc), ("certsrv", certsrv)];
    for (front, make) in fronts {
        let mut first: Option<(&str, Answer)> = None;
        for (class, req) in &cases {
            let a = send(&app, make(req)).await;
            match &first {
                None => first = Some((class, a)),
                Some((first_class, f)) => {
                    assert_eq!(a.status, f.status, "{front}: {class} vs {first_class}");
                    assert_eq!(
                        a.content_type, f.content_type,
                        "{front}: {class} vs {first_class}"
                    );
                    assert!(
                        a.body == f.body,
                        "{front}: {class} answered differently from {first_class}:\n{}\n---\n{}",
                        String::from_utf8_lossy(&a.body),
                        String::from_utf8_lossy(&f.body)
                    );
                }
            }
        }
        let (_, f) = first.unwrap();
        assert_ne!(
            f.status,
            StatusCode::UNAUTHORIZED,
            "{front}: not authenticated"
        );
        if front != "/cmc" {
            let text = String::from_utf8_lossy(&f.body);
            assert!(
                text.contains("0x8009400c") || text.contains("0x8009400C"),
                "{front}: {text}"
            );
        }
        // The same caller, the same front end: a well-formed request is issued,
        // so the refusals above are the archival check and nothing else.
        let ok = send(&app, make(&good)).await;
        assert!(ok.status.is_success(), "{front}: good request refused");
        assert!(ok.body != f.body, "{front}");
    }
}
