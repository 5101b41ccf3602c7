//! Random values from the aws-lc-rs system RNG.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::CryptoError;

/// Fills a fresh buffer of `len` random bytes.
pub fn random_bytes(len: usize) -> Result<Vec<u8>, CryptoError> {
    let mut buf = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| CryptoError::Operation("random generator"))?;
    Ok(buf)
}

/// A positive, non-zero certificate serial number of `len` bytes (RFC 5280:
/// at most 20 octets) whose first byte has its top bit clear and is non-zero,
/// so the DER INTEGER is exactly `len` bytes.
pub fn serial_number(len: usize) -> Result<Vec<u8>, CryptoError> {
    let mut s = random_bytes(len)?;
    s[0] &= 0x7f;
    if s[0] == 0 {
        s[0] = 0x01;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn serials_are_positive_and_distinct() {
        let a = super::serial_number(16).unwrap();
        let b = super::serial_number(16).unwrap();
        assert_ne!(a, b);
        assert!(a[0] != 0 && a[0] < 0x80);
    }
}
