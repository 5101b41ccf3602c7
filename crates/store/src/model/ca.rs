//! CA settings rows: revoked entries and CRLs, KRA certificates, template permissions.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

/// A revoked certificate for the CRL.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct RevokedEntry {
    /// Serial, lowercase hex.
    pub serial: String,
    /// Revocation time, unix seconds.
    pub revoked_at: i64,
    /// CRL reason code.
    #[sqlx(rename = "revocation_reason")]
    pub reason: i32,
    /// Key identifier of the CA key that signed the certificate (None for
    /// rows from before it was recorded: the CA's first key).
    pub issuer_key_id: Option<String>,
}

/// A published CRL.
#[derive(Clone, Debug, FromRow)]
pub struct CrlRecord {
    /// CRL number.
    pub crl_number: i64,
    /// thisUpdate, unix seconds.
    pub this_update: i64,
    /// nextUpdate, unix seconds.
    pub next_update: i64,
    /// DER.
    pub der: Vec<u8>,
    /// For a delta CRL, the number of the base CRL it completes.
    pub delta_base: Option<i64>,
    /// Index of the CA key that signed it.
    pub key_index: i64,
}

/// A configured Key Recovery Agent certificate.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct KraEntry {
    /// Certificates chaining the KRA to a trusted root (DER, concatenated PEM-free list), for foreign KRAs.
    pub chain_der: Option<Vec<u8>>,
    /// CRL file path or URL for foreign KRAs.
    pub crl_source: Option<String>,
    /// SHA-1 thumbprint, lowercase hex.
    pub thumbprint: String,
    /// DER certificate.
    pub cert_der: Vec<u8>,
    /// When it was added, unix seconds.
    pub added_at: i64,
}

/// A template permission entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// Template.
    pub template: String,
    /// Principal or group.
    pub principal: String,
    /// Allow (true) or deny (false) entry.
    pub allow: bool,
    /// Rights: Read, Enroll, Autoenroll, Write.
    pub rights: Vec<String>,
}

/// What `lockbox db status` reports: which backend, which schema version,
/// and how much it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseStatus {
    /// The backend (`sqlite`).
    pub backend: String,
    /// The highest migration applied.
    pub schema_version: i64,
    /// Rows in the request table (every request, whatever its disposition).
    pub requests: i64,
    /// Requests that carry an archived key.
    pub archived_keys: i64,
    /// Imported keys not (yet) matched to a certificate of this CA.
    pub unmatched_keys: i64,
    /// Records of the audit chain.
    pub audit_records: i64,
    /// Signed audit heads.
    pub audit_heads: i64,
}
