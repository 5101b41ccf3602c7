//! Audit rows: entries to append, chained records, signed heads, CA events.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

/// One audit event to append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct AuditEntry {
    /// When, unix seconds.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// Category (the Auditor chooses which are recorded).
    pub category: String,
    /// What.
    pub action: String,
    /// On what (request ID, serial, principal, ...).
    pub target: String,
    /// `success` or `refused`.
    pub outcome: String,
    /// Details (JSON text).
    pub details: String,
}

/// A stored, chained audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct AuditRecord {
    /// Position in the chain (1, 2, ...).
    pub seq: i64,
    /// The event.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub entry: AuditEntry,
    /// Hash of the previous record (hex; zeros for the first).
    pub prev_hash: String,
    /// Hash of this record (hex).
    pub hash: String,
}

/// Hash of the empty chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl AuditRecord {
    /// The bytes a record's hash covers: every field and the previous hash.
    pub fn chain_input(seq: i64, e: &AuditEntry, prev_hash: &str) -> Vec<u8> {
        serde_json::json!([
            seq, e.at, e.actor, e.category, e.action, e.target, e.outcome, e.details, prev_hash
        ])
        .to_string()
        .into_bytes()
    }
}

/// A signed audit chain head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct AuditHead {
    /// Sequence number of the record signed.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// CA signature (hex) over `seq:hash`.
    pub signature: String,
    /// When, unix seconds.
    pub at: i64,
}

/// A CA event log record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct EventRecord {
    /// Row id.
    pub id: i64,
    /// When, unix seconds.
    pub at: i64,
    /// AD CS event ID (82, 83, 84, 85, 98, 127, ...).
    pub event_id: i64,
    /// `error`, `warning` or `info`.
    pub level: String,
    /// Text.
    pub message: String,
}
