//! Errors raised while decoding hostile bytes.

use thiserror::Error;

/// A decoding failure, with enough context to tell an operator what was wrong.
#[derive(Debug, Error)]
pub enum CodecError {
    /// The input is larger than [`crate::MAX_INPUT_LEN`].
    #[error("input is {0} bytes, more than the {max} byte limit", max = crate::MAX_INPUT_LEN)]
    TooLarge(usize),
    /// The input is empty.
    #[error("input is empty")]
    Empty,
    /// PEM armour or base64 text could not be decoded.
    #[error("malformed PEM/base64: {0}")]
    Pem(String),
    /// DER could not be decoded as the expected structure.
    #[error("malformed {what}: {source}")]
    Der {
        /// What was being decoded.
        what: &'static str,
        /// The underlying decoder error.
        source: der::Error,
    },
    /// The structure decoded but breaks a rule of its specification.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was being checked.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
}

impl CodecError {
    /// Wraps a `der` error with the name of the structure being decoded.
    pub fn der(what: &'static str) -> impl FnOnce(der::Error) -> CodecError {
        move |source| CodecError::Der { what, source }
    }

    /// Builds an [`CodecError::Invalid`].
    pub fn invalid(what: &'static str, reason: impl Into<String>) -> CodecError {
        CodecError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}
