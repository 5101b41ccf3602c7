//! Engine errors, with the AD CS status codes operators and clients know.

use lockbox_codec::CodecError;
use lockbox_crypto::CryptoError;
use lockbox_store::StoreError;
use thiserror::Error;

/// Stable status codes (HRESULTs as AD CS reports them).
pub mod codes {
    /// E_ACCESSDENIED.
    pub const E_ACCESSDENIED: u32 = 0x8007_0005;
    /// ERROR_FILE_NOT_FOUND (as HRESULT): the thing asked for does not exist.
    pub const E_NOT_FOUND: u32 = 0x8007_0002;
    /// E_INVALIDARG.
    pub const E_INVALIDARG: u32 = 0x8007_0057;
    /// ERROR_INVALID_STATE: the row is not in the state the operation needs.
    pub const E_INVALID_STATE: u32 = 0x8007_139F;
    /// CRYPT_E_ASN1_BADTAG: malformed ASN.1.
    pub const CRYPT_E_ASN1_BADTAG: u32 = 0x8009_310B;
    /// NTE_BAD_SIGNATURE.
    pub const NTE_BAD_SIGNATURE: u32 = 0x8009_0006;
    /// NTE_BAD_ALGID: key algorithm not allowed.
    pub const NTE_BAD_ALGID: u32 = 0x8009_0008;
    /// CERTSRV_E_BAD_REQUESTSUBJECT.
    pub const CERTSRV_E_BAD_REQUESTSUBJECT: u32 = 0x8009_4001;
    /// CERTSRV_E_KEY_ARCHIVAL_NOT_CONFIGURED.
    pub const CERTSRV_E_KEY_ARCHIVAL_NOT_CONFIGURED: u32 = 0x8009_400A;
    /// CERTSRV_E_UNSUPPORTED_CERT_TYPE.
    pub const CERTSRV_E_UNSUPPORTED_CERT_TYPE: u32 = 0x8009_4800;
    /// CERTSRV_E_NO_CERT_TYPE.
    pub const CERTSRV_E_NO_CERT_TYPE: u32 = 0x8009_4801;
    /// CERTSRV_E_ARCHIVED_KEY_REQUIRED.
    pub const CERTSRV_E_ARCHIVED_KEY_REQUIRED: u32 = 0x8009_4804;
    /// CERTSRV_E_ARCHIVED_KEY_UNEXPECTED.
    pub const CERTSRV_E_ARCHIVED_KEY_UNEXPECTED: u32 = 0x8009_4810;
    /// CERTSRV_E_KEY_LENGTH.
    pub const CERTSRV_E_KEY_LENGTH: u32 = 0x8009_4811;
    /// Generic internal failure (E_FAIL).
    pub const E_FAIL: u32 = 0x8000_4005;
    /// HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS): the requester already holds a
    /// valid certificate of a template that does not re-enroll duplicates.
    pub const E_ALREADY_EXISTS: u32 = 0x8007_00B7;
    /// ERROR_ACCOUNT_LOCKED_OUT (as HRESULT): too many failed logins; try later.
    pub const E_ACCOUNT_LOCKED_OUT: u32 = 0x8007_0775;

    /// Symbolic name of a code, if known.
    pub fn name(code: u32) -> &'static str {
        match code {
            E_ACCESSDENIED => "E_ACCESSDENIED",
            E_NOT_FOUND => "ERROR_FILE_NOT_FOUND",
            E_INVALIDARG => "E_INVALIDARG",
            E_INVALID_STATE => "ERROR_INVALID_STATE",
            CRYPT_E_ASN1_BADTAG => "CRYPT_E_ASN1_BADTAG",
            NTE_BAD_SIGNATURE => "NTE_BAD_SIGNATURE",
            NTE_BAD_ALGID => "NTE_BAD_ALGID",
            CERTSRV_E_BAD_REQUESTSUBJECT => "CERTSRV_E_BAD_REQUESTSUBJECT",
            CERTSRV_E_KEY_ARCHIVAL_NOT_CONFIGURED => "CERTSRV_E_KEY_ARCHIVAL_NOT_CONFIGURED",
            CERTSRV_E_UNSUPPORTED_CERT_TYPE => "CERTSRV_E_UNSUPPORTED_CERT_TYPE",
            CERTSRV_E_NO_CERT_TYPE => "CERTSRV_E_NO_CERT_TYPE",
            CERTSRV_E_ARCHIVED_KEY_REQUIRED => "CERTSRV_E_ARCHIVED_KEY_REQUIRED",
            CERTSRV_E_ARCHIVED_KEY_UNEXPECTED => "CERTSRV_E_ARCHIVED_KEY_UNEXPECTED",
            CERTSRV_E_KEY_LENGTH => "CERTSRV_E_KEY_LENGTH",
            E_ALREADY_EXISTS => "ERROR_ALREADY_EXISTS",
            0x8002_802C => "TYPE_E_AMBIGUOUSNAME",
            0x8009_2004 => "CRYPT_E_NOT_FOUND",
            0x8009_4008 => "CERTSRV_E_ROLECONFLICT",
            0x8009_4009 => "CERTSRV_E_RESTRICTEDOFFICER",
            0x8009_4012 => "CERTSRV_E_TEMPLATE_DENIED",
            0x8009_400B => "CERTSRV_E_NO_VALID_KRA",
            0x8009_400C => "CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL",
            E_ACCOUNT_LOCKED_OUT => "ERROR_ACCOUNT_LOCKED_OUT",
            _ => "E_FAIL",
        }
    }
}

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The input could not be decoded or failed a structural or signature check.
    #[error("{message}")]
    BadInput {
        /// Status code.
        code: u32,
        /// Explanation.
        message: String,
    },
    /// The CA's policy refused the request.
    #[error("{message}")]
    Denied {
        /// Status code.
        code: u32,
        /// Disposition message.
        message: String,
    },
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The object is not in a state that allows the operation.
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The caller gave no credentials where they are required (HTTP 401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The CA is misconfigured or not ready.
    #[error("{0}")]
    Config(String),
    /// Database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Cryptographic failure inside the CA (not the caller's input).
    #[error("cryptographic failure: {0}")]
    Crypto(#[from] CryptoError),
    /// File system failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Too many failed logins for this name or source address: try again later.
    #[error("{0}")]
    Throttled(String),
}

impl EngineError {
    /// The stable status code for this error.
    pub fn code(&self) -> u32 {
        match self {
            EngineError::BadInput { code, .. } | EngineError::Denied { code, .. } => *code,
            EngineError::NotFound(_) => codes::E_NOT_FOUND,
            EngineError::Conflict(_) => codes::E_INVALID_STATE,
            EngineError::Forbidden(_) | EngineError::Unauthenticated(_) => codes::E_ACCESSDENIED,
            EngineError::Throttled(_) => codes::E_ACCOUNT_LOCKED_OUT,
            EngineError::Store(StoreError::NotFound(_)) => codes::E_NOT_FOUND,
            EngineError::Store(StoreError::Conflict(_)) => codes::E_INVALID_STATE,
            _ => codes::E_FAIL,
        }
    }

    /// Short machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            EngineError::BadInput { .. } => "bad_input",
            EngineError::Denied { .. } => "denied",
            EngineError::NotFound(_) | EngineError::Store(StoreError::NotFound(_)) => "not_found",
            EngineError::Conflict(_) | EngineError::Store(StoreError::Conflict(_)) => "conflict",
            EngineError::Forbidden(_) => "forbidden",
            EngineError::Unauthenticated(_) => "unauthorized",
            EngineError::Config(_) => "config",
            EngineError::Throttled(_) => "throttled",
            EngineError::Store(_) | EngineError::Crypto(_) | EngineError::Io { .. } => "internal",
        }
    }

    /// Builds a [`EngineError::Denied`].
    pub fn denied(code: u32, message: impl Into<String>) -> Self {
        EngineError::Denied {
            code,
            message: message.into(),
        }
    }

    /// Builds a [`EngineError::BadInput`].
    pub fn bad_input(code: u32, message: impl Into<String>) -> Self {
        EngineError::BadInput {
            code,
            message: message.into(),
        }
    }

    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| EngineError::Io { context, source }
    }
}

impl From<CodecError> for EngineError {
    fn from(e: CodecError) -> Self {
        let code = match e {
            CodecError::TooLarge(_) | CodecError::Empty => codes::E_INVALIDARG,
            _ => codes::CRYPT_E_ASN1_BADTAG,
        };
        EngineError::bad_input(code, e.to_string())
    }
}

/// Result alias.
pub type EngineResult<T> = Result<T, EngineError>;
