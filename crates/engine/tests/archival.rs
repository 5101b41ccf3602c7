//! Key archival at enrollment, end to end in the engine.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod common;

use std::str::FromStr;

use lockbox_client::{
    build_archival_request, check_exchange_certificate, ArchivalOptions, KeyPayload,
};
use lockbox_crypto::cms::{open_envelope, OpeningKey};
use lockbox_crypto::keytransport::KeyTransport;
use lockbox_crypto::symmetric::ContentCipher;
use lockbox_crypto::{KeySpec, SoftwareKey};
use lockbox_engine::certbuild::{decode_certificate, sign_request};
use lockbox_engine::ErrorKind;
use lockbox_engine::{codes, Ca, Disposition, SubmitOptions};
use x509_cert::certificate::Certificate;
use x509_cert::name::Name;

use common::{admin, init_options, submit_options};

struct Fixture {
    _dir: tempfile::TempDir,
    ca: Ca,
    kra_key: SoftwareKey,
    kra_cert: Certificate,
}

fn opts(template: &str) -> SubmitOptions {
    submit_options(Some(template), "CONTOSO\\alice")
}

async fn fixture(kras: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    Ca::init(init_options(
        dir.path(),
        "Contoso Issuing CA",
        KeySpec::Rsa2048,
    ))
    .await
    .unwrap();
    let ca = Ca::open(dir.path()).await.unwrap();
    ca.set_ca_template(&admin(), "KeyRecoveryAgent", true)
        .await
        .unwrap();
    let mut first = None;
    for i in 0..kras.max(1) {
        let key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
        let csr = sign_request(
            &key,
            Name::from_str(&format!("CN=Recovery Agent {i}")).unwrap(),
            vec![],
        )
        .unwrap();
        let pending = ca.submit(&csr, &opts("KeyRecoveryAgent")).await.unwrap();
        assert_eq!(
            pending.disposition,
            Disposition::Pending,
            "KRA certificates need approval"
        );
        let issued = ca.issue(pending.request_id, &admin()).await.unwrap();
        let der = ca.certificate(issued.request_id).await.unwrap();
        if kras > 0 {
            ca.kra_add(
                &admin(),
                issued.serial.clone().unwrap().as_bytes(),
                None,
                None,
            )
            .await
            .unwrap();
        }
        if first.is_none() {
            first = Some((key, decode_certificate(&der).unwrap()));
        }
    }
    if kras > 0 {
        ca.set_kra_required(&admin(), 1).await.unwrap();
    } else {
        // Issued KRA certificates land in the KRA store; this fixture wants none configured.
        for k in ca.kra_list(&admin()).await.unwrap() {
            ca.kra_remove(&admin(), &k.thumbprint, false).await.unwrap();
        }
    }
    let (kra_key, kra_cert) = first.unwrap();
    Fixture {
        _dir: dir,
        ca,
        kra_key,
        kra_cert,
    }
}

async fn archival_request(
    ca: &Ca,
    key: &SoftwareKey,
    cn: &str,
    template: &str,
    o: ArchivalOptions,
) -> Vec<u8> {
    let csr = sign_request(key, Name::from_str(&format!("CN={cn}")).unwrap(), vec![]).unwrap();
    let xchg_der = ca.current_exchange_certificate().await.unwrap();
    let xchg = check_exchange_certificate(&xchg_der, &ca.ca_certificate_der().unwrap()).unwrap();
    let mut o = o;
    o.template = Some(template.into());
    build_archival_request(key, &csr, &xchg, &o).unwrap()
}

fn aes_pkcs8() -> ArchivalOptions {
    ArchivalOptions {
        template: None,
        cipher: ContentCipher::Aes256Cbc,
        transport: KeyTransport::RsaPkcs1v15,
        payload: KeyPayload::Pkcs8,
    }
}

fn stored_envelope_opens_to(f: &Fixture, request_id: i64, expected_pkcs8: &[u8]) {
    let ca = &f.ca;
    let env = futures_block(ca.archived_key(request_id)).unwrap();
    let tbs = f.kra_cert.tbs_certificate();
    let plain = open_envelope(
        &env,
        &[OpeningKey {
            issuer: tbs.issuer(),
            serial: tbs.serial_number(),
            key: &f.kra_key,
        }],
    )
    .unwrap();
    assert_eq!(&plain[..], expected_pkcs8);
}

fn futures_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_before_issuing_and_the_kra_can_open_it() {
    let f = fixture(1).await;
    let user = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let req = archival_request(&f.ca, &user, "Alice Example", "ExchangeUser", aes_pkcs8()).await;
    let o = f.ca.submit(&req, &opts("ExchangeUser")).await.unwrap();
    assert_eq!(o.disposition, Disposition::Issued);
    assert!(o.archived && o.encrypted_key_hash.is_some());
    let rec = f.ca.request(o.request_id).await.unwrap();
    assert!(rec.has_archived_key);
    // the stored request no longer carries the client's envelope to the exchange key
    assert!(rec.request_der.len() < req.len());
    stored_envelope_opens_to(&f, o.request_id, user.pkcs8_der());
    // The CMC response is a CA-signed SignedData over a PKIResponse
    let resp = f.ca.cmc_response(&o).await.unwrap();
    assert!(
        resp.windows(8)
            .any(|w| w == [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x0c, 0x03]),
        "id-cct-PKIResponse"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_style_keyblob_3des_and_oaep_are_accepted() {
    let f = fixture(1).await;
    for (cipher, transport) in [
        (ContentCipher::DesEde3Cbc, KeyTransport::RsaPkcs1v15),
        (ContentCipher::Aes128Cbc, KeyTransport::RsaOaepSha1),
        (ContentCipher::Aes256Cbc, KeyTransport::RsaOaepSha256),
    ] {
        let user = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
        let o = ArchivalOptions {
            template: None,
            cipher,
            transport,
            payload: KeyPayload::KeyBlob,
        };
        let req = archival_request(&f.ca, &user, "Bob", "ExchangeUser", o).await;
        let out = f.ca.submit(&req, &opts("ExchangeUser")).await.unwrap();
        assert!(out.archived);
        // PRIVATEKEYBLOB is normalised to PKCS#8 before the KRA envelope; it must load as the user's key
        let env = f.ca.archived_key(out.request_id).await.unwrap();
        let tbs = f.kra_cert.tbs_certificate();
        let plain = open_envelope(
            &env,
            &[OpeningKey {
                issuer: tbs.issuer(),
                serial: tbs.serial_number(),
                key: &f.kra_key,
            }],
        )
        .unwrap();
        let back = SoftwareKey::from_pkcs8_der(&plain).unwrap();
        assert_eq!(
            lockbox_crypto::KeyHandle::public_key_info(&back),
            lockbox_crypto::KeyHandle::public_key_info(&user)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec_keys_archive_as_pkcs8() {
    let f = fixture(1).await;
    let user = SoftwareKey::generate(KeySpec::P256).unwrap();
    let req = archival_request(&f.ca, &user, "Carol", "ExchangeUser", aes_pkcs8()).await;
    let o = f.ca.submit(&req, &opts("ExchangeUser")).await.unwrap();
    assert!(o.archived);
    stored_envelope_opens_to(&f, o.request_id, user.pkcs8_der());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_template_archives_first_and_denial_deletes_the_key() {
    let f = fixture(1).await;
    f.ca.duplicate_template(&admin(), "ExchangeUser", "ApprovedExchange")
        .await
        .unwrap();
    f.ca.set_template(&admin(), "ApprovedExchange", "requires_approval", "true")
        .await
        .unwrap();
    f.ca.set_ca_template(&admin(), "ApprovedExchange", true)
        .await
        .unwrap();
    let user = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let req = archival_request(&f.ca, &user, "Dave", "ApprovedExchange", aes_pkcs8()).await;
    let a = f.ca.submit(&req, &opts("ApprovedExchange")).await.unwrap();
    let b = f.ca.submit(&req, &opts("ApprovedExchange")).await.unwrap();
    assert_eq!(a.disposition, Disposition::Pending);
    assert!(
        f.ca.request(a.request_id).await.unwrap().has_archived_key,
        "archived while pending"
    );
    let issued = f.ca.issue(a.request_id, &admin()).await.unwrap();
    assert!(issued.archived);
    f.ca.deny(b.request_id, &admin()).await.unwrap();
    assert!(
        !f.ca.request(b.request_id).await.unwrap().has_archived_key,
        "denied requests keep no key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_keys_over_the_kras() {
    let f = fixture(3).await;
    f.ca.set_kra_required(&admin(), 2).await.unwrap();
    assert!(
        f.ca.set_kra_required(&admin(), 4).await.is_err(),
        "cannot require more KRAs than configured"
    );
    let mut seen = std::collections::HashSet::new();
    for i in 0..3 {
        let user = SoftwareKey::generate(KeySpec::P256).unwrap();
        let req = archival_request(
            &f.ca,
            &user,
            &format!("User {i}"),
            "ExchangeUser",
            aes_pkcs8(),
        )
        .await;
        let o = f.ca.submit(&req, &opts("ExchangeUser")).await.unwrap();
        let rec =
            f.ca.view(&admin(), &format!("RequestID={}", o.request_id), 1)
                .await
                .unwrap();
        assert!(rec[0].has_archived_key);
        let hashes = f.ca.kra_hashes(o.request_id).await.unwrap();
        assert_eq!(hashes.len(), 2);
        seen.extend(hashes);
    }
    assert_eq!(seen.len(), 3, "every KRA was used");
}

async fn rows(ca: &Ca) -> usize {
    ca.view(&admin(), "CertificateTemplate=ExchangeUser", 100)
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_archival_requests_are_denied_and_nothing_is_archived() {
    let f = fixture(1).await;
    let ca = &f.ca;
    let user = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let good = archival_request(ca, &user, "Eve", "ExchangeUser", aes_pkcs8()).await;

    // archived key on a template that does not archive
    let e = ca.submit(&good, &opts("User")).await.unwrap_err();
    assert_eq!(e.code(), codes::CERTSRV_E_ARCHIVED_KEY_UNEXPECTED);

    // the key does not belong to the request
    let other = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let csr = sign_request(&user, Name::from_str("CN=Eve").unwrap(), vec![]).unwrap();
    let xchg = check_exchange_certificate(
        &ca.current_exchange_certificate().await.unwrap(),
        &ca.ca_certificate_der().unwrap(),
    )
    .unwrap();
    let mut o = aes_pkcs8();
    o.template = Some("ExchangeUser".into());
    // Build with the other key's payload but the user's CSR and signature: sign with `user`,
    // envelope `other` by swapping the payload through a request signed by `other` for `user`'s CSR is
    // impossible, so test mismatch via a request whose PKCS#10 and CMC signer are `other` but whose
    // envelope carries `user`'s key.
    let other_csr = sign_request(&other, Name::from_str("CN=Eve").unwrap(), vec![]).unwrap();
    let mixed = mix_payload(&other, &other_csr, &user, &xchg, &o);
    let mismatch = ca.submit(&mixed, &opts("ExchangeUser")).await.unwrap_err();
    assert_eq!(mismatch.code(), 0x8009_400C, "{mismatch}");

    // a signature-only key blob
    let mut sig = aes_pkcs8();
    sig.payload = KeyPayload::SignatureKeyBlob;
    sig.template = Some("ExchangeUser".into());
    let req = build_archival_request(&user, &csr, &xchg, &sig).unwrap();
    // refused like every other failure after the exchange key (no padding oracle)
    let e = ca.submit(&req, &opts("ExchangeUser")).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.code(), e.to_string()),
        (mismatch.kind(), mismatch.code(), mismatch.to_string())
    );

    // the envelope is addressed to someone else (a certificate that is not our exchange certificate)
    let stranger = ca.certificate(1).await.unwrap(); // the KRA's own certificate
    let not_ours =
        build_archival_request(&user, &csr, &decode_certificate(&stranger).unwrap(), &o).unwrap();
    let e = ca
        .submit(&not_ours, &opts("ExchangeUser"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("exchange certificate"), "{e}");

    // hash mismatch and corrupted RSA padding: alter bytes of the envelope inside the request.
    // The envelope is the last large OCTET STRING; flip a byte in the encrypted key region.
    let pos = find_envelope_rsa_block(&good);
    let mut corrupted = good.clone();
    corrupted[pos] ^= 0x55;
    let e = ca
        .submit(&corrupted, &opts("ExchangeUser"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.code(), e.to_string()),
        (mismatch.kind(), mismatch.code(), mismatch.to_string()),
        "a hash that does not bind the envelope is one more archival failure"
    );

    // truncated request
    let e = ca
        .submit(&good[..good.len() - 7], &opts("ExchangeUser"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadInput);

    assert_eq!(rows(ca).await, 0, "nothing recorded");
    // the genuine request still works afterwards
    assert!(
        ca.submit(&good, &opts("ExchangeUser"))
            .await
            .unwrap()
            .archived
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archival_needs_configured_valid_kras() {
    let f = fixture(0).await;
    let user = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let req = archival_request(&f.ca, &user, "Frank", "ExchangeUser", aes_pkcs8()).await;
    let e = f.ca.submit(&req, &opts("ExchangeUser")).await.unwrap_err();
    assert_eq!(e.code(), codes::CERTSRV_E_KEY_ARCHIVAL_NOT_CONFIGURED);
    assert!(e.to_string().contains("not configured for key archival"));

    let g = fixture(1).await;
    let serial = hex::encode(g.kra_cert.tbs_certificate().serial_number().as_bytes());
    g.ca.revoke(&serial, 1, &admin()).await.unwrap();
    let req = archival_request(&g.ca, &user, "Frank", "ExchangeUser", aes_pkcs8()).await;
    let e = g.ca.submit(&req, &opts("ExchangeUser")).await.unwrap_err();
    assert_eq!(e.code(), 0x8009_400B);
    assert!(e.to_string().contains("No valid key recovery agent"));
    let list = g.ca.kra_list(&admin()).await.unwrap();
    assert_eq!(list[0].status, "revoked");
    assert_eq!(rows(&g.ca).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_certificate_is_reused_and_rolls_over() {
    let f = fixture(1).await;
    let a = f.ca.current_exchange_certificate().await.unwrap();
    let b = f.ca.current_exchange_certificate().await.unwrap();
    assert_eq!(a, b, "reused while fresh");
    let xchg = check_exchange_certificate(&a, &f.ca.ca_certificate_der().unwrap()).unwrap();
    let cn = lockbox_codec::names::common_name(xchg.tbs_certificate().subject()).unwrap();
    assert_eq!(cn, "Contoso Issuing CA-Xchg");
    let fields = lockbox_engine::cert_fields(&a).unwrap();
    assert!(
        (fields.not_after - fields.not_before - 7 * 86_400).abs() < 120,
        "7 days by default"
    );
    // a user certificate is not an exchange certificate
    assert!(check_exchange_certificate(
        &f.ca.certificate(1).await.unwrap(),
        &f.ca.ca_certificate_der().unwrap()
    )
    .is_err());
}

fn mix_payload(
    signer: &SoftwareKey,
    csr: &[u8],
    payload_key: &SoftwareKey,
    xchg: &Certificate,
    o: &ArchivalOptions,
) -> Vec<u8> {
    // Envelope payload_key's PKCS#8 with the normal builder, but for signer's request:
    // build the request with the payload key, then re-sign its PKIData with the signer.
    use der::{Decode, Encode};
    let with_payload = build_archival_request(payload_key, csr, xchg, o).unwrap();
    let parsed = lockbox_codec::cmc::parse_cmc_request(&with_payload).unwrap();
    let archived = parsed
        .signer
        .unsigned_attrs
        .clone()
        .unwrap()
        .iter()
        .cloned()
        .collect::<Vec<_>>();
    let pki = lockbox_codec::cmc::PkiData::from_der(&parsed.pki_data_der).unwrap();
    let _ = pki.to_der().unwrap();
    lockbox_client::sign_cmc(signer, &pki, archived).unwrap()
}

fn find_envelope_rsa_block(req: &[u8]) -> usize {
    // the RSA-2048 key transport ciphertext: OCTET STRING of 256 bytes (04 82 01 00) — the last one is in the envelope
    let positions: Vec<usize> = req
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == [0x04, 0x82, 0x01, 0x00])
        .map(|(i, _)| i)
        .collect();
    positions.last().copied().unwrap() + 20
}

/// Re-signs `request` (by `key`) with its envelope replaced by `env`, with a
/// correct hash: what a malicious requester can always do.
fn with_envelope(key: &SoftwareKey, request: &[u8], env: &[u8]) -> Vec<u8> {
    use der::asn1::{Any, OctetString, SetOfVec};
    use der::{Decode, Encode};
    use lockbox_codec::cmc::{CmcAddAttributes, PkiData};
    use lockbox_codec::oids;
    use x509_cert::attr::Attribute;
    let parsed = lockbox_codec::cmc::parse_cmc_request(request).unwrap();
    let mut pki = PkiData::from_der(&parsed.pki_data_der).unwrap();
    let hash = lockbox_crypto::digest::sha256(env).to_vec();
    for c in pki
        .control_sequence
        .iter_mut()
        .filter(|c| c.attr_type == oids::MS_CMC_ADD_ATTRIBUTES)
    {
        let mut add: CmcAddAttributes = c.attr_values.iter().next().unwrap().decode_as().unwrap();
        add.attributes = SetOfVec::try_from(vec![Attribute {
            oid: oids::MS_ENCRYPTED_KEY_HASH,
            values: SetOfVec::try_from(vec![Any::encode_from(
                &OctetString::new(hash.clone()).unwrap(),
            )
            .unwrap()])
            .unwrap(),
        }])
        .unwrap();
        c.attr_values = SetOfVec::try_from(vec![Any::encode_from(&add).unwrap()]).unwrap();
    }
    let archived = Attribute {
        oid: oids::MS_ARCHIVED_KEY,
        values: SetOfVec::try_from(vec![Any::from_der(env).unwrap()]).unwrap(),
    };
    let _ = pki.to_der().unwrap();
    lockbox_client::sign_cmc(key, &pki, vec![archived]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rsa_padding_is_indistinguishable_from_a_wrong_key() {
    let f = fixture(1).await;
    let ca = &f.ca;
    let user = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let good = archival_request(ca, &user, "Grace", "ExchangeUser", aes_pkcs8()).await;
    let parsed = lockbox_codec::cmc::parse_cmc_request(&good).unwrap();
    let env = parsed.archived_key.clone().unwrap();
    // 1. corrupt the RSA key-transport block (padding check fails inside the CA)
    let pos = env
        .windows(4)
        .position(|w| w == [0x04, 0x82, 0x01, 0x00])
        .unwrap()
        + 4;
    let mut bad_padding = env.clone();
    for b in &mut bad_padding[pos..pos + 256] {
        *b = 0x01;
    }
    let e1 = ca
        .submit(
            &with_envelope(&user, &good, &bad_padding),
            &opts("ExchangeUser"),
        )
        .await
        .unwrap_err();
    // 2. a well-formed envelope holding another key (decrypts fine, key does not match)
    let other = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let other_req = archival_request(ca, &other, "Grace", "ExchangeUser", aes_pkcs8()).await;
    let other_env = lockbox_codec::cmc::parse_cmc_request(&other_req)
        .unwrap()
        .archived_key
        .unwrap();
    let e2 = ca
        .submit(
            &with_envelope(&user, &good, &other_env),
            &opts("ExchangeUser"),
        )
        .await
        .unwrap_err();
    // 3. corrupt the content ciphertext
    let mut bad_content = env.clone();
    let n = bad_content.len();
    bad_content[n - 3] ^= 0x20;
    let e3 = ca
        .submit(
            &with_envelope(&user, &good, &bad_content),
            &opts("ExchangeUser"),
        )
        .await
        .unwrap_err();
    for e in [&e1, &e2, &e3] {
        assert_eq!(e.code(), 0x8009_400C);
        assert_eq!(
            e.to_string(),
            e1.to_string(),
            "one error for every failure after the recipient matched"
        );
    }
    assert_eq!(rows(ca).await, 0);
}

/// The stored envelope is standard CMS: `openssl cms -decrypt` with the KRA's
/// key yields a PKCS#8 key that `openssl pkey` reads and whose public key is
/// the user's. Checked for the default (RSA v1.5, AES-256) and for OAEP + 3DES.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_cms_decrypts_the_stored_envelope() {
    use lockbox_codec::pem::encode_pem;
    use std::process::Command;
    for (transport, cipher) in [
        ("pkcs1", "aes256"),
        ("oaep", "3des"),
        ("oaep-sha256", "aes128"),
    ] {
        let f = fixture(1).await;
        let home = f.ca.home().root().to_path_buf();
        let cfg = std::fs::read_to_string(home.join("lockbox.toml")).unwrap();
        let cfg = cfg
            .replace(
                "key_transport = \"pkcs1\"",
                &format!("key_transport = \"{transport}\""),
            )
            .replace(
                "content_cipher = \"aes256\"",
                &format!("content_cipher = \"{cipher}\""),
            );
        std::fs::write(home.join("lockbox.toml"), cfg).unwrap();
        let ca = Ca::open(&home).await.unwrap();
        let user = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
        let req = archival_request(&ca, &user, "Heidi", "ExchangeUser", aes_pkcs8()).await;
        let o = ca.submit(&req, &opts("ExchangeUser")).await.unwrap();
        let env = ca.archived_key(o.request_id).await.unwrap();
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n);
        std::fs::write(p("env.der"), &env).unwrap();
        std::fs::write(
            p("kra.key"),
            encode_pem("PRIVATE KEY", f.kra_key.pkcs8_der()),
        )
        .unwrap();
        std::fs::write(
            p("kra.pem"),
            encode_pem("CERTIFICATE", &der::Encode::to_der(&f.kra_cert).unwrap()),
        )
        .unwrap();
        let out = Command::new("openssl")
            .args(["cms", "-decrypt", "-inform", "DER", "-in"])
            .arg(p("env.der"))
            .arg("-recip")
            .arg(p("kra.pem"))
            .arg("-inkey")
            .arg(p("kra.key"))
            .arg("-out")
            .arg(p("key.der"))
            .output()
            .expect("openssl is required");
        assert!(
            out.status.success(),
            "{transport}/{cipher}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pubout = Command::new("openssl")
            .args(["pkey", "-inform", "DER", "-in"])
            .arg(p("key.der"))
            .args(["-pubout", "-outform", "DER"])
            .output()
            .unwrap();
        assert!(pubout.status.success());
        let spki = der::Encode::to_der(lockbox_crypto::KeyHandle::public_key_info(&user)).unwrap();
        assert_eq!(
            pubout.stdout, spki,
            "{transport}/{cipher}: the recovered key is the user's"
        );
    }
}

/// An EC (P-256) Key Recovery Agent: the key reaches it through ECDH key
/// agreement (KeyAgreeRecipientInfo, X9.63 KDF, AES key wrap), and `openssl
/// cms -decrypt` with the agent's EC key recovers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec_key_recovery_agent_through_ecdh_and_openssl() {
    use lockbox_codec::pem::encode_pem;
    use std::process::Command;
    let f = fixture(0).await;
    let ca = &f.ca;
    ca.duplicate_template(&admin(), "KeyRecoveryAgent", "ECKeyRecoveryAgent")
        .await
        .unwrap();
    ca.set_template(
        &admin(),
        "ECKeyRecoveryAgent",
        "key_algorithms",
        "p256,p384",
    )
    .await
    .unwrap();
    ca.set_ca_template(&admin(), "ECKeyRecoveryAgent", true)
        .await
        .unwrap();
    let kra_key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let csr = sign_request(
        &kra_key,
        Name::from_str("CN=EC Recovery Agent").unwrap(),
        vec![],
    )
    .unwrap();
    let p = ca.submit(&csr, &opts("ECKeyRecoveryAgent")).await.unwrap();
    let issued = ca.issue(p.request_id, &admin()).await.unwrap();
    let status = ca
        .kra_add(
            &admin(),
            issued.serial.clone().unwrap().as_bytes(),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(status.status, "valid");
    ca.set_kra_required(&admin(), 1).await.unwrap();
    let user = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let req = archival_request(ca, &user, "Ivan", "ExchangeUser", aes_pkcs8()).await;
    let o = ca.submit(&req, &opts("ExchangeUser")).await.unwrap();
    let env = ca.archived_key(o.request_id).await.unwrap();
    let kra_cert = ca.certificate(issued.request_id).await.unwrap();
    let tbs_cert = decode_certificate(&kra_cert).unwrap();
    let plain = open_envelope(
        &env,
        &[OpeningKey {
            issuer: tbs_cert.tbs_certificate().issuer(),
            serial: tbs_cert.tbs_certificate().serial_number(),
            key: &kra_key,
        }],
    )
    .unwrap();
    assert_eq!(&plain[..], &user.pkcs8_der()[..]);
    let d = tempfile::tempdir().unwrap();
    let path = |n: &str| d.path().join(n);
    std::fs::write(path("env.der"), &env).unwrap();
    std::fs::write(
        path("kra.key"),
        encode_pem("PRIVATE KEY", kra_key.pkcs8_der()),
    )
    .unwrap();
    std::fs::write(path("kra.pem"), encode_pem("CERTIFICATE", &kra_cert)).unwrap();
    let out = Command::new("openssl")
        .args(["cms", "-decrypt", "-inform", "DER", "-in"])
        .arg(path("env.der"))
        .arg("-recip")
        .arg(path("kra.pem"))
        .arg("-inkey")
        .arg(path("kra.key"))
        .output()
        .expect("openssl is required");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, user.pkcs8_der().to_vec());
}

/// A request encrypted to an exchange certificate that has expired is refused:
/// the CA only opens envelopes addressed to exchange certificates still valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_exchange_certificate_is_refused() {
    use lockbox_engine::cert_fields;
    use lockbox_engine::certbuild::{aki, sign_certificate, ski, CertSpec};
    use lockbox_engine::period::now;
    use lockbox_store::{Disposition as D, NewRequest};
    let f = fixture(1).await;
    let ca = &f.ca;
    // An exchange certificate that expired an hour ago, made the way the CA makes them.
    let xkey = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let ca_cert = decode_certificate(&ca.ca_certificate_der().unwrap()).unwrap();
    let signer = ca.signing_key().unwrap();
    let cert = sign_certificate(
        signer.as_ref(),
        CertSpec {
            issuer: ca_cert.tbs_certificate().subject().clone(),
            subject: Name::from_str("CN=Contoso Issuing CA-Xchg").unwrap(),
            spki: lockbox_crypto::KeyHandle::public_key_info(&xkey).clone(),
            serial: vec![0x11, 0x22, 0x33],
            not_before: now() - 8 * 86_400,
            not_after: now() - 3600,
            extensions: vec![
                ski(lockbox_crypto::KeyHandle::public_key_info(&xkey)).unwrap(),
                aki(ca_cert.tbs_certificate().subject_public_key_info()).unwrap(),
            ],
        },
    )
    .unwrap();
    let der = der::Encode::to_der(&cert).unwrap();
    let fields = cert_fields(&der).unwrap();
    ca.home()
        .write_atomic(
            &format!("keys/xchg-{}.key", fields.serial),
            lockbox_codec::pem::encode_pem("PRIVATE KEY", xkey.pkcs8_der()).as_bytes(),
            true,
        )
        .unwrap();
    ca.store()
        .insert_request(
            &NewRequest {
                request_der: vec![0x30, 0x00],
                request_kind: "pkcs10".into(),
                requester: "test".into(),
                template: Some("CAExchange".into()),
                request_subject: fields.subject.clone(),
                request_common_name: None,
                request_upn: None,
                request_email: None,
                disposition: D::Issued,
                disposition_message: "Issued".into(),
                status_code: 0,
                submitted_at: now() - 8 * 86_400,
                cert: Some(fields),
                archived_key: None,
                kra_hashes: None,
                renewal_of: None,
            },
            &[],
        )
        .await
        .unwrap();
    let user = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let csr = sign_request(&user, Name::from_str("CN=Judy").unwrap(), vec![]).unwrap();
    let mut o = aes_pkcs8();
    o.template = Some("ExchangeUser".into());
    let req = build_archival_request(&user, &csr, &cert, &o).unwrap();
    let e = ca.submit(&req, &opts("ExchangeUser")).await.unwrap_err();
    assert_eq!(e.code(), 0x8009_400C);
    assert!(e.to_string().contains("valid exchange certificate"), "{e}");
    // the client-side check refuses it too
    assert!(check_exchange_certificate(&der, &ca.ca_certificate_der().unwrap()).is_err());
    assert_eq!(rows(ca).await, 0);
}
