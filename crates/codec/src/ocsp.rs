//! OCSP (RFC 6960) requests and responses as typed DER structures, and the
//! request parser.
//!
//! The parser checks shape only: one to [`MAX_REQUESTS`] single requests,
//! a nonce of 1 to 32 bytes when present (RFC 8954). Signing and status
//! lookup belong to the engine; request signatures are not used (the
//! responder answers everyone the same public status).

use der::asn1::{Any, BitString, GeneralizedTime, Null, ObjectIdentifier, OctetString};
use der::{Choice, Decode, Encode, Enumerated, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::certificate::Certificate;
use x509_cert::ext::Extensions;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use crate::CodecError;

/// id-pkix-ocsp-basic: the response type Lockbox answers with.
pub const ID_PKIX_OCSP_BASIC: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-pkix-ocsp-nonce.
pub const ID_PKIX_OCSP_NONCE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// id-pkix-ocsp-nocheck (in the responder's certificate).
pub const ID_PKIX_OCSP_NOCHECK: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5");
/// id-kp-OCSPSigning.
pub const ID_KP_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
/// id-ad-ocsp (an AIA access method).
pub const ID_AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");

/// Most single requests one OCSP request may carry.
pub const MAX_REQUESTS: usize = 32;
/// Largest nonce accepted (RFC 8954: 1 to 32 octets).
pub const MAX_NONCE_LEN: usize = 32;

/// `CertID`: which certificate a request or answer is about.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertId {
    /// Hash algorithm of the two issuer hashes.
    pub hash_algorithm: AlgorithmIdentifierOwned,
    /// Hash of the issuer's DER-encoded name.
    pub issuer_name_hash: OctetString,
    /// Hash of the issuer's public key (the BIT STRING's value).
    pub issuer_key_hash: OctetString,
    /// The certificate's serial number.
    pub serial_number: SerialNumber,
}

/// `Request`: one certificate asked about.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SingleRequest {
    /// The certificate.
    pub req_cert: CertId,
    /// Per-request extensions (none are understood).
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub single_request_extensions: Option<Extensions>,
}

/// `TBSRequest`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TbsRequest {
    /// Version (v1 = 0).
    #[asn1(
        context_specific = "0",
        tag_mode = "EXPLICIT",
        default = "Default::default"
    )]
    pub version: u8,
    /// Requestor name (kept as read).
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub requestor_name: Option<Any>,
    /// The certificates asked about.
    pub request_list: Vec<SingleRequest>,
    /// Request extensions (the nonce).
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    pub request_extensions: Option<Extensions>,
}

/// `OCSPRequest`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct OcspRequest {
    /// The request.
    pub tbs_request: TbsRequest,
    /// Optional signature (read, not used).
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub optional_signature: Option<Any>,
}

/// `OCSPResponseStatus`.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Enumerated)]
#[repr(u32)]
pub enum ResponseStatus {
    /// Response has valid confirmations.
    Successful = 0,
    /// Illegal confirmation request.
    MalformedRequest = 1,
    /// Internal error in issuer.
    InternalError = 2,
    /// Try again later.
    TryLater = 3,
    /// Must sign the request.
    SigRequired = 5,
    /// Request unauthorized (not a certificate this responder answers for).
    Unauthorized = 6,
}

/// `ResponseBytes`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ResponseBytes {
    /// Response type ([`ID_PKIX_OCSP_BASIC`]).
    pub response_type: ObjectIdentifier,
    /// The DER of the typed response.
    pub response: OctetString,
}

/// `OCSPResponse`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct OcspResponse {
    /// Status.
    pub response_status: ResponseStatus,
    /// The basic response, when successful.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub response_bytes: Option<ResponseBytes>,
}

/// `ResponderID`.
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub enum ResponderId {
    /// The responder's subject name.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    ByName(Name),
    /// SHA-1 of the responder's public key (the BIT STRING's value).
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(OctetString),
}

/// `RevokedInfo`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct RevokedInfo {
    /// When it was revoked.
    pub revocation_time: GeneralizedTime,
    /// Why (CRLReason), when known.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub revocation_reason: Option<x509_cert::ext::pkix::CrlReason>,
}

/// `CertStatus`.
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub enum CertStatus {
    /// Not revoked.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    /// Revoked (or on hold).
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfo),
    /// Not a certificate this responder knows.
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

/// `SingleResponse`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SingleResponse {
    /// The certificate, as asked.
    pub cert_id: CertId,
    /// Its status.
    pub cert_status: CertStatus,
    /// When the status was known to be correct.
    pub this_update: GeneralizedTime,
    /// When newer information will be available.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub next_update: Option<GeneralizedTime>,
    /// Per-response extensions.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub single_extensions: Option<Extensions>,
}

/// `ResponseData`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ResponseData {
    /// Version (v1 = 0, the default, never encoded).
    #[asn1(
        context_specific = "0",
        tag_mode = "EXPLICIT",
        default = "Default::default"
    )]
    pub version: u8,
    /// Who signed.
    pub responder_id: ResponderId,
    /// When the response was signed.
    pub produced_at: GeneralizedTime,
    /// One answer per single request.
    pub responses: Vec<SingleResponse>,
    /// Response extensions (the nonce, echoed).
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub response_extensions: Option<Extensions>,
}

/// `BasicOCSPResponse`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct BasicOcspResponse {
    /// The signed data.
    pub tbs_response_data: ResponseData,
    /// Signature algorithm.
    pub signature_algorithm: AlgorithmIdentifierOwned,
    /// Signature over the DER of `tbs_response_data`.
    pub signature: BitString,
    /// The responder's certificate (a delegated responder sends it).
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub certs: Option<Vec<Certificate>>,
}

/// What the responder needs from a request.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ParsedRequest {
    /// The certificates asked about, in order.
    pub cert_ids: Vec<CertId>,
    /// The nonce extension's value (the DER OCTET STRING's content), if any.
    pub nonce: Option<Vec<u8>>,
}

/// Parses a DER `OCSPRequest`: at most [`crate::MAX_INPUT_LEN`] bytes, one to
/// [`MAX_REQUESTS`] certificates, at most one nonce of 1 to [`MAX_NONCE_LEN`]
/// bytes, no trailing data.
pub fn parse_request(der: &[u8]) -> Result<ParsedRequest, CodecError> {
    if der.is_empty() {
        return Err(CodecError::Empty);
    }
    if der.len() > crate::MAX_INPUT_LEN {
        return Err(CodecError::TooLarge(der.len()));
    }
    let req = OcspRequest::from_der(der).map_err(CodecError::der("OCSP request"))?;
    let tbs = req.tbs_request;
    let invalid = |reason: String| CodecError::Invalid {
        what: "OCSP request",
        reason,
    };
    if tbs.version != 0 {
        return Err(invalid(format!("version {} is not v1", tbs.version + 1)));
    }
    if tbs.request_list.is_empty() || tbs.request_list.len() > MAX_REQUESTS {
        return Err(invalid(format!(
            "{} certificates asked about (1 to {MAX_REQUESTS} allowed)",
            tbs.request_list.len()
        )));
    }
    let mut nonce = None;
    for ext in tbs.request_extensions.iter().flatten() {
        if ext.extn_id != ID_PKIX_OCSP_NONCE {
            continue;
        }
        if nonce.is_some() {
            return Err(invalid("two nonce extensions".into()));
        }
        // RFC 6960 says the value is an OCTET STRING; RFC 8954 limits it.
        let value = OctetString::from_der(ext.extn_value.as_bytes())
            .map_err(CodecError::der("OCSP nonce"))?;
        let n = value.as_bytes();
        if n.is_empty() || n.len() > MAX_NONCE_LEN {
            return Err(invalid(format!(
                "nonce of {} bytes (1 to {MAX_NONCE_LEN} allowed)",
                n.len()
            )));
        }
        nonce = Some(n.to_vec());
    }
    Ok(ParsedRequest {
        cert_ids: tbs.request_list.into_iter().map(|r| r.req_cert).collect(),
        nonce,
    })
}

/// A response without a body (any status but `Successful`).
pub fn error_response(status: ResponseStatus) -> Result<Vec<u8>, CodecError> {
    OcspResponse {
        response_status: status,
        response_bytes: None,
    }
    .to_der()
    .map_err(CodecError::der("OCSP response"))
}

/// A successful response around a signed basic response.
pub fn successful_response(basic: &BasicOcspResponse) -> Result<Vec<u8>, CodecError> {
    let inner = basic.to_der().map_err(CodecError::der("OCSP response"))?;
    OcspResponse {
        response_status: ResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: ID_PKIX_OCSP_BASIC,
            response: OctetString::new(inner).map_err(CodecError::der("OCSP response"))?,
        }),
    }
    .to_der()
    .map_err(CodecError::der("OCSP response"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::asn1::OctetString;
    use x509_cert::ext::Extension;

    fn cert_id(serial: u8) -> CertId {
        CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap("1.3.14.3.2.26"),
                parameters: None,
            },
            issuer_name_hash: OctetString::new(vec![1; 20]).unwrap(),
            issuer_key_hash: OctetString::new(vec![2; 20]).unwrap(),
            serial_number: SerialNumber::new(&[serial]).unwrap(),
        }
    }

    fn request(n: usize, nonce: Option<Vec<u8>>) -> Vec<u8> {
        let request_extensions = nonce.map(|v| {
            vec![Extension {
                extn_id: ID_PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(OctetString::new(v).unwrap().to_der().unwrap())
                    .unwrap(),
            }]
        });
        OcspRequest {
            tbs_request: TbsRequest {
                version: 0,
                requestor_name: None,
                request_list: (0..n)
                    .map(|i| SingleRequest {
                        req_cert: cert_id(i as u8 + 1),
                        single_request_extensions: None,
                    })
                    .collect(),
                request_extensions,
            },
            optional_signature: None,
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn a_request_with_a_nonce_parses() {
        let p = parse_request(&request(2, Some(vec![7; 16]))).unwrap();
        assert_eq!(p.cert_ids.len(), 2);
        assert_eq!(p.nonce, Some(vec![7; 16]));
    }

    #[test]
    fn bad_requests_are_refused() {
        assert!(parse_request(&[]).is_err());
        assert!(parse_request(&request(0, None)).is_err());
        assert!(parse_request(&request(MAX_REQUESTS + 1, None)).is_err());
        assert!(parse_request(&request(1, Some(vec![]))).is_err());
        assert!(parse_request(&request(1, Some(vec![1; 33]))).is_err());
        let mut trailing = request(1, None);
        trailing.push(0);
        assert!(parse_request(&trailing).is_err());
        assert!(parse_request(&[0x30, 0x80, 0, 0]).is_err());
    }

    #[test]
    fn error_responses_encode_only_a_status() {
        let der = error_response(ResponseStatus::Unauthorized).unwrap();
        assert_eq!(der, vec![0x30, 0x03, 0x0a, 0x01, 0x06]);
        let back = OcspResponse::from_der(&der).unwrap();
        assert_eq!(back.response_status, ResponseStatus::Unauthorized);
    }
}
