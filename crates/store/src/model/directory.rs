//! Directory rows: principals, API tokens, mapped client certificates.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

/// A local principal (user or group).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct Principal {
    /// Unique name.
    pub name: String,
    /// `user` or `group`.
    pub kind: String,
    /// User principal name.
    pub upn: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Down-level logon name `DOMAIN\name`.
    pub downlevel: Option<String>,
    /// Password hash (Argon2id), never serialised.
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// Created, unix seconds.
    pub created_at: i64,
}

/// An API token as listed (never its secret or hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct TokenInfo {
    /// Token ID (the part after `lbt_`).
    pub id: String,
    /// Principal name.
    pub principal: String,
    /// Created, unix seconds.
    pub created_at: i64,
}

/// A TLS client certificate mapped to a principal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct CertificateMapping {
    /// SHA-1 thumbprint (hex).
    pub thumbprint: String,
    /// Principal name.
    pub principal: String,
    /// Serial number (lowercase hex), when recorded.
    pub serial: Option<String>,
}
