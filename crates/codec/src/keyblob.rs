//! Microsoft CryptoAPI PRIVATEKEYBLOB (MS-WCCE 2.2.2.9.1) and its conversion
//! to a PKCS#1 RSAPrivateKey / PKCS#8 PrivateKeyInfo.

use der::asn1::{OctetString, UintRef};
use der::{Encode, Sequence};
use spki::AlgorithmIdentifierRef;

use crate::{oids, CodecError};

/// CALG_RSA_KEYX: an exchange (encryption) key.
pub const CALG_RSA_KEYX: u32 = 0x0000_A400;
/// CALG_RSA_SIGN: a signature-only key (never archived).
pub const CALG_RSA_SIGN: u32 = 0x0000_2400;
const PRIVATEKEYBLOB: u8 = 0x07;
const RSA2: u32 = 0x3241_5352;

/// The RSA components of a key blob, big-endian.
pub struct RsaBlob {
    /// aiKeyAlg from the header.
    pub key_alg: u32,
    /// Modulus size in bits.
    pub bits: u32,
    /// Public exponent.
    pub e: Vec<u8>,
    /// Modulus.
    pub n: Vec<u8>,
    /// Prime p.
    pub p: Vec<u8>,
    /// Prime q.
    pub q: Vec<u8>,
    /// d mod (p-1).
    pub dp: Vec<u8>,
    /// d mod (q-1).
    pub dq: Vec<u8>,
    /// q^-1 mod p.
    pub qinv: Vec<u8>,
    /// Private exponent.
    pub d: Vec<u8>,
}

impl Drop for RsaBlob {
    fn drop(&mut self) {
        for v in [
            &mut self.p,
            &mut self.q,
            &mut self.dp,
            &mut self.dq,
            &mut self.qinv,
            &mut self.d,
        ] {
            v.iter_mut().for_each(|b| *b = 0);
        }
    }
}

/// Returns true if `data` starts like a PRIVATEKEYBLOB.
pub fn is_private_key_blob(data: &[u8]) -> bool {
    data.len() >= 12
        && data[0] == PRIVATEKEYBLOB
        && data[1] == 0x02
        && u32::from_le_bytes([data[8], data[9], data[10], data[11]]) == RSA2
}

fn le_to_be(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().rev().copied().collect()
}

/// Parses a PRIVATEKEYBLOB (all integers little-endian).
pub fn parse_private_key_blob(data: &[u8]) -> Result<RsaBlob, CodecError> {
    let bad = |r: &str| CodecError::invalid("PRIVATEKEYBLOB", r.to_string());
    if data.len() < 20 {
        return Err(bad("too short"));
    }
    if data[0] != PRIVATEKEYBLOB || data[1] != 0x02 {
        return Err(bad("not a version 2 PRIVATEKEYBLOB"));
    }
    let key_alg = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    if key_alg != CALG_RSA_KEYX && key_alg != CALG_RSA_SIGN {
        return Err(bad("aiKeyAlg is neither CALG_RSA_KEYX nor CALG_RSA_SIGN"));
    }
    if u32::from_le_bytes([data[8], data[9], data[10], data[11]]) != RSA2 {
        return Err(bad("magic is not RSA2"));
    }
    let bits = u32::from_le_bytes([data[12], data[13], data[14], data[15]]);
    if !(512..=16384).contains(&bits) || !bits.is_multiple_of(16) {
        return Err(bad("unsupported modulus size"));
    }
    let e = u32::from_le_bytes([data[16], data[17], data[18], data[19]]);
    let full = (bits / 8) as usize;
    let half = (bits / 16) as usize;
    let need = 20 + full * 2 + half * 5;
    if data.len() != need {
        return Err(bad(&format!(
            "length {} does not match a {bits}-bit key ({need})",
            data.len()
        )));
    }
    let mut at = 20;
    let mut take = |len: usize| {
        let v = le_to_be(&data[at..at + len]);
        at += len;
        v
    };
    let n = take(full);
    let p = take(half);
    let q = take(half);
    let dp = take(half);
    let dq = take(half);
    let qinv = take(half);
    let d = take(full);
    let e_bytes: Vec<u8> = e
        .to_be_bytes()
        .iter()
        .copied()
        .skip_while(|b| *b == 0)
        .collect();
    Ok(RsaBlob {
        key_alg,
        bits,
        e: e_bytes,
        n,
        p,
        q,
        dp,
        dq,
        qinv,
        d,
    })
}

#[derive(Sequence)]
struct RsaPrivateKey<'a> {
    version: u8,
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
    private_exponent: UintRef<'a>,
    prime1: UintRef<'a>,
    prime2: UintRef<'a>,
    exponent1: UintRef<'a>,
    exponent2: UintRef<'a>,
    coefficient: UintRef<'a>,
}

#[derive(Sequence)]
struct PrivateKeyInfo<'a> {
    version: u8,
    algorithm: AlgorithmIdentifierRef<'a>,
    private_key: OctetString,
}

/// Converts an RSA key blob to PKCS#8 DER. The caller should zeroize the result.
pub fn blob_to_pkcs8(blob: &RsaBlob) -> Result<Vec<u8>, CodecError> {
    let u = rsa_uint;
    let rsa = RsaPrivateKey {
        version: 0,
        modulus: u(&blob.n)?,
        public_exponent: u(&blob.e)?,
        private_exponent: u(&blob.d)?,
        prime1: u(&blob.p)?,
        prime2: u(&blob.q)?,
        exponent1: u(&blob.dp)?,
        exponent2: u(&blob.dq)?,
        coefficient: u(&blob.qinv)?,
    };
    let mut inner = rsa.to_der().map_err(CodecError::der("RSAPrivateKey"))?;
    let null = der::asn1::AnyRef::NULL;
    let pki = PrivateKeyInfo {
        version: 0,
        algorithm: AlgorithmIdentifierRef {
            oid: oids::RSA_ENCRYPTION,
            parameters: Some(null),
        },
        private_key: OctetString::new(inner.clone()).map_err(CodecError::der("PrivateKeyInfo"))?,
    };
    inner.iter_mut().for_each(|b| *b = 0);
    pki.to_der().map_err(CodecError::der("PrivateKeyInfo"))
}

/// A positive RSA integer (big-endian). Zero is refused: no RSA key has a
/// zero component, and an empty INTEGER would not be valid DER.
fn rsa_uint(b: &[u8]) -> Result<UintRef<'_>, CodecError> {
    if b.iter().all(|&x| x == 0) {
        return Err(CodecError::invalid("RSA key", "a key component is zero"));
    }
    UintRef::new(b).map_err(CodecError::der("RSA integer"))
}

/// RFC 8017 RSAPublicKey.
#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// The DER RSAPublicKey (the SubjectPublicKeyInfo bit string's content) for
/// big-endian `n` and `e`, leading zeros removed.
pub fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Result<Vec<u8>, CodecError> {
    RsaPublicKey {
        modulus: rsa_uint(n)?,
        public_exponent: rsa_uint(e)?,
    }
    .to_der()
    .map_err(CodecError::der("RSAPublicKey"))
}

/// The RSA public key a PKCS#8 RSA private key claims to have (as
/// [`rsa_public_key_der`]), read without checking the key; None for other
/// key types or malformed input. A cheap filter before an expensive import.
pub fn pkcs8_rsa_public_key(pkcs8: &[u8]) -> Option<Vec<u8>> {
    use der::Decode;
    let pki = PrivateKeyInfoRef::from_der(pkcs8).ok()?;
    if pki.algorithm.oid != oids::RSA_ENCRYPTION {
        return None;
    }
    let rsa = RsaPrivateKey::from_der(pki.private_key.as_bytes()).ok()?;
    rsa_public_key_der(rsa.modulus.as_bytes(), rsa.public_exponent.as_bytes()).ok()
}

/// RFC 5915 ECPrivateKey (the fields read before an import).
#[derive(Sequence)]
struct EcPrivateKey<'a> {
    version: u8,
    private_key: &'a der::asn1::OctetStringRef,
    #[asn1(context_specific = "0", optional = "true")]
    parameters: Option<der::asn1::AnyRef<'a>>,
    #[asn1(context_specific = "1", optional = "true")]
    public_key: Option<der::asn1::BitStringRef<'a>>,
}

/// The public key a PKCS#8 private key claims, read without checking the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedPublicKey {
    /// The key algorithm (rsaEncryption, id-ecPublicKey, ...).
    pub algorithm: der::asn1::ObjectIdentifier,
    /// DER of the algorithm parameters (the named curve for EC), if any.
    pub parameters: Option<Vec<u8>>,
    /// What a SubjectPublicKeyInfo's BIT STRING would hold: the DER
    /// RSAPublicKey, or the EC point.
    pub public_key: Vec<u8>,
}

/// The public key a PKCS#8 RSA or EC private key claims ([`ClaimedPublicKey`]);
/// None for other key types, malformed input, or an EC key that does not
/// carry its public point. A cheap filter before an expensive import.
pub fn pkcs8_claimed_public_key(pkcs8: &[u8]) -> Option<ClaimedPublicKey> {
    use der::Decode;
    let pki = PrivateKeyInfoRef::from_der(pkcs8).ok()?;
    let algorithm = pki.algorithm.oid;
    let parameters = match pki.algorithm.parameters {
        Some(p) => Some(p.to_der().ok()?),
        None => None,
    };
    let public_key = if algorithm == oids::RSA_ENCRYPTION {
        pkcs8_rsa_public_key(pkcs8)?
    } else {
        let ec = EcPrivateKey::from_der(pki.private_key.as_bytes()).ok()?;
        ec.public_key?.as_bytes()?.to_vec()
    };
    Some(ClaimedPublicKey {
        algorithm,
        parameters,
        public_key,
    })
}

/// Builds a PRIVATEKEYBLOB from big-endian components (client side, tests).
#[allow(clippy::too_many_arguments)]
pub fn build_private_key_blob(
    key_alg: u32,
    bits: u32,
    e: u32,
    n: &[u8],
    p: &[u8],
    q: &[u8],
    dp: &[u8],
    dq: &[u8],
    qinv: &[u8],
    d: &[u8],
) -> Vec<u8> {
    let full = (bits / 8) as usize;
    let half = (bits / 16) as usize;
    let mut out = vec![PRIVATEKEYBLOB, 0x02, 0, 0];
    out.extend_from_slice(&key_alg.to_le_bytes());
    out.extend_from_slice(&RSA2.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(&e.to_le_bytes());
    let mut put = |v: &[u8], len: usize| {
        let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        let mut le: Vec<u8> = v.iter().rev().copied().collect();
        le.resize(len, 0);
        out.extend_from_slice(&le);
    };
    put(n, full);
    put(p, half);
    put(q, half);
    put(dp, half);
    put(dq, half);
    put(qinv, half);
    put(d, full);
    out
}

#[derive(Sequence)]
struct PrivateKeyInfoRef<'a> {
    version: u8,
    algorithm: AlgorithmIdentifierRef<'a>,
    private_key: &'a der::asn1::OctetStringRef,
}

/// Converts an RSA PKCS#8 key to a PRIVATEKEYBLOB (as Windows clients send it).
pub fn pkcs8_to_blob(pkcs8: &[u8], key_alg: u32) -> Result<Vec<u8>, CodecError> {
    use der::Decode;
    let pki = PrivateKeyInfoRef::from_der(pkcs8).map_err(CodecError::der("PrivateKeyInfo"))?;
    if pki.algorithm.oid != oids::RSA_ENCRYPTION {
        return Err(CodecError::invalid(
            "PRIVATEKEYBLOB",
            "only RSA keys have a PRIVATEKEYBLOB form",
        ));
    }
    let rsa = RsaPrivateKey::from_der(pki.private_key.as_bytes())
        .map_err(CodecError::der("RSAPrivateKey"))?;
    let n = rsa.modulus.as_bytes();
    let bits = ((n.len() as u32 - 1) * 8 + (8 - n[0].leading_zeros())).div_ceil(16) * 16;
    let e_bytes = rsa.public_exponent.as_bytes();
    if e_bytes.len() > 4 {
        return Err(CodecError::invalid(
            "PRIVATEKEYBLOB",
            "public exponent larger than 32 bits",
        ));
    }
    let mut e = [0u8; 4];
    e[4 - e_bytes.len()..].copy_from_slice(e_bytes);
    Ok(build_private_key_blob(
        key_alg,
        bits,
        u32::from_be_bytes(e),
        n,
        rsa.prime1.as_bytes(),
        rsa.prime2.as_bytes(),
        rsa.exponent1.as_bytes(),
        rsa.exponent2.as_bytes(),
        rsa.coefficient.as_bytes(),
        rsa.private_exponent.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_blobs_are_refused() {
        assert!(parse_private_key_blob(&[]).is_err());
        assert!(
            parse_private_key_blob(&[
                0x07, 0x02, 0, 0, 0, 0xa4, 0, 0, b'R', b'S', b'A', b'2', 0, 8, 0, 0, 1, 0, 1, 0
            ])
            .is_err(),
            "no key material"
        );
        let mut hdr = vec![0x07, 0x02, 0, 0, 0, 0xa4, 0, 0];
        hdr.extend_from_slice(&RSA2.to_le_bytes());
        hdr.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
        hdr.extend_from_slice(&65537u32.to_le_bytes());
        assert!(parse_private_key_blob(&hdr).is_err(), "absurd bit length");
        assert!(!is_private_key_blob(b"\x30\x82"));
    }

    #[test]
    fn claimed_rsa_public_key_is_read_without_the_key() {
        let blob = RsaBlob {
            key_alg: CALG_RSA_KEYX,
            bits: 16,
            e: vec![1, 0, 1],
            n: vec![0xc3, 0x5b],
            p: vec![0xd3],
            q: vec![0xed],
            dp: vec![5],
            dq: vec![7],
            qinv: vec![9],
            d: vec![0x21, 0x11],
        };
        let pkcs8 = blob_to_pkcs8(&blob).unwrap();
        let expected = rsa_public_key_der(&[0xc3, 0x5b], &[1, 0, 1]).unwrap();
        assert_eq!(pkcs8_rsa_public_key(&pkcs8), Some(expected.clone()));
        // leading zeros do not change the encoding
        assert_eq!(
            rsa_public_key_der(&[0, 0xc3, 0x5b], &[0, 1, 0, 1]).unwrap(),
            expected
        );
        assert_eq!(pkcs8_rsa_public_key(b"\x30\x03\x02\x01\x00"), None);
        // zero components are refused (found by the keyblob fuzz target)
        assert!(rsa_public_key_der(&[0xc3], &[0, 0]).is_err());
        let mut zero_e = blob;
        zero_e.e = vec![0];
        assert!(blob_to_pkcs8(&zero_e).is_err());
        assert_eq!(pkcs8_rsa_public_key(&pkcs8[..pkcs8.len() - 1]), None);
    }
}
