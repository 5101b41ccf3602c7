//! Opening an envelope with an offered key, and listing its recipients.

use cms::content_info::ContentInfo;
use cms::enveloped_data::{
    EnvelopedData, KeyAgreeRecipientIdentifier, OriginatorIdentifierOrKey, RecipientIdentifier,
    RecipientInfo,
};
use der::asn1::OctetString;
use der::Decode;
use lockbox_codec::oids;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use zeroize::Zeroizing;

use super::OpenError;
use crate::keyinfo::key_identifier;
use crate::keytransport::{decrypt_key_implicit, DecryptionKey, KeyTransport};
use crate::symmetric::{cbc_decrypt, ContentCipher};
use crate::CryptoError;

/// A key on a token that is away is [`OpenError::KeyUnavailable`] (it does
/// not depend on the envelope); every other failure is [`OpenError::Decrypt`].
fn unavailable_or_decrypt(e: CryptoError) -> OpenError {
    match e {
        CryptoError::TokenUnavailable(_) | CryptoError::TokenLogin(_) => {
            OpenError::KeyUnavailable(e)
        }
        _ => OpenError::Decrypt,
    }
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
                    .map_err(unavailable_or_decrypt)?;
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
            .map_err(unavailable_or_decrypt)?;
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

/// Issuer and serial number of every recipient of an envelope that names
/// its recipient that way (RSA key transport and ECDH key agreement); a
/// recipient named by key identifier is left out.
pub fn envelope_recipient_ids(
    ed: &cms::enveloped_data::EnvelopedData,
) -> Vec<(
    x509_cert::name::Name,
    x509_cert::serial_number::SerialNumber,
)> {
    use cms::enveloped_data::{
        KeyAgreeRecipientIdentifier, RecipientIdentifier, RecipientInfo as RI,
    };
    let mut out = Vec::new();
    for ri in ed.recip_infos.0.iter() {
        match ri {
            RI::Ktri(k) => {
                if let RecipientIdentifier::IssuerAndSerialNumber(ias) = &k.rid {
                    out.push((ias.issuer.clone(), ias.serial_number.clone()));
                }
            }
            RI::Kari(k) => {
                for rek in &k.recipient_enc_keys {
                    if let KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(ias) = &rek.rid {
                        out.push((ias.issuer.clone(), ias.serial_number.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    out
}
