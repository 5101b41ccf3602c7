//! The migrations runner's own bookkeeping table.

/// Used by `migrate`.
pub(crate) const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";

/// Used by `migrate`.
pub(crate) const SCHEMA_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";

/// Used by `migrate`.
pub(crate) const RECORD_MIGRATION: &str =
    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)";

/// Used by `status`: row counts in one statement (one snapshot).
pub(crate) const STATUS_COUNTS: &str = "SELECT \
    (SELECT COUNT(*) FROM requests) AS requests, \
    (SELECT COUNT(*) FROM requests WHERE archived_key IS NOT NULL) AS archived_keys, \
    (SELECT COUNT(*) FROM unmatched_keys) AS unmatched_keys, \
    (SELECT COUNT(*) FROM audit_log) AS audit_records, \
    (SELECT COUNT(*) FROM audit_heads) AS audit_heads";
