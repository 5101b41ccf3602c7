//! CMC (RFC 5272) request and response structures and the Full PKI Request parser.
//!
//! The parser checks shape only (one signer, one PKCS#10, content types,
//! attribute multiplicity). Digests and signatures are checked by the crypto
//! layer over the byte ranges this module returns.

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{Any, GeneralizedTime, ObjectIdentifier, OctetString, SetOfVec, Utf8StringRef};
use der::{Choice, Decode, Encode, Sequence};
use x509_cert::attr::Attribute;
use x509_cert::request::CertReq;

use crate::oids;
use crate::CodecError;

/// CMC BodyPartID (0..2^32-1).
pub type BodyPartId = u32;

/// A control attribute (RFC 5272 3.2.1.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TaggedAttribute {
    /// Body part this control is labelled with.
    pub body_part_id: BodyPartId,
    /// Control type.
    pub attr_type: ObjectIdentifier,
    /// Control values.
    pub attr_values: SetOfVec<Any>,
}

/// A PKCS#10 request inside a CMC PKIData.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TaggedCertificationRequest {
    /// Body part id the controls refer to.
    pub body_part_id: BodyPartId,
    /// The PKCS#10 request.
    pub certification_request: CertReq,
}

/// The request kinds PKIData may carry. Lockbox accepts PKCS#10 (`tcr`); CRMF
/// and other request kinds fail to decode with a tag error.
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub enum TaggedRequest {
    /// `tcr [0] TaggedCertificationRequest`.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", constructed = "true")]
    Tcr(TaggedCertificationRequest),
}

/// A CMS content inside PKIData.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TaggedContentInfo {
    /// Body part id.
    pub body_part_id: BodyPartId,
    /// The content.
    pub content_info: ContentInfo,
}

/// An application-defined message inside PKIData.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct OtherMsg {
    /// Body part id.
    pub body_part_id: BodyPartId,
    /// Message type.
    pub other_msg_type: ObjectIdentifier,
    /// Message value.
    pub other_msg_value: Any,
}

/// PKIData, the content of a CMC Full PKI Request.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PkiData {
    /// Controls.
    pub control_sequence: Vec<TaggedAttribute>,
    /// Requests.
    pub req_sequence: Vec<TaggedRequest>,
    /// Nested CMS contents.
    pub cms_sequence: Vec<TaggedContentInfo>,
    /// Other messages.
    pub other_msg_sequence: Vec<OtherMsg>,
}

/// PKIResponse, the content of a CMC Full PKI Response.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PkiResponse {
    /// Controls (status info, Microsoft attributes).
    pub control_sequence: Vec<TaggedAttribute>,
    /// Nested CMS contents.
    pub cms_sequence: Vec<TaggedContentInfo>,
    /// Other messages.
    pub other_msg_sequence: Vec<OtherMsg>,
}

/// PendInfo of CMCStatusInfo.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PendInfo {
    /// Token to quote when polling.
    pub pend_token: OctetString,
    /// Suggested time to poll.
    pub pend_time: GeneralizedTime,
}

/// CMCStatusInfo control value (RFC 5272 6.1.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CmcStatusInfo {
    /// 0 success, 2 failed, 3 pending.
    pub cmc_status: u32,
    /// Body parts the status applies to.
    pub body_list: Vec<BodyPartId>,
    /// Human-readable status text.
    #[asn1(optional = "true")]
    pub status_string: Option<String>,
    /// failInfo (INTEGER) or pendInfo (SEQUENCE).
    #[asn1(optional = "true")]
    pub other_info: Option<Any>,
}

/// Microsoft CMC add-attributes control value (1.3.6.1.4.1.311.10.10.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CmcAddAttributes {
    /// Data reference (0 = whole PKIData).
    pub data_reference: BodyPartId,
    /// Body parts the attributes apply to.
    pub cert_references: Vec<BodyPartId>,
    /// The attributes.
    pub attributes: SetOfVec<Attribute>,
}

/// A structurally valid CMC Full PKI Request, split into the parts the CA checks.
#[derive(Clone, Debug)]
pub struct CmcRequest {
    /// The SignedData.
    pub signed_data: SignedData,
    /// The raw PKIData bytes (the signed eContent).
    pub pki_data_der: Vec<u8>,
    /// The decoded PKIData.
    pub pki_data: PkiData,
    /// Body part id of the one PKCS#10.
    pub body_part_id: BodyPartId,
    /// The one PKCS#10.
    pub cert_req: CertReq,
    /// DER of the one PKCS#10.
    pub cert_req_der: Vec<u8>,
    /// The one SignerInfo.
    pub signer: SignerInfo,
    /// DER of the signed attributes as a SET (what the signature covers).
    pub signed_attrs_der: Vec<u8>,
    /// The messageDigest signed attribute.
    pub message_digest: Vec<u8>,
    /// `name=value` pairs from regInfo controls.
    pub reg_info: Vec<(String, String)>,
    /// DER ContentInfo of the archived key (unauthenticated attribute 1.3.6.1.4.1.311.21.13).
    pub archived_key: Option<Vec<u8>>,
    /// Encrypted key hash (1.3.6.1.4.1.311.21.21) from the signed controls.
    pub encrypted_key_hash: Option<Vec<u8>>,
}

impl CmcRequest {
    /// Subject key identifier the signer is identified by, if that form is used.
    pub fn signer_key_id(&self) -> Option<&[u8]> {
        match &self.signer.sid {
            SignerIdentifier::SubjectKeyIdentifier(ski) => Some(ski.0.as_bytes()),
            SignerIdentifier::IssuerAndSerialNumber(_) => None,
        }
    }
}

/// Returns true when `der` starts like a CMS ContentInfo (rather than a PKCS#10).
pub fn looks_like_content_info(der: &[u8]) -> bool {
    // ContentInfo ::= SEQUENCE { OID, [0] ... }; PKCS#10 ::= SEQUENCE { SEQUENCE ... }
    let mut r = match der::SliceReader::new(der) {
        Ok(r) => r,
        Err(_) => return false,
    };
    let inner = (|| -> der::Result<der::Tag> {
        let _outer = der::Header::decode(&mut r)?;
        der::Tag::peek(&r)
    })();
    matches!(inner, Ok(der::Tag::ObjectIdentifier))
}

/// Decodes and shape-checks a CMC Full PKI Request.
pub fn parse_cmc_request(der: &[u8]) -> Result<CmcRequest, CodecError> {
    let (signed_data, pki_data_der) = signed_content(der, &oids::ID_CCT_PKI_DATA, "CMC request")?;
    let pki_data = PkiData::from_der(&pki_data_der).map_err(CodecError::der("CMC PKIData"))?;
    let (cert_req, cert_req_der, body_part_id) = single_request(&pki_data)?;
    let signer = single_signer(&signed_data)?;
    let (message_digest, signed_attrs_der) =
        signed_attributes(&signer, &oids::ID_CCT_PKI_DATA, "CMC request")?;
    let archived_key = archived_key(&signer)?;
    let (reg_info, encrypted_key_hash) = controls(&pki_data)?;
    Ok(CmcRequest {
        signed_data,
        pki_data_der,
        pki_data,
        body_part_id,
        cert_req,
        cert_req_der,
        signer,
        signed_attrs_der,
        message_digest,
        reg_info,
        archived_key,
        encrypted_key_hash,
    })
}

/// The encapsulated content type of a SignedData ContentInfo (to tell a
/// CMC request from a PKCS#7-wrapped PKCS#10), None for anything else.
pub fn signed_content_type(der: &[u8]) -> Option<ObjectIdentifier> {
    let ci = ContentInfo::from_der(der).ok()?;
    if ci.content_type != oids::ID_SIGNED_DATA {
        return None;
    }
    let sd: SignedData = ci.content.decode_as().ok()?;
    Some(sd.encap_content_info.econtent_type)
}

/// A PKCS#10 inside a PKCS#7 SignedData (eContent id-data), signed with the
/// key of a certificate carried in it: how Windows sends a renewal
/// (`IX509CertificateRequestPkcs7` initialised from the old certificate),
/// and what `openssl cms -sign` makes of a PKCS#10.
#[derive(Clone, Debug)]
pub struct Pkcs7Request {
    /// The SignedData.
    pub signed_data: SignedData,
    /// DER of the PKCS#10 (the eContent).
    pub cert_req_der: Vec<u8>,
    /// The one SignerInfo.
    pub signer: SignerInfo,
    /// With signed attributes: (messageDigest, DER of the attributes as a SET).
    /// Without, the signature covers the PKCS#10 itself.
    pub signed_attrs: Option<(Vec<u8>, Vec<u8>)>,
}

/// Decodes and shape-checks a PKCS#7 SignedData carrying one PKCS#10.
pub fn parse_pkcs7_request(der: &[u8]) -> Result<Pkcs7Request, CodecError> {
    let what = "PKCS#7 request";
    let (signed_data, cert_req_der) = signed_content(der, &oids::ID_DATA, what)?;
    let signer = single_signer(&signed_data)?;
    let signed_attrs = match signer.signed_attrs {
        Some(_) => Some(signed_attributes(&signer, &oids::ID_DATA, what)?),
        None => None,
    };
    Ok(Pkcs7Request {
        signed_data,
        cert_req_der,
        signer,
        signed_attrs,
    })
}

/// The SignedData of a ContentInfo and its encapsulated content of type
/// `econtent_type` (DER).
fn signed_content(
    der: &[u8],
    econtent_type: &ObjectIdentifier,
    what: &'static str,
) -> Result<(SignedData, Vec<u8>), CodecError> {
    let ci = ContentInfo::from_der(der).map_err(CodecError::der("CMS ContentInfo"))?;
    if ci.content_type != oids::ID_SIGNED_DATA {
        return Err(CodecError::invalid(
            what,
            format!("content type {} is not signedData", ci.content_type),
        ));
    }
    let signed_data: SignedData = ci
        .content
        .decode_as()
        .map_err(CodecError::der("CMS SignedData"))?;
    let encap = &signed_data.encap_content_info;
    if &encap.econtent_type != econtent_type {
        return Err(CodecError::invalid(
            what,
            format!(
                "encapsulated content {} is not {econtent_type}",
                encap.econtent_type
            ),
        ));
    }
    let econtent = encap
        .econtent
        .as_ref()
        .ok_or_else(|| CodecError::invalid(what, "detached content is not supported"))?;
    let octets: OctetString = econtent
        .decode_as()
        .map_err(CodecError::der("CMC eContent OCTET STRING"))?;
    let pki_data_der = octets.as_bytes().to_vec();
    Ok((signed_data, pki_data_der))
}

/// The one PKCS#10 of reqSequence: (request, its DER, its bodyPartID).
fn single_request(pki_data: &PkiData) -> Result<(CertReq, Vec<u8>, BodyPartId), CodecError> {
    if pki_data.req_sequence.len() != 1 {
        return Err(CodecError::invalid(
            "CMC request",
            format!(
                "expected exactly one PKCS#10 in reqSequence, found {}",
                pki_data.req_sequence.len()
            ),
        ));
    }
    let TaggedRequest::Tcr(tcr) = &pki_data.req_sequence[0];
    let cert_req = tcr.certification_request.clone();
    let cert_req_der = cert_req.to_der().map_err(CodecError::der("PKCS#10"))?;
    Ok((cert_req, cert_req_der, tcr.body_part_id))
}

/// The one SignerInfo.
fn single_signer(signed_data: &SignedData) -> Result<SignerInfo, CodecError> {
    let signers: Vec<&SignerInfo> = signed_data.signer_infos.0.iter().collect();
    if signers.len() != 1 {
        return Err(CodecError::invalid(
            "CMC request",
            format!("expected exactly one SignerInfo, found {}", signers.len()),
        ));
    }
    Ok(signers[0].clone())
}

/// Checks the signed contentType (`expected`) and returns the
/// messageDigest and the DER of the signed attributes.
fn signed_attributes(
    signer: &SignerInfo,
    expected: &ObjectIdentifier,
    what: &'static str,
) -> Result<(Vec<u8>, Vec<u8>), CodecError> {
    let signed_attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or_else(|| CodecError::invalid(what, "SignerInfo has no signed attributes"))?;
    let content_type = single_attr(
        signed_attrs.iter(),
        &oids::PKCS9_CONTENT_TYPE,
        "contentType",
    )?
    .ok_or_else(|| CodecError::invalid(what, "contentType signed attribute missing"))?;
    let ct: ObjectIdentifier = content_type
        .decode_as()
        .map_err(CodecError::der("contentType attribute"))?;
    if &ct != expected {
        return Err(CodecError::invalid(
            what,
            "contentType signed attribute does not match the encapsulated content",
        ));
    }
    let md = single_attr(
        signed_attrs.iter(),
        &oids::PKCS9_MESSAGE_DIGEST,
        "messageDigest",
    )?
    .ok_or_else(|| CodecError::invalid(what, "messageDigest signed attribute missing"))?;
    let message_digest = md
        .decode_as::<OctetString>()
        .map_err(CodecError::der("messageDigest attribute"))?
        .as_bytes()
        .to_vec();
    let signed_attrs_der = signed_attrs
        .to_der()
        .map_err(CodecError::der("signed attributes"))?;
    Ok((message_digest, signed_attrs_der))
}

/// The archived key (DER ContentInfo) from the unsigned attributes, if any.
fn archived_key(signer: &SignerInfo) -> Result<Option<Vec<u8>>, CodecError> {
    Ok(match &signer.unsigned_attrs {
        Some(attrs) => single_attr(attrs.iter(), &oids::MS_ARCHIVED_KEY, "archived key")?
            .map(|any| any.to_der().map_err(CodecError::der("archived key")))
            .transpose()?,
        None => None,
    })
}

/// What the controls carry: regInfo name/value pairs, and the encrypted key
/// hash (given once at most).
type Controls = (Vec<(String, String)>, Option<Vec<u8>>);

/// The controls: regInfo name/value pairs and the encrypted key hash (at
/// most once, directly or inside a CMC add-attributes control).
fn controls(pki_data: &PkiData) -> Result<Controls, CodecError> {
    let mut reg_info = Vec::new();
    let mut encrypted_key_hash = None;
    for control in &pki_data.control_sequence {
        if control.attr_type == oids::ID_CMC_REG_INFO {
            for v in control.attr_values.iter() {
                let os: OctetString = v.decode_as().map_err(CodecError::der("regInfo"))?;
                let text = String::from_utf8_lossy(os.as_bytes());
                reg_info.extend(crate::ms::parse_name_value_pairs(&text));
            }
        } else if control.attr_type == oids::MS_CMC_ADD_ATTRIBUTES {
            for v in control.attr_values.iter() {
                let add: CmcAddAttributes = v
                    .decode_as()
                    .map_err(CodecError::der("CMC add-attributes"))?;
                if let Some(h) = single_attr(
                    add.attributes.iter(),
                    &oids::MS_ENCRYPTED_KEY_HASH,
                    "encrypted key hash",
                )? {
                    set_once(&mut encrypted_key_hash, hash_value(h)?)?;
                }
            }
        } else if control.attr_type == oids::MS_ENCRYPTED_KEY_HASH {
            if control.attr_values.len() != 1 {
                return Err(CodecError::invalid(
                    "CMC request",
                    "encrypted key hash must have one value",
                ));
            }
            if let Some(h) = control.attr_values.iter().next() {
                set_once(&mut encrypted_key_hash, hash_value(h)?)?;
            }
        }
    }
    Ok((reg_info, encrypted_key_hash))
}

fn hash_value(any: &Any) -> Result<Vec<u8>, CodecError> {
    Ok(any
        .decode_as::<OctetString>()
        .map_err(CodecError::der("encrypted key hash"))?
        .as_bytes()
        .to_vec())
}

fn set_once(slot: &mut Option<Vec<u8>>, value: Vec<u8>) -> Result<(), CodecError> {
    if slot.is_some() {
        return Err(CodecError::invalid(
            "CMC request",
            "encrypted key hash given twice",
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// Finds the single value of attribute `oid`; duplicates (two attributes or
/// two values) are refused, absence is `None`.
fn single_attr<'a>(
    attrs: impl Iterator<Item = &'a Attribute>,
    oid: &ObjectIdentifier,
    what: &str,
) -> Result<Option<&'a Any>, CodecError> {
    let mut found: Option<&Any> = None;
    for a in attrs.filter(|a| &a.oid == oid) {
        if found.is_some() || a.values.len() != 1 {
            return Err(CodecError::invalid(
                "CMC request",
                format!("{what} attribute must occur once with one value"),
            ));
        }
        found = a.values.iter().next();
    }
    Ok(found)
}

/// Encodes a status string as UTF8String `Any` (helper for responses).
pub fn utf8_any(text: &str) -> Result<Any, CodecError> {
    let s = Utf8StringRef::new(text).map_err(CodecError::der("UTF8String"))?;
    Any::encode_from(&s).map_err(CodecError::der("UTF8String"))
}
