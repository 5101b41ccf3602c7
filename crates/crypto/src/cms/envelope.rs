//! Sealing: a fresh content key, transported to every recipient.

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedContentInfo, EnvelopedData, KeyAgreeRecipientIdentifier, KeyAgreeRecipientInfo,
    KeyTransRecipientInfo, OriginatorIdentifierOrKey, OriginatorPublicKey, RecipientEncryptedKey,
    RecipientIdentifier, RecipientInfo, RecipientInfos,
};
use der::asn1::{Any, OctetString, SetOfVec};
use der::Encode;
use lockbox_codec::oids;
use spki::AlgorithmIdentifierOwned;

use super::{enc, Recipient};
use crate::keytransport::{encrypt_key, KeyTransport};
use crate::random::random_bytes;
use crate::symmetric::{cbc_encrypt, ContentCipher};
use crate::CryptoError;

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
