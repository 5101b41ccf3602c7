//! PKCS#10 certification requests: decoding and the facts the CA's policy needs.

use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier};
use der::{Decode, Encode, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extension;
use x509_cert::request::{CertReq, ExtensionReq};

use crate::ms::{CertificateTemplateExt, EnrollmentNameValuePair};
use crate::msext::CertTypeName;
use crate::{oids, CodecError};
use const_oid::AssociatedOid;

/// The outer PKCS#10 shape with the signed part kept as raw bytes, so the
/// signature is checked over exactly what the requester signed.
#[derive(Sequence)]
struct RawSigned<'a> {
    tbs: AnyRef<'a>,
    algorithm: AnyRef<'a>,
    signature: BitStringRef<'a>,
}

/// Returns the raw DER of the first element of a signed SEQUENCE
/// (`CertificationRequestInfo`, `TBSCertificate`, `TBSCertList`).
pub fn signed_part(der: &[u8]) -> Result<Vec<u8>, CodecError> {
    let raw = RawSigned::from_der(der).map_err(CodecError::der("signed structure"))?;
    raw.tbs
        .to_der()
        .map_err(CodecError::der("signed structure"))
}

/// A decoded PKCS#10 request with the fields the CA's policy looks at.
#[derive(Clone, Debug)]
pub struct Pkcs10 {
    /// The request as received (DER).
    pub der: Vec<u8>,
    /// The decoded request.
    pub cert_req: CertReq,
    /// The exact bytes the signature covers.
    pub signed_bytes: Vec<u8>,
    /// Extensions from the extensionRequest attribute.
    pub extensions: Vec<Extension>,
    /// Template name from a `CertificateTemplate` name/value pair or a v1 type-name extension.
    pub template_name: Option<String>,
    /// Template from a v2 template extension.
    pub template_ext: Option<CertificateTemplateExt>,
    /// Enrollment name/value pairs (1.3.6.1.4.1.311.13.2.1).
    pub name_values: Vec<(String, String)>,
    /// The certificate being renewed (1.3.6.1.4.1.311.13.1), as Windows
    /// puts it in a renewal request.
    pub renewal_certificate: Option<x509_cert::certificate::Certificate>,
}

impl Pkcs10 {
    /// The signature algorithm of the request.
    pub fn signature_algorithm(&self) -> &AlgorithmIdentifierOwned {
        &self.cert_req.algorithm
    }

    /// The raw signature bytes.
    pub fn signature(&self) -> &[u8] {
        self.cert_req.signature.raw_bytes()
    }

    /// Finds a requested extension by OID.
    pub fn extension(&self, oid: &ObjectIdentifier) -> Option<&Extension> {
        self.extensions.iter().find(|e| &e.extn_id == oid)
    }
}

/// The first extension of type `T` in `extensions` (found by `T`'s OID),
/// decoded; `None` when absent. Typed lookup over a request's extension
/// list, as x509-cert's `get_extension::<T>()` does for a certificate.
pub fn typed_extension<'a, T: Decode<'a, Error = der::Error> + AssociatedOid>(
    extensions: &'a [Extension],
) -> Option<Result<T, der::Error>> {
    extensions
        .iter()
        .find(|e| e.extn_id == T::OID)
        .map(|e| T::from_der(e.extn_value.as_bytes()))
}

/// Decodes a PKCS#10 request and extracts its attributes.
///
/// Duplicate extensionRequest attributes or duplicate extensions are refused.
pub fn parse_pkcs10(der: &[u8]) -> Result<Pkcs10, CodecError> {
    let cert_req = CertReq::from_der(der).map_err(CodecError::der("PKCS#10 request"))?;
    let signed_bytes = signed_part(der)?;
    if cert_req.info.version != x509_cert::request::Version::V1 {
        return Err(CodecError::invalid(
            "PKCS#10 request",
            "version must be v1 (0)",
        ));
    }
    let mut extensions: Vec<Extension> = Vec::new();
    let mut seen_ext_req = false;
    let mut name_values = Vec::new();
    let mut renewal_certificate = None;
    for attr in cert_req.info.attributes.iter() {
        if attr.oid == oids::PKCS9_EXTENSION_REQUEST {
            if seen_ext_req || attr.values.len() != 1 {
                return Err(CodecError::invalid(
                    "PKCS#10 request",
                    "extensionRequest must occur once with one value",
                ));
            }
            seen_ext_req = true;
            for v in attr.values.iter() {
                let req: ExtensionReq =
                    v.decode_as().map_err(CodecError::der("extensionRequest"))?;
                extensions.extend(req.0);
            }
        } else if attr.oid == oids::MS_RENEWAL_CERTIFICATE {
            if renewal_certificate.is_some() || attr.values.len() != 1 {
                return Err(CodecError::invalid(
                    "PKCS#10 request",
                    "the renewal certificate attribute must occur once with one value",
                ));
            }
            for v in attr.values.iter() {
                renewal_certificate = Some(
                    v.decode_as::<x509_cert::certificate::Certificate>()
                        .map_err(CodecError::der("renewal certificate attribute"))?,
                );
            }
        } else if attr.oid == oids::MS_ENROLLMENT_NAME_VALUE_PAIR {
            for v in attr.values.iter() {
                let nv: EnrollmentNameValuePair = v
                    .decode_as()
                    .map_err(CodecError::der("enrollment name/value pair"))?;
                name_values.push((nv.name.to_string(), nv.value.to_string()));
            }
        }
    }
    for (i, e) in extensions.iter().enumerate() {
        if extensions[..i].iter().any(|o| o.extn_id == e.extn_id) {
            return Err(CodecError::invalid(
                "PKCS#10 request",
                format!("extension {} requested twice", e.extn_id),
            ));
        }
    }
    let mut template_name = name_values
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("CertificateTemplate"))
        .map(|(_, v)| v.clone());
    if template_name.is_none() {
        if let Some(name) = typed_extension::<CertTypeName>(&extensions)
            .transpose()
            .map_err(CodecError::der("certificate type name extension"))?
        {
            template_name = Some(name.0);
        }
    }
    let template_ext = typed_extension::<CertificateTemplateExt>(&extensions)
        .transpose()
        .map_err(CodecError::der("certificate template extension"))?;
    Ok(Pkcs10 {
        der: der.to_vec(),
        cert_req,
        signed_bytes,
        extensions,
        template_name,
        template_ext,
        name_values,
        renewal_certificate,
    })
}
