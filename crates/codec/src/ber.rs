//! BER to DER normalisation for CMS input: indefinite lengths become definite,
//! non-minimal lengths minimal, and constructed OCTET STRINGs primitive.
//! Windows and Java clients sometimes send such BER; the typed decoders
//! downstream accept DER only.

use crate::CodecError;

/// Deepest nesting accepted (real CMS stays far below this).
pub const MAX_DEPTH: usize = 64;

fn err(reason: impl Into<String>) -> CodecError {
    CodecError::invalid("BER", reason)
}

struct Tlv<'a> {
    tag: &'a [u8],
    constructed: bool,
    /// Content for primitive or definite constructed; None for indefinite.
    content: Option<&'a [u8]>,
    /// Bytes consumed by the header (and content when definite).
    header_len: usize,
}

fn read_header(input: &[u8]) -> Result<Tlv<'_>, CodecError> {
    if input.is_empty() {
        return Err(err("unexpected end of input"));
    }
    let first = input[0];
    let constructed = first & 0x20 != 0;
    let mut i = 1;
    if first & 0x1f == 0x1f {
        loop {
            let b = *input.get(i).ok_or_else(|| err("truncated tag"))?;
            i += 1;
            if i > 6 {
                return Err(err("tag number too large"));
            }
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let tag = &input[..i];
    let lb = *input.get(i).ok_or_else(|| err("truncated length"))?;
    i += 1;
    if lb == 0x80 {
        if !constructed {
            return Err(err("indefinite length on a primitive encoding"));
        }
        return Ok(Tlv {
            tag,
            constructed,
            content: None,
            header_len: i,
        });
    }
    let len = if lb & 0x80 == 0 {
        lb as usize
    } else {
        let n = (lb & 0x7f) as usize;
        if n > 4 {
            return Err(err("length field too long"));
        }
        let mut len = 0usize;
        for _ in 0..n {
            let b = *input.get(i).ok_or_else(|| err("truncated length"))?;
            i += 1;
            len = (len << 8) | b as usize;
        }
        len
    };
    let end = i.checked_add(len).ok_or_else(|| err("length overflow"))?;
    if end > input.len() {
        return Err(err(format!("length {len} runs past the end of the input")));
    }
    Ok(Tlv {
        tag,
        constructed,
        content: Some(&input[i..end]),
        header_len: end,
    })
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Converts one TLV; returns (DER, bytes consumed).
fn convert(input: &[u8], depth: usize) -> Result<(Vec<u8>, usize), CodecError> {
    if depth > MAX_DEPTH {
        return Err(err("nesting too deep"));
    }
    let tlv = read_header(input)?;
    if !tlv.constructed {
        let content = tlv.content.unwrap_or_default();
        let mut out = tlv.tag.to_vec();
        push_len(&mut out, content.len());
        out.extend_from_slice(content);
        return Ok((out, tlv.header_len));
    }
    // Constructed: convert the children.
    let mut children = Vec::new();
    let consumed = match tlv.content {
        Some(content) => {
            let mut at = 0;
            while at < content.len() {
                let (der, used) = convert(&content[at..], depth + 1)?;
                children.push(der);
                at += used;
            }
            tlv.header_len
        }
        None => {
            let mut at = tlv.header_len;
            loop {
                let rest = &input[at..];
                if rest.len() >= 2 && rest[0] == 0 && rest[1] == 0 {
                    at += 2;
                    break;
                }
                if rest.is_empty() {
                    return Err(err("missing end-of-contents"));
                }
                let (der, used) = convert(rest, depth + 1)?;
                children.push(der);
                at += used;
            }
            at
        }
    };
    // Constructed OCTET STRING (tag 0x24): DER wants one primitive string.
    if tlv.tag == [0x24] {
        let mut data = Vec::new();
        for c in &children {
            let inner = read_header(c)?;
            if inner.tag != [0x04] {
                return Err(err("constructed OCTET STRING holds a non-OCTET STRING"));
            }
            data.extend_from_slice(inner.content.unwrap_or_default());
        }
        let mut out = vec![0x04];
        push_len(&mut out, data.len());
        out.extend_from_slice(&data);
        return Ok((out, consumed));
    }
    let body: usize = children.iter().map(Vec::len).sum();
    let mut out = tlv.tag.to_vec();
    push_len(&mut out, body);
    for c in children {
        out.extend_from_slice(&c);
    }
    Ok((out, consumed))
}

/// Normalises one BER-encoded element to DER. Trailing bytes are refused.
pub fn ber_to_der(input: &[u8]) -> Result<Vec<u8>, CodecError> {
    let (out, used) = convert(input, 0)?;
    if used != input.len() {
        return Err(err(format!(
            "{} trailing bytes after the outer element",
            input.len() - used
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_is_unchanged() {
        let der = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xaa];
        assert_eq!(ber_to_der(&der).unwrap(), der);
    }

    #[test]
    fn indefinite_and_constructed_strings() {
        // SEQUENCE (indefinite) { OCTET STRING (constructed, indefinite) { "ab", "c" } }
        let ber = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00, 0x00,
            0x00,
        ];
        assert_eq!(
            ber_to_der(&ber).unwrap(),
            vec![0x30, 0x05, 0x04, 0x03, b'a', b'b', b'c']
        );
        // non-minimal length
        assert_eq!(
            ber_to_der(&[0x04, 0x81, 0x01, 0x07]).unwrap(),
            vec![0x04, 0x01, 0x07]
        );
    }

    #[test]
    fn hostile_inputs() {
        assert!(ber_to_der(&[]).is_err());
        assert!(
            ber_to_der(&[0x30, 0x80, 0x02, 0x01, 0x01]).is_err(),
            "missing EOC"
        );
        assert!(
            ber_to_der(&[0x04, 0x80, 0x00, 0x00]).is_err(),
            "indefinite primitive"
        );
        assert!(
            ber_to_der(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err(),
            "huge length"
        );
        assert!(ber_to_der(&[0x30, 0x00, 0x00]).is_err(), "trailing byte");
        let mut deep = Vec::new();
        for _ in 0..200 {
            deep.extend_from_slice(&[0x30, 0x80]);
        }
        for _ in 0..200 {
            deep.extend_from_slice(&[0x00, 0x00]);
        }
        assert!(ber_to_der(&deep).is_err(), "too deep");
    }
}
