//! Adapter that lets the `x509-cert` builder sign through a [`KeyHandle`].

use der::asn1::BitString;
use der::Document;
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
    SignatureBitStringEncoding, SubjectPublicKeyInfoOwned,
};

use crate::{CryptoError, KeyHandle};

/// Wraps a key handle as a `signature::Signer` for the x509-cert builders.
/// The builder's error carries no cause, so the key's own error is kept
/// here for [`X509Signer::take_error`] (a token that is away stays a
/// [`CryptoError::TokenUnavailable`]).
pub struct X509Signer<'a> {
    key: &'a dyn KeyHandle,
    error: std::sync::Mutex<Option<CryptoError>>,
}

impl<'a> X509Signer<'a> {
    /// Wraps `key`.
    pub fn new(key: &'a dyn KeyHandle) -> Self {
        X509Signer {
            key,
            error: std::sync::Mutex::new(None),
        }
    }

    /// The key's error of the last failed signature, if any.
    pub fn take_error(&self) -> Option<CryptoError> {
        self.error.lock().ok().and_then(|mut e| e.take())
    }
}

/// The verifying half, as the builder wants it: just the SPKI.
#[derive(Clone, Debug)]
pub struct SpkiKey(pub SubjectPublicKeyInfoOwned);

impl EncodePublicKey for SpkiKey {
    fn to_public_key_der(&self) -> spki::Result<Document> {
        Ok(Document::encode_msg(&self.0)?)
    }
}

/// A signature as raw bytes.
#[derive(Clone, Debug)]
pub struct RawSignature(pub Vec<u8>);

impl SignatureBitStringEncoding for RawSignature {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

impl signature::Keypair for X509Signer<'_> {
    type VerifyingKey = SpkiKey;
    fn verifying_key(&self) -> SpkiKey {
        SpkiKey(self.key.public_key_info().clone())
    }
}

impl DynSignatureAlgorithmIdentifier for X509Signer<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.key.signature_algorithm())
    }
}

impl signature::Signer<RawSignature> for X509Signer<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<RawSignature, signature::Error> {
        self.key.sign(msg).map(RawSignature).map_err(|e| {
            if let Ok(mut slot) = self.error.lock() {
                *slot = Some(e);
            }
            signature::Error::new()
        })
    }
}
