//! The certsrv enrollment form (`POST /certsrv/certfnsh.asp`), as browsers,
//! the `certsrv` package, Certipy and impacket send it:
//! `application/x-www-form-urlencoded` with `Mode`, `CertRequest`,
//! `CertAttrib` (lines of `Name:Value`), `TargetStoreFlags`, `SaveCert`,
//! `FriendlyType` and `ThumbPrint`.

use percent_encoding::percent_decode;

use crate::error::CodecError;

/// The fields of an enrollment form that mean something to the CA.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnrollForm {
    /// `Mode` (`newreq` when absent).
    pub mode: String,
    /// `CertRequest`: PKCS#10 or CMC, base64 with or without armour.
    pub cert_request: String,
    /// `CertAttrib`, split into `(name, value)` pairs.
    pub attributes: Vec<(String, String)>,
}

fn decode(what: &'static str, raw: &[u8]) -> Result<String, CodecError> {
    let plus: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let bytes: Vec<u8> = percent_decode(&plus).collect();
    String::from_utf8(bytes).map_err(|_| CodecError::invalid(what, "not UTF-8 after unescaping"))
}

/// `CertAttrib`: lines of `Name:Value` (CRLF or LF separated); blank names dropped.
pub fn parse_cert_attrib(text: &str) -> Vec<(String, String)> {
    text.split(['\r', '\n'])
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// Parses an enrollment form body. Refuses bodies that are not UTF-8 once
/// unescaped, repeat `Mode`, `CertRequest` or `CertAttrib`, use a mode other
/// than `newreq`, or carry no request.
pub fn parse_enroll_form(body: &[u8]) -> Result<EnrollForm, CodecError> {
    if body.len() > crate::MAX_INPUT_LEN {
        return Err(CodecError::TooLarge(body.len()));
    }
    let mut mode = None;
    let mut request = None;
    let mut attrib = None;
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        let name = decode("form field name", k)?;
        let slot = match name.as_str() {
            "Mode" => &mut mode,
            "CertRequest" => &mut request,
            "CertAttrib" => &mut attrib,
            // TargetStoreFlags, SaveCert, FriendlyType, ThumbPrint and the
            // like steer the Windows client side only.
            _ => continue,
        };
        if slot.is_some() {
            return Err(CodecError::invalid(
                "certsrv form",
                format!("the field {name} appears more than once"),
            ));
        }
        *slot = Some(decode("form field value", v)?);
    }
    let mode = mode.unwrap_or_else(|| "newreq".into());
    if !mode.eq_ignore_ascii_case("newreq") {
        return Err(CodecError::invalid(
            "certsrv form",
            format!("unsupported Mode '{mode}' (only newreq)"),
        ));
    }
    let cert_request = request
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| CodecError::invalid("certsrv form", "the form has no CertRequest"))?;
    Ok(EnrollForm {
        mode,
        cert_request,
        attributes: attrib.as_deref().map(parse_cert_attrib).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_impacket_sends() {
        let body = b"Mode=newreq&CertRequest=-----BEGIN+CERTIFICATE+REQUEST-----MIIB%2bA==-----END+CERTIFICATE+REQUEST-----&CertAttrib=CertificateTemplate:User%0d%0aSAN:upn=a@b&TargetStoreFlags=0&SaveCert=yes&ThumbPrint=";
        let f = parse_enroll_form(body).unwrap();
        assert_eq!(
            f.cert_request,
            "-----BEGIN CERTIFICATE REQUEST-----MIIB+A==-----END CERTIFICATE REQUEST-----"
        );
        assert_eq!(
            f.attributes,
            vec![
                ("CertificateTemplate".into(), "User".into()),
                ("SAN".into(), "upn=a@b".into())
            ]
        );
    }

    #[test]
    fn refuses_ambiguous_or_broken_forms() {
        assert!(parse_enroll_form(b"CertRequest=a&CertRequest=b").is_err());
        assert!(parse_enroll_form(b"Mode=chkpnd&CertRequest=a").is_err());
        assert!(parse_enroll_form(b"Mode=newreq").is_err());
        assert!(parse_enroll_form(b"CertRequest=%ff%fe").is_err());
        assert!(parse_enroll_form(b"CertRequest=%").is_ok());
        assert!(parse_enroll_form(b"&&=&CertRequest=x&").is_ok());
    }
}
