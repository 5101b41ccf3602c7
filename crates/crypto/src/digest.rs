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
