//! SQLite backend (embedded default): WAL journal, `synchronous=FULL` so an
//! acknowledged commit survives power loss.
//!
//! This file holds the store itself (pool, pragmas, migrations runner, write
//! transactions) and the [`Store`] implementation, which delegates to one file
//! per concern: [`requests`] (request rows), [`audit`] (audit chain and heads),
//! [`directory`] (principals and their credentials), [`ca`] (CA-wide tables),
//! [`changes`] (the [`Store::apply`] change set) and [`rows`] (row mapping).

mod audit;
mod ca;
mod changes;
mod dialect;
mod directory;
mod requests;
mod rows;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Sqlite};

use crate::migrations;
use crate::model::*;
use crate::{Store, StoreError, StoreResult};

pub use audit::HeadSealer;

/// The SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    hasher: Hasher,
    /// Writers queue here (first come, first served) instead of spinning in
    /// SQLite's busy handler, whose back-off collapses throughput under many
    /// concurrent writers.
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Write transactions begun since the planner statistics were refreshed.
    writes_since_optimize: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Signs the chain head in every transaction that appends audit records.
    sealer: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<dyn HeadSealer>>>,
}

/// Held for the duration of a write.
type WriteGate = tokio::sync::OwnedMutexGuard<()>;

/// The hash function chaining audit records (hex output); supplied by the engine
/// so the store stays free of cryptography.
pub type Hasher = fn(&[u8]) -> String;

type Tx = sqlx::Transaction<'static, Sqlite>;

/// Write transactions between two refreshes of the planner statistics.
const OPTIMIZE_EVERY: u64 = 20_000;

/// Creates `path` as an empty file with mode 0600 when it does not exist yet.
fn create_private_file(path: &Path) -> StoreResult<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Database(sqlx::Error::Io(std::io::Error::new(
            e.kind(),
            format!("creating {}: {e}", path.display()),
        )))),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path, hasher: Hasher) -> StoreResult<Self> {
        // SQLite gives the -wal and -shm files the database file's mode: create
        // it 0600 (an empty file is an empty database) so all three are private.
        create_private_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        // Readers run in parallel under WAL; writers queue on the write gate.
        // Enough connections that reads do not queue behind 64 clients.
        let pool = SqlitePoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await?;
        let store = SqliteStore {
            pool,
            hasher,
            write_gate: Default::default(),
            writes_since_optimize: Default::default(),
            sealer: Default::default(),
        };
        store.migrate().await?;
        store.optimize().await?;
        Ok(store)
    }

    /// Refreshes the query planner's statistics where SQLite thinks they are
    /// stale (`PRAGMA optimize`, bounded work). Without statistics the planner
    /// cannot tell that `disposition` has four values and may walk every issued
    /// row through that index instead of using a selective one.
    async fn optimize(&self) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query(dialect::ANALYSIS_LIMIT)
            .execute(&mut *conn)
            .await?;
        sqlx::query(dialect::OPTIMIZE).execute(&mut *conn).await?;
        Ok(())
    }

    /// Opens an in-memory database (tests).
    pub async fn open_in_memory(hasher: Hasher) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let store = SqliteStore {
            pool,
            hasher,
            write_gate: Default::default(),
            writes_since_optimize: Default::default(),
            sealer: Default::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        sqlx::query(crate::sql::schema::CREATE_MIGRATIONS_TABLE)
            .execute(&self.pool)
            .await?;
        let current: i64 = sqlx::query_scalar(crate::sql::schema::SCHEMA_VERSION)
            .fetch_one(&self.pool)
            .await?;
        let latest = migrations::SQLITE.last().map(|m| m.0).unwrap_or(0);
        if current > latest {
            return Err(StoreError::Schema(format!(
                "database schema version {current} is newer than this build ({latest})"
            )));
        }
        for (version, sql) in migrations::SQLITE.iter().filter(|m| m.0 > current) {
            let mut tx = self.pool.begin().await?;
            sqlx::raw_sql(AssertSqlSafe(*sql))
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::Schema(format!("migration {version} failed: {e}")))?;
            sqlx::query(crate::sql::schema::RECORD_MIGRATION)
                .bind(version)
                .bind(now())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Begins a write transaction holding SQLite's write lock from the start,
    /// so the audit chain head cannot move under it.
    async fn begin_write(&self) -> StoreResult<(WriteGate, Tx)> {
        let gate = self.write_gate.clone().lock_owned().await;
        // Tables grow while the service runs: refresh statistics now and then,
        // under the gate so no write transaction is open meanwhile.
        let n = self
            .writes_since_optimize
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n >= OPTIMIZE_EVERY {
            self.writes_since_optimize
                .store(0, std::sync::atomic::Ordering::Relaxed);
            if let Err(e) = self.optimize().await {
                tracing::warn!(error = %e, "PRAGMA optimize failed");
            }
        }
        Ok((gate, self.pool.begin_with("BEGIN IMMEDIATE").await?))
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_request(&self, new: &NewRequest, audit: &[AuditEntry]) -> StoreResult<i64> {
        SqliteStore::insert_request(self, new, audit).await
    }

    async fn insert_requests_bulk(&self, news: &[NewRequest]) -> StoreResult<()> {
        SqliteStore::insert_requests_bulk(self, news).await
    }

    async fn get_request(&self, id: i64) -> StoreResult<Option<RequestRecord>> {
        SqliteStore::get_request(self, id).await
    }

    async fn get_by_serial(&self, serial: &str) -> StoreResult<Option<RequestRecord>> {
        SqliteStore::get_by_serial(self, serial).await
    }

    async fn issue_pending(
        &self,
        id: i64,
        cert: &CertFields,
        message: &str,
        at: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        SqliteStore::issue_pending(self, id, cert, message, at, audit).await
    }

    async fn deny_pending(
        &self,
        id: i64,
        message: &str,
        status_code: i64,
        at: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        SqliteStore::deny_pending(self, id, message, status_code, at, audit).await
    }

    async fn revoke(
        &self,
        serial: &str,
        reason: i32,
        at: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        SqliteStore::revoke(self, serial, reason, at, audit).await
    }

    async fn revoked(&self) -> StoreResult<Vec<RevokedEntry>> {
        SqliteStore::revoked(self).await
    }

    async fn next_crl_number(&self) -> StoreResult<i64> {
        SqliteStore::next_crl_number(self).await
    }

    async fn insert_crl(&self, crl: &CrlRecord) -> StoreResult<()> {
        SqliteStore::insert_crl(self, crl).await
    }

    async fn latest_crl(&self) -> StoreResult<Option<CrlRecord>> {
        SqliteStore::latest_crl(self).await
    }

    async fn query(
        &self,
        restrictions: &[Restriction],
        limit: i64,
    ) -> StoreResult<Vec<RequestRecord>> {
        SqliteStore::query(self, restrictions, limit).await
    }

    async fn templates(&self) -> StoreResult<Vec<(String, String)>> {
        SqliteStore::templates(self).await
    }

    async fn ca_templates(&self) -> StoreResult<Vec<String>> {
        SqliteStore::ca_templates(self).await
    }

    async fn archived_key(&self, id: i64) -> StoreResult<Option<Vec<u8>>> {
        SqliteStore::archived_key(self, id).await
    }

    async fn kra_hashes(&self, id: i64) -> StoreResult<Option<String>> {
        SqliteStore::kra_hashes(self, id).await
    }

    async fn keys_for_kra(&self, thumbprint: &str) -> StoreResult<Vec<ArchivedKeyAgents>> {
        SqliteStore::keys_for_kra(self, thumbprint).await
    }

    async fn kra_certificates(&self) -> StoreResult<Vec<KraEntry>> {
        SqliteStore::kra_certificates(self).await
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        SqliteStore::setting(self, name).await
    }

    async fn apply(&self, changes: &[Change], audit: &[AuditEntry]) -> StoreResult<()> {
        SqliteStore::apply(self, changes, audit).await
    }

    async fn find_by_owner_name(&self, name: &str, limit: i64) -> StoreResult<Vec<RequestRecord>> {
        SqliteStore::find_by_owner_name(self, name, limit).await
    }

    async fn append_audit(&self, audit: &[AuditEntry]) -> StoreResult<()> {
        SqliteStore::append_audit(self, audit).await
    }

    async fn audit_records(&self, from: i64, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        SqliteStore::audit_records(self, from, limit).await
    }

    async fn last_audit_record(&self) -> StoreResult<Option<AuditRecord>> {
        SqliteStore::last_audit_record(self).await
    }

    async fn add_audit_head(&self, head: &AuditHead) -> StoreResult<()> {
        SqliteStore::add_audit_head(self, head).await
    }

    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>> {
        SqliteStore::audit_heads(self).await
    }

    async fn last_audit_head(&self) -> StoreResult<Option<AuditHead>> {
        SqliteStore::last_audit_head(self).await
    }

    async fn add_event(
        &self,
        at: i64,
        event_id: i64,
        level: &str,
        message: &str,
    ) -> StoreResult<()> {
        SqliteStore::add_event(self, at, event_id, level, message).await
    }

    async fn events(&self, limit: i64) -> StoreResult<Vec<EventRecord>> {
        SqliteStore::events(self, limit).await
    }

    async fn get_by_thumbprint(&self, thumbprint: &str) -> StoreResult<Option<RequestRecord>> {
        SqliteStore::get_by_thumbprint(self, thumbprint).await
    }

    async fn unmatched_key_exists(&self, key_id: &str) -> StoreResult<bool> {
        SqliteStore::unmatched_key_exists(self, key_id).await
    }

    async fn principal(&self, name: &str) -> StoreResult<Option<Principal>> {
        SqliteStore::principal(self, name).await
    }

    async fn principals(&self) -> StoreResult<Vec<Principal>> {
        SqliteStore::principals(self).await
    }

    async fn groups_of(&self, name: &str) -> StoreResult<Vec<String>> {
        SqliteStore::groups_of(self, name).await
    }

    async fn members(&self, group: &str) -> StoreResult<Vec<String>> {
        SqliteStore::members(self, group).await
    }

    async fn token(&self, id: &str) -> StoreResult<Option<(String, String)>> {
        SqliteStore::token(self, id).await
    }

    async fn principal_for_certificate(&self, thumbprint: &str) -> StoreResult<Option<String>> {
        SqliteStore::principal_for_certificate(self, thumbprint).await
    }

    async fn roles(&self) -> StoreResult<Vec<(String, String)>> {
        SqliteStore::roles(self).await
    }

    async fn permissions(&self, template: &str) -> StoreResult<Vec<Permission>> {
        SqliteStore::permissions(self, template).await
    }

    async fn restrictions(&self, manager: &str) -> StoreResult<(Vec<String>, Vec<String>)> {
        SqliteStore::restrictions(self, manager).await
    }

    async fn credential_version(&self) -> StoreResult<i64> {
        SqliteStore::credential_version(self).await
    }

    async fn tokens(&self, principal: &str) -> StoreResult<Vec<TokenInfo>> {
        SqliteStore::tokens(self, principal).await
    }

    async fn certificate_mappings(&self, principal: &str) -> StoreResult<Vec<CertificateMapping>> {
        SqliteStore::certificate_mappings(self, principal).await
    }

    async fn integrity_check(&self) -> StoreResult<()> {
        let result: String = sqlx::query_scalar(dialect::INTEGRITY_CHECK)
            .fetch_one(&self.pool)
            .await?;
        if result != "ok" {
            return Err(StoreError::Integrity(result));
        }
        Ok(())
    }

    async fn status(&self) -> StoreResult<DatabaseStatus> {
        let schema_version: i64 = sqlx::query_scalar(crate::sql::schema::SCHEMA_VERSION)
            .fetch_one(&self.pool)
            .await?;
        let (requests, archived_keys, unmatched_keys, audit_records, audit_heads): (
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(crate::sql::schema::STATUS_COUNTS)
            .fetch_one(&self.pool)
            .await?;
        Ok(DatabaseStatus {
            backend: "sqlite".into(),
            schema_version,
            requests,
            archived_keys,
            unmatched_keys,
            audit_records,
            audit_heads,
        })
    }

    async fn snapshot(&self, dest: &Path) -> StoreResult<()> {
        if dest.exists() {
            return Err(StoreError::Integrity(format!(
                "snapshot target {} already exists",
                dest.display()
            )));
        }
        let target = dest
            .to_str()
            .ok_or_else(|| StoreError::Integrity("snapshot path is not UTF-8".into()))?;
        // VACUUM INTO accepts an empty file: create it 0600 so the copy is never readable by others.
        create_private_file(dest)?;
        sqlx::query(dialect::VACUUM_INTO)
            .bind(target)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn test_hash(b: &[u8]) -> String {
        // Not cryptographic: the store tests only need a deterministic function.
        format!(
            "{:x}",
            b.iter()
                .fold(0u64, |h, x| h.wrapping_mul(31).wrapping_add(*x as u64))
        )
    }

    /// Issue 12 item 4: migration 6 makes principal names case-insensitive in
    /// an existing database: of `mgr` and `MGR`, the older keeps the name and
    /// nothing of the younger (token, role, membership, restriction) moves to it.
    #[tokio::test]
    async fn migration_6_folds_principal_names_without_moving_credentials() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.db");
        {
            let mut c = sqlx::SqliteConnection::connect_with(
                &SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true),
            )
            .await
            .unwrap();
            sqlx::raw_sql(
                "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .execute(&mut c)
            .await
            .unwrap();
            for (v, sql) in migrations::SQLITE.iter().filter(|m| m.0 <= 5) {
                sqlx::raw_sql(AssertSqlSafe(*sql))
                    .execute(&mut c)
                    .await
                    .unwrap();
                sqlx::query("INSERT INTO schema_migrations VALUES ($1, 0)")
                    .bind(v)
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
            for stmt in [
                "INSERT INTO principals (name, kind, created_at) VALUES ('mgr', 'user', 1), ('MGR', 'user', 2), ('Sales', 'group', 1)",
                "INSERT INTO api_tokens VALUES ('aa', 'mgr', 'h1', 1), ('bb', 'MGR', 'h2', 2)",
                "INSERT INTO roles VALUES ('mgr', 'CertificateManager'), ('MGR', 'CAAdministrator')",
                "INSERT INTO group_members VALUES ('Sales', 'MGR'), ('sales', 'mgr')",
                "INSERT INTO manager_restrictions VALUES ('mgr', 'group', 'Sales'), ('MGR', 'group', 'Other')",
                "INSERT INTO certificate_mappings VALUES ('t1', 'MGR')",
                "INSERT INTO template_permissions VALUES ('User', 'sales', 0, 'Enroll'), ('User', 'SALES', 0, 'Read')",
            ] {
                sqlx::query(AssertSqlSafe(stmt)).execute(&mut c).await.unwrap();
            }
            c.close().await.unwrap();
        }
        let s = SqliteStore::open(&path, test_hash).await.unwrap();
        assert_eq!(s.principal("MGR").await.unwrap().unwrap().name, "mgr");
        assert_eq!(s.principals().await.unwrap().len(), 2);
        assert!(
            s.token("bb").await.unwrap().is_none(),
            "MGR's token moved to mgr"
        );
        assert_eq!(s.token("aa").await.unwrap().unwrap().0, "mgr");
        assert!(s.principal_for_certificate("t1").await.unwrap().is_none());
        let roles = s.roles().await.unwrap();
        assert_eq!(
            roles,
            vec![("mgr".to_string(), "CertificateManager".to_string())]
        );
        assert_eq!(s.groups_of("MGR").await.unwrap().len(), 1);
        assert_eq!(s.restrictions("Mgr").await.unwrap().0, vec!["Sales"]);
        let perms = s.permissions("User").await.unwrap();
        assert_eq!(perms.len(), 1);
        assert_eq!(perms[0].rights.len(), 2, "deny entries merged, none lost");
        assert!(s
            .events(10)
            .await
            .unwrap()
            .iter()
            .any(|e| e.event_id == 4097 && e.message.contains("'MGR'")));
        let v = s.credential_version().await.unwrap();
        let p = Principal {
            name: "Mgr".into(),
            kind: "user".into(),
            upn: None,
            email: None,
            downlevel: None,
            password_hash: None,
            created_at: 3,
        };
        assert!(matches!(
            s.apply(&[Change::AddPrincipal(p)], &[]).await,
            Err(StoreError::Conflict(_))
        ));
        s.apply(
            &[Change::RevokeToken {
                principal: "MGR".into(),
                id: "aa".into(),
            }],
            &[],
        )
        .await
        .unwrap();
        assert!(s.credential_version().await.unwrap() > v);
        assert!(s.tokens("mgr").await.unwrap().is_empty());
    }
}
