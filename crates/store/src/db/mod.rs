//! The store on an SQL database: SQLite (embedded default: WAL journal,
//! `synchronous=FULL`, so an acknowledged commit survives power loss) or
//! PostgreSQL (scale-out: several nodes on one database, failover to a
//! synchronous standby). Both run the same portable SQL (`crate::sql`) through
//! sqlx's `Any` driver; what differs lives in [`crate::dialect`].
//!
//! This file holds the store itself (pool, migrations runner, write
//! transactions). The [`Store`](crate::Store) implementation ([`store_impl`])
//! delegates to one file per concern: [`requests`] (request rows), [`audit`]
//! (audit chain and heads), [`directory`] (principals and their credentials),
//! [`exchange`] (the sealed CA exchange keys),
//! [`ca`] (CA-wide tables), [`changes`] (the `apply` change set), [`rows`]
//! (row mapping), [`copy`] (whole-database copies between backends) and
//! [`connect`] (opening either backend, PostgreSQL host selection).

mod audit;
mod ca;
mod changes;
mod connect;
mod copy;
mod directory;
mod exchange;
mod group_commit;
mod requests;
mod rows;
mod store_impl;

use sqlx::AnyPool;
use sqlx::{Any, AssertSqlSafe};

use crate::dialect::{self, Backend};
use crate::{StoreError, StoreResult};

pub use audit::HeadSealer;
pub use connect::ensure_sqlite_unused;
pub use copy::CopyReport;

/// The CA database on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct SqlStore {
    backend: Backend,
    pool: AnyPool,
    hasher: Hasher,
    /// Writers of this process queue here (first come, first served) instead
    /// of spinning in SQLite's busy handler, whose back-off collapses
    /// throughput under many concurrent writers. On PostgreSQL the writers of
    /// every node are serialised by a transaction-scoped advisory lock as well.
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Write transactions begun since the planner statistics were refreshed.
    writes_since_optimize: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Signs the chain head in every transaction that appends audit records.
    sealer: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<dyn HeadSealer>>>,
    /// Request inserts waiting for the next group commit.
    queue: std::sync::Arc<group_commit::CommitQueue>,
}

/// Held for the duration of a write.
type WriteGate = tokio::sync::OwnedMutexGuard<()>;

/// The hash function chaining audit records (hex output); supplied by the engine
/// so the store stays free of cryptography.
pub type Hasher = fn(&[u8]) -> String;

type Tx = sqlx::Transaction<'static, Any>;

/// Write transactions between two refreshes of the planner statistics.
const OPTIMIZE_EVERY: u64 = 20_000;

impl SqlStore {
    fn with_pool(backend: Backend, pool: AnyPool, hasher: Hasher) -> Self {
        SqlStore {
            backend,
            pool,
            hasher,
            write_gate: Default::default(),
            writes_since_optimize: Default::default(),
            sealer: Default::default(),
            queue: Default::default(),
        }
    }

    /// The connection pool (a cheap handle).
    fn pool(&self) -> AnyPool {
        self.pool.clone()
    }

    /// Which database engine this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Refreshes the query planner's statistics where SQLite thinks they are
    /// stale (`PRAGMA optimize`, bounded work). Without statistics the planner
    /// cannot tell that `disposition` has four values and may walk every issued
    /// row through that index instead of using a selective one. PostgreSQL's
    /// autovacuum keeps its own statistics.
    async fn optimize(&self) -> StoreResult<()> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        sqlx::query(dialect::sqlite::ANALYSIS_LIMIT)
            .execute(&mut *conn)
            .await?;
        sqlx::query(dialect::sqlite::OPTIMIZE)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Applies the migrations this build knows, each in its own transaction.
    /// On PostgreSQL the whole run holds an advisory lock, so nodes starting
    /// together migrate once.
    async fn migrate(&self) -> StoreResult<()> {
        let migrations = self.backend.migrations();
        let latest = migrations.last().map(|m| m.0).unwrap_or(0);
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query(dialect::postgres::MIGRATION_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(crate::sql::schema::CREATE_MIGRATIONS_TABLE)
            .execute(&mut *tx)
            .await?;
        let current: i64 = sqlx::query_scalar(crate::sql::schema::SCHEMA_VERSION)
            .fetch_one(&mut *tx)
            .await?;
        if current > latest {
            return Err(StoreError::Schema(format!(
                "database schema version {current} is newer than this build ({latest})"
            )));
        }
        for (version, sql) in migrations.iter().filter(|m| m.0 > current) {
            sqlx::raw_sql(AssertSqlSafe(*sql))
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::Schema(format!("migration {version} failed: {e}")))?;
            sqlx::query(crate::sql::schema::RECORD_MIGRATION)
                .bind(version)
                .bind(now())
                .execute(&mut *tx)
                .await?;
            if self.backend == Backend::Sqlite {
                // SQLite: one transaction per migration, as before.
                tx.commit().await?;
                tx = self.pool.begin().await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Begins a write transaction that holds the database's write lock from
    /// the start (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: the advisory lock
    /// every node takes), so the audit chain head cannot move under it.
    async fn begin_write(&self) -> StoreResult<(WriteGate, Tx)> {
        let gate = self.lock_write_gate().await;
        Ok((gate, self.begin_locked().await?))
    }

    /// Waits for this process's write gate (first come, first served).
    async fn lock_write_gate(&self) -> WriteGate {
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
        gate
    }

    /// Begins the write transaction of a caller holding the write gate.
    async fn begin_locked(&self) -> StoreResult<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query(dialect::postgres::WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        })
    }

    /// Closes the pool (SQLite: checkpoints the WAL).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    /// The store a backend-neutral test runs on: a new PostgreSQL database
    /// when `LOCKBOX_TEST_DATABASE` is set, in-memory SQLite otherwise.
    pub(crate) async fn test_store(hasher: Hasher) -> SqlStore {
        match crate::test_server() {
            Some(server) => {
                let url = crate::create_fresh_database(&server).await.unwrap();
                let crate::DatabaseUrl::Postgres(pg) = crate::DatabaseUrl::parse(&url).unwrap()
                else {
                    panic!("not a postgres URL")
                };
                SqlStore::connect_postgres(&pg, hasher).await.unwrap()
            }
            None => SqlStore::open_in_memory(hasher).await.unwrap(),
        }
    }

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
                &sqlx::sqlite::SqliteConnectOptions::new()
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
            for (v, sql) in crate::migrations::sqlite::MIGRATIONS
                .iter()
                .filter(|m| m.0 <= 5)
            {
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
        let s = SqlStore::open(&path, test_hash).await.unwrap();
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
