//! RSA key transport (PKCS#1 v1.5 and OAEP) for CMS recipients, with RFC 3218
//! implicit rejection on the decrypting side.

use aws_lc_rs::rsa::{
    OaepPublicEncryptingKey, Pkcs1PublicEncryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1,
    OAEP_SHA256_MGF1SHA256,
};
use const_oid::ObjectIdentifier;
use der::asn1::Any;
use der::{Encode, Sequence};
use lockbox_codec::oids;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use crate::random::random_bytes;
use crate::CryptoError;

/// id-RSAES-OAEP.
pub const RSAES_OAEP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.7");
/// id-mgf1.
pub const MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");

/// How a content key is transported to an RSA recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyTransport {
    /// RSAES-PKCS1-v1_5 (compatibility default).
    RsaPkcs1v15,
    /// RSAES-OAEP with SHA-1 and MGF1-SHA-1 (the RFC 8017 defaults).
    RsaOaepSha1,
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256.
    RsaOaepSha256,
}

#[derive(Sequence, Default)]
struct RsaesOaepParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    p_source: Option<Any>,
}

impl KeyTransport {
    /// Parses `rsa`/`pkcs1`, `oaep`, `oaep-sha256`.
    pub fn parse(s: &str) -> Result<Self, CryptoError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "rsa" | "pkcs1" | "rsa-pkcs1" | "v1.5" => KeyTransport::RsaPkcs1v15,
            "oaep" | "oaep-sha1" | "rsa-oaep" => KeyTransport::RsaOaepSha1,
            "oaep-sha256" | "rsa-oaep-sha256" => KeyTransport::RsaOaepSha256,
            other => {
                return Err(CryptoError::Unsupported(format!(
                    "key transport '{other}' (pkcs1, oaep, oaep-sha256)"
                )))
            }
        })
    }

    /// Reads the algorithm from a KeyTransRecipientInfo's keyEncryptionAlgorithm.
    pub fn from_algorithm(alg: &AlgorithmIdentifierOwned) -> Result<Self, CryptoError> {
        if alg.oid == oids::RSA_ENCRYPTION {
            return Ok(KeyTransport::RsaPkcs1v15);
        }
        if alg.oid != RSAES_OAEP {
            return Err(CryptoError::Unsupported(format!(
                "key transport {}",
                alg.oid
            )));
        }
        let params: RsaesOaepParams = match &alg.parameters {
            Some(p) => p.decode_as()?,
            None => RsaesOaepParams::default(),
        };
        if params.p_source.is_some() {
            return Err(CryptoError::Unsupported("OAEP with a label".into()));
        }
        let hash = params.hash.map(|h| h.oid).unwrap_or(oids::SHA1);
        let mgf_hash = match params.mask_gen {
            None => oids::SHA1,
            Some(m) if m.oid == MGF1 => {
                m.parameters
                    .ok_or_else(|| CryptoError::Unsupported("MGF1 without a hash".into()))?
                    .decode_as::<AlgorithmIdentifierOwned>()?
                    .oid
            }
            Some(m) => {
                return Err(CryptoError::Unsupported(format!(
                    "mask generation {}",
                    m.oid
                )))
            }
        };
        match (hash, mgf_hash) {
            (h, m) if h == oids::SHA1 && m == oids::SHA1 => Ok(KeyTransport::RsaOaepSha1),
            (h, m) if h == oids::SHA256 && m == oids::SHA256 => Ok(KeyTransport::RsaOaepSha256),
            _ => Err(CryptoError::Unsupported("OAEP hash combination".into())),
        }
    }

    /// The keyEncryptionAlgorithm to write.
    pub fn algorithm(&self) -> Result<AlgorithmIdentifierOwned, CryptoError> {
        Ok(match self {
            KeyTransport::RsaPkcs1v15 => AlgorithmIdentifierOwned {
                oid: oids::RSA_ENCRYPTION,
                parameters: Some(Any::from(der::asn1::Null)),
            },
            KeyTransport::RsaOaepSha1 => AlgorithmIdentifierOwned {
                oid: RSAES_OAEP,
                parameters: Some(Any::encode_from(&RsaesOaepParams::default())?),
            },
            KeyTransport::RsaOaepSha256 => {
                let sha256 = AlgorithmIdentifierOwned {
                    oid: oids::SHA256,
                    parameters: None,
                };
                let params = RsaesOaepParams {
                    hash: Some(sha256.clone()),
                    mask_gen: Some(AlgorithmIdentifierOwned {
                        oid: MGF1,
                        parameters: Some(Any::encode_from(&sha256)?),
                    }),
                    p_source: None,
                };
                AlgorithmIdentifierOwned {
                    oid: RSAES_OAEP,
                    parameters: Some(Any::encode_from(&params)?),
                }
            }
        })
    }
}

/// Encrypts a content key to an RSA public key.
pub fn encrypt_key(
    spki: &SubjectPublicKeyInfoOwned,
    transport: KeyTransport,
    cek: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let der = spki.to_der()?;
    let public = PublicEncryptingKey::from_der(&der)
        .map_err(|e| CryptoError::InvalidKey(format!("RSA recipient key: {e}")))?;
    match transport {
        KeyTransport::RsaPkcs1v15 => {
            let k = Pkcs1PublicEncryptingKey::new(public)
                .map_err(|_| CryptoError::Operation("rsa key"))?;
            let mut out = vec![0u8; k.ciphertext_size()];
            let n = k
                .encrypt(cek, &mut out)
                .map_err(|_| CryptoError::Operation("RSA encrypt"))?
                .len();
            out.truncate(n);
            Ok(out)
        }
        KeyTransport::RsaOaepSha1 | KeyTransport::RsaOaepSha256 => {
            let alg = if transport == KeyTransport::RsaOaepSha1 {
                &OAEP_SHA1_MGF1SHA1
            } else {
                &OAEP_SHA256_MGF1SHA256
            };
            let k = OaepPublicEncryptingKey::new(public)
                .map_err(|_| CryptoError::Operation("rsa key"))?;
            let mut out = vec![0u8; k.ciphertext_size()];
            let n = k
                .encrypt(alg, cek, &mut out, None)
                .map_err(|_| CryptoError::Operation("RSA encrypt"))?
                .len();
            out.truncate(n);
            Ok(out)
        }
    }
}

/// A private key that can unwrap transported content keys.
pub trait DecryptionKey: Send + Sync + std::fmt::Debug {
    /// The public key (what a recipient certificate carries).
    fn recipient_public_key(&self) -> &SubjectPublicKeyInfoOwned;
    /// Decrypts a transported key; any padding failure is an error.
    fn decrypt_key(
        &self,
        transport: KeyTransport,
        encrypted: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError>;
    /// Unwraps a key-agreement (ECDH) wrapped key; EC keys only.
    fn unwrap_agreed_key(
        &self,
        _originator_point: &[u8],
        _key_enc_alg: &spki::AlgorithmIdentifierOwned,
        _ukm: Option<&[u8]>,
        _wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        Err(CryptoError::Unsupported(
            "key agreement needs an EC key".into(),
        ))
    }
}

/// `0xff` when `a == b`, else `0`, without a branch.
fn ct_eq_mask(a: u8, b: u8) -> u8 {
    let x = u32::from(a ^ b);
    // x - 1 borrows (top bit set) only when x is 0.
    (((x.wrapping_sub(1)) >> 31) as u8).wrapping_neg()
}

/// Removes RSAES-PKCS1-v1_5 padding (`00 02 PS 00 M`, PS at least 8 non-zero
/// bytes) from a raw RSA result `em` of the modulus's length, scanning every
/// byte whatever it holds: where the padding is checked depends only on the
/// length. Used for keys on a token, which decrypts with raw RSA so that the
/// token's own padding check cannot answer differently (RFC 3218). The one
/// branch is the final outcome, which [`decrypt_key_implicit`] hides.
pub fn pkcs1_v15_unpad(em: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let k = em.len();
    if k < 11 {
        return Err(CryptoError::Decrypt);
    }
    let mut good = ct_eq_mask(em[0], 0) & ct_eq_mask(em[1], 2);
    // 0xff until the first zero after the type byte is seen.
    let mut looking = 0xffu8;
    let mut zero_at = 0usize;
    for (i, b) in em.iter().enumerate().skip(2) {
        let here = looking & ct_eq_mask(*b, 0);
        let sel = usize::from(here & 1).wrapping_neg();
        zero_at = (i & sel) | (zero_at & !sel);
        looking &= !ct_eq_mask(*b, 0);
    }
    good &= !looking;
    // PS is at least 8 bytes: the separator is at index 10 or later.
    let short = (zero_at.wrapping_sub(10) >> (usize::BITS - 1)) as u8;
    good &= !short.wrapping_neg();
    if good != 0xff {
        return Err(CryptoError::Decrypt);
    }
    Ok(Zeroizing::new(em[zero_at + 1..].to_vec()))
}

/// RFC 3218 implicit rejection: returns the decrypted content key when it
/// decrypts to exactly `expected_len` bytes, and otherwise a random key of
/// that length, chosen without a data-dependent branch on the secret. The
/// caller then fails later, on the same path as any other bad request. The
/// one error is a key token that is away ([`CryptoError::TokenUnavailable`],
/// [`CryptoError::TokenLogin`]), which does not depend on the ciphertext.
pub fn decrypt_key_implicit(
    key: &dyn DecryptionKey,
    transport: KeyTransport,
    encrypted: &[u8],
    expected_len: usize,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let random = Zeroizing::new(random_bytes(expected_len)?);
    let decrypted = key.decrypt_key(transport, encrypted);
    // A token that is away (or refused the PIN) decrypted nothing: that
    // answer does not depend on the ciphertext, so it is reported.
    if let Err(e @ (CryptoError::TokenUnavailable(_) | CryptoError::TokenLogin(_))) = decrypted {
        return Err(e);
    }
    let (ok, value) = match decrypted {
        Ok(v) => {
            let good = u8::from(v.len() == expected_len);
            let mut padded = Zeroizing::new(vec![0u8; expected_len]);
            for (i, b) in v.iter().take(expected_len).enumerate() {
                padded[i] = *b;
            }
            (good, padded)
        }
        Err(_) => (0u8, Zeroizing::new(vec![0u8; expected_len])),
    };
    let mask = 0u8.wrapping_sub(ok);
    let mut out = Zeroizing::new(vec![0u8; expected_len]);
    for i in 0..expected_len {
        out[i] = (value[i] & mask) | (random[i] & !mask);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn em(len: usize, ps: usize, msg: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8, 2];
        v.extend(std::iter::repeat_n(0x5a, ps));
        v.push(0);
        v.extend_from_slice(msg);
        v.resize(len.max(v.len()), 0x11);
        v
    }

    #[test]
    fn unpads_good_padding_and_refuses_every_bad_one() {
        let msg = [7u8; 32];
        let good = em(0, 256 - 3 - 32, &msg);
        assert_eq!(good.len(), 256);
        assert_eq!(&pkcs1_v15_unpad(&good).unwrap()[..], &msg[..]);
        // Shortest padding allowed: 8 bytes.
        let eight = em(0, 8, &msg);
        assert_eq!(&pkcs1_v15_unpad(&eight).unwrap()[..], &msg[..]);
        // Seven bytes of padding, wrong first byte, wrong type, no separator.
        assert!(pkcs1_v15_unpad(&em(0, 7, &msg)).is_err());
        let mut bad = good.clone();
        bad[0] = 1;
        assert!(pkcs1_v15_unpad(&bad).is_err());
        let mut bad = good.clone();
        bad[1] = 1;
        assert!(pkcs1_v15_unpad(&bad).is_err());
        let mut none = vec![0u8, 2];
        none.extend(std::iter::repeat_n(0x33, 254));
        assert!(pkcs1_v15_unpad(&none).is_err());
        assert!(pkcs1_v15_unpad(&[0, 2, 0]).is_err());
        // An empty message after full padding is well-formed.
        let mut empty = vec![0u8, 2];
        empty.extend(std::iter::repeat_n(0x33, 253));
        empty.push(0);
        assert_eq!(pkcs1_v15_unpad(&empty).unwrap().len(), 0);
    }
}
