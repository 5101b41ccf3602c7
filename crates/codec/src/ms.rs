//! Microsoft certificate and request extensions (MS-WCCE 2.2.2.7).

use der::asn1::{BmpString, ObjectIdentifier};
use der::{Decode, Encode, Sequence};

use crate::CodecError;

/// Value of the v2+ certificate template extension (1.3.6.1.4.1.311.21.7).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertificateTemplateExt {
    /// The template's OID.
    pub template_id: ObjectIdentifier,
    /// Template major version.
    #[asn1(optional = "true")]
    pub major_version: Option<u32>,
    /// Template minor version.
    #[asn1(optional = "true")]
    pub minor_version: Option<u32>,
}

/// A PKCS#10 attribute value of type 1.3.6.1.4.1.311.13.2.1 (`CertificateTemplate:User`).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EnrollmentNameValuePair {
    /// The name, e.g. `CertificateTemplate`.
    pub name: BmpString,
    /// The value, e.g. `User`.
    pub value: BmpString,
}

/// Encodes a v1 certificate type name extension value (a DER BMPString).
pub fn encode_cert_type_name(name: &str) -> Result<Vec<u8>, CodecError> {
    BmpString::from_utf8(name)
        .and_then(|b| b.to_der())
        .map_err(CodecError::der("certificate type name"))
}

/// Decodes a v1 certificate type name extension value.
pub fn decode_cert_type_name(der: &[u8]) -> Result<String, CodecError> {
    let b = BmpString::from_der(der).map_err(CodecError::der("certificate type name"))?;
    Ok(b.to_string())
}

/// Parses `name=value&name=value` pairs as Windows puts them in CMC regInfo
/// and in certsrv `CertAttrib` fields (URL-escaped values are unescaped).
pub fn parse_name_value_pairs(text: &str) -> Vec<(String, String)> {
    text.split(['&', '\n', '\r'])
        .filter_map(|pair| {
            let pair = pair.trim();
            let at = pair.find([':', '='])?;
            let (k, v) = (&pair[..at], &pair[at + 1..]);
            Some((unescape(k.trim()), unescape(v.trim())))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            // Bytes, not a str slice: the two bytes after '%' may split a
            // multi-byte character (found by the `pem` fuzz target).
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_before_a_multibyte_character_does_not_panic() {
        let pairs = parse_name_value_pairs("CertificateTemplate:a%\u{4e4}b&x=%41%zz%");
        assert_eq!(
            pairs[0],
            ("CertificateTemplate".into(), "a%\u{4e4}b".into())
        );
        assert_eq!(pairs[1], ("x".into(), "A%zz%".into()));
    }

    #[test]
    fn template_ext_round_trip() {
        let ext = CertificateTemplateExt {
            template_id: ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.21.8.1.2"),
            major_version: Some(100),
            minor_version: Some(3),
        };
        let der = ext.to_der().unwrap();
        assert_eq!(CertificateTemplateExt::from_der(&der).unwrap(), ext);
    }

    #[test]
    fn type_name_round_trip() {
        let der = encode_cert_type_name("User").unwrap();
        assert_eq!(der[0], 0x1e);
        assert_eq!(decode_cert_type_name(&der).unwrap(), "User");
    }

    #[test]
    fn name_value_pairs() {
        let p = parse_name_value_pairs("CertificateTemplate=User&ccm=host%2Ename&");
        assert_eq!(p[0], ("CertificateTemplate".into(), "User".into()));
        assert_eq!(p[1], ("ccm".into(), "host.name".into()));
        let p = parse_name_value_pairs("CertificateTemplate:WebServer\nSAN:upn=a@b");
        assert_eq!(p[0].1, "WebServer");
        assert_eq!(p[1], ("SAN".into(), "upn=a@b".into()));
    }
}
