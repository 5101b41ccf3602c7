//! Signing: CMS SignedData over a key handle, and certs-only `.p7b` bundles.

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
use lockbox_codec::oids;
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::certificate::Certificate;

use super::enc;
use crate::digest::digest_by_oid;
use crate::{CryptoError, KeyHandle};

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
    let sid = issuer_and_serial(signer_cert);
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
    let sid = issuer_and_serial(signer_cert);
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

/// The signer identifier naming `cert` by issuer and serial number.
fn issuer_and_serial(cert: &Certificate) -> SignerIdentifier {
    let tbs = cert.tbs_certificate();
    SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: tbs.issuer().clone(),
        serial_number: tbs.serial_number().clone(),
    })
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

/// The signed attributes: contentType, messageDigest (SHA-256 of
/// `econtent`), then `extra`.
fn signed_attributes(
    econtent_type: ObjectIdentifier,
    econtent: &[u8],
    extra: Vec<Attribute>,
) -> Result<SetOfVec<Attribute>, CryptoError> {
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
    attrs.extend(extra);
    SetOfVec::try_from(attrs).map_err(enc)
}

/// The certificates (DER) as the choices of a certificate set.
fn certificate_choices(
    certs: &[Vec<u8>],
) -> Result<Vec<cms::cert::CertificateChoices>, CryptoError> {
    let mut cert_set = Vec::new();
    for c in certs {
        cert_set.push(cms::cert::CertificateChoices::Certificate(
            Certificate::from_der(c).map_err(enc)?,
        ));
    }
    Ok(cert_set)
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
    let signed_attrs = signed_attributes(econtent_type, econtent, extra_signed)?;
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
    let cert_set = certificate_choices(certs)?;
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

/// A "certs-only" PKCS#7 (a SignedData with no signers and no content) carrying
/// the given certificates (DER), as `.p7b` files and certsrv's `certnew.p7b` do.
pub fn certs_only(certs: &[Vec<u8>]) -> Result<Vec<u8>, CryptoError> {
    let cert_set = certificate_choices(certs)?;
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
