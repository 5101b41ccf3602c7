//! Signature verification for requests, certificates, CRLs and CMS signers.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use const_oid::ObjectIdentifier;
use lockbox_codec::oids;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::keyinfo::{public_key_facts, KeyKind};
use crate::CryptoError;

fn algorithm_for(
    spki: &SubjectPublicKeyInfoOwned,
    sig_oid: &ObjectIdentifier,
) -> Result<&'static dyn VerificationAlgorithm, CryptoError> {
    let facts = public_key_facts(spki)?;
    let unsupported = || {
        CryptoError::Unsupported(format!(
            "signature algorithm {sig_oid} with a {} key",
            facts.algorithm_name()
        ))
    };
    let alg: &'static dyn VerificationAlgorithm = match facts.kind {
        KeyKind::Rsa => {
            if *sig_oid == oids::SHA1_WITH_RSA {
                &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY
            } else if *sig_oid == oids::SHA256_WITH_RSA {
                &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
            } else if *sig_oid == oids::SHA384_WITH_RSA {
                &signature::RSA_PKCS1_2048_8192_SHA384
            } else if *sig_oid == oids::SHA512_WITH_RSA {
                &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
            } else {
                return Err(unsupported());
            }
        }
        KeyKind::Ec => match (facts.bits, sig_oid) {
            (256, o) if *o == oids::ECDSA_WITH_SHA1 => &signature::ECDSA_P256_SHA1_ASN1,
            (256, o) if *o == oids::ECDSA_WITH_SHA256 => &signature::ECDSA_P256_SHA256_ASN1,
            (256, o) if *o == oids::ECDSA_WITH_SHA384 => &signature::ECDSA_P256_SHA384_ASN1,
            (256, o) if *o == oids::ECDSA_WITH_SHA512 => &signature::ECDSA_P256_SHA512_ASN1,
            (384, o) if *o == oids::ECDSA_WITH_SHA256 => &signature::ECDSA_P384_SHA256_ASN1,
            (384, o) if *o == oids::ECDSA_WITH_SHA384 => &signature::ECDSA_P384_SHA384_ASN1,
            (384, o) if *o == oids::ECDSA_WITH_SHA512 => &signature::ECDSA_P384_SHA512_ASN1,
            (521, o) if *o == oids::ECDSA_WITH_SHA256 => &signature::ECDSA_P521_SHA256_ASN1,
            (521, o) if *o == oids::ECDSA_WITH_SHA384 => &signature::ECDSA_P521_SHA384_ASN1,
            (521, o) if *o == oids::ECDSA_WITH_SHA512 => &signature::ECDSA_P521_SHA512_ASN1,
            _ => return Err(unsupported()),
        },
    };
    Ok(alg)
}

/// Verifies `sig` over `message` with the public key `spki` and signature algorithm `alg`.
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    sig: &[u8],
) -> Result<(), CryptoError> {
    let verifier = algorithm_for(spki, &alg.oid)?;
    let key_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| CryptoError::InvalidKey("public key BIT STRING has unused bits".into()))?;
    UnparsedPublicKey::new(verifier, key_bytes)
        .verify(message, sig)
        .map_err(|_| CryptoError::BadSignature)
}

/// Maps a CMS SignerInfo's (digestAlgorithm, signatureAlgorithm) pair to a
/// combined signature algorithm OID. CMS allows `rsaEncryption` as the
/// signature algorithm with the hash named separately (Windows does this).
pub fn cms_signature_oid(
    digest: &ObjectIdentifier,
    sig: &ObjectIdentifier,
) -> Result<ObjectIdentifier, CryptoError> {
    if *sig != oids::RSA_ENCRYPTION && *sig != oids::EC_PUBLIC_KEY {
        return Ok(*sig);
    }
    let rsa = *sig == oids::RSA_ENCRYPTION;
    let combined = if *digest == oids::SHA1 {
        if rsa {
            oids::SHA1_WITH_RSA
        } else {
            oids::ECDSA_WITH_SHA1
        }
    } else if *digest == oids::SHA256 {
        if rsa {
            oids::SHA256_WITH_RSA
        } else {
            oids::ECDSA_WITH_SHA256
        }
    } else if *digest == oids::SHA384 {
        if rsa {
            oids::SHA384_WITH_RSA
        } else {
            oids::ECDSA_WITH_SHA384
        }
    } else if *digest == oids::SHA512 {
        if rsa {
            oids::SHA512_WITH_RSA
        } else {
            oids::ECDSA_WITH_SHA512
        }
    } else {
        return Err(CryptoError::Unsupported(format!("digest {digest}")));
    };
    Ok(combined)
}
