//! Engine errors, with the AD CS status codes operators and clients know.

use lockbox_codec::CodecError;
use lockbox_crypto::CryptoError;
use lockbox_store::StoreError;
use thiserror::Error;

/// Stable status codes (HRESULTs as AD CS reports them): the one table of
/// codes and their symbolic names in the workspace.
pub mod codes {
    /// Defines each code as a documented constant and lists it, with its
    /// symbolic name, in [`ALL`], from one list.
    macro_rules! status_codes {
        ($($(#[doc = $doc:literal])+ $konst:ident = $value:literal, $symbol:literal;)+) => {
            $($(#[doc = $doc])+ pub const $konst: u32 = $value;)+

            /// Every known status code with its symbolic name, one entry per code.
            pub const ALL: &[(u32, &str)] = &[$(($konst, $symbol)),+];
        };
    }

    status_codes! {
        /// E_ACCESSDENIED.
        E_ACCESSDENIED = 0x8007_0005, "E_ACCESSDENIED";
        /// ERROR_FILE_NOT_FOUND (as HRESULT): the thing asked for does not exist.
        E_NOT_FOUND = 0x8007_0002, "ERROR_FILE_NOT_FOUND";
        /// E_INVALIDARG.
        E_INVALIDARG = 0x8007_0057, "E_INVALIDARG";
        /// ERROR_INVALID_STATE: the row is not in the state the operation needs.
        E_INVALID_STATE = 0x8007_139F, "ERROR_INVALID_STATE";
        /// CRYPT_E_ASN1_BADTAG: malformed ASN.1.
        CRYPT_E_ASN1_BADTAG = 0x8009_310B, "CRYPT_E_ASN1_BADTAG";
        /// NTE_BAD_SIGNATURE.
        NTE_BAD_SIGNATURE = 0x8009_0006, "NTE_BAD_SIGNATURE";
        /// NTE_BAD_ALGID: key algorithm not allowed.
        NTE_BAD_ALGID = 0x8009_0008, "NTE_BAD_ALGID";
        /// CERTSRV_E_BAD_REQUESTSUBJECT.
        CERTSRV_E_BAD_REQUESTSUBJECT = 0x8009_4001, "CERTSRV_E_BAD_REQUESTSUBJECT";
        /// CERTSRV_E_KEY_ARCHIVAL_NOT_CONFIGURED: no (or too few) Key Recovery
        /// Agents configured for a template that archives keys.
        CERTSRV_E_KEY_ARCHIVAL_NOT_CONFIGURED = 0x8009_400A, "CERTSRV_E_KEY_ARCHIVAL_NOT_CONFIGURED";
        /// CERTSRV_E_NO_VALID_KRA: none of the configured Key Recovery Agents
        /// is valid (expired, revoked, unusable).
        CERTSRV_E_NO_VALID_KRA = 0x8009_400B, "CERTSRV_E_NO_VALID_KRA";
        /// CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL: the archived key in a request
        /// (or a recovery blob) could not be opened or does not match; every
        /// failure after the envelope reaches an exchange key is this one code.
        CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL = 0x8009_400C, "CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL";
        /// CERTSRV_E_ROLECONFLICT: a principal holding two CA roles under
        /// role separation.
        CERTSRV_E_ROLECONFLICT = 0x8009_4008, "CERTSRV_E_ROLECONFLICT";
        /// CERTSRV_E_RESTRICTEDOFFICER: the row is outside the certificate
        /// manager's restrictions.
        CERTSRV_E_RESTRICTEDOFFICER = 0x8009_4009, "CERTSRV_E_RESTRICTEDOFFICER";
        /// CERTSRV_E_TEMPLATE_DENIED: the caller may not enroll for the template.
        CERTSRV_E_TEMPLATE_DENIED = 0x8009_4012, "CERTSRV_E_TEMPLATE_DENIED";
        /// CERTSRV_E_UNSUPPORTED_CERT_TYPE.
        CERTSRV_E_UNSUPPORTED_CERT_TYPE = 0x8009_4800, "CERTSRV_E_UNSUPPORTED_CERT_TYPE";
        /// CERTSRV_E_NO_CERT_TYPE.
        CERTSRV_E_NO_CERT_TYPE = 0x8009_4801, "CERTSRV_E_NO_CERT_TYPE";
        /// CERTSRV_E_ARCHIVED_KEY_REQUIRED.
        CERTSRV_E_ARCHIVED_KEY_REQUIRED = 0x8009_4804, "CERTSRV_E_ARCHIVED_KEY_REQUIRED";
        /// CERTSRV_E_ARCHIVED_KEY_UNEXPECTED.
        CERTSRV_E_ARCHIVED_KEY_UNEXPECTED = 0x8009_4810, "CERTSRV_E_ARCHIVED_KEY_UNEXPECTED";
        /// CERTSRV_E_KEY_LENGTH.
        CERTSRV_E_KEY_LENGTH = 0x8009_4811, "CERTSRV_E_KEY_LENGTH";
        /// CRYPT_E_REVOKED: the certificate a renewal is signed with is revoked.
        CRYPT_E_REVOKED = 0x8009_2010, "CRYPT_E_REVOKED";
        /// CERT_E_EXPIRED: the certificate a renewal is signed with has expired.
        CERT_E_EXPIRED = 0x800B_0101, "CERT_E_EXPIRED";
        /// TYPE_E_AMBIGUOUSNAME: several rows match a name and no unique token
        /// picks one.
        TYPE_E_AMBIGUOUSNAME = 0x8002_802C, "TYPE_E_AMBIGUOUSNAME";
        /// CRYPT_E_NOT_FOUND: a Key Recovery Agent (or other object) is missing
        /// from the CA's store.
        CRYPT_E_NOT_FOUND = 0x8009_2004, "CRYPT_E_NOT_FOUND";
        /// XENROLL_E_RESPONSE_KA_HASH_MISMATCH: a CMC response does not echo the
        /// request's encrypted-key hash.
        XENROLL_E_RESPONSE_KA_HASH_MISMATCH = 0x8009_5004, "XENROLL_E_RESPONSE_KA_HASH_MISMATCH";
        /// Generic internal failure (E_FAIL).
        E_FAIL = 0x8000_4005, "E_FAIL";
        /// HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS): the requester already holds a
        /// valid certificate of a template that does not re-enroll duplicates.
        E_ALREADY_EXISTS = 0x8007_00B7, "ERROR_ALREADY_EXISTS";
        /// ERROR_ACCOUNT_LOCKED_OUT (as HRESULT): too many failed logins; try later.
        E_ACCOUNT_LOCKED_OUT = 0x8007_0775, "ERROR_ACCOUNT_LOCKED_OUT";
        /// RPC_S_SERVER_UNAVAILABLE (as HRESULT), what a Windows client reports
        /// for a CA it cannot reach: the CA's database cannot be reached now;
        /// nothing was done, and the request may be retried.
        E_UNAVAILABLE = 0x8007_06BA, "RPC_S_SERVER_UNAVAILABLE";
        /// NTE_DEVICE_NOT_READY: the CA's key is on a hardware token that is
        /// not there, not reachable, or no longer holds the key; nothing was
        /// signed or decrypted, and the request may be retried.
        NTE_DEVICE_NOT_READY = 0x8009_0030, "NTE_DEVICE_NOT_READY";
        /// SCARD_W_WRONG_CHV: the token refused the configured PIN (wrong,
        /// locked or expired); an operator has to fix the configuration.
        SCARD_W_WRONG_CHV = 0x8010_006B, "SCARD_W_WRONG_CHV";
    }

    /// Symbolic name of a code (`E_FAIL` for a code not in [`ALL`]).
    pub fn name(code: u32) -> &'static str {
        ALL.iter()
            .find(|(c, _)| *c == code)
            .map_or("E_FAIL", |(_, n)| n)
    }
}

/// Defines [`ErrorKind`] and its string form from one list.
macro_rules! error_kinds {
    ($($(#[doc = $doc:literal])+ $variant:ident => $text:literal,)+) => {
        /// The machine-readable kind of an [`EngineError`]: what a caller can
        /// act on. Its string form ([`ErrorKind::as_str`]) is `error.kind` in
        /// the JSON API and the CLI's `--json` output.
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl ErrorKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant),+];

            /// The stable string form (`"bad_input"`, `"denied"`, ...).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorKind::$variant => $text,)+
                }
            }

            /// The kind named by its string form, if it is one.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(ErrorKind::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

error_kinds! {
    /// The input could not be decoded or failed a structural or signature check.
    BadInput => "bad_input",
    /// The CA's policy refused the request.
    Denied => "denied",
    /// Something asked for does not exist.
    NotFound => "not_found",
    /// The object is not in a state that allows the operation.
    Conflict => "conflict",
    /// The caller may not do this.
    Forbidden => "forbidden",
    /// The caller gave no credentials where they are required.
    Unauthorized => "unauthorized",
    /// The CA is misconfigured or not ready.
    Config => "config",
    /// Too many failed logins: try again later.
    Throttled => "throttled",
    /// A failure inside the CA (database, cryptography, file system).
    Internal => "internal",
    /// The CA's database cannot be reached now (a failover, a lost
    /// connection): nothing was done; retry later.
    Unavailable => "unavailable",
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
            EngineError::Store(StoreError::Unavailable(_)) => codes::E_UNAVAILABLE,
            EngineError::Crypto(CryptoError::TokenUnavailable(_)) => codes::NTE_DEVICE_NOT_READY,
            EngineError::Crypto(CryptoError::TokenLogin(_)) => codes::SCARD_W_WRONG_CHV,
            _ => codes::E_FAIL,
        }
    }

    /// Short machine-readable kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::BadInput { .. } => ErrorKind::BadInput,
            EngineError::Denied { .. } => ErrorKind::Denied,
            EngineError::NotFound(_) | EngineError::Store(StoreError::NotFound(_)) => {
                ErrorKind::NotFound
            }
            EngineError::Conflict(_) | EngineError::Store(StoreError::Conflict(_)) => {
                ErrorKind::Conflict
            }
            EngineError::Forbidden(_) => ErrorKind::Forbidden,
            EngineError::Unauthenticated(_) => ErrorKind::Unauthorized,
            EngineError::Config(_) => ErrorKind::Config,
            EngineError::Throttled(_) => ErrorKind::Throttled,
            EngineError::Store(StoreError::Unavailable(_))
            | EngineError::Crypto(CryptoError::TokenUnavailable(_) | CryptoError::TokenLogin(_)) => {
                ErrorKind::Unavailable
            }
            EngineError::Store(_) | EngineError::Crypto(_) | EngineError::Io { .. } => {
                ErrorKind::Internal
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_api_strings_and_parse_back() {
        let expected = [
            (ErrorKind::BadInput, "bad_input"),
            (ErrorKind::Denied, "denied"),
            (ErrorKind::NotFound, "not_found"),
            (ErrorKind::Conflict, "conflict"),
            (ErrorKind::Forbidden, "forbidden"),
            (ErrorKind::Unauthorized, "unauthorized"),
            (ErrorKind::Config, "config"),
            (ErrorKind::Throttled, "throttled"),
            (ErrorKind::Internal, "internal"),
            (ErrorKind::Unavailable, "unavailable"),
        ];
        assert_eq!(ErrorKind::ALL.len(), expected.len());
        for (kind, text) in expected {
            assert_eq!(kind.as_str(), text);
            assert_eq!(kind.to_string(), text);
            assert_eq!(ErrorKind::parse(text), Some(kind));
        }
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(ErrorKind::parse("Bad_Input"), None);
        assert_eq!(ErrorKind::parse(""), None);
    }

    #[test]
    fn each_error_has_its_kind() {
        let cases = [
            (
                EngineError::bad_input(codes::E_INVALIDARG, "x"),
                "bad_input",
            ),
            (EngineError::denied(codes::E_INVALIDARG, "x"), "denied"),
            (EngineError::NotFound("x".into()), "not_found"),
            (
                EngineError::Store(StoreError::NotFound("x".into())),
                "not_found",
            ),
            (EngineError::Conflict("x".into()), "conflict"),
            (
                EngineError::Store(StoreError::Conflict("x".into())),
                "conflict",
            ),
            (EngineError::Forbidden("x".into()), "forbidden"),
            (EngineError::Unauthenticated("x".into()), "unauthorized"),
            (EngineError::Config("x".into()), "config"),
            (EngineError::Throttled("x".into()), "throttled"),
            (
                EngineError::Io {
                    context: "x".into(),
                    source: std::io::Error::other("y"),
                },
                "internal",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.kind().as_str(), text, "{e:?}");
        }
    }

    #[test]
    fn one_name_per_code_and_one_code_per_name() {
        for (i, (code, name)) in codes::ALL.iter().enumerate() {
            for (other_code, other_name) in &codes::ALL[i + 1..] {
                assert_ne!(code, other_code, "0x{code:08X} listed twice");
                assert_ne!(name, other_name, "{name} listed twice");
            }
            assert_eq!(codes::name(*code), *name);
        }
        assert_eq!(
            codes::name(0x8009_400C),
            "CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL"
        );
        assert_eq!(codes::name(0x8009_FFFF), "E_FAIL");
    }

    #[test]
    fn code_names_are_unchanged() {
        let expected = [
            (0x8007_0005, "E_ACCESSDENIED"),
            (0x8007_0002, "ERROR_FILE_NOT_FOUND"),
            (0x8007_0057, "E_INVALIDARG"),
            (0x8007_139F, "ERROR_INVALID_STATE"),
            (0x8009_310B, "CRYPT_E_ASN1_BADTAG"),
            (0x8009_0006, "NTE_BAD_SIGNATURE"),
            (0x8009_0008, "NTE_BAD_ALGID"),
            (0x8009_4001, "CERTSRV_E_BAD_REQUESTSUBJECT"),
            (0x8009_400A, "CERTSRV_E_KEY_ARCHIVAL_NOT_CONFIGURED"),
            (0x8009_400B, "CERTSRV_E_NO_VALID_KRA"),
            (0x8009_400C, "CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL"),
            (0x8009_4008, "CERTSRV_E_ROLECONFLICT"),
            (0x8009_4009, "CERTSRV_E_RESTRICTEDOFFICER"),
            (0x8009_4012, "CERTSRV_E_TEMPLATE_DENIED"),
            (0x8009_4800, "CERTSRV_E_UNSUPPORTED_CERT_TYPE"),
            (0x8009_4801, "CERTSRV_E_NO_CERT_TYPE"),
            (0x8009_4804, "CERTSRV_E_ARCHIVED_KEY_REQUIRED"),
            (0x8009_4810, "CERTSRV_E_ARCHIVED_KEY_UNEXPECTED"),
            (0x8009_4811, "CERTSRV_E_KEY_LENGTH"),
            (0x8002_802C, "TYPE_E_AMBIGUOUSNAME"),
            (0x8009_2004, "CRYPT_E_NOT_FOUND"),
            (0x8000_4005, "E_FAIL"),
            (0x8007_00B7, "ERROR_ALREADY_EXISTS"),
            (0x8007_0775, "ERROR_ACCOUNT_LOCKED_OUT"),
        ];
        for (code, name) in expected {
            assert_eq!(codes::name(code), name, "0x{code:08X}");
        }
    }
}
