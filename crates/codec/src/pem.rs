//! Input normalisation: PEM armour, bare base64 (as certsrv forms send it), or DER.

use base64::Engine;

use crate::{CodecError, MAX_INPUT_LEN};

/// Bytes decoded from an operator or client input, with the PEM label if there was one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The PEM label (`CERTIFICATE REQUEST`, `PKCS7`, ...) when the input was armoured.
    pub label: Option<String>,
    /// The DER bytes.
    pub der: Vec<u8>,
}

/// Turns PEM, bare base64 or DER input into DER.
///
/// DER is recognised by its leading SEQUENCE tag (`0x30`); anything else must be
/// PEM (first armoured block is used) or base64 text. Inputs larger than
/// [`MAX_INPUT_LEN`] are refused before decoding.
pub fn decode_input(input: &[u8]) -> Result<Decoded, CodecError> {
    if input.len() > MAX_INPUT_LEN {
        return Err(CodecError::TooLarge(input.len()));
    }
    if input.is_empty() {
        return Err(CodecError::Empty);
    }
    if input[0] == 0x30 {
        return Ok(Decoded {
            label: None,
            der: input.to_vec(),
        });
    }
    let text = std::str::from_utf8(input)
        .map_err(|_| CodecError::Pem("input is neither DER nor UTF-8 text".into()))?;
    let text = text.trim_start_matches('\u{feff}');
    if let Some(start) = text.find("-----BEGIN ") {
        let rest = &text[start + 11..];
        let label_end = rest
            .find("-----")
            .ok_or_else(|| CodecError::Pem("unterminated BEGIN line".into()))?;
        let label = rest[..label_end].to_string();
        let body_start = label_end + 5;
        let end_marker = format!("-----END {label}-----");
        let body_end = rest[body_start..]
            .find(&end_marker)
            .ok_or_else(|| CodecError::Pem(format!("missing '{end_marker}'")))?;
        let body = &rest[body_start..body_start + body_end];
        let der = decode_base64(body)?;
        return Ok(Decoded {
            label: Some(label),
            der,
        });
    }
    Ok(Decoded {
        label: None,
        der: decode_base64(text)?,
    })
}

fn decode_base64(body: &str) -> Result<Vec<u8>, CodecError> {
    let cleaned: String = body
        .lines()
        .filter(|l| !l.contains(':')) // RFC 1421 headers such as Proc-Type
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    if cleaned.is_empty() {
        return Err(CodecError::Pem("no base64 content".into()));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| CodecError::Pem(format!("bad base64: {e}")))?;
    if der.first() != Some(&0x30) {
        return Err(CodecError::Pem(
            "decoded content is not a DER SEQUENCE".into(),
        ));
    }
    Ok(der)
}

/// Decodes standard base64 text (any bytes, not only DER), as in HTTP Basic credentials.
pub fn decode_base64_text(text: &str) -> Result<Vec<u8>, CodecError> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim().as_bytes())
        .map_err(|e| CodecError::Pem(format!("bad base64: {e}")))
}

/// Wraps DER in PEM armour with the given label (64-column lines).
pub fn encode_pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Splits a text holding several PEM blocks with the same label into DER blobs.
pub fn decode_all(text: &str, label: &str) -> Result<Vec<Vec<u8>>, CodecError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(s) = rest.find(&begin) {
        let after = &rest[s + begin.len()..];
        let e = after
            .find(&end)
            .ok_or_else(|| CodecError::Pem(format!("missing '{end}'")))?;
        out.push(decode_base64(&after[..e])?);
        rest = &after[e + end.len()..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_passes_through() {
        let d = decode_input(&[0x30, 0x00]).unwrap();
        assert_eq!(d.der, vec![0x30, 0x00]);
        assert_eq!(d.label, None);
    }

    #[test]
    fn pem_round_trip() {
        let pem = encode_pem("CERTIFICATE REQUEST", &[0x30, 0x03, 1, 2, 3]);
        let d = decode_input(pem.as_bytes()).unwrap();
        assert_eq!(d.label.as_deref(), Some("CERTIFICATE REQUEST"));
        assert_eq!(d.der, vec![0x30, 0x03, 1, 2, 3]);
        let all = decode_all(&format!("{pem}{pem}"), "CERTIFICATE REQUEST").unwrap();
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn bare_base64_with_crlf() {
        let d = decode_input(b"MAMBAgM=\r\n").unwrap();
        assert_eq!(d.der, vec![0x30, 0x03, 1, 2, 3]);
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(decode_input(b""), Err(CodecError::Empty)));
        assert!(decode_input(b"not base64 !!!").is_err());
        assert!(decode_input(b"-----BEGIN X-----\nMAMBAgM=\n").is_err());
        assert!(decode_input(&[0xff, 0xfe, 0x00]).is_err());
        let big = vec![0x30u8; MAX_INPUT_LEN + 1];
        assert!(matches!(decode_input(&big), Err(CodecError::TooLarge(_))));
        // base64 of a non-SEQUENCE
        assert!(decode_input(b"AQID").is_err());
    }
}
