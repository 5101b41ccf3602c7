//! SQLite-only statements, kept apart from the portable SQL in `crate::sql`:
//! a PostgreSQL backend has its own equivalents (or none) for these.

/// Used by `optimize`.
/// SQLite only.
pub(crate) const ANALYSIS_LIMIT: &str = "PRAGMA analysis_limit=1000";

/// Used by `optimize`.
/// SQLite only.
pub(crate) const OPTIMIZE: &str = "PRAGMA optimize=0x10002";

/// Used by `integrity_check`.
/// SQLite only.
pub(crate) const INTEGRITY_CHECK: &str = "PRAGMA integrity_check";

/// Used by `snapshot`.
/// SQLite only.
pub(crate) const VACUUM_INTO: &str = "VACUUM INTO $1";
