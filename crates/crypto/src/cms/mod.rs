//! CMS (RFC 5652) EnvelopedData and SignedData over key handles.
//!
//! Split by job: [`envelope`](fn@envelope) seals, [`open_envelope`] opens,
//! [`sign_data`] signs, [`verify_signed_data`] verifies.

use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::Certificate;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use crate::CryptoError;

mod envelope;
mod open;
mod sign;
#[cfg(test)]
mod tests;
mod verify;

pub use envelope::envelope;
pub use open::{
    decode_envelope, envelope_recipient_ids, envelope_recipients, open_envelope, OpeningKey,
};
pub use sign::{certs_only, sign_data, sign_data_with, sign_data_with_attributes};
pub use verify::{verify_signed_data, VerifiedSignedData};

/// A recipient of an envelope.
#[derive(Clone, Debug)]
pub struct Recipient {
    /// Issuer of the recipient certificate.
    pub issuer: Name,
    /// Serial number of the recipient certificate.
    pub serial: SerialNumber,
    /// Its public key.
    pub spki: SubjectPublicKeyInfoOwned,
}

impl Recipient {
    /// The recipient described by a certificate.
    pub fn from_certificate(cert: &Certificate) -> Self {
        let tbs = cert.tbs_certificate();
        Recipient {
            issuer: tbs.issuer().clone(),
            serial: tbs.serial_number().clone(),
            spki: tbs.subject_public_key_info().clone(),
        }
    }
}

/// Why an envelope could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The envelope is not addressed to any of the keys offered.
    #[error("the envelope is not addressed to any available key")]
    NotForUs,
    /// Structure or algorithm problems visible before any secret is touched.
    #[error("{0}")]
    Malformed(String),
    /// Decryption failed (one error for every failure after the recipient was found).
    #[error("the envelope could not be decrypted")]
    Decrypt,
    /// The recipient's key is on a token that is not there or refused the
    /// PIN: nothing was decrypted, whatever the envelope holds.
    #[error("{0}")]
    KeyUnavailable(CryptoError),
}

fn enc(e: der::Error) -> CryptoError {
    CryptoError::Encoding(e.to_string())
}
