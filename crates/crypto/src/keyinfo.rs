//! Facts about a public key: algorithm, size, key identifier.

use der::asn1::{ObjectIdentifier, UintRef};
use der::{Decode, Sequence};
use lockbox_codec::oids;
use spki::SubjectPublicKeyInfoOwned;

use crate::CryptoError;

#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// The algorithm family of a public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA.
    Rsa,
    /// ECDSA / ECDH on a named curve.
    Ec,
}

/// A public key's algorithm and strength.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKeyFacts {
    /// RSA or EC.
    pub kind: KeyKind,
    /// Modulus bits (RSA) or field size (EC).
    pub bits: u32,
    /// Named curve (EC only).
    pub curve: Option<ObjectIdentifier>,
}

impl PublicKeyFacts {
    /// Short name as templates spell allowed algorithms: `rsa`, `p256`, `p384`, `p521`.
    pub fn algorithm_name(&self) -> String {
        match self.kind {
            KeyKind::Rsa => "rsa".into(),
            KeyKind::Ec => format!("p{}", self.bits),
        }
    }
}

/// Reads algorithm and size from a SubjectPublicKeyInfo.
pub fn public_key_facts(spki: &SubjectPublicKeyInfoOwned) -> Result<PublicKeyFacts, CryptoError> {
    let alg = &spki.algorithm.oid;
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| CryptoError::InvalidKey("public key BIT STRING has unused bits".into()))?;
    if *alg == oids::RSA_ENCRYPTION {
        let rsa = RsaPublicKey::from_der(bits)
            .map_err(|e| CryptoError::InvalidKey(format!("RSA public key: {e}")))?;
        let m = rsa.modulus.as_bytes();
        let first = *m
            .first()
            .ok_or_else(|| CryptoError::InvalidKey("empty RSA modulus".into()))?;
        let nbits = (m.len() as u32 - 1) * 8 + (8 - first.leading_zeros());
        return Ok(PublicKeyFacts {
            kind: KeyKind::Rsa,
            bits: nbits,
            curve: None,
        });
    }
    if *alg == oids::EC_PUBLIC_KEY {
        let curve: ObjectIdentifier = spki
            .algorithm
            .parameters
            .as_ref()
            .ok_or_else(|| CryptoError::InvalidKey("EC key without named curve".into()))?
            .decode_as()
            .map_err(|e| CryptoError::InvalidKey(format!("EC curve: {e}")))?;
        let nbits = if curve == oids::SECP256R1 {
            256
        } else if curve == oids::SECP384R1 {
            384
        } else if curve == oids::SECP521R1 {
            521
        } else {
            return Err(CryptoError::Unsupported(format!("EC curve {curve}")));
        };
        return Ok(PublicKeyFacts {
            kind: KeyKind::Ec,
            bits: nbits,
            curve: Some(curve),
        });
    }
    Err(CryptoError::Unsupported(format!(
        "public key algorithm {alg}"
    )))
}

/// The RFC 5280 method-1 key identifier: SHA-1 of the subjectPublicKey bits.
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    crate::digest::sha1(spki.subject_public_key.raw_bytes()).to_vec()
}
