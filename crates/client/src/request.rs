//! Client-side request building: CMC Full PKI Requests signed by the request key.
//!
//! Used by `lockbox` client commands, tests and benchmarks; the CA side never
//! calls it.

use cms::signed_data::SignerIdentifier;
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
use lockbox_codec::cmc::{PkiData, TaggedAttribute, TaggedCertificationRequest, TaggedRequest};
use lockbox_codec::oids;
use lockbox_crypto::digest::digest_by_oid;
use lockbox_crypto::keyinfo::key_identifier;
use lockbox_crypto::KeyHandle;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::request::CertReq;

use lockbox_engine::{codes, EngineError, EngineResult};

fn enc(e: der::Error) -> EngineError {
    EngineError::Config(format!("encoding CMC request: {e}"))
}

/// PKIData with the given PKCS#10 requests (body part ids 1, 2, ...) and,
/// if given, a regInfo control `CertificateTemplate=NAME` as Windows sends.
pub fn pki_data(pkcs10s: &[Vec<u8>], template: Option<&str>) -> EngineResult<PkiData> {
    let mut reqs = Vec::new();
    for (i, der) in pkcs10s.iter().enumerate() {
        let cr = CertReq::from_der(der).map_err(enc)?;
        reqs.push(TaggedRequest::Tcr(TaggedCertificationRequest {
            body_part_id: i as u32 + 1,
            certification_request: cr,
        }));
    }
    let mut controls = Vec::new();
    if let Some(t) = template {
        let value =
            OctetString::new(format!("CertificateTemplate={t}&").into_bytes()).map_err(enc)?;
        controls.push(TaggedAttribute {
            body_part_id: 100,
            attr_type: oids::ID_CMC_REG_INFO,
            attr_values: SetOfVec::try_from(vec![Any::encode_from(&value).map_err(enc)?])
                .map_err(enc)?,
        });
    }
    Ok(PkiData {
        control_sequence: controls,
        req_sequence: reqs,
        cms_sequence: vec![],
        other_msg_sequence: vec![],
    })
}

/// Signs `pki` as a CMC Full PKI Request with `key` (identified by its subject
/// key identifier, SHA-256 digest) and returns the DER ContentInfo.
pub fn sign_cmc(
    key: &dyn KeyHandle,
    pki: &PkiData,
    unsigned_attrs: Vec<Attribute>,
) -> EngineResult<Vec<u8>> {
    let pki_der = pki.to_der().map_err(enc)?;
    let ski = OctetString::new(key_identifier(key.public_key_info())).map_err(enc)?;
    let sid = SignerIdentifier::SubjectKeyIdentifier(SubjectKeyIdentifier(ski));
    Ok(lockbox_crypto::cms::sign_data_with(
        key,
        sid,
        oids::ID_CCT_PKI_DATA,
        &pki_der,
        &[],
        unsigned_attrs,
    )?)
}

/// Signs `pki` as a CMC Full PKI Request with the key of `cert`, the
/// certificate being renewed (identified by issuer and serial, carried in
/// the SignedData): how a client renews or re-keys (MS-WCCE).
pub fn sign_cmc_renewal(
    key: &dyn KeyHandle,
    cert: &x509_cert::certificate::Certificate,
    pki: &PkiData,
    unsigned_attrs: Vec<Attribute>,
) -> EngineResult<Vec<u8>> {
    let pki_der = pki.to_der().map_err(enc)?;
    let sid = SignerIdentifier::IssuerAndSerialNumber(cms::cert::IssuerAndSerialNumber {
        issuer: cert.tbs_certificate().issuer().clone(),
        serial_number: cert.tbs_certificate().serial_number().clone(),
    });
    Ok(lockbox_crypto::cms::sign_data_with(
        key,
        sid,
        oids::ID_CCT_PKI_DATA,
        &pki_der,
        &[cert.to_der().map_err(enc)?],
        unsigned_attrs,
    )?)
}

/// The form of the private key inside the client's envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPayload {
    /// PKCS#8 PrivateKeyInfo (RSA or EC).
    Pkcs8,
    /// Microsoft PRIVATEKEYBLOB with CALG_RSA_KEYX (what Windows and Certipy send).
    KeyBlob,
    /// PRIVATEKEYBLOB marked CALG_RSA_SIGN (tests: must be refused).
    SignatureKeyBlob,
}

/// How to build an archival request.
#[derive(Clone, Debug)]
pub struct ArchivalOptions {
    /// Template name for regInfo.
    pub template: Option<String>,
    /// Content encryption of the envelope to the CA.
    pub cipher: lockbox_crypto::symmetric::ContentCipher,
    /// Key transport to the exchange key.
    pub transport: lockbox_crypto::keytransport::KeyTransport,
    /// Payload format.
    pub payload: KeyPayload,
}

/// Checks a CA exchange certificate the way a client must before trusting
/// it with a private key: signed by the CA, currently valid, CA-exchange EKU.
pub fn check_exchange_certificate(
    xchg_der: &[u8],
    ca_der: &[u8],
) -> EngineResult<x509_cert::certificate::Certificate> {
    let xchg = lockbox_engine::certbuild::decode_certificate(xchg_der)?;
    let ca = lockbox_engine::certbuild::decode_certificate(ca_der)?;
    lockbox_engine::verify_issued_by(&xchg, &ca)?;
    let f = lockbox_engine::cert_fields(xchg_der)?;
    let t = lockbox_engine::period::now();
    if f.not_before > t || f.not_after <= t {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "the CA exchange certificate is not currently valid",
        ));
    }
    let has_eku = xchg
        .tbs_certificate()
        .filter_extensions::<x509_cert::ext::pkix::ExtendedKeyUsage>()
        .filter_map(|r| r.ok())
        .any(|(_, k)| k.0.contains(&oids::MS_KP_CA_EXCHANGE));
    if !has_eku {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "the certificate has no CA exchange EKU (1.3.6.1.4.1.311.21.5)",
        ));
    }
    Ok(xchg)
}

/// Builds a CMC archival request: the PKCS#10, the key enveloped to the CA
/// exchange certificate in the unauthenticated attribute 1.3.6.1.4.1.311.21.13,
/// and its hash in a signed 1.3.6.1.4.1.311.10.10.1 control (MS-WCCE 3.1.1.4.3.6).
pub fn build_archival_request(
    key: &lockbox_crypto::SoftwareKey,
    pkcs10_der: &[u8],
    exchange: &x509_cert::certificate::Certificate,
    opts: &ArchivalOptions,
) -> EngineResult<Vec<u8>> {
    let (pki, archived) = archival_parts(key, pkcs10_der, exchange, opts)?;
    sign_cmc(key, &pki, vec![archived])
}

/// [`build_archival_request`] for a re-key: signed with the key of the
/// certificate being renewed (`old_cert`, `old_key`) instead of the new key.
pub fn build_archival_renewal(
    key: &lockbox_crypto::SoftwareKey,
    pkcs10_der: &[u8],
    exchange: &x509_cert::certificate::Certificate,
    opts: &ArchivalOptions,
    old_cert: &x509_cert::certificate::Certificate,
    old_key: &dyn KeyHandle,
) -> EngineResult<Vec<u8>> {
    let (pki, archived) = archival_parts(key, pkcs10_der, exchange, opts)?;
    sign_cmc_renewal(old_key, old_cert, &pki, vec![archived])
}

/// The PKIData (with the encrypted-key hash control) and the archived-key
/// attribute of an archival request.
fn archival_parts(
    key: &lockbox_crypto::SoftwareKey,
    pkcs10_der: &[u8],
    exchange: &x509_cert::certificate::Certificate,
    opts: &ArchivalOptions,
) -> EngineResult<(PkiData, Attribute)> {
    use lockbox_codec::cmc::CmcAddAttributes;
    use lockbox_codec::keyblob::{pkcs8_to_blob, CALG_RSA_KEYX, CALG_RSA_SIGN};
    let payload = match opts.payload {
        KeyPayload::Pkcs8 => zeroize::Zeroizing::new(key.pkcs8_der().to_vec()),
        KeyPayload::KeyBlob => {
            zeroize::Zeroizing::new(pkcs8_to_blob(key.pkcs8_der(), CALG_RSA_KEYX)?)
        }
        KeyPayload::SignatureKeyBlob => {
            zeroize::Zeroizing::new(pkcs8_to_blob(key.pkcs8_der(), CALG_RSA_SIGN)?)
        }
    };
    let recipient = lockbox_crypto::cms::Recipient::from_certificate(exchange);
    let env = lockbox_crypto::cms::envelope(&payload, &[recipient], opts.cipher, opts.transport)?;
    let hash = digest_by_oid(&oids::SHA256, &env)?;
    let mut pki = pki_data(&[pkcs10_der.to_vec()], opts.template.as_deref())?;
    let hash_attr = Attribute {
        oid: oids::MS_ENCRYPTED_KEY_HASH,
        values: SetOfVec::try_from(vec![Any::encode_from(
            &OctetString::new(hash).map_err(enc)?,
        )
        .map_err(enc)?])
        .map_err(enc)?,
    };
    let add = CmcAddAttributes {
        data_reference: 0,
        cert_references: vec![1],
        attributes: SetOfVec::try_from(vec![hash_attr]).map_err(enc)?,
    };
    pki.control_sequence.push(TaggedAttribute {
        body_part_id: 101,
        attr_type: oids::MS_CMC_ADD_ATTRIBUTES,
        attr_values: SetOfVec::try_from(vec![Any::encode_from(&add).map_err(enc)?]).map_err(enc)?,
    });
    let archived = Attribute {
        oid: oids::MS_ARCHIVED_KEY,
        values: SetOfVec::try_from(vec![Any::from_der(&env).map_err(enc)?]).map_err(enc)?,
    };
    Ok((pki, archived))
}
