//! Key providers: where private keys come from.
//!
//! A [`KeyProvider`] hands out [`PrivateKey`] handles — a key that signs
//! ([`KeyHandle`]) and decrypts ([`DecryptionKey`]) — by generating a new key
//! or loading one from PKCS#8. The engine holds one provider and never builds
//! a key type itself: [`SoftwareKeyProvider`] keeps keys in process memory
//! today; a PKCS#11 token provider can hand out handles to keys that never
//! leave the token tomorrow, refusing [`PrivateKey::export_pkcs8`].

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::key::{KeyHandle, KeySpec, SoftwareKey};
use crate::keytransport::DecryptionKey;

/// A private key handed out by a [`KeyProvider`].
pub trait PrivateKey: KeyHandle + DecryptionKey {
    /// Whether this is an RSA key.
    fn is_rsa(&self) -> bool;
    /// The key's `CKA_ID` when it is on a PKCS#11 token; None in software.
    fn token_id(&self) -> Option<Vec<u8>> {
        None
    }
    /// The unencrypted PKCS#8 DER of the key, for key files and PKCS#12
    /// exports; a provider whose keys cannot leave it refuses.
    fn export_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError>;
}

/// Where private keys come from: generated or loaded.
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// Generates a new key; `label` names it in the provider (a token object
    /// label; unused by the software provider).
    fn generate(&self, spec: KeySpec, label: &str) -> Result<Arc<dyn PrivateKey>, CryptoError>;
    /// Loads an unencrypted PKCS#8 private key (RSA, P-256 or P-384).
    fn load_pkcs8_der(&self, der: &[u8]) -> Result<Arc<dyn PrivateKey>, CryptoError>;
}

/// Keys in process memory ([`SoftwareKey`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct SoftwareKeyProvider;

impl KeyProvider for SoftwareKeyProvider {
    fn generate(&self, spec: KeySpec, _label: &str) -> Result<Arc<dyn PrivateKey>, CryptoError> {
        Ok(Arc::new(SoftwareKey::generate(spec)?))
    }

    fn load_pkcs8_der(&self, der: &[u8]) -> Result<Arc<dyn PrivateKey>, CryptoError> {
        Ok(Arc::new(SoftwareKey::from_pkcs8_der(der)?))
    }
}

impl SoftwareKeyProvider {
    /// Loads a PKCS#8 key as a [`SoftwareKey`], for front ends that handle
    /// their own (client-side) key files.
    pub fn load_software(&self, der: &[u8]) -> Result<SoftwareKey, CryptoError> {
        SoftwareKey::from_pkcs8_der(der)
    }
}

impl PrivateKey for SoftwareKey {
    fn is_rsa(&self) -> bool {
        SoftwareKey::is_rsa(self)
    }

    fn export_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        Ok(self.pkcs8_der().clone())
    }
}

/// The provider a CA uses unless configured otherwise (software keys).
pub fn default_provider() -> Arc<dyn KeyProvider> {
    Arc::new(SoftwareKeyProvider)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_keys_round_trip_through_pkcs8() {
        let p = SoftwareKeyProvider;
        let k = p.generate(KeySpec::P256, "test").unwrap();
        assert!(!k.is_rsa());
        let again = p.load_pkcs8_der(&k.export_pkcs8().unwrap()).unwrap();
        assert_eq!(k.public_key_info(), again.public_key_info());
        assert!(p.load_pkcs8_der(b"junk").is_err());
    }
}
