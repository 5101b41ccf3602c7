//! Cryptography for Lockbox, all of it over aws-lc-rs.
//!
//! Private keys are reached only through the [`KeyHandle`] trait, so a
//! hardware module can replace the software keys here without the engine
//! noticing. Plaintext key material lives in zeroizing buffers.
//!
//! The key types and the provider are re-exported here; the public modules
//! are namespaces for one format or primitive each (`cms`, `pkcs12`,
//! `pkcs8enc`, `keytransport`, `symmetric`, `digest`, `verify`, `random`,
//! `password`, `keyinfo`, `x509signer`), used by path.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cms;
pub mod digest;
mod error;
mod kari;
mod key;
pub mod keyinfo;
pub mod keytransport;
pub mod password;
pub mod pkcs11;
pub mod pkcs12;
pub mod pkcs8enc;
mod provider;
pub mod random;
pub mod symmetric;
pub mod verify;
pub mod x509signer;

pub use error::CryptoError;
pub use key::{KeyHandle, KeySpec, SoftwareKey};
pub use keytransport::DecryptionKey;
pub use provider::{default_provider, KeyProvider, PrivateKey, SoftwareKeyProvider};
