//! The tamper-evident audit trail (hash chain with CA-signed heads) and the CA
//! event log.

pub(crate) mod chain;
pub(crate) mod heads;
pub(crate) mod verify;

pub use crate::category::AuditCategory;

use lockbox_codec::hexfmt::to_hex;
use lockbox_crypto::digest::sha256;
use serde::Serialize;

/// Audit categories (AD CS audit filter): backup, config, security, requests, revocation, keys, audit, service.
pub const CATEGORIES: &[&str] = &[
    AuditCategory::Backup.as_str(),
    AuditCategory::Config.as_str(),
    AuditCategory::Security.as_str(),
    AuditCategory::Requests.as_str(),
    AuditCategory::Revocation.as_str(),
    AuditCategory::Keys.as_str(),
    AuditCategory::Audit.as_str(),
    AuditCategory::Service.as_str(),
];

/// Setting holding the audited categories.
pub const AUDIT_CATEGORIES: &str = "audit_categories";

/// A signed head is added at least every this many records.
pub const HEAD_INTERVAL: i64 = 64;

/// The file in the home that keeps every signed chain head outside the
/// database (append-only, fsynced, mode 0600): one line `seq hash signature at`.
pub const HEADS_FILE: &str = "audit-heads.log";

/// The chain hash (hex SHA-256), handed to the store.
pub fn chain_hash(data: &[u8]) -> String {
    to_hex(&sha256(data))
}

/// One finding of `audit verify`.
#[derive(Clone, Debug, Serialize)]
pub struct AuditProblem {
    /// Position in the chain.
    pub position: i64,
    /// What is wrong.
    pub problem: String,
}

/// The result of `audit verify`.
#[derive(Clone, Debug, Serialize)]
pub struct AuditReport {
    /// Records checked.
    pub records: i64,
    /// Signed heads checked.
    pub signed_heads: usize,
    /// Signed heads read from the head file outside the database.
    pub external_heads: usize,
    /// Findings (empty: the chain is intact).
    pub problems: Vec<AuditProblem>,
}
