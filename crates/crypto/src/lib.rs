//! Cryptography for Lockbox, all of it over aws-lc-rs.
//!
//! Private keys are reached only through the [`KeyHandle`] trait, so a
//! hardware module can replace the software keys here without the engine
//! noticing. Plaintext key material lives in zeroizing buffers.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cms;
pub mod digest;
mod error;
mod kari;
pub mod key;
pub mod keyinfo;
pub mod keytransport;
pub mod password;
pub mod pkcs12;
pub mod pkcs8enc;
pub mod provider;
pub mod random;
pub mod symmetric;
pub mod verify;
pub mod x509signer;

pub use error::CryptoError;
pub use key::{KeyHandle, KeySpec, SoftwareKey};
pub use keytransport::DecryptionKey;
pub use provider::{default_provider, KeyProvider, PrivateKey, SoftwareKeyProvider};
