//! Reading names: subject attributes, SAN entries (UPN, e-mail, DNS).

use der::asn1::{Any, ObjectIdentifier};
use der::{Decode, Tag, Tagged};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::Name;

use crate::{oids, CodecError};

/// Decodes a directory-string-like value (UTF8, Printable, IA5, T61, BMP) to text.
pub fn any_to_string(value: &Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            std::str::from_utf8(bytes).ok().map(str::to_owned)
        }
        Tag::TeletexString => Some(bytes.iter().map(|&b| b as char).collect()),
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// All values of attribute `oid` in a name, most significant RDN first.
pub fn name_attr(name: &Name, oid: &ObjectIdentifier) -> Vec<String> {
    name.as_ref()
        .iter()
        .flat_map(|rdn| rdn.as_ref().iter())
        .filter(|atv| &atv.oid == oid)
        .filter_map(|atv| any_to_string(&atv.value))
        .collect()
}

/// The most specific common name of a name.
pub fn common_name(name: &Name) -> Option<String> {
    name_attr(name, &oids::AT_COMMON_NAME).pop()
}

/// The DN in RFC 4514 string form.
pub fn dn_string(name: &Name) -> String {
    name.to_string()
}

/// Identities found in a subjectAltName extension value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AltNames {
    /// User principal names (otherName 1.3.6.1.4.1.311.20.2.3).
    pub upns: Vec<String>,
    /// RFC 822 names.
    pub emails: Vec<String>,
    /// DNS names.
    pub dns: Vec<String>,
}

/// Decodes a subjectAltName extension value.
pub fn parse_alt_names(ext_value: &[u8]) -> Result<AltNames, CodecError> {
    let san = SubjectAltName::from_der(ext_value).map_err(CodecError::der("subjectAltName"))?;
    let mut out = AltNames::default();
    for gn in san.0 {
        match gn {
            GeneralName::OtherName(on) if on.type_id == oids::MS_UPN => {
                if let Some(s) = any_to_string(&on.value) {
                    out.upns.push(s);
                }
            }
            GeneralName::Rfc822Name(s) => out.emails.push(s.to_string()),
            GeneralName::DnsName(s) => out.dns.push(s.to_string()),
            _ => {}
        }
    }
    Ok(out)
}

/// The e-mail address of a subject: SAN rfc822Name first, then the legacy
/// emailAddress attribute in the DN.
pub fn email(name: &Name, alt: &AltNames) -> Option<String> {
    alt.emails
        .first()
        .cloned()
        .or_else(|| name_attr(name, &oids::PKCS9_EMAIL_ADDRESS).pop())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn reads_common_name() {
        let n = Name::from_str("CN=Alice Example,O=Contoso").unwrap();
        assert_eq!(common_name(&n).as_deref(), Some("Alice Example"));
        assert!(dn_string(&n).contains("CN=Alice Example"));
    }
}
