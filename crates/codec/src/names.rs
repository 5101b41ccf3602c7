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

/// The attribute names [`parse_dn`] accepts (case-insensitive), with their OIDs.
const DN_ATTRIBUTES: &[(&str, &str)] = &[
    ("CN", "2.5.4.3"),
    ("SN", "2.5.4.4"),
    ("SURNAME", "2.5.4.4"),
    ("SERIALNUMBER", "2.5.4.5"),
    ("C", "2.5.4.6"),
    ("L", "2.5.4.7"),
    ("ST", "2.5.4.8"),
    ("S", "2.5.4.8"),
    ("STREET", "2.5.4.9"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("T", "2.5.4.12"),
    ("TITLE", "2.5.4.12"),
    ("POSTALCODE", "2.5.4.17"),
    ("G", "2.5.4.42"),
    ("GN", "2.5.4.42"),
    ("GIVENNAME", "2.5.4.42"),
    ("I", "2.5.4.43"),
    ("INITIALS", "2.5.4.43"),
    ("E", "1.2.840.113549.1.9.1"),
    ("EMAIL", "1.2.840.113549.1.9.1"),
    ("EMAILADDRESS", "1.2.840.113549.1.9.1"),
    ("UID", "0.9.2342.19200300.100.1.1"),
    ("DC", "0.9.2342.19200300.100.1.25"),
];

/// Splits `s` at unescaped `,` and `+`, keeping the separators.
fn split_dn(s: &str) -> Vec<(&str, Option<char>)> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' || c == '+' {
            parts.push((&s[start..i], Some(c)));
            start = i + 1;
        }
    }
    parts.push((&s[start..], None));
    parts
}

/// Parses a subject DN as operators type it (`certreq`/OpenSSL style, most
/// specific first): `CN=Alice,E=alice@contoso.com,OU=Sales,O=Contoso,C=US`.
/// Attribute names are those of [`DN_ATTRIBUTES`] in any case (`E`,
/// `emailAddress`, `UID`, `DC`, `SERIALNUMBER`, `L`, `ST`, `STREET`, ...), a
/// dotted OID, or `OID.` and a dotted OID; spaces around names are ignored.
pub fn parse_dn(s: &str) -> Result<Name, CodecError> {
    use std::str::FromStr;
    let bad = |reason: String| CodecError::invalid("subject", reason);
    let mut canonical = String::with_capacity(s.len() + 16);
    for (part, sep) in split_dn(s) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("'{}' is not NAME=VALUE", part.trim())))?;
        let key = key.trim();
        let oid = match DN_ATTRIBUTES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
        {
            Some((_, oid)) => (*oid).to_string(),
            None => {
                let dotted = key
                    .strip_prefix("OID.")
                    .or_else(|| key.strip_prefix("oid."))
                    .unwrap_or(key);
                match ObjectIdentifier::new(dotted) {
                    Ok(oid) => oid.to_string(),
                    // The long names (commonName, organizationName, ...).
                    Err(_) => x509_cert::attr::AttributeTypeAndValue::from_str(&format!("{key}=x"))
                        .map(|atv| atv.oid.to_string())
                        .map_err(|_| {
                            bad(format!(
                                "unknown attribute '{key}' (use CN, O, OU, C, L, ST, STREET, E, UID, DC, SERIALNUMBER, T, G, SN, I, POSTALCODE or a dotted OID)"
                            ))
                        })?,
                }
            }
        };
        if value.trim().is_empty() {
            return Err(bad(format!("'{key}' has no value")));
        }
        let printable = |c: char| c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c);
        match oid.as_str() {
            "2.5.4.6" if !(value.len() == 2 && value.chars().all(|c| c.is_ascii_alphabetic())) => {
                return Err(bad(format!(
                    "C must be a two-letter country code, not '{value}'"
                )));
            }
            "2.5.4.5" if !value.chars().all(printable) => {
                return Err(bad(format!(
                    "SERIALNUMBER '{value}' is not a PrintableString"
                )));
            }
            "1.2.840.113549.1.9.1" | "0.9.2342.19200300.100.1.25" if !value.is_ascii() => {
                return Err(bad(format!(
                    "'{key}' must be ASCII (IA5String), not '{value}'"
                )));
            }
            _ => {}
        }
        canonical.push_str(&oid);
        canonical.push('=');
        canonical.push_str(value);
        if let Some(c) = sep {
            canonical.push(c);
        }
    }
    Name::from_str(&canonical).map_err(CodecError::der("subject"))
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

    #[test]
    fn parses_the_attribute_names_operators_type() {
        let n = parse_dn(
            "CN=x, E=y@contoso.com,UID=jdoe,DC=contoso,DC=com,SERIALNUMBER=42,L=Paris,ST=IDF,STREET=1 rue,emailAddress=z@contoso.com,O=Contoso,C=FR",
        )
        .unwrap();
        assert_eq!(common_name(&n).as_deref(), Some("x"));
        assert_eq!(
            name_attr(&n, &oids::PKCS9_EMAIL_ADDRESS),
            vec!["z@contoso.com", "y@contoso.com"]
        );
        for (oid, want) in [
            ("0.9.2342.19200300.100.1.1", "jdoe"),
            ("2.5.4.5", "42"),
            ("2.5.4.7", "Paris"),
            ("2.5.4.8", "IDF"),
            ("2.5.4.9", "1 rue"),
        ] {
            let oid = ObjectIdentifier::new(oid).unwrap();
            assert_eq!(name_attr(&n, &oid), vec![want.to_string()]);
        }
        let dc = ObjectIdentifier::new("0.9.2342.19200300.100.1.25").unwrap();
        assert_eq!(name_attr(&n, &dc).len(), 2);
        // the same bytes as the standard parser for the names it knows
        let std = Name::from_str("CN=Alice\\, Jr.,O=Contoso+OU=Sales,C=US").unwrap();
        assert_eq!(
            parse_dn("cn=Alice\\, Jr., o=Contoso+OU=Sales,C=US").unwrap(),
            std
        );
        assert_eq!(
            parse_dn("OID.2.5.4.3=x").unwrap(),
            Name::from_str("CN=x").unwrap()
        );
        assert_eq!(
            parse_dn("commonName=x,organizationName=Contoso").unwrap(),
            Name::from_str("CN=x,O=Contoso").unwrap()
        );
        for bad in ["CN=x,Q=y", "CN=", "CN=x,C=France", "x", "CN=x,E=é@x"] {
            assert!(parse_dn(bad).is_err(), "{bad}");
        }
    }
}
