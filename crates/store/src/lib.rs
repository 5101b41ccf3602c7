//! The Lockbox CA database.
//!
//! One logical row per request holds the request, its disposition, the issued
//! certificate and its searchable columns, revocation state, and the reserved
//! archived-key columns. The [`Store`] trait is the only interface the engine
//! sees; this crate is the only place in Lockbox that knows SQL. Queries use
//! portable SQL with `$n` parameters so a PostgreSQL backend can share them.

mod migrations;
pub mod model;
mod sqlite;

use async_trait::async_trait;

pub use model::*;
pub use sqlite::SqliteStore;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A row was not in the state the operation requires.
    #[error("{0}")]
    Conflict(String),
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The schema is newer than this build understands, or a migration failed.
    #[error("schema: {0}")]
    Schema(String),
    /// The database failed its integrity check.
    #[error("integrity check failed: {0}")]
    Integrity(String),
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// The CA database interface.
#[async_trait]
pub trait Store: Send + Sync {
    /// Records a new request (and its certificate, when issued at once) in one transaction.
    async fn insert_request(&self, new: &NewRequest) -> StoreResult<i64>;
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
    ) -> StoreResult<()>;
    /// Denies a pending request: fails with [`StoreError::Conflict`] unless it is still pending.
    async fn deny_pending(
        &self,
        id: i64,
        message: &str,
        status_code: i64,
        at: i64,
    ) -> StoreResult<()>;
    /// Revokes an issued certificate by serial.
    async fn revoke(&self, serial: &str, reason: i32, at: i64) -> StoreResult<()>;
    /// All revoked certificates (for the CRL).
    async fn revoked(&self) -> StoreResult<Vec<RevokedEntry>>;
    /// Allocates the next CRL number.
    async fn next_crl_number(&self) -> StoreResult<i64>;
    /// Stores a published CRL.
    async fn insert_crl(&self, crl: &CrlRecord) -> StoreResult<()>;
    /// The most recent CRL.
    async fn latest_crl(&self) -> StoreResult<Option<CrlRecord>>;
    /// Rows matching all restrictions, ordered by request id, at most `limit`.
    async fn query(
        &self,
        restrictions: &[Restriction],
        limit: i64,
    ) -> StoreResult<Vec<RequestRecord>>;
    /// All stored template definitions (name, JSON).
    async fn templates(&self) -> StoreResult<Vec<(String, String)>>;
    /// Inserts or replaces a template definition.
    async fn put_template(&self, name: &str, definition_json: &str) -> StoreResult<()>;
    /// Names of the templates this CA issues.
    async fn ca_templates(&self) -> StoreResult<Vec<String>>;
    /// Adds or removes a template from the CA's issue list.
    async fn set_ca_template(&self, name: &str, enabled: bool) -> StoreResult<()>;
    /// The archived-key envelope of a request.
    async fn archived_key(&self, id: i64) -> StoreResult<Option<Vec<u8>>>;
    /// The KRA certificate hashes of a request's archived key.
    async fn kra_hashes(&self, id: i64) -> StoreResult<Option<String>>;
    /// Configured Key Recovery Agent certificates.
    async fn kra_certificates(&self) -> StoreResult<Vec<KraEntry>>;
    /// Adds a KRA certificate (idempotent by thumbprint).
    async fn add_kra_certificate(
        &self,
        thumbprint: &str,
        cert_der: &[u8],
        at: i64,
    ) -> StoreResult<()>;
    /// Removes a KRA certificate; false if it was not configured.
    async fn remove_kra_certificate(&self, thumbprint: &str) -> StoreResult<bool>;
    /// Reads a CA setting.
    async fn setting(&self, name: &str) -> StoreResult<Option<String>>;
    /// Writes a CA setting.
    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()>;
    /// Runs the backend's integrity check.
    async fn integrity_check(&self) -> StoreResult<()>;
}
