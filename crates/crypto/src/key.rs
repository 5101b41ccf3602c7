//! Key handles: the only way the engine reaches a private key.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    KeySize, OaepPrivateDecryptingKey, Pkcs1PrivateDecryptingKey, PrivateDecryptingKey,
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256,
};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, BitString};
use lockbox_codec::oids;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use crate::CryptoError;

/// The key algorithms Lockbox generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySpec {
    /// RSA with a 2048-bit modulus.
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
    /// ECDSA on NIST P-256.
    P256,
    /// ECDSA on NIST P-384.
    P384,
}

impl KeySpec {
    /// Whether this is an RSA key size.
    pub fn is_rsa(&self) -> bool {
        matches!(self, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096)
    }
}

impl FromStr for KeySpec {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "rsa2048" | "rsa" => Ok(KeySpec::Rsa2048),
            "rsa3072" => Ok(KeySpec::Rsa3072),
            "rsa4096" => Ok(KeySpec::Rsa4096),
            "p256" | "ec" | "ecdsa" => Ok(KeySpec::P256),
            "p384" => Ok(KeySpec::P384),
            other => Err(CryptoError::Unsupported(format!(
                "key type '{other}' (use rsa2048, rsa3072, rsa4096, p256 or p384)"
            ))),
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeySpec::Rsa2048 => "rsa2048",
            KeySpec::Rsa3072 => "rsa3072",
            KeySpec::Rsa4096 => "rsa4096",
            KeySpec::P256 => "p256",
            KeySpec::P384 => "p384",
        })
    }
}

/// A private key the engine may use without seeing its bytes.
///
/// Implementations: [`SoftwareKey`] (a PKCS#8 file) and
/// [`TokenKey`](crate::pkcs11::TokenKey) (a key pair on a PKCS#11 token).
pub trait KeyHandle: Send + Sync + fmt::Debug {
    /// The public key as SubjectPublicKeyInfo.
    fn public_key_info(&self) -> &SubjectPublicKeyInfoOwned;
    /// The signature algorithm this key signs with (the AlgorithmIdentifier to
    /// put in certificates and CRLs).
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned;
    /// Signs `message` (hashing it with the algorithm's digest).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError>;
}

enum Inner {
    /// The signing key pair, and the decrypting form made on first use
    /// (importing it checks the key again: a key only checked or used to
    /// sign never pays for it).
    Rsa(RsaKeyPair, std::sync::OnceLock<PrivateDecryptingKey>),
    Ec {
        pair: EcdsaKeyPair,
        sig_oid: ObjectIdentifier,
    },
}

/// A private key held in process memory, loaded from or saved to PKCS#8.
pub struct SoftwareKey {
    inner: Inner,
    spki: SubjectPublicKeyInfoOwned,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner {
            Inner::Rsa(..) => "RSA",
            Inner::Ec { .. } => "ECDSA",
        };
        write!(f, "SoftwareKey({kind}, <private>)")
    }
}

fn null_any() -> Any {
    Any::from(der::asn1::Null)
}

pub(crate) fn rsa_spki(public_pkcs1: &[u8]) -> Result<SubjectPublicKeyInfoOwned, CryptoError> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: oids::RSA_ENCRYPTION,
            parameters: Some(null_any()),
        },
        subject_public_key: BitString::from_bytes(public_pkcs1)?,
    })
}

pub(crate) fn ec_spki(
    curve: ObjectIdentifier,
    point: &[u8],
) -> Result<SubjectPublicKeyInfoOwned, CryptoError> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: oids::EC_PUBLIC_KEY,
            parameters: Some(Any::encode_from(&curve)?),
        },
        subject_public_key: BitString::from_bytes(point)?,
    })
}

impl SoftwareKey {
    /// Generates a new key.
    pub fn generate(spec: KeySpec) -> Result<Self, CryptoError> {
        let pkcs8: Zeroizing<Vec<u8>> = match spec {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                let size = match spec {
                    KeySpec::Rsa2048 => KeySize::Rsa2048,
                    KeySpec::Rsa3072 => KeySize::Rsa3072,
                    _ => KeySize::Rsa4096,
                };
                let pair = RsaKeyPair::generate(size)
                    .map_err(|_| CryptoError::Operation("RSA key generation"))?;
                let der = pair
                    .as_der()
                    .map_err(|_| CryptoError::Operation("RSA key export"))?;
                Zeroizing::new(der.as_ref().to_vec())
            }
            KeySpec::P256 | KeySpec::P384 => {
                let alg = if spec == KeySpec::P256 {
                    &signature::ECDSA_P256_SHA256_ASN1_SIGNING
                } else {
                    &signature::ECDSA_P384_SHA384_ASN1_SIGNING
                };
                let pair = EcdsaKeyPair::generate(alg)
                    .map_err(|_| CryptoError::Operation("EC key generation"))?;
                let doc = pair
                    .to_pkcs8v1()
                    .map_err(|_| CryptoError::Operation("EC key export"))?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
        };
        Self::from_pkcs8_der(&pkcs8)
    }

    /// Loads an unencrypted PKCS#8 private key (RSA, P-256 or P-384).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        if let Ok(pair) = RsaKeyPair::from_pkcs8(der) {
            let spki = rsa_spki(pair.public_key().as_ref())?;
            return Ok(SoftwareKey {
                inner: Inner::Rsa(pair, std::sync::OnceLock::new()),
                spki,
                pkcs8: Zeroizing::new(der.to_vec()),
            });
        }
        for (alg, curve, sig_oid) in [
            (
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                oids::SECP256R1,
                oids::ECDSA_WITH_SHA256,
            ),
            (
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                oids::SECP384R1,
                oids::ECDSA_WITH_SHA384,
            ),
        ] {
            if let Ok(pair) = EcdsaKeyPair::from_pkcs8(alg, der) {
                let spki = ec_spki(curve, pair.public_key().as_ref())?;
                return Ok(SoftwareKey {
                    inner: Inner::Ec { pair, sig_oid },
                    spki,
                    pkcs8: Zeroizing::new(der.to_vec()),
                });
            }
        }
        Err(CryptoError::InvalidKey(
            "not a PKCS#8 RSA, P-256 or P-384 private key".into(),
        ))
    }

    /// The PKCS#8 DER of the private key (zeroized on drop).
    pub fn pkcs8_der(&self) -> &Zeroizing<Vec<u8>> {
        &self.pkcs8
    }

    /// Whether this is an RSA key.
    pub fn is_rsa(&self) -> bool {
        matches!(self.inner, Inner::Rsa(..))
    }
}

impl KeyHandle for SoftwareKey {
    fn public_key_info(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        match &self.inner {
            Inner::Rsa(..) => AlgorithmIdentifierOwned {
                oid: oids::SHA256_WITH_RSA,
                parameters: Some(null_any()),
            },
            Inner::Ec { sig_oid, .. } => AlgorithmIdentifierOwned {
                oid: *sig_oid,
                parameters: None,
            },
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Rsa(pair, _) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| CryptoError::Operation("RSA signature"))?;
                Ok(sig)
            }
            Inner::Ec { pair, .. } => {
                let sig = pair
                    .sign(&rng, message)
                    .map_err(|_| CryptoError::Operation("ECDSA signature"))?;
                Ok(sig.as_ref().to_vec())
            }
        }
    }
}

impl crate::keytransport::DecryptionKey for SoftwareKey {
    fn recipient_public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn decrypt_key(
        &self,
        transport: crate::keytransport::KeyTransport,
        encrypted: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        use crate::keytransport::KeyTransport;
        let Inner::Rsa(_, dec) = &self.inner else {
            return Err(CryptoError::Unsupported(
                "key transport needs an RSA key".into(),
            ));
        };
        // Made once per key from the PKCS#8 (already checked when the key
        // was loaded), whatever the ciphertext: no path depends on it.
        let dec = match dec.get() {
            Some(d) => d,
            None => {
                let made = PrivateDecryptingKey::from_pkcs8(&self.pkcs8)
                    .map_err(|_| CryptoError::Decrypt)?;
                dec.get_or_init(|| made)
            }
        };
        let mut out = Zeroizing::new(vec![0u8; dec.key_size_bytes()]);
        let n = match transport {
            KeyTransport::RsaPkcs1v15 => Pkcs1PrivateDecryptingKey::new(dec.clone())
                .map_err(|_| CryptoError::Decrypt)?
                .decrypt(encrypted, &mut out)
                .map_err(|_| CryptoError::Decrypt)?
                .len(),
            KeyTransport::RsaOaepSha1 | KeyTransport::RsaOaepSha256 => {
                let alg = if transport == KeyTransport::RsaOaepSha1 {
                    &OAEP_SHA1_MGF1SHA1
                } else {
                    &OAEP_SHA256_MGF1SHA256
                };
                OaepPrivateDecryptingKey::new(dec.clone())
                    .map_err(|_| CryptoError::Decrypt)?
                    .decrypt(alg, encrypted, &mut out, None)
                    .map_err(|_| CryptoError::Decrypt)?
                    .len()
            }
        };
        out.truncate(n);
        Ok(out)
    }

    fn unwrap_agreed_key(
        &self,
        originator_point: &[u8],
        key_enc_alg: &AlgorithmIdentifierOwned,
        ukm: Option<&[u8]>,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if self.is_rsa() {
            return Err(CryptoError::Unsupported(
                "key agreement needs an EC key".into(),
            ));
        }
        crate::kari::unwrap_with(
            &self.pkcs8,
            &self.spki,
            originator_point,
            key_enc_alg,
            ukm,
            wrapped,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::verify_signature;

    #[test]
    fn sign_and_verify_each_spec() {
        for spec in [KeySpec::Rsa2048, KeySpec::P256, KeySpec::P384] {
            let k = SoftwareKey::generate(spec).unwrap();
            let sig = k.sign(b"hello").unwrap();
            verify_signature(
                k.public_key_info(),
                &k.signature_algorithm(),
                b"hello",
                &sig,
            )
            .unwrap();
            assert!(verify_signature(
                k.public_key_info(),
                &k.signature_algorithm(),
                b"hellO",
                &sig
            )
            .is_err());
            let again = SoftwareKey::from_pkcs8_der(k.pkcs8_der()).unwrap();
            assert_eq!(again.public_key_info(), k.public_key_info());
        }
    }

    #[test]
    fn rejects_garbage_keys() {
        assert!(SoftwareKey::from_pkcs8_der(b"\x30\x03\x02\x01\x00").is_err());
        assert!("dsa1024".parse::<KeySpec>().is_err());
    }
}
