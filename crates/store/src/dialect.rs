//! What only one backend says, kept apart from the portable SQL in
//! `crate::sql`: the backend switch, SQLite's pragmas and PostgreSQL's locks.

use serde::Serialize;

/// The database engine under a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The embedded default: one file in the CA home.
    Sqlite,
    /// PostgreSQL: several nodes on one database.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// (version, SQL) of this backend's migrations, in order.
    pub(crate) fn migrations(&self) -> &'static [(i64, &'static str)] {
        match self {
            Backend::Sqlite => crate::migrations::sqlite::MIGRATIONS,
            Backend::Postgres => crate::migrations::postgres::MIGRATIONS,
        }
    }
}

/// SQLite only.
pub(crate) mod sqlite {
    /// Per connection: write-ahead log, full sync (an acknowledged commit
    /// survives power loss), foreign keys, and a busy wait instead of an
    /// immediate "database is locked".
    pub(crate) const CONNECTION_PRAGMAS: &str = "PRAGMA journal_mode = WAL; \
        PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000;";

    /// Used by `optimize`.
    pub(crate) const ANALYSIS_LIMIT: &str = "PRAGMA analysis_limit=1000";

    /// Used by `optimize`.
    pub(crate) const OPTIMIZE: &str = "PRAGMA optimize=0x10002";

    /// Used by `integrity_check`.
    pub(crate) const INTEGRITY_CHECK: &str = "PRAGMA integrity_check";

    /// Used by `snapshot`.
    pub(crate) const VACUUM_INTO: &str = "VACUUM INTO $1";
}

/// PostgreSQL only.
pub(crate) mod postgres {
    /// Taken first in every write transaction, on every node: one writer at a
    /// time, so the audit chain has one head and is appended in order (the
    /// PostgreSQL form of SQLite's single writer). Released at commit or
    /// rollback, and by the server when the session dies.
    pub(crate) const WRITE_LOCK: &str = "SELECT pg_advisory_xact_lock(7418893400000000001)";

    /// Per connection: a writer waits at most a minute for the write lock, and
    /// a session left idle inside a transaction (a hung node holding the
    /// lock) is ended by the server after a minute, so one node cannot stall
    /// the others for long; both end in "unavailable" (503), not a hang.
    /// Commits wait for the standby whatever the server's default
    /// (`synchronous_commit = on`: an acknowledged enrollment is on the
    /// synchronous standby), and the isolation the code assumes is set.
    pub(crate) const SESSION_SETTINGS: &str = "SET lock_timeout = '60s'; \
        SET idle_in_transaction_session_timeout = '60s'; SET synchronous_commit = on; \
        SET default_transaction_isolation = 'read committed'";

    /// Held while migrations run, so nodes starting together migrate once.
    pub(crate) const MIGRATION_LOCK: &str = "SELECT pg_advisory_xact_lock(7418893400000000002)";

    /// Whether this session may write (false on a standby).
    pub(crate) const IS_PRIMARY: &str = "SELECT NOT pg_is_in_recovery()";

    /// Used by `integrity_check`: rows that break an invariant the schema
    /// cannot state (an issued row without its serial or thumbprint, an
    /// archived key without its agents, a gap in the audit chain's sequence).
    pub(crate) const INVARIANT_FINDINGS: &str = "SELECT \
        (SELECT COUNT(*) FROM requests WHERE cert_der IS NOT NULL AND (serial IS NULL OR thumbprint IS NULL)) \
        + (SELECT COUNT(*) FROM requests WHERE archived_key IS NOT NULL AND kra_hashes IS NULL) \
        + (SELECT CASE WHEN COUNT(*) = COALESCE(MAX(seq), 0) AND COALESCE(MIN(seq), 1) = 1 THEN 0 ELSE 1 END FROM audit_log)";

    /// Starts the read transaction of a consistent copy: one snapshot for
    /// every table, waiting for a point where the copy cannot be serialised
    /// differently from the commits around it.
    pub(crate) const BEGIN_SNAPSHOT: &str =
        "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE";

    /// Moves the request-ID sequence past copied rows.
    pub(crate) const RESET_REQUEST_IDS: &str =
        "SELECT setval(pg_get_serial_sequence('requests', 'request_id'), \
        (SELECT COALESCE(MAX(request_id), 0) + 1 FROM requests), false)";

    /// Moves the event-ID sequence past copied rows.
    pub(crate) const RESET_EVENT_IDS: &str =
        "SELECT setval(pg_get_serial_sequence('events', 'id'), \
        (SELECT COALESCE(MAX(id), 0) + 1 FROM events), false)";
}
