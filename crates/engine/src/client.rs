//! Client-side request building: CMC Full PKI Requests signed by the request key.
//!
//! Used by `lockbox` client commands, tests and benchmarks; the CA side never
//! calls it.

use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
use lockbox_codec::cmc::{PkiData, TaggedAttribute, TaggedCertificationRequest, TaggedRequest};
use lockbox_codec::oids;
use lockbox_crypto::digest::digest_by_oid;
use lockbox_crypto::keyinfo::key_identifier;
use lockbox_crypto::KeyHandle;
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::request::CertReq;

use crate::error::{EngineError, EngineResult};

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
    let digest_alg = AlgorithmIdentifierOwned {
        oid: oids::SHA256,
        parameters: None,
    };
    let digest = digest_by_oid(&oids::SHA256, &pki_der)?;
    let attr = |oid, value: Any| -> EngineResult<Attribute> {
        Ok(Attribute {
            oid,
            values: SetOfVec::try_from(vec![value]).map_err(enc)?,
        })
    };
    let signed_attrs = SetOfVec::try_from(vec![
        attr(
            oids::PKCS9_CONTENT_TYPE,
            Any::encode_from(&oids::ID_CCT_PKI_DATA).map_err(enc)?,
        )?,
        attr(
            oids::PKCS9_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(digest).map_err(enc)?).map_err(enc)?,
        )?,
    ])
    .map_err(enc)?;
    let signature = key.sign(&signed_attrs.to_der().map_err(enc)?)?;
    let ski = OctetString::new(key_identifier(key.public_key_info())).map_err(enc)?;
    let signer = SignerInfo {
        version: CmsVersion::V3,
        sid: SignerIdentifier::SubjectKeyIdentifier(SubjectKeyIdentifier(ski)),
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
    let sd = SignedData {
        version: CmsVersion::V3,
        digest_algorithms: SetOfVec::try_from(vec![digest_alg]).map_err(enc)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oids::ID_CCT_PKI_DATA,
            econtent: Some(
                Any::encode_from(&OctetString::new(pki_der).map_err(enc)?).map_err(enc)?,
            ),
        },
        certificates: None,
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer]).map_err(enc)?),
    };
    let ci = ContentInfo {
        content_type: oids::ID_SIGNED_DATA,
        content: Any::encode_from(&sd).map_err(enc)?,
    };
    ci.to_der().map_err(enc)
}
