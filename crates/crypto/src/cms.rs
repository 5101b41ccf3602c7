//! CMS (RFC 5652) EnvelopedData and SignedData over key handles.

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedContentInfo, EnvelopedData, KeyAgreeRecipientIdentifier, KeyAgreeRecipientInfo,
    KeyTransRecipientInfo, OriginatorIdentifierOrKey, OriginatorPublicKey, RecipientEncryptedKey,
    RecipientIdentifier, RecipientInfo, RecipientInfos,
};
use cms::signed_data::{
    EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
use lockbox_codec::oids;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::Attribute;
use x509_cert::certificate::Certificate;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use zeroize::Zeroizing;

use crate::digest::digest_by_oid;
use crate::keyinfo::key_identifier;
use crate::keytransport::{decrypt_key_implicit, encrypt_key, DecryptionKey, KeyTransport};
use crate::random::random_bytes;
use crate::symmetric::{cbc_decrypt, cbc_encrypt, ContentCipher};
use crate::{CryptoError, KeyHandle};

/// A recipient of an envelope.
#[derive(Clone, Debug)]
pub struct Recipient {
    /// Issuer of the recipient certificate.
    pub issuer: Name,
    /// Serial number of the recipient certificate.
    pub serial: SerialNumber,
    /// Its public key.
    pub spki: SubjectPublicKeyInfoOwned,
}

impl Recipient {
    /// The recipient described by a certificate.
    pub fn from_certificate(cert: &Certificate) -> Self {
        let tbs = cert.tbs_certificate();
        Recipient {
            issuer: tbs.issuer().clone(),
            serial: tbs.serial_number().clone(),
            spki: tbs.subject_public_key_info().clone(),
        }
    }
}

/// Why an envelope could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The envelope is not addressed to any of the keys offered.
    #[error("the envelope is not addressed to any available key")]
    NotForUs,
    /// Structure or algorithm problems visible before any secret is touched.
    #[error("{0}")]
    Malformed(String),
    /// Decryption failed (one error for every failure after the recipient was found).
    #[error("the envelope could not be decrypted")]
    Decrypt,
}

fn enc(e: der::Error) -> CryptoError {
    CryptoError::Encoding(e.to_string())
}

/// Encrypts `plaintext` under a fresh content key and transports the key to
/// every recipient (by issuer and serial number). Returns DER ContentInfo.
pub fn envelope(
    plaintext: &[u8],
    recipients: &[Recipient],
    cipher: ContentCipher,
    transport: KeyTransport,
) -> Result<Vec<u8>, CryptoError> {
    if recipients.is_empty() {
        return Err(CryptoError::Operation(
            "an envelope needs at least one recipient",
        ));
    }
    let cek = cipher.generate_key()?;
    let iv = random_bytes(cipher.iv_len())?;
    let ciphertext = cbc_encrypt(cipher, &cek, &iv, plaintext)?;
    let mut infos = Vec::new();
    let mut any_kari = false;
    for r in recipients {
        let ias = IssuerAndSerialNumber {
            issuer: r.issuer.clone(),
            serial_number: r.serial.clone(),
        };
        if r.spki.algorithm.oid == oids::EC_PUBLIC_KEY {
            any_kari = true;
            let parts = crate::kari::wrap_for(&r.spki, &cek)?;
            infos.push(RecipientInfo::Kari(KeyAgreeRecipientInfo {
                version: CmsVersion::V3,
                originator: OriginatorIdentifierOrKey::OriginatorKey(OriginatorPublicKey {
                    algorithm: AlgorithmIdentifierOwned {
                        oid: oids::EC_PUBLIC_KEY,
                        parameters: None,
                    },
                    public_key: der::asn1::BitString::from_bytes(&parts.ephemeral_point)
                        .map_err(enc)?,
                }),
                ukm: None,
                key_enc_alg: parts.key_enc_alg,
                recipient_enc_keys: vec![RecipientEncryptedKey {
                    rid: KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(ias),
                    enc_key: OctetString::new(parts.wrapped_key).map_err(enc)?,
                }],
            }));
            continue;
        }
        let wrapped = encrypt_key(&r.spki, transport, &cek)?;
        infos.push(RecipientInfo::Ktri(KeyTransRecipientInfo {
            version: CmsVersion::V0,
            rid: RecipientIdentifier::IssuerAndSerialNumber(ias),
            key_enc_alg: transport.algorithm()?,
            enc_key: OctetString::new(wrapped).map_err(enc)?,
        }));
    }
    let ed = EnvelopedData {
        // RFC 5652 6.1: version 2 when any RecipientInfo is not version 0.
        version: if any_kari {
            CmsVersion::V2
        } else {
            CmsVersion::V0
        },
        originator_info: None,
        recip_infos: RecipientInfos(SetOfVec::try_from(infos).map_err(enc)?),
        encrypted_content: EncryptedContentInfo {
            content_type: oids::ID_DATA,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: cipher.oid(),
                parameters: Some(
                    Any::encode_from(&OctetString::new(iv).map_err(enc)?).map_err(enc)?,
                ),
            },
            encrypted_content: Some(OctetString::new(ciphertext).map_err(enc)?),
        },
        unprotected_attrs: None,
    };
    let ci = ContentInfo {
        content_type: oids::ID_ENVELOPED_DATA,
        content: Any::encode_from(&ed).map_err(enc)?,
    };
    ci.to_der().map_err(enc)
}

/// Decodes a DER ContentInfo holding EnvelopedData.
pub fn decode_envelope(der: &[u8]) -> Result<EnvelopedData, OpenError> {
    let ci =
        ContentInfo::from_der(der).map_err(|e| OpenError::Malformed(format!("envelope: {e}")))?;
    if ci.content_type != oids::ID_ENVELOPED_DATA {
        return Err(OpenError::Malformed(format!(
            "content type {} is not envelopedData",
            ci.content_type
        )));
    }
    ci.content
        .decode_as()
        .map_err(|e| OpenError::Malformed(format!("EnvelopedData: {e}")))
}

/// A key offered for opening an envelope, with the certificate naming it.
pub struct OpeningKey<'a> {
    /// Issuer of the certificate.
    pub issuer: &'a Name,
    /// Serial of the certificate.
    pub serial: &'a SerialNumber,
    /// The private key.
    pub key: &'a dyn DecryptionKey,
}

fn recipient_matches(rid: &RecipientIdentifier, k: &OpeningKey<'_>) -> bool {
    match rid {
        RecipientIdentifier::IssuerAndSerialNumber(ias) => {
            &ias.issuer == k.issuer && &ias.serial_number == k.serial
        }
        RecipientIdentifier::SubjectKeyIdentifier(ski) => {
            ski.0.as_bytes() == key_identifier(k.key.recipient_public_key()).as_slice()
        }
    }
}

/// Opens an envelope with the first offered key it is addressed to.
///
/// Once a recipient matches, every failure (key transport padding, content
/// decryption, padding of the content) returns [`OpenError::Decrypt`]
/// through the same path: a bad RSA padding continues with a random content
/// key (RFC 3218) and fails at content decryption.
pub fn open_envelope(der: &[u8], keys: &[OpeningKey<'_>]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let ed = decode_envelope(der)?;
    let cipher =
        ContentCipher::from_oid(&ed.encrypted_content.content_enc_alg.oid).ok_or_else(|| {
            OpenError::Malformed(format!(
                "unsupported content encryption {}",
                ed.encrypted_content.content_enc_alg.oid
            ))
        })?;
    let iv: OctetString = ed
        .encrypted_content
        .content_enc_alg
        .parameters
        .as_ref()
        .ok_or_else(|| OpenError::Malformed("content encryption without an IV".into()))?
        .decode_as()
        .map_err(|e| OpenError::Malformed(format!("IV: {e}")))?;
    if iv.as_bytes().len() != cipher.iv_len() {
        return Err(OpenError::Malformed("IV has the wrong length".into()));
    }
    let ciphertext = ed
        .encrypted_content
        .encrypted_content
        .as_ref()
        .ok_or_else(|| {
            OpenError::Malformed("detached encrypted content is not supported".into())
        })?;
    for info in ed.recip_infos.0.iter() {
        if let RecipientInfo::Kari(kari) = info {
            for rek in &kari.recipient_enc_keys {
                let KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(ias) = &rek.rid else {
                    continue;
                };
                let Some(k) = keys
                    .iter()
                    .find(|k| &ias.issuer == k.issuer && &ias.serial_number == k.serial)
                else {
                    continue;
                };
                let OriginatorIdentifierOrKey::OriginatorKey(orig) = &kari.originator else {
                    return Err(OpenError::Malformed(
                        "key agreement without an ephemeral originator key".into(),
                    ));
                };
                let point = orig
                    .public_key
                    .as_bytes()
                    .ok_or_else(|| OpenError::Malformed("originator key".into()))?;
                let ukm = kari.ukm.as_ref().map(|u| u.as_bytes());
                let cek = k
                    .key
                    .unwrap_agreed_key(point, &kari.key_enc_alg, ukm, rek.enc_key.as_bytes())
                    .map_err(|_| OpenError::Decrypt)?;
                if cek.len() != cipher.key_len() {
                    return Err(OpenError::Decrypt);
                }
                return cbc_decrypt(cipher, &cek, iv.as_bytes(), ciphertext.as_bytes())
                    .map_err(|_| OpenError::Decrypt);
            }
            continue;
        }
        let RecipientInfo::Ktri(ktri) = info else {
            continue;
        };

        let Some(k) = keys.iter().find(|k| recipient_matches(&ktri.rid, k)) else {
            continue;
        };
        let transport = KeyTransport::from_algorithm(&ktri.key_enc_alg)
            .map_err(|e| OpenError::Malformed(e.to_string()))?;
        let cek = decrypt_key_implicit(k.key, transport, ktri.enc_key.as_bytes(), cipher.key_len())
            .map_err(|_| OpenError::Decrypt)?;
        return cbc_decrypt(cipher, &cek, iv.as_bytes(), ciphertext.as_bytes())
            .map_err(|_| OpenError::Decrypt);
    }
    Err(OpenError::NotForUs)
}

/// Recipients (issuer, serial hex) an envelope names, for display.
pub fn envelope_recipients(der: &[u8]) -> Result<Vec<(String, String, String)>, OpenError> {
    let ed = decode_envelope(der)?;
    let mut out = Vec::new();
    for info in ed.recip_infos.0.iter() {
        match info {
            RecipientInfo::Ktri(k) => match &k.rid {
                RecipientIdentifier::IssuerAndSerialNumber(ias) => out.push((
                    ias.issuer.to_string(),
                    hex::encode(ias.serial_number.as_bytes()),
                    k.key_enc_alg.oid.to_string(),
                )),
                RecipientIdentifier::SubjectKeyIdentifier(ski) => out.push((
                    String::new(),
                    format!("ski:{}", hex::encode(ski.0.as_bytes())),
                    k.key_enc_alg.oid.to_string(),
                )),
            },
            RecipientInfo::Kari(k) => {
                for rek in &k.recipient_enc_keys {
                    if let KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(ias) = &rek.rid {
                        out.push((
                            ias.issuer.to_string(),
                            hex::encode(ias.serial_number.as_bytes()),
                            k.key_enc_alg.oid.to_string(),
                        ));
                    }
                }
            }
            _ => out.push((
                String::new(),
                "(other recipient type)".into(),
                String::new(),
            )),
        }
    }
    Ok(out)
}

/// Signs `econtent` (of type `econtent_type`) as CMS SignedData with `key`,
/// identified by `signer_cert`'s issuer and serial, SHA-256, with signed
/// attributes; `certs` (DER) go in the certificates set. Returns ContentInfo DER.
pub fn sign_data(
    key: &dyn KeyHandle,
    signer_cert: &Certificate,
    econtent_type: ObjectIdentifier,
    econtent: &[u8],
    certs: &[Vec<u8>],
) -> Result<Vec<u8>, CryptoError> {
    let tbs = signer_cert.tbs_certificate();
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: tbs.issuer().clone(),
        serial_number: tbs.serial_number().clone(),
    });
    sign_data_with(key, sid, econtent_type, econtent, certs, Vec::new())
}

/// [`sign_data`] with extra signed attributes (after contentType and
/// messageDigest), so the signature also covers them.
pub fn sign_data_with_attributes(
    key: &dyn KeyHandle,
    signer_cert: &Certificate,
    econtent_type: ObjectIdentifier,
    econtent: &[u8],
    certs: &[Vec<u8>],
    signed_attrs: Vec<Attribute>,
) -> Result<Vec<u8>, CryptoError> {
    let tbs = signer_cert.tbs_certificate();
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: tbs.issuer().clone(),
        serial_number: tbs.serial_number().clone(),
    });
    sign_data_full(
        key,
        sid,
        econtent_type,
        econtent,
        certs,
        signed_attrs,
        Vec::new(),
    )
}

/// The general form of [`sign_data`]: any signer identifier, and unsigned
/// attributes (CMC archival requests carry the encrypted key there).
pub fn sign_data_with(
    key: &dyn KeyHandle,
    sid: SignerIdentifier,
    econtent_type: ObjectIdentifier,
    econtent: &[u8],
    certs: &[Vec<u8>],
    unsigned_attrs: Vec<Attribute>,
) -> Result<Vec<u8>, CryptoError> {
    sign_data_full(
        key,
        sid,
        econtent_type,
        econtent,
        certs,
        Vec::new(),
        unsigned_attrs,
    )
}

fn sign_data_full(
    key: &dyn KeyHandle,
    sid: SignerIdentifier,
    econtent_type: ObjectIdentifier,
    econtent: &[u8],
    certs: &[Vec<u8>],
    extra_signed: Vec<Attribute>,
    unsigned_attrs: Vec<Attribute>,
) -> Result<Vec<u8>, CryptoError> {
    // RFC 5652 5.3: version 3 with a subject key identifier, else 1.
    let version = match sid {
        SignerIdentifier::SubjectKeyIdentifier(_) => CmsVersion::V3,
        SignerIdentifier::IssuerAndSerialNumber(_) => CmsVersion::V1,
    };
    let digest_alg = AlgorithmIdentifierOwned {
        oid: oids::SHA256,
        parameters: None,
    };
    let digest = digest_by_oid(&oids::SHA256, econtent)?;
    let attr = |oid, value: Any| -> Result<Attribute, CryptoError> {
        Ok(Attribute {
            oid,
            values: SetOfVec::try_from(vec![value]).map_err(enc)?,
        })
    };
    let mut attrs = vec![
        attr(
            oids::PKCS9_CONTENT_TYPE,
            Any::encode_from(&econtent_type).map_err(enc)?,
        )?,
        attr(
            oids::PKCS9_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(digest).map_err(enc)?).map_err(enc)?,
        )?,
    ];
    attrs.extend(extra_signed);
    let signed_attrs = SetOfVec::try_from(attrs).map_err(enc)?;
    let signature = key.sign(&signed_attrs.to_der().map_err(enc)?)?;
    let signer = SignerInfo {
        version,
        sid,
        digest_alg: digest_alg.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: key.signature_algorithm(),
        signature: OctetString::new(signature).map_err(enc)?,
        unsigned_attrs: if unsigned_attrs.is_empty() {
            None
        } else {
            Some(SetOfVec::try_from(unsigned_attrs).map_err(enc)?)
        },
    };
    let mut cert_set = Vec::new();
    for c in certs {
        cert_set.push(cms::cert::CertificateChoices::Certificate(
            Certificate::from_der(c).map_err(enc)?,
        ));
    }
    let sd = SignedData {
        version,
        digest_algorithms: SetOfVec::try_from(vec![digest_alg]).map_err(enc)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type,
            econtent: Some(
                Any::encode_from(&OctetString::new(econtent.to_vec()).map_err(enc)?)
                    .map_err(enc)?,
            ),
        },
        certificates: if cert_set.is_empty() {
            None
        } else {
            Some(cms::signed_data::CertificateSet(
                SetOfVec::try_from(cert_set).map_err(enc)?,
            ))
        },
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer]).map_err(enc)?),
    };
    let ci = ContentInfo {
        content_type: oids::ID_SIGNED_DATA,
        content: Any::encode_from(&sd).map_err(enc)?,
    };
    ci.to_der().map_err(enc)
}

/// A SignedData whose signature verified.
#[derive(Debug, Clone)]
pub struct VerifiedSignedData {
    /// eContentType.
    pub econtent_type: ObjectIdentifier,
    /// eContent octets.
    pub econtent: Vec<u8>,
    /// Every certificate in the certificates set (DER).
    pub certificates: Vec<Vec<u8>>,
    /// The signer's certificate (DER).
    pub signer_certificate: Vec<u8>,
    /// The signed attributes (covered by the signature).
    pub signed_attributes: Vec<Attribute>,
}

/// Verifies a CMS SignedData (one signer, certificate in the set, signed
/// attributes with contentType and messageDigest). Does not judge trust in the
/// signer certificate: the caller checks it against its anchors.
pub fn verify_signed_data(der: &[u8]) -> Result<VerifiedSignedData, CryptoError> {
    let bad = |m: &str| CryptoError::Encoding(m.to_string());
    let ci = ContentInfo::from_der(der).map_err(enc)?;
    if ci.content_type != oids::ID_SIGNED_DATA {
        return Err(bad("not a CMS SignedData"));
    }
    let sd: SignedData = ci.content.decode_as().map_err(enc)?;
    let econtent: OctetString = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| bad("SignedData has no content"))?
        .decode_as()
        .map_err(enc)?;
    let mut certificates = Vec::new();
    let mut parsed = Vec::new();
    if let Some(set) = &sd.certificates {
        for c in set.0.iter() {
            if let cms::cert::CertificateChoices::Certificate(cert) = c {
                certificates.push(cert.to_der().map_err(enc)?);
                parsed.push(cert.clone());
            }
        }
    }
    let signers: Vec<&SignerInfo> = sd.signer_infos.0.iter().collect();
    if signers.len() != 1 {
        return Err(bad("expected exactly one signer"));
    }
    let signer = signers[0];
    let idx = parsed
        .iter()
        .position(|c| match &signer.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                c.tbs_certificate().issuer() == &ias.issuer
                    && c.tbs_certificate().serial_number() == &ias.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => {
                ski.0.as_bytes()
                    == key_identifier(c.tbs_certificate().subject_public_key_info()).as_slice()
            }
        })
        .ok_or_else(|| bad("the signer's certificate is not in the SignedData"))?;
    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or_else(|| bad("no signed attributes"))?;
    let find = |oid: ObjectIdentifier| {
        attrs
            .iter()
            .find(|a| a.oid == oid)
            .and_then(|a| a.values.iter().next().cloned())
    };
    let ct: ObjectIdentifier = find(oids::PKCS9_CONTENT_TYPE)
        .ok_or_else(|| bad("no contentType attribute"))?
        .decode_as()
        .map_err(enc)?;
    if ct != sd.encap_content_info.econtent_type {
        return Err(bad("contentType attribute does not match the content"));
    }
    let md: OctetString = find(oids::PKCS9_MESSAGE_DIGEST)
        .ok_or_else(|| bad("no messageDigest attribute"))?
        .decode_as()
        .map_err(enc)?;
    if digest_by_oid(&signer.digest_alg.oid, econtent.as_bytes())? != md.as_bytes() {
        return Err(CryptoError::BadSignature);
    }
    let oid =
        crate::verify::cms_signature_oid(&signer.digest_alg.oid, &signer.signature_algorithm.oid)?;
    crate::verify::verify_signature(
        parsed[idx].tbs_certificate().subject_public_key_info(),
        &AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        },
        &attrs.to_der().map_err(enc)?,
        signer.signature.as_bytes(),
    )?;
    Ok(VerifiedSignedData {
        econtent_type: sd.encap_content_info.econtent_type,
        econtent: econtent.as_bytes().to_vec(),
        signer_certificate: certificates[idx].clone(),
        certificates,
        signed_attributes: attrs.iter().cloned().collect(),
    })
}

/// A "certs-only" PKCS#7 (a SignedData with no signers and no content) carrying
/// the given certificates (DER), as `.p7b` files and certsrv's `certnew.p7b` do.
pub fn certs_only(certs: &[Vec<u8>]) -> Result<Vec<u8>, CryptoError> {
    let mut cert_set = Vec::new();
    for c in certs {
        cert_set.push(cms::cert::CertificateChoices::Certificate(
            Certificate::from_der(c).map_err(enc)?,
        ));
    }
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oids::ID_DATA,
            econtent: None,
        },
        certificates: Some(cms::signed_data::CertificateSet(
            SetOfVec::try_from(cert_set).map_err(enc)?,
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    ContentInfo {
        content_type: oids::ID_SIGNED_DATA,
        content: Any::encode_from(&sd).map_err(enc)?,
    }
    .to_der()
    .map_err(enc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeySpec, SoftwareKey};
    use std::str::FromStr;

    fn recipient(key: &SoftwareKey, serial: u8) -> (Recipient, Name, SerialNumber) {
        let issuer = Name::from_str("CN=Test CA").unwrap();
        let serial = SerialNumber::new(&[serial]).unwrap();
        (
            Recipient {
                issuer: issuer.clone(),
                serial: serial.clone(),
                spki: KeyHandle::public_key_info(key).clone(),
            },
            issuer,
            serial,
        )
    }

    #[test]
    fn envelope_round_trip_every_cipher_and_transport() {
        let k1 = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
        let k2 = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
        let (r1, i1, s1) = recipient(&k1, 1);
        let (r2, i2, s2) = recipient(&k2, 2);
        for cipher in [
            ContentCipher::Aes256Cbc,
            ContentCipher::Aes128Cbc,
            ContentCipher::DesEde3Cbc,
        ] {
            for transport in [
                KeyTransport::RsaPkcs1v15,
                KeyTransport::RsaOaepSha1,
                KeyTransport::RsaOaepSha256,
            ] {
                let env = envelope(
                    b"secret key bytes",
                    &[r1.clone(), r2.clone()],
                    cipher,
                    transport,
                )
                .unwrap();
                for (i, s, k) in [(&i1, &s1, &k1), (&i2, &s2, &k2)] {
                    let got = open_envelope(
                        &env,
                        &[OpeningKey {
                            issuer: i,
                            serial: s,
                            key: k,
                        }],
                    )
                    .unwrap();
                    assert_eq!(&got[..], b"secret key bytes");
                }
                assert_eq!(envelope_recipients(&env).unwrap().len(), 2);
            }
        }
        let stranger = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
        let (_r, _i, s3) = recipient(&stranger, 3);
        let env = envelope(
            b"x",
            std::slice::from_ref(&r1),
            ContentCipher::Aes256Cbc,
            KeyTransport::RsaPkcs1v15,
        )
        .unwrap();
        assert!(matches!(
            open_envelope(
                &env,
                &[OpeningKey {
                    issuer: &i1,
                    serial: &s3,
                    key: &stranger
                }]
            ),
            Err(OpenError::NotForUs)
        ));
    }

    #[test]
    fn ecdh_recipients_round_trip() {
        for spec in [KeySpec::P256, KeySpec::P384] {
            let ec = SoftwareKey::generate(spec).unwrap();
            let rsa = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
            let (r1, i1, s1) = recipient(&ec, 1);
            let (r2, _i2, _s2) = recipient(&rsa, 2);
            let env = envelope(
                b"escrowed",
                &[r1, r2],
                ContentCipher::Aes256Cbc,
                KeyTransport::RsaPkcs1v15,
            )
            .unwrap();
            let got = open_envelope(
                &env,
                &[OpeningKey {
                    issuer: &i1,
                    serial: &s1,
                    key: &ec,
                }],
            )
            .unwrap();
            assert_eq!(&got[..], b"escrowed");
            assert_eq!(envelope_recipients(&env).unwrap().len(), 2);
            let other = SoftwareKey::generate(spec).unwrap();
            assert!(matches!(
                open_envelope(
                    &env,
                    &[OpeningKey {
                        issuer: &i1,
                        serial: &s1,
                        key: &other
                    }]
                ),
                Err(OpenError::Decrypt)
            ));
        }
    }

    #[test]
    fn corrupted_key_transport_fails_like_any_bad_envelope() {
        let k = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
        let (r, i, s) = recipient(&k, 1);
        let env = envelope(
            b"payload",
            &[r],
            ContentCipher::Aes256Cbc,
            KeyTransport::RsaPkcs1v15,
        )
        .unwrap();
        // Flip a byte inside the RSA ciphertext (the first 0x04 0x82 0x01 0x00 OCTET STRING of 256 bytes).
        let pos = env
            .windows(4)
            .position(|w| w == [0x04, 0x82, 0x01, 0x00])
            .unwrap()
            + 10;
        let mut bad = env.clone();
        bad[pos] ^= 0xff;
        let keys = [OpeningKey {
            issuer: &i,
            serial: &s,
            key: &k,
        }];
        assert!(matches!(
            open_envelope(&bad, &keys),
            Err(OpenError::Decrypt)
        ));
        // A corrupted content ciphertext fails the same way, or (CBC has no
        // integrity: about 1 in 256 garbled last blocks still end in valid
        // padding) decrypts to something that is not the payload.
        let mut bad2 = env.clone();
        let n = bad2.len();
        bad2[n - 1] ^= 0x01;
        match open_envelope(&bad2, &keys) {
            Err(OpenError::Decrypt) => {}
            Ok(p) => assert_ne!(&p[..], b"payload"),
            Err(e) => panic!("a corrupted ciphertext is a decryption failure, not {e:?}"),
        }
        assert!(matches!(
            open_envelope(&env[..env.len() - 5], &keys),
            Err(OpenError::Malformed(_))
        ));
    }
}
