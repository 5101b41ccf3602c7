//! Crypto-layer errors. They never carry key material.

use thiserror::Error;

/// A failure in a cryptographic operation or key format.
#[derive(Debug, Error)]
pub enum CryptoError {
    /// The key or algorithm is not one Lockbox supports.
    #[error("unsupported algorithm: {0}")]
    Unsupported(String),
    /// Key bytes could not be parsed or were rejected.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A signature did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// Decryption of protected key material failed (wrong passphrase or corrupt data).
    #[error("could not decrypt the protected key (wrong passphrase or corrupt file)")]
    Decrypt,
    /// Encoding failure.
    #[error("encoding error: {0}")]
    Encoding(String),
    /// The underlying library reported an unspecified failure.
    #[error("cryptographic operation failed: {0}")]
    Operation(&'static str),
    /// A hardware token (PKCS#11) is not there, not reachable, or does not
    /// hold the key: the operation may succeed once it is back. The message
    /// names module, token and key label, never the PIN.
    #[error("key token unavailable: {0}")]
    TokenUnavailable(String),
    /// The token refused the PIN (wrong, locked or expired). Nothing about
    /// the PIN itself is in the message.
    #[error("key token login refused: {0}")]
    TokenLogin(String),
}

impl From<der::Error> for CryptoError {
    fn from(e: der::Error) -> Self {
        CryptoError::Encoding(e.to_string())
    }
}
