//! Content encryption: AES-128/192/256-CBC and 3DES-CBC with PKCS#7 padding.

// 3DES stays for Windows Server 2003 clients and KRAs (seed 001); AES is the default.
#[allow(deprecated)]
use aws_lc_rs::cipher::{
    DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey, AES_128, AES_192, AES_256, DES_EDE3_FOR_LEGACY_USE_ONLY,
};
use aws_lc_rs::iv::FixedLength;
use const_oid::ObjectIdentifier;
use zeroize::Zeroizing;

use crate::CryptoError;

/// des-ede3-cbc.
pub const DES_EDE3_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");
/// aes128-CBC.
pub const AES128_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.2");
/// aes192-CBC.
pub const AES192_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.22");
/// aes256-CBC.
pub const AES256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");

/// A CMS content-encryption algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContentCipher {
    /// AES-128-CBC.
    Aes128Cbc,
    /// AES-192-CBC.
    Aes192Cbc,
    /// AES-256-CBC.
    Aes256Cbc,
    /// Triple-DES (EDE3) CBC, for Windows Server 2003 compatibility.
    DesEde3Cbc,
}

impl ContentCipher {
    /// The algorithm for an OID.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Some(match *oid {
            o if o == AES128_CBC => ContentCipher::Aes128Cbc,
            o if o == AES192_CBC => ContentCipher::Aes192Cbc,
            o if o == AES256_CBC => ContentCipher::Aes256Cbc,
            o if o == DES_EDE3_CBC => ContentCipher::DesEde3Cbc,
            _ => return None,
        })
    }

    /// Parses `aes128`, `aes192`, `aes256`, `3des`.
    pub fn parse(s: &str) -> Result<Self, CryptoError> {
        Ok(
            match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
                "aes128" | "aes128cbc" => ContentCipher::Aes128Cbc,
                "aes192" | "aes192cbc" => ContentCipher::Aes192Cbc,
                "aes256" | "aes256cbc" | "aes" => ContentCipher::Aes256Cbc,
                "3des" | "desede3" | "desede3cbc" | "tripledes" => ContentCipher::DesEde3Cbc,
                other => {
                    return Err(CryptoError::Unsupported(format!(
                        "content cipher '{other}' (aes128, aes192, aes256, 3des)"
                    )))
                }
            },
        )
    }

    /// The OID.
    pub fn oid(&self) -> ObjectIdentifier {
        match self {
            ContentCipher::Aes128Cbc => AES128_CBC,
            ContentCipher::Aes192Cbc => AES192_CBC,
            ContentCipher::Aes256Cbc => AES256_CBC,
            ContentCipher::DesEde3Cbc => DES_EDE3_CBC,
        }
    }

    /// Key length in bytes.
    pub fn key_len(&self) -> usize {
        match self {
            ContentCipher::Aes128Cbc => 16,
            ContentCipher::Aes192Cbc => 24,
            ContentCipher::Aes256Cbc => 32,
            ContentCipher::DesEde3Cbc => 24,
        }
    }

    /// IV length in bytes.
    pub fn iv_len(&self) -> usize {
        match self {
            ContentCipher::DesEde3Cbc => 8,
            _ => 16,
        }
    }

    fn key(&self, key: &[u8]) -> Result<UnboundCipherKey, CryptoError> {
        if key.len() != self.key_len() {
            return Err(CryptoError::Decrypt);
        }
        let alg = match self {
            ContentCipher::Aes128Cbc => &AES_128,
            ContentCipher::Aes192Cbc => &AES_192,
            ContentCipher::Aes256Cbc => &AES_256,
            #[allow(deprecated)]
            ContentCipher::DesEde3Cbc => &DES_EDE3_FOR_LEGACY_USE_ONLY,
        };
        UnboundCipherKey::new(alg, key).map_err(|_| CryptoError::Decrypt)
    }

    /// A fresh random content key, with 3DES parity bits set.
    pub fn generate_key(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let mut k = Zeroizing::new(crate::random::random_bytes(self.key_len())?);
        if *self == ContentCipher::DesEde3Cbc {
            for b in k.iter_mut() {
                let ones = (*b & 0xfe).count_ones();
                *b = (*b & 0xfe) | u8::from(ones % 2 == 0);
            }
        }
        Ok(k)
    }
}

/// CBC-encrypts with PKCS#7 padding.
pub fn cbc_encrypt(
    c: ContentCipher,
    key: &[u8],
    iv: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let enc = PaddedBlockEncryptingKey::cbc_pkcs7(c.key(key)?)
        .map_err(|_| CryptoError::Operation("cbc key"))?;
    let ctx = match c {
        ContentCipher::DesEde3Cbc => EncryptionContext::Iv64(
            FixedLength::try_from(iv).map_err(|_| CryptoError::Operation("iv"))?,
        ),
        _ => EncryptionContext::Iv128(
            FixedLength::try_from(iv).map_err(|_| CryptoError::Operation("iv"))?,
        ),
    };
    let mut buf = plaintext.to_vec();
    enc.less_safe_encrypt(&mut buf, ctx)
        .map_err(|_| CryptoError::Operation("cbc encrypt"))?;
    Ok(buf)
}

/// CBC-decrypts and removes PKCS#7 padding. Every failure is [`CryptoError::Decrypt`].
pub fn cbc_decrypt(
    c: ContentCipher,
    key: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let dec = PaddedBlockDecryptingKey::cbc_pkcs7(c.key(key)?).map_err(|_| CryptoError::Decrypt)?;
    let ctx = match c {
        ContentCipher::DesEde3Cbc => {
            DecryptionContext::Iv64(FixedLength::try_from(iv).map_err(|_| CryptoError::Decrypt)?)
        }
        _ => DecryptionContext::Iv128(FixedLength::try_from(iv).map_err(|_| CryptoError::Decrypt)?),
    };
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let plain = dec
        .decrypt(&mut buf, ctx)
        .map_err(|_| CryptoError::Decrypt)?;
    Ok(Zeroizing::new(plain.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for c in [
            ContentCipher::Aes128Cbc,
            ContentCipher::Aes192Cbc,
            ContentCipher::Aes256Cbc,
            ContentCipher::DesEde3Cbc,
        ] {
            let key = c.generate_key().unwrap();
            let iv = crate::random::random_bytes(c.iv_len()).unwrap();
            let ct = cbc_encrypt(c, &key, &iv, b"attack at dawn").unwrap();
            assert_eq!(
                &cbc_decrypt(c, &key, &iv, &ct).unwrap()[..],
                b"attack at dawn"
            );
            assert!(cbc_decrypt(c, &key, &iv, &ct[..ct.len() - 1]).is_err());
            assert_eq!(ContentCipher::from_oid(&c.oid()), Some(c));
        }
    }
}
