//! Passphrase-protected PKCS#8 (PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC),
//! readable by `openssl pkey`.

use std::num::NonZeroU32;

use aws_lc_rs::cipher::{
    DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey, AES_256,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::pbkdf2;
use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString};
use der::{Decode, Encode, Sequence};
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use crate::random::random_bytes;
use crate::CryptoError;

const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
const PBKDF2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.12");
const HMAC_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.9");
const AES256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");

/// PBKDF2 iterations used when protecting a key.
pub const ITERATIONS: u32 = 310_000;
/// Highest iteration count accepted when reading (a hostile file must not stall the CA).
pub const MAX_ITERATIONS: u32 = 10_000_000;

#[derive(Sequence)]
struct EncryptedPrivateKeyInfo {
    encryption_algorithm: AlgorithmIdentifierOwned,
    encrypted_data: OctetString,
}

#[derive(Sequence)]
struct Pbes2Params {
    key_derivation_func: AlgorithmIdentifierOwned,
    encryption_scheme: AlgorithmIdentifierOwned,
}

#[derive(Sequence)]
struct Pbkdf2Params {
    salt: OctetString,
    iteration_count: u32,
    #[asn1(optional = "true")]
    key_length: Option<u32>,
    #[asn1(optional = "true")]
    prf: Option<AlgorithmIdentifierOwned>,
}

fn derive(
    passphrase: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let iters = NonZeroU32::new(iterations).ok_or(CryptoError::Decrypt)?;
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iters,
        salt,
        passphrase,
        key.as_mut(),
    );
    Ok(key)
}

/// Encrypts PKCS#8 DER under `passphrase`, returning EncryptedPrivateKeyInfo DER.
pub fn encrypt_pkcs8(pkcs8: &[u8], passphrase: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let salt = random_bytes(16)?;
    let iv: [u8; 16] = random_bytes(16)?
        .try_into()
        .map_err(|_| CryptoError::Operation("iv"))?;
    let key = derive(passphrase, &salt, ITERATIONS)?;
    let cipher = PaddedBlockEncryptingKey::cbc_pkcs7(
        UnboundCipherKey::new(&AES_256, key.as_ref())
            .map_err(|_| CryptoError::Operation("aes key"))?,
    )
    .map_err(|_| CryptoError::Operation("aes-cbc"))?;
    let mut data = Zeroizing::new(pkcs8.to_vec());
    let mut buf = data.to_vec();
    data.iter_mut().for_each(|b| *b = 0);
    cipher
        .less_safe_encrypt(&mut buf, EncryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| CryptoError::Operation("aes-cbc encrypt"))?;
    let kdf = Pbkdf2Params {
        salt: OctetString::new(salt)?,
        iteration_count: ITERATIONS,
        key_length: None,
        prf: Some(AlgorithmIdentifierOwned {
            oid: HMAC_SHA256,
            parameters: Some(Any::from(der::asn1::Null)),
        }),
    };
    let params = Pbes2Params {
        key_derivation_func: AlgorithmIdentifierOwned {
            oid: PBKDF2,
            parameters: Some(Any::encode_from(&kdf)?),
        },
        encryption_scheme: AlgorithmIdentifierOwned {
            oid: AES256_CBC,
            parameters: Some(Any::encode_from(&OctetString::new(iv.to_vec())?)?),
        },
    };
    let epki = EncryptedPrivateKeyInfo {
        encryption_algorithm: AlgorithmIdentifierOwned {
            oid: PBES2,
            parameters: Some(Any::encode_from(&params)?),
        },
        encrypted_data: OctetString::new(buf)?,
    };
    Ok(epki.to_der()?)
}

/// Decrypts EncryptedPrivateKeyInfo DER (PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC).
pub fn decrypt_pkcs8(
    epki_der: &[u8],
    passphrase: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let unsupported = |what: &str| CryptoError::Unsupported(format!("encrypted key: {what}"));
    let epki = EncryptedPrivateKeyInfo::from_der(epki_der)?;
    if epki.encryption_algorithm.oid != PBES2 {
        return Err(unsupported("only PBES2 is supported"));
    }
    let params: Pbes2Params = epki
        .encryption_algorithm
        .parameters
        .as_ref()
        .ok_or_else(|| unsupported("missing PBES2 parameters"))?
        .decode_as()?;
    if params.key_derivation_func.oid != PBKDF2 || params.encryption_scheme.oid != AES256_CBC {
        return Err(unsupported("only PBKDF2 with AES-256-CBC is supported"));
    }
    let kdf: Pbkdf2Params = params
        .key_derivation_func
        .parameters
        .as_ref()
        .ok_or_else(|| unsupported("missing PBKDF2 parameters"))?
        .decode_as()?;
    if kdf.prf.as_ref().map(|p| p.oid) != Some(HMAC_SHA256) {
        return Err(unsupported("only HMAC-SHA256 as PBKDF2 PRF is supported"));
    }
    if kdf.iteration_count > MAX_ITERATIONS {
        return Err(unsupported("PBKDF2 iteration count too large"));
    }
    let iv_os: OctetString = params
        .encryption_scheme
        .parameters
        .as_ref()
        .ok_or_else(|| unsupported("missing IV"))?
        .decode_as()?;
    let iv: [u8; 16] = iv_os
        .as_bytes()
        .try_into()
        .map_err(|_| unsupported("IV must be 16 bytes"))?;
    let key = derive(passphrase, kdf.salt.as_bytes(), kdf.iteration_count)?;
    let cipher = PaddedBlockDecryptingKey::cbc_pkcs7(
        UnboundCipherKey::new(&AES_256, key.as_ref()).map_err(|_| CryptoError::Decrypt)?,
    )
    .map_err(|_| CryptoError::Decrypt)?;
    let mut buf = Zeroizing::new(epki.encrypted_data.as_bytes().to_vec());
    let plain = cipher
        .decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| CryptoError::Decrypt)?;
    let out = Zeroizing::new(plain.to_vec());
    // A wrong passphrase can pass the padding check by chance; PKCS#8 must parse.
    if out.first() != Some(&0x30) {
        return Err(CryptoError::Decrypt);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let secret = b"\x30\x03\x02\x01\x00 pretend pkcs8";
        let enc = encrypt_pkcs8(secret, b"correct horse").unwrap();
        let dec = decrypt_pkcs8(&enc, b"correct horse").unwrap();
        assert_eq!(&dec[..], &secret[..]);
        assert!(decrypt_pkcs8(&enc, b"wrong").is_err());
        assert!(decrypt_pkcs8(&enc[..enc.len() - 3], b"correct horse").is_err());
    }
}
