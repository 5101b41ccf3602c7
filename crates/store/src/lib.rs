//! The Lockbox CA database.
//!
//! One logical row per request holds the request, its disposition, the issued
//! certificate and its searchable columns, revocation state, and the reserved
//! archived-key columns. The [`Store`] trait is the only interface the engine
//! sees; this crate is the only place in Lockbox that knows SQL. Queries use
//! portable SQL with `$n` parameters, shared by the SQLite (embedded default)
//! and PostgreSQL (scale-out) backends of [`SqlStore`].

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod db;
mod dialect;
mod migrations;
mod model;
mod sql;
mod test_database;
mod url;

use async_trait::async_trait;

pub use db::{ensure_sqlite_unused, CopyReport, Hasher, HeadSealer, SqlStore};
pub use dialect::Backend;
pub use model::*;
pub use test_database::{create_fresh_database, test_server, TEST_DATABASE_ENV};
pub use url::{DatabaseUrl, PgUrl, UrlError};

/// The store's former name, from when SQLite was its only backend.
pub type SqliteStore = SqlStore;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The database cannot be reached (connection refused or lost, a
    /// standby that refuses writes, no connection free in time): the
    /// operation did not happen and may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A row was not in the state the operation requires.
    #[error("{0}")]
    Conflict(String),
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A certificate with this serial number is already recorded (the
    /// unique index refused the row; nothing was written): issue again
    /// with a new serial number.
    #[error("a certificate with this serial number already exists")]
    DuplicateSerial,
    /// The schema is newer than this build understands, or a migration failed.
    #[error("schema: {0}")]
    Schema(String),
    /// The database failed its integrity check.
    #[error("integrity check failed: {0}")]
    Integrity(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_serial_collision(&e) {
            StoreError::DuplicateSerial
        } else if is_unavailable(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Database(e)
        }
    }
}

/// Whether the unique index on certificate serial numbers refused a row
/// (PostgreSQL names the constraint; SQLite names the column).
fn is_serial_collision(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                && (db.constraint() == Some("requests_serial")
                    || db.message().contains("requests.serial"))
        }
        _ => false,
    }
}

/// Whether an error means the database could not be reached, as opposed to
/// a refused statement: connection and pool failures, and the SQLSTATE
/// classes for a lost connection (08), a server shutting down (57P01–57P03),
/// a read-only transaction on a standby (25006), a lock or statement
/// timeout (55P03, 57014), an idle transaction ended by the server (25P03)
/// and a server out of connections (53300).
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("08")
                || matches!(
                    &*c,
                    "57P01" | "57P02" | "57P03" | "25006" | "55P03" | "57014" | "25P03" | "53300"
                )
        }),
        _ => false,
    }
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// The CA database interface.
#[async_trait]
pub trait Store: Send + Sync {
    /// Records a new request (and its certificate, when issued at once) in one transaction.
    async fn insert_request(&self, new: &NewRequest, audit: &[AuditEntry]) -> StoreResult<i64>;
    /// Records many requests in one transaction, without audit records
    /// (benchmark data and bulk migration, which audits the run as a whole).
    async fn insert_requests_bulk(&self, news: &[NewRequest]) -> StoreResult<()>;
    /// Fetches one request row.
    async fn get_request(&self, id: i64) -> StoreResult<Option<RequestRecord>>;
    /// Finds the row of an issued certificate by serial number (lowercase hex).
    async fn get_by_serial(&self, serial: &str) -> StoreResult<Option<RequestRecord>>;
    /// Issues a pending request: fails with [`StoreError::Conflict`] unless it is still pending.
    async fn issue_pending(
        &self,
        id: i64,
        cert: &CertFields,
        message: &str,
        at: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()>;
    /// Denies a pending request: fails with [`StoreError::Conflict`] unless it is still pending.
    async fn deny_pending(
        &self,
        id: i64,
        message: &str,
        status_code: i64,
        at: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()>;
    /// Revokes an issued certificate by serial.
    async fn revoke(
        &self,
        serial: &str,
        reason: i32,
        at: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()>;
    /// Releases a certificate on hold (reason certificateHold): it is issued
    /// again. [`StoreError::Conflict`] unless it is on hold.
    async fn unrevoke(&self, serial: &str, audit: &[AuditEntry]) -> StoreResult<()>;
    /// All revoked certificates (for the CRL).
    async fn revoked(&self) -> StoreResult<Vec<RevokedEntry>>;
    /// Allocates the next CRL number.
    async fn next_crl_number(&self) -> StoreResult<i64>;
    /// Allocates the next CRL number and reads the revoked certificates in
    /// one transaction under the write lock (which every revocation takes):
    /// across nodes, a higher CRL number never lists fewer revocations.
    async fn next_crl(&self) -> StoreResult<(i64, Vec<RevokedEntry>)>;
    /// Stores a published CRL.
    async fn insert_crl(&self, crl: &CrlRecord) -> StoreResult<()>;
    /// The most recent base (full) CRL signed by CA key `key_index`.
    async fn latest_crl(&self, key_index: i64) -> StoreResult<Option<CrlRecord>>;
    /// The most recent delta CRL signed by CA key `key_index`.
    async fn latest_delta_crl(&self, key_index: i64) -> StoreResult<Option<CrlRecord>>;
    /// Rows matching all restrictions, ordered by request id, at most `limit`.
    async fn query(
        &self,
        restrictions: &[Restriction],
        limit: i64,
    ) -> StoreResult<Vec<RequestRecord>>;
    /// All stored template definitions (name, JSON).
    async fn templates(&self) -> StoreResult<Vec<(String, String)>>;
    /// Names of the templates this CA issues.
    async fn ca_templates(&self) -> StoreResult<Vec<String>>;
    /// The archived-key envelope of a request.
    async fn archived_key(&self, id: i64) -> StoreResult<Option<Vec<u8>>>;
    /// The KRA certificate hashes of a request's archived key.
    async fn kra_hashes(&self, id: i64) -> StoreResult<Option<String>>;
    /// Every archived key (certificate rows and keys archived under their key
    /// ID) encrypted to the KRA with this SHA-1 thumbprint (lowercase hex).
    async fn keys_for_kra(&self, thumbprint: &str) -> StoreResult<Vec<ArchivedKeyAgents>>;
    /// Configured Key Recovery Agent certificates.
    async fn kra_certificates(&self) -> StoreResult<Vec<KraEntry>>;
    /// Reads a CA setting.
    async fn setting(&self, name: &str) -> StoreResult<Option<String>>;
    /// Applies configuration changes and their audit records in one transaction.
    async fn apply(&self, changes: &[Change], audit: &[AuditEntry]) -> StoreResult<()>;
    /// Rows holding an archived key whose imported owner is known by `name`
    /// (principal name, UPN, down-level name or e-mail; case-insensitive).
    async fn find_by_owner_name(&self, name: &str, limit: i64) -> StoreResult<Vec<RequestRecord>>;
    /// Appends audit records (refusals, reads) in their own transaction.
    async fn append_audit(&self, audit: &[AuditEntry]) -> StoreResult<()>;
    /// Audit records with seq >= `from`, in order, at most `limit`.
    async fn audit_records(&self, from: i64, limit: i64) -> StoreResult<Vec<AuditRecord>>;
    /// The newest audit record (the chain head), if any; one indexed read.
    async fn last_audit_record(&self) -> StoreResult<Option<AuditRecord>>;
    /// Stores a signed chain head.
    async fn add_audit_head(&self, head: &AuditHead) -> StoreResult<()>;
    /// All signed chain heads, oldest first.
    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>>;
    /// The newest signed chain head, if any; one indexed read.
    async fn last_audit_head(&self) -> StoreResult<Option<AuditHead>>;
    /// Records a CA event.
    async fn add_event(
        &self,
        at: i64,
        event_id: i64,
        level: &str,
        message: &str,
    ) -> StoreResult<()>;
    /// The latest CA events, newest first.
    async fn events(&self, limit: i64) -> StoreResult<Vec<EventRecord>>;
    /// The row of a certificate by SHA-1 thumbprint.
    async fn get_by_thumbprint(&self, thumbprint: &str) -> StoreResult<Option<RequestRecord>>;
    /// Whether a key with no matching certificate was archived under this key ID.
    async fn unmatched_key_exists(&self, key_id: &str) -> StoreResult<bool>;
    /// One principal.
    async fn principal(&self, name: &str) -> StoreResult<Option<Principal>>;
    /// Every principal.
    async fn principals(&self) -> StoreResult<Vec<Principal>>;
    /// Groups `name` is a direct member of.
    async fn groups_of(&self, name: &str) -> StoreResult<Vec<String>>;
    /// Direct members of a group.
    async fn members(&self, group: &str) -> StoreResult<Vec<String>>;
    /// An API token's (principal, secret hash) by token id.
    async fn token(&self, id: &str) -> StoreResult<Option<(String, String)>>;
    /// The principal a client certificate (SHA-1 thumbprint) is mapped to.
    async fn principal_for_certificate(&self, thumbprint: &str) -> StoreResult<Option<String>>;
    /// Every (principal, role) grant.
    async fn roles(&self) -> StoreResult<Vec<(String, String)>>;
    /// Permission entries of a template.
    async fn permissions(&self, template: &str) -> StoreResult<Vec<Permission>>;
    /// A manager's restrictions: (groups, templates).
    async fn restrictions(&self, manager: &str) -> StoreResult<(Vec<String>, Vec<String>)>;
    /// The credential version: bumped by every change to principals,
    /// memberships, tokens, certificate mappings, roles, permissions and
    /// restrictions. Read per request, so revocations reach every process.
    async fn credential_version(&self) -> StoreResult<i64>;

    /// The configuration version: bumped in the same transaction by every
    /// write that changes templates, settings, KRA certificates, revocations
    /// or exchange certificates, so a process's cached copies are reloaded
    /// when another process or node changed them.
    async fn config_version(&self) -> StoreResult<i64>;

    /// A principal's API tokens (IDs and dates only).
    async fn tokens(&self, principal: &str) -> StoreResult<Vec<TokenInfo>>;
    /// A principal's client-certificate mappings.
    async fn certificate_mappings(&self, principal: &str) -> StoreResult<Vec<CertificateMapping>>;
    /// The sealed private key of the exchange certificate with this serial.
    async fn exchange_key(&self, serial: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Serials of the exchange certificates whose key is stored.
    async fn exchange_key_serials(&self) -> StoreResult<Vec<String>>;
    /// Records a new exchange certificate (`new`, issued) with its sealed key
    /// and audit records in one transaction under the write lock, unless an
    /// exchange certificate with a stored key, other than those whose serial
    /// is in `ignore` (rows the CA did not sign), is in force at
    /// `new.submitted_at` until after `fresh_after` (another node made one):
    /// then nothing is written and `None` is returned.
    async fn insert_exchange_certificate(
        &self,
        new: &NewRequest,
        sealed_key: &[u8],
        fresh_after: i64,
        ignore: &[String],
        audit: &[AuditEntry],
    ) -> StoreResult<Option<i64>>;
    /// Runs the backend's integrity check.
    async fn integrity_check(&self) -> StoreResult<()>;
    /// The backend, its schema version and its row counts.
    async fn status(&self) -> StoreResult<DatabaseStatus>;
    /// Closes the connections (SQLite: checkpoints the WAL into the file).
    async fn close(&self);
    /// The database engine under this store.
    fn backend(&self) -> Backend;
    /// Writes a consistent copy of the whole database to `dest` (a new file)
    /// while the service keeps running (one read transaction).
    async fn snapshot(&self, dest: &std::path::Path) -> StoreResult<()>;
}
