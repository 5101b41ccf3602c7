//! Verifying a CMS SignedData with one signer.

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Decode, Encode};
use lockbox_codec::oids;
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::certificate::Certificate;

use super::enc;
use crate::digest::digest_by_oid;
use crate::keyinfo::key_identifier;
use crate::CryptoError;

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
    let (certificates, parsed) = certificate_set(&sd)?;
    let signers: Vec<&SignerInfo> = sd.signer_infos.0.iter().collect();
    if signers.len() != 1 {
        return Err(bad("expected exactly one signer"));
    }
    let signer = signers[0];
    let idx = parsed
        .iter()
        .position(|c| names_signer(c, &signer.sid))
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

/// The certificates of the set, as DER and parsed (other choices skipped).
fn certificate_set(sd: &SignedData) -> Result<(Vec<Vec<u8>>, Vec<Certificate>), CryptoError> {
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
    Ok((certificates, parsed))
}

/// Whether `c` is the certificate the signer identifier names.
fn names_signer(c: &Certificate, sid: &SignerIdentifier) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            c.tbs_certificate().issuer() == &ias.issuer
                && c.tbs_certificate().serial_number() == &ias.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            ski.0.as_bytes()
                == key_identifier(c.tbs_certificate().subject_public_key_info()).as_slice()
        }
    }
}
