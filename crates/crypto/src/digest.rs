//! Message digests.

use aws_lc_rs::digest;
use const_oid::ObjectIdentifier;
use lockbox_codec::oids;

use crate::CryptoError;

/// SHA-1 (thumbprints and key identifiers only, as X.509 practice expects).
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let d = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let mut out = [0u8; 20];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Digest by algorithm OID (SHA-1, SHA-256, SHA-384, SHA-512).
pub fn digest_by_oid(oid: &ObjectIdentifier, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let alg = if *oid == oids::SHA1 {
        &digest::SHA1_FOR_LEGACY_USE_ONLY
    } else if *oid == oids::SHA256 {
        &digest::SHA256
    } else if *oid == oids::SHA384 {
        &digest::SHA384
    } else if *oid == oids::SHA512 {
        &digest::SHA512
    } else {
        return Err(CryptoError::Unsupported(format!("digest {oid}")));
    };
    Ok(digest::digest(alg, data).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            hex::encode(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex::encode(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(digest_by_oid(&oids::SHA1, b"").is_ok());
        assert!(digest_by_oid(&oids::RSA_ENCRYPTION, b"").is_err());
    }
}

/// HMAC-SHA-256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&k, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Checks an HMAC-SHA-256 tag in constant time.
pub fn hmac_sha256_verify(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::verify(&k, data, tag).is_ok()
}

#[cfg(test)]
mod hmac_tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let tag = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(hmac_sha256_verify(
            b"Jefe",
            b"what do ya want for nothing?",
            &tag
        ));
        assert!(!hmac_sha256_verify(
            b"Jefe",
            b"what do ya want for nothing!",
            &tag
        ));
    }
}
