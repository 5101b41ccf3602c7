//! Audit chain: records and signed heads.

/// Used by `append_in_tx`.
pub(crate) const CHAIN_HEAD: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";

/// Used by `append_in_tx`.
pub(crate) const APPEND_RECORD: &str = "INSERT INTO audit_log (seq, at, actor, category, action, target, outcome, details, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// Used by `append_in_tx`, `add_audit_head`.
pub(crate) const INSERT_HEAD: &str = "INSERT INTO audit_heads (seq, hash, signature, at) VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING";

/// Used by `audit_records`.
pub(crate) const AUDIT_RECORDS: &str = "SELECT seq, at, actor, category, action, target, outcome, details, prev_hash, hash FROM audit_log \
             WHERE seq >= $1 ORDER BY seq LIMIT $2";

/// Used by `last_audit_record`.
pub(crate) const LAST_AUDIT_RECORD: &str = "SELECT seq, at, actor, category, action, target, outcome, details, prev_hash, hash FROM audit_log \
             ORDER BY seq DESC LIMIT 1";

/// Used by `audit_heads`.
pub(crate) const AUDIT_HEADS: &str =
    "SELECT seq, hash, signature, at FROM audit_heads ORDER BY seq";

/// Used by `last_audit_head`.
pub(crate) const LAST_AUDIT_HEAD: &str =
    "SELECT seq, hash, signature, at FROM audit_heads ORDER BY seq DESC LIMIT 1";
