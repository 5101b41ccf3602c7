//! ECDH key agreement recipients for CMS (RFC 5753): ephemeral-static ECDH,
//! the ANSI X9.63 KDF, and AES key wrap (RFC 3394).

use aws_lc_rs::agreement::{self, UnparsedPublicKey, ECDH_P256, ECDH_P384};
use aws_lc_rs::key_wrap::{AesKek, KeyWrap, AES_256};
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Encode, Sequence};
use lockbox_codec::oids;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use crate::digest::digest_by_oid;
use crate::CryptoError;

/// dhSinglePass-stdDH-sha256kdf-scheme.
pub const STD_DH_SHA256_KDF: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.1.11.1");
/// dhSinglePass-stdDH-sha384kdf-scheme.
pub const STD_DH_SHA384_KDF: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.1.11.2");
/// id-aes256-wrap.
pub const AES256_WRAP: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.45");

#[derive(Sequence)]
struct EccCmsSharedInfo {
    key_info: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    entity_u_info: Option<OctetString>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    supp_pub_info: OctetString,
}

/// The ECDH curve of an EC public key.
pub fn curve_of(
    spki: &SubjectPublicKeyInfoOwned,
) -> Result<&'static agreement::Algorithm, CryptoError> {
    let facts = crate::keyinfo::public_key_facts(spki)?;
    match facts.curve {
        Some(c) if c == oids::SECP256R1 => Ok(&ECDH_P256),
        Some(c) if c == oids::SECP384R1 => Ok(&ECDH_P384),
        _ => Err(CryptoError::Unsupported(
            "ECDH recipients must use P-256 or P-384".into(),
        )),
    }
}

fn kdf_scheme(curve: &'static agreement::Algorithm) -> (ObjectIdentifier, ObjectIdentifier) {
    if std::ptr::eq(curve, &ECDH_P384) {
        (STD_DH_SHA384_KDF, oids::SHA384)
    } else {
        (STD_DH_SHA256_KDF, oids::SHA256)
    }
}

/// ANSI X9.63 KDF: Hash(Z || counter || SharedInfo), counter from 1, truncated to 32 bytes.
fn x963_kdf(
    hash: &ObjectIdentifier,
    z: &[u8],
    ukm: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let info = EccCmsSharedInfo {
        key_info: AlgorithmIdentifierOwned {
            oid: AES256_WRAP,
            parameters: None,
        },
        entity_u_info: ukm.map(|u| OctetString::new(u.to_vec())).transpose()?,
        supp_pub_info: OctetString::new(256u32.to_be_bytes().to_vec())?,
    }
    .to_der()?;
    let mut out = Zeroizing::new(Vec::new());
    let mut counter = 1u32;
    while out.len() < 32 {
        let mut input = Zeroizing::new(z.to_vec());
        input.extend_from_slice(&counter.to_be_bytes());
        input.extend_from_slice(&info);
        out.extend_from_slice(&digest_by_oid(hash, &input)?);
        counter += 1;
    }
    out.truncate(32);
    Ok(out)
}

/// What a KeyAgreeRecipientInfo carries for one recipient.
pub struct KariParts {
    /// The originator's ephemeral public point.
    pub ephemeral_point: Vec<u8>,
    /// keyEncryptionAlgorithm (KDF scheme with the key-wrap algorithm as parameter).
    pub key_enc_alg: AlgorithmIdentifierOwned,
    /// The wrapped content key.
    pub wrapped_key: Vec<u8>,
}

/// Wraps `cek` for an EC recipient with a fresh ephemeral key.
pub fn wrap_for(
    recipient: &SubjectPublicKeyInfoOwned,
    cek: &[u8],
) -> Result<KariParts, CryptoError> {
    let curve = curve_of(recipient)?;
    let (scheme, hash) = kdf_scheme(curve);
    let eph = agreement::PrivateKey::generate(curve)
        .map_err(|_| CryptoError::Operation("ECDH key generation"))?;
    let eph_pub = eph
        .compute_public_key()
        .map_err(|_| CryptoError::Operation("ECDH public key"))?;
    let peer = recipient
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| CryptoError::InvalidKey("EC point has unused bits".into()))?;
    let kek = agreement::agree(
        &eph,
        UnparsedPublicKey::new(curve, peer),
        CryptoError::Operation("ECDH"),
        |z| x963_kdf(&hash, z, None),
    )?;
    let kek = AesKek::new(&AES_256, &kek).map_err(|_| CryptoError::Operation("AES key wrap"))?;
    let mut out = vec![0u8; cek.len() + 8];
    let n = kek
        .wrap(cek, &mut out)
        .map_err(|_| CryptoError::Operation("AES key wrap"))?
        .len();
    out.truncate(n);
    Ok(KariParts {
        ephemeral_point: eph_pub.as_ref().to_vec(),
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: scheme,
            parameters: Some(der::asn1::Any::encode_from(&AlgorithmIdentifierOwned {
                oid: AES256_WRAP,
                parameters: None,
            })?),
        },
        wrapped_key: out,
    })
}

/// The KDF hash of a key-agreement scheme; the scheme must wrap with AES-256.
fn scheme_hash(key_enc_alg: &AlgorithmIdentifierOwned) -> Result<ObjectIdentifier, CryptoError> {
    let hash = if key_enc_alg.oid == STD_DH_SHA256_KDF {
        oids::SHA256
    } else if key_enc_alg.oid == STD_DH_SHA384_KDF {
        oids::SHA384
    } else {
        return Err(CryptoError::Unsupported(format!(
            "key agreement scheme {}",
            key_enc_alg.oid
        )));
    };
    let wrap: AlgorithmIdentifierOwned = key_enc_alg
        .parameters
        .as_ref()
        .ok_or_else(|| {
            CryptoError::Unsupported("key agreement without a key-wrap algorithm".into())
        })?
        .decode_as()?;
    if wrap.oid != AES256_WRAP {
        return Err(CryptoError::Unsupported(format!("key wrap {}", wrap.oid)));
    }
    Ok(hash)
}

/// Unwraps a content key with an EC private key (PKCS#8), given the
/// originator's point, the KDF scheme, the optional UKM and the wrapped key.
pub fn unwrap_with(
    pkcs8: &[u8],
    recipient: &SubjectPublicKeyInfoOwned,
    originator_point: &[u8],
    key_enc_alg: &AlgorithmIdentifierOwned,
    ukm: Option<&[u8]>,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let curve = curve_of(recipient)?;
    let hash = scheme_hash(key_enc_alg)?;
    let private = agreement::PrivateKey::from_private_key_der(curve, pkcs8)
        .map_err(|_| CryptoError::Decrypt)?;
    let kek = agreement::agree(
        &private,
        UnparsedPublicKey::new(curve, originator_point),
        CryptoError::Decrypt,
        |z| x963_kdf(&hash, z, ukm),
    )?;
    aes_unwrap(&kek, wrapped)
}

/// Unwraps a content key from the ECDH shared secret `z` (computed
/// elsewhere, on a token), given the KDF scheme, the optional UKM and the
/// wrapped key.
pub(crate) fn unwrap_with_secret(
    recipient: &SubjectPublicKeyInfoOwned,
    z: &[u8],
    key_enc_alg: &AlgorithmIdentifierOwned,
    ukm: Option<&[u8]>,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    curve_of(recipient)?;
    let hash = scheme_hash(key_enc_alg)?;
    let kek = x963_kdf(&hash, z, ukm)?;
    aes_unwrap(&kek, wrapped)
}

fn aes_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let kek = AesKek::new(&AES_256, kek).map_err(|_| CryptoError::Decrypt)?;
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let n = kek
        .unwrap(wrapped, &mut out)
        .map_err(|_| CryptoError::Decrypt)?
        .len();
    out.truncate(n);
    Ok(out)
}
