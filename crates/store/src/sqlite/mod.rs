//! SQLite backend (embedded default): WAL journal, `synchronous=FULL` so an
//! acknowledged commit survives power loss.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite};

use crate::migrations;
use crate::model::*;
use crate::{Store, StoreError, StoreResult};

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

/// Signs audit chain heads inside the transaction that appends the records
/// (supplied by the engine: the store holds no keys), so every committed
/// record is covered by a signed head and deleting the newest records shows.
pub trait HeadSealer: Send + Sync + std::fmt::Debug {
    /// The signature (hex) over the head `seq:hash`, or `None` when no key is
    /// available (the records are then committed unsealed).
    fn seal(&self, seq: i64, hash: &str) -> Option<String>;
    /// Called once the transaction holding `head` has committed (the engine
    /// copies the head outside the database).
    fn sealed(&self, head: &AuditHead);
}

/// Held for the duration of a write.
type WriteGate = tokio::sync::OwnedMutexGuard<()>;

/// The hash function chaining audit records (hex output); supplied by the engine
/// so the store stays free of cryptography.
pub type Hasher = fn(&[u8]) -> String;

type Tx = sqlx::Transaction<'static, Sqlite>;

const SELECT_COLUMNS: &str = "request_id, request_der, request_kind, requester, template, \
    request_subject, disposition, disposition_message, status_code, submitted_at, resolved_at, \
    cert_der, serial, subject, common_name, upn, email, key_id, thumbprint, not_before, not_after, \
    key_algorithm, key_length, revoked_at, revocation_reason, \
    (CASE WHEN archived_key IS NULL THEN 0 ELSE 1 END) AS has_archived_key";

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
        sqlx::query("PRAGMA analysis_limit=1000")
            .execute(&mut *conn)
            .await?;
        sqlx::query("PRAGMA optimize=0x10002")
            .execute(&mut *conn)
            .await?;
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
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        let current: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
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
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
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

    /// Installs the head sealer (once; later calls are ignored).
    pub fn set_head_sealer(&self, sealer: std::sync::Arc<dyn HeadSealer>) {
        let _ = self.sealer.set(sealer);
    }

    /// Hands a committed head to the sealer.
    fn after_commit(&self, head: Option<AuditHead>) {
        if let (Some(h), Some(s)) = (head, self.sealer.get()) {
            s.sealed(&h);
        }
    }

    /// Appends audit records inside `tx`, chained to the current head, and
    /// signs the new head in the same transaction when a sealer is installed.
    async fn append_in_tx(
        &self,
        tx: &mut Tx,
        entries: &[AuditEntry],
    ) -> StoreResult<Option<AuditHead>> {
        if entries.is_empty() {
            return Ok(None);
        }
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut **tx)
                .await?;
        let (mut seq, mut prev) = last.unwrap_or((0, GENESIS_HASH.to_string()));
        for e in entries {
            seq += 1;
            let hash = (self.hasher)(&AuditRecord::chain_input(seq, e, &prev));
            sqlx::query(
                "INSERT INTO audit_log (seq, at, actor, category, action, target, outcome, details, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(seq)
            .bind(e.at)
            .bind(&e.actor)
            .bind(&e.category)
            .bind(&e.action)
            .bind(&e.target)
            .bind(&e.outcome)
            .bind(&e.details)
            .bind(&prev)
            .bind(&hash)
            .execute(&mut **tx)
            .await?;
            prev = hash;
        }
        let Some(signature) = self.sealer.get().and_then(|s| s.seal(seq, &prev)) else {
            return Ok(None);
        };
        let head = AuditHead {
            seq,
            hash: prev,
            signature,
            at: now(),
        };
        sqlx::query(
            "INSERT INTO audit_heads (seq, hash, signature, at) VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING",
        )
        .bind(head.seq)
        .bind(&head.hash)
        .bind(&head.signature)
        .bind(head.at)
        .execute(&mut **tx)
        .await?;
        Ok(Some(head))
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Whether a change touches principals or credentials (bumps `credential_version`).
fn changes_credentials(c: &Change) -> bool {
    matches!(
        c,
        Change::AddPrincipal(_)
            | Change::RemovePrincipal { .. }
            | Change::AddMember { .. }
            | Change::AddToken { .. }
            | Change::RevokeToken { .. }
            | Change::MapCertificate { .. }
            | Change::UnmapCertificate { .. }
            | Change::GrantRole { .. }
            | Change::RevokeRole { .. }
            | Change::SetPermission(_)
            | Change::SetRestrictions { .. }
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn principal_from_row(r: &SqliteRow) -> StoreResult<Principal> {
    Ok(Principal {
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        upn: r.try_get("upn")?,
        email: r.try_get("email")?,
        downlevel: r.try_get("downlevel")?,
        password_hash: r.try_get("password_hash")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The SQL of [`Store::query`]: `$1..$n` are the restriction values, `$n+1` the limit.
fn query_sql(restrictions: &[Restriction]) -> String {
    let mut sql = format!("SELECT {SELECT_COLUMNS} FROM requests");
    for (i, r) in restrictions.iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        // Column and operator come from closed enums; the value is bound.
        sql.push_str(&format!(
            "{} {} ${}{}",
            r.column.sql(),
            r.op.sql(),
            i + 1,
            r.op.collation()
        ));
    }
    sql.push_str(&format!(
        " ORDER BY request_id LIMIT ${}",
        restrictions.len() + 1
    ));
    sql
}

fn audit_record_from_row(r: &SqliteRow) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        seq: r.try_get("seq")?,
        entry: AuditEntry {
            at: r.try_get("at")?,
            actor: r.try_get("actor")?,
            category: r.try_get("category")?,
            action: r.try_get("action")?,
            target: r.try_get("target")?,
            outcome: r.try_get("outcome")?,
            details: r.try_get("details")?,
        },
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

fn audit_head_from_row(r: &SqliteRow) -> StoreResult<AuditHead> {
    Ok(AuditHead {
        seq: r.try_get("seq")?,
        hash: r.try_get("hash")?,
        signature: r.try_get("signature")?,
        at: r.try_get("at")?,
    })
}

fn record_from_row(row: &SqliteRow) -> StoreResult<RequestRecord> {
    let disposition: String = row.try_get("disposition")?;
    let disposition = Disposition::parse(&disposition)
        .ok_or_else(|| StoreError::Integrity(format!("unknown disposition '{disposition}'")))?;
    let cert_der: Option<Vec<u8>> = row.try_get("cert_der")?;
    let common_name: Option<String> = row.try_get("common_name")?;
    let upn: Option<String> = row.try_get("upn")?;
    let email: Option<String> = row.try_get("email")?;
    let cert = match cert_der {
        Some(cert_der) => Some(CertFields {
            cert_der,
            serial: row
                .try_get::<Option<String>, _>("serial")?
                .unwrap_or_default(),
            subject: row
                .try_get::<Option<String>, _>("subject")?
                .unwrap_or_default(),
            common_name: common_name.clone(),
            upn: upn.clone(),
            email: email.clone(),
            key_id: row
                .try_get::<Option<String>, _>("key_id")?
                .unwrap_or_default(),
            thumbprint: row
                .try_get::<Option<String>, _>("thumbprint")?
                .unwrap_or_default(),
            not_before: row
                .try_get::<Option<i64>, _>("not_before")?
                .unwrap_or_default(),
            not_after: row
                .try_get::<Option<i64>, _>("not_after")?
                .unwrap_or_default(),
            key_algorithm: row
                .try_get::<Option<String>, _>("key_algorithm")?
                .unwrap_or_default(),
            key_length: row
                .try_get::<Option<i64>, _>("key_length")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(RequestRecord {
        request_id: row.try_get("request_id")?,
        disposition,
        disposition_message: row.try_get("disposition_message")?,
        status_code: row.try_get("status_code")?,
        requester: row.try_get("requester")?,
        template: row.try_get("template")?,
        request_kind: row.try_get("request_kind")?,
        request_subject: row.try_get("request_subject")?,
        submitted_at: row.try_get("submitted_at")?,
        resolved_at: row.try_get("resolved_at")?,
        request_der: row.try_get("request_der")?,
        common_name,
        upn,
        email,
        cert,
        revoked_at: row.try_get("revoked_at")?,
        revocation_reason: row.try_get("revocation_reason")?,
        has_archived_key: row.try_get::<i64, _>("has_archived_key")? != 0,
    })
}

type Query<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>;

fn bind_cert<'q>(q: Query<'q>, c: &'q CertFields) -> Query<'q> {
    q.bind(&c.cert_der)
        .bind(&c.serial)
        .bind(&c.subject)
        .bind(&c.common_name)
        .bind(&c.upn)
        .bind(&c.email)
        .bind(&c.key_id)
        .bind(&c.thumbprint)
        .bind(c.not_before)
        .bind(c.not_after)
        .bind(&c.key_algorithm)
        .bind(c.key_length)
}

/// The INSERT of a new request row (every column it sets; the import
/// columns take their defaults for requests made here).
macro_rules! insert_request_sql {
    () => {
        "INSERT INTO requests (request_der, request_kind, requester, template, request_subject, \
         disposition, disposition_message, status_code, submitted_at, resolved_at, \
         common_name, upn, email, archived_key, kra_hashes, cert_der, serial, subject, key_id, \
         thumbprint, not_before, not_after, key_algorithm, key_length, foreign_cert, owner, import_source) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $22, $23, $24, $25, $26, $27)"
    };
}

/// How an imported row differs from one requested here.
#[derive(Clone, Copy, Default)]
struct ImportMeta<'q> {
    foreign: bool,
    owner: Option<&'q str>,
    source: Option<&'q str>,
}

/// Binds a new request to [`insert_request_sql`]: resolved unless pending;
/// the certificate's identities override the request's once it exists.
fn bind_new_request<'q>(q: Query<'q>, new: &'q NewRequest, import: ImportMeta<'q>) -> Query<'q> {
    let resolved_at = match new.disposition {
        Disposition::Pending => None,
        _ => Some(new.submitted_at),
    };
    let c = new.cert.as_ref();
    q.bind(&new.request_der)
        .bind(&new.request_kind)
        .bind(&new.requester)
        .bind(&new.template)
        .bind(&new.request_subject)
        .bind(new.disposition.as_str())
        .bind(&new.disposition_message)
        .bind(new.status_code)
        .bind(new.submitted_at)
        .bind(resolved_at)
        .bind(c.map_or(&new.request_common_name, |c| &c.common_name))
        .bind(c.map_or(&new.request_upn, |c| &c.upn))
        .bind(c.map_or(&new.request_email, |c| &c.email))
        .bind(&new.archived_key)
        .bind(&new.kra_hashes)
        .bind(c.map(|c| &c.cert_der))
        .bind(c.map(|c| &c.serial))
        .bind(c.map(|c| &c.subject))
        .bind(c.map(|c| &c.key_id))
        .bind(c.map(|c| &c.thumbprint))
        .bind(c.map(|c| c.not_before))
        .bind(c.map(|c| c.not_after))
        .bind(c.map(|c| &c.key_algorithm))
        .bind(c.map(|c| c.key_length))
        .bind(i64::from(import.foreign))
        .bind(import.owner)
        .bind(import.source)
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_request(&self, new: &NewRequest, audit: &[AuditEntry]) -> StoreResult<i64> {
        let (_gate, mut tx) = self.begin_write().await?;
        let id: i64 = bind_new_request(
            sqlx::query(concat!(insert_request_sql!(), " RETURNING request_id")),
            new,
            ImportMeta::default(),
        )
        .fetch_one(&mut *tx)
        .await?
        .try_get("request_id")?;
        let audit: Vec<AuditEntry> = audit
            .iter()
            .cloned()
            .map(|mut e| {
                e.target = e.target.replace("{request_id}", &id.to_string());
                e
            })
            .collect();
        let head = self.append_in_tx(&mut tx, &audit).await?;
        tx.commit().await?;
        self.after_commit(head);
        Ok(id)
    }

    async fn insert_requests_bulk(&self, news: &[NewRequest]) -> StoreResult<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        for new in news {
            bind_new_request(
                sqlx::query(insert_request_sql!()),
                new,
                ImportMeta::default(),
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_request(&self, id: i64) -> StoreResult<Option<RequestRecord>> {
        let sql = format!("SELECT {SELECT_COLUMNS} FROM requests WHERE request_id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn get_by_serial(&self, serial: &str) -> StoreResult<Option<RequestRecord>> {
        let sql = format!("SELECT {SELECT_COLUMNS} FROM requests WHERE serial = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn issue_pending(
        &self,
        id: i64,
        cert: &CertFields,
        message: &str,
        at: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        let q = sqlx::query(
            "UPDATE requests SET cert_der = $1, serial = $2, subject = $3, common_name = $4, upn = $5, \
             email = $6, key_id = $7, thumbprint = $8, not_before = $9, not_after = $10, \
             key_algorithm = $11, key_length = $12, disposition = 'issued', disposition_message = $13, \
             status_code = 0, resolved_at = $14 WHERE request_id = $15 AND disposition = 'pending'",
        );
        let done = bind_cert(q, cert)
            .bind(message)
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!("request {id} is not pending")));
        }
        let head = self.append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        self.after_commit(head);
        Ok(())
    }

    async fn deny_pending(
        &self,
        id: i64,
        message: &str,
        status_code: i64,
        at: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE requests SET disposition = 'denied', disposition_message = $1, status_code = $2, \
             resolved_at = $3, archived_key = NULL, kra_hashes = NULL \
             WHERE request_id = $4 AND disposition = 'pending'",
        )
        .bind(message)
        .bind(status_code)
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!("request {id} is not pending")));
        }
        let head = self.append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        self.after_commit(head);
        Ok(())
    }

    async fn revoke(
        &self,
        serial: &str,
        reason: i32,
        at: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE requests SET disposition = 'revoked', revoked_at = $1, revocation_reason = $2, \
             disposition_message = 'Revoked' WHERE serial = $3 AND disposition = 'issued'",
        )
        .bind(at)
        .bind(reason)
        .bind(serial)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            let head = self.append_in_tx(&mut tx, audit).await?;
            tx.commit().await?;
            self.after_commit(head);
            return Ok(());
        }
        drop(tx);
        let state: Option<String> =
            sqlx::query_scalar("SELECT disposition FROM requests WHERE serial = $1")
                .bind(serial)
                .fetch_optional(&self.pool)
                .await?;
        match state {
            None => Err(StoreError::NotFound(format!(
                "no certificate with serial number {serial}"
            ))),
            Some(s) => Err(StoreError::Conflict(format!(
                "certificate {serial} cannot be revoked: it is {s}"
            ))),
        }
    }

    async fn revoked(&self) -> StoreResult<Vec<RevokedEntry>> {
        let rows = sqlx::query(
            "SELECT serial, revoked_at, revocation_reason FROM requests \
             WHERE disposition = 'revoked' ORDER BY revoked_at, request_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RevokedEntry {
                    serial: r.try_get("serial")?,
                    revoked_at: r.try_get("revoked_at")?,
                    reason: r.try_get("revocation_reason")?,
                })
            })
            .collect()
    }

    async fn next_crl_number(&self) -> StoreResult<i64> {
        let n: i64 = sqlx::query_scalar(
            "UPDATE counters SET value = value + 1 WHERE name = 'crl_number' RETURNING value",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    async fn insert_crl(&self, crl: &CrlRecord) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        sqlx::query(
            "INSERT INTO crls (crl_number, this_update, next_update, der) VALUES ($1, $2, $3, $4)",
        )
        .bind(crl.crl_number)
        .bind(crl.this_update)
        .bind(crl.next_update)
        .bind(&crl.der)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn latest_crl(&self) -> StoreResult<Option<CrlRecord>> {
        let row = sqlx::query(
            "SELECT crl_number, this_update, next_update, der FROM crls ORDER BY crl_number DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(CrlRecord {
                crl_number: r.try_get("crl_number")?,
                this_update: r.try_get("this_update")?,
                next_update: r.try_get("next_update")?,
                der: r.try_get("der")?,
            })
        })
        .transpose()
    }

    async fn query(
        &self,
        restrictions: &[Restriction],
        limit: i64,
    ) -> StoreResult<Vec<RequestRecord>> {
        let mut q = sqlx::query(AssertSqlSafe(query_sql(restrictions)));
        for r in restrictions {
            q = match &r.value {
                Value::Text(t) => q.bind(t.clone()),
                Value::Int(n) => q.bind(*n),
            };
        }
        let rows = q.bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn templates(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT name, definition FROM templates ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("definition")?)))
            .collect()
    }

    async fn ca_templates(&self) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM ca_templates ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn archived_key(&self, id: i64) -> StoreResult<Option<Vec<u8>>> {
        let v: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT archived_key FROM requests WHERE request_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.flatten())
    }

    async fn kra_hashes(&self, id: i64) -> StoreResult<Option<String>> {
        let v: Option<Option<String>> =
            sqlx::query_scalar("SELECT kra_hashes FROM requests WHERE request_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.flatten())
    }

    async fn keys_for_kra(&self, thumbprint: &str) -> StoreResult<Vec<ArchivedKeyAgents>> {
        // kra_hashes is a comma-separated list of fixed-length hex thumbprints.
        let pattern = format!("%{}%", thumbprint.replace(['%', '_'], ""));
        let mut out = Vec::new();
        for r in sqlx::query(
            "SELECT request_id, serial, kra_hashes FROM requests \
             WHERE archived_key IS NOT NULL AND kra_hashes LIKE $1 ORDER BY request_id",
        )
        .bind(&pattern)
        .fetch_all(&self.pool)
        .await?
        {
            out.push(ArchivedKeyAgents {
                request_id: Some(r.try_get("request_id")?),
                serial: r.try_get("serial")?,
                key_id: None,
                kra_hashes: r.try_get("kra_hashes")?,
            });
        }
        for r in sqlx::query(
            "SELECT key_id, kra_hashes FROM unmatched_keys WHERE kra_hashes LIKE $1 ORDER BY key_id",
        )
        .bind(&pattern)
        .fetch_all(&self.pool)
        .await?
        {
            out.push(ArchivedKeyAgents {
                request_id: None,
                serial: None,
                key_id: Some(r.try_get("key_id")?),
                kra_hashes: r.try_get("kra_hashes")?,
            });
        }
        Ok(out)
    }

    async fn kra_certificates(&self) -> StoreResult<Vec<KraEntry>> {
        let rows = sqlx::query("SELECT thumbprint, cert_der, added_at, chain_der, crl_source FROM kra_certificates ORDER BY added_at, thumbprint")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(KraEntry {
                    thumbprint: r.try_get("thumbprint")?,
                    cert_der: r.try_get("cert_der")?,
                    added_at: r.try_get("added_at")?,
                    chain_der: r.try_get("chain_der")?,
                    crl_source: r.try_get("crl_source")?,
                })
            })
            .collect()
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn apply(&self, changes: &[Change], audit: &[AuditEntry]) -> StoreResult<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        if changes.iter().any(changes_credentials) {
            sqlx::query(
                "INSERT INTO counters (name, value) VALUES ('credential_version', 1) \
                 ON CONFLICT (name) DO UPDATE SET value = value + 1",
            )
            .execute(&mut *tx)
            .await?;
        }
        for c in changes {
            match c {
                Change::PutTemplate { name, json } => {
                    sqlx::query(
                        "INSERT INTO templates (name, definition) VALUES ($1, $2) \
                         ON CONFLICT (name) DO UPDATE SET definition = excluded.definition",
                    )
                    .bind(name)
                    .bind(json)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::SetCaTemplate {
                    name,
                    enabled: true,
                } => {
                    sqlx::query(
                        "INSERT INTO ca_templates (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::SetCaTemplate {
                    name,
                    enabled: false,
                } => {
                    sqlx::query("DELETE FROM ca_templates WHERE name = $1")
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::AddKra {
                    thumbprint,
                    cert_der,
                    chain_der,
                    crl_source,
                    at,
                } => {
                    sqlx::query(
                        "INSERT INTO kra_certificates (thumbprint, cert_der, added_at, chain_der, crl_source) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (thumbprint) DO UPDATE SET \
                         chain_der = excluded.chain_der, crl_source = excluded.crl_source",
                    )
                    .bind(thumbprint)
                    .bind(cert_der)
                    .bind(at)
                    .bind(chain_der)
                    .bind(crl_source)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::RemoveKra { thumbprint } => {
                    let done = sqlx::query("DELETE FROM kra_certificates WHERE thumbprint = $1")
                        .bind(thumbprint)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(format!(
                            "no KRA certificate {thumbprint}"
                        )));
                    }
                }
                Change::SetSetting { name, value } => {
                    sqlx::query(
                        "INSERT INTO settings (name, value) VALUES ($1, $2) \
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    )
                    .bind(name)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::AddPrincipal(p) => {
                    let done = sqlx::query(
                        "INSERT INTO principals (name, kind, upn, email, downlevel, password_hash, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(&p.name)
                    .bind(&p.kind)
                    .bind(&p.upn)
                    .bind(&p.email)
                    .bind(&p.downlevel)
                    .bind(&p.password_hash)
                    .bind(p.created_at)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::Conflict(format!(
                            "a principal named '{}' already exists",
                            p.name
                        )));
                    }
                }
                Change::RemovePrincipal { name } => {
                    let done = sqlx::query("DELETE FROM principals WHERE name = $1")
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(format!("no principal named '{name}'")));
                    }
                    for sql in [
                        "DELETE FROM api_tokens WHERE principal = $1",
                        "DELETE FROM roles WHERE principal = $1",
                        "DELETE FROM group_members WHERE member_name = $1 OR group_name = $1",
                        "DELETE FROM certificate_mappings WHERE principal = $1",
                        "DELETE FROM template_permissions WHERE principal = $1",
                        "DELETE FROM manager_restrictions WHERE manager = $1",
                    ] {
                        sqlx::query(sql).bind(name).execute(&mut *tx).await?;
                    }
                }
                Change::AddMember { group, member } => {
                    sqlx::query(
                        "INSERT INTO group_members (group_name, member_name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    )
                    .bind(group)
                    .bind(member)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::AttachArchivedKey {
                    request_id,
                    archived_key,
                    kra_hashes,
                    owner,
                    source,
                } => {
                    let done = sqlx::query(
                        "UPDATE requests SET archived_key = $1, kra_hashes = $2, owner = COALESCE($3, owner), \
                         import_source = COALESCE($4, import_source) WHERE request_id = $5 AND archived_key IS NULL",
                    )
                    .bind(archived_key)
                    .bind(kra_hashes)
                    .bind(owner)
                    .bind(source)
                    .bind(request_id)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Err(StoreError::Conflict(format!(
                            "request {request_id} already holds an archived key"
                        )));
                    }
                }
                Change::InsertImported {
                    request,
                    foreign,
                    owner,
                    source,
                } => {
                    bind_new_request(
                        sqlx::query(insert_request_sql!()),
                        request,
                        ImportMeta {
                            foreign: *foreign,
                            owner: owner.as_deref(),
                            source: source.as_deref(),
                        },
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                Change::SetOwnerNames { thumbprint, names } => {
                    for name in names {
                        sqlx::query(
                            "INSERT INTO key_owner_names (request_id, name) \
                             SELECT request_id, $2 FROM requests WHERE thumbprint = $1 \
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(thumbprint)
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                Change::ClearArchivedKey { request_id } => {
                    sqlx::query("UPDATE requests SET archived_key = NULL, kra_hashes = NULL WHERE request_id = $1")
                        .bind(request_id)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::InsertUnmatchedKey {
                    key_id,
                    archived_key,
                    kra_hashes,
                    owner,
                    source,
                    imported_by,
                    at,
                } => {
                    sqlx::query(
                        "INSERT INTO unmatched_keys (key_id, archived_key, kra_hashes, owner, import_source, imported_by, imported_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key_id) DO NOTHING",
                    )
                    .bind(key_id)
                    .bind(archived_key)
                    .bind(kra_hashes)
                    .bind(owner)
                    .bind(source)
                    .bind(imported_by)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::AddToken {
                    id,
                    principal,
                    secret_hash,
                    at,
                } => {
                    sqlx::query("INSERT INTO api_tokens (id, principal, secret_hash, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(id)
                        .bind(principal)
                        .bind(secret_hash)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::MapCertificate {
                    thumbprint,
                    principal,
                    serial,
                } => {
                    sqlx::query(
                        "INSERT INTO certificate_mappings (thumbprint, principal, serial) VALUES ($1, $2, $3) \
                         ON CONFLICT (thumbprint) DO UPDATE SET principal = excluded.principal, serial = excluded.serial",
                    )
                    .bind(thumbprint)
                    .bind(principal)
                    .bind(serial)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::RevokeToken { principal, id } => {
                    let done =
                        sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND principal = $2")
                            .bind(id)
                            .bind(principal)
                            .execute(&mut *tx)
                            .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(format!(
                            "'{principal}' has no API token with ID '{id}'"
                        )));
                    }
                }
                Change::UnmapCertificate {
                    principal,
                    thumbprint,
                } => {
                    let done = sqlx::query(
                        "DELETE FROM certificate_mappings WHERE thumbprint = $1 AND principal = $2",
                    )
                    .bind(thumbprint)
                    .bind(principal)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(format!(
                            "no certificate {thumbprint} is mapped to '{principal}'"
                        )));
                    }
                }
                Change::GrantRole { principal, role } => {
                    sqlx::query("INSERT INTO roles (principal, role) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(principal)
                        .bind(role)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::RevokeRole { principal, role } => {
                    sqlx::query("DELETE FROM roles WHERE principal = $1 AND role = $2")
                        .bind(principal)
                        .bind(role)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::SetPermission(p) => {
                    sqlx::query("DELETE FROM template_permissions WHERE template = $1 AND principal = $2 AND allow = $3")
                        .bind(&p.template)
                        .bind(&p.principal)
                        .bind(i64::from(p.allow))
                        .execute(&mut *tx)
                        .await?;
                    if !p.rights.is_empty() {
                        sqlx::query("INSERT INTO template_permissions (template, principal, allow, rights) VALUES ($1, $2, $3, $4)")
                            .bind(&p.template)
                            .bind(&p.principal)
                            .bind(i64::from(p.allow))
                            .bind(p.rights.join(","))
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                Change::SetRestrictions {
                    manager,
                    groups,
                    templates,
                } => {
                    sqlx::query("DELETE FROM manager_restrictions WHERE manager = $1")
                        .bind(manager)
                        .execute(&mut *tx)
                        .await?;
                    for (kind, values) in [("group", groups), ("template", templates)] {
                        for v in values {
                            sqlx::query("INSERT INTO manager_restrictions (manager, kind, value) VALUES ($1, $2, $3)")
                                .bind(manager)
                                .bind(kind)
                                .bind(v)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
            }
        }
        let head = self.append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        self.after_commit(head);
        Ok(())
    }

    async fn find_by_owner_name(&self, name: &str, limit: i64) -> StoreResult<Vec<RequestRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SELECT_COLUMNS} FROM requests WHERE request_id IN \
             (SELECT request_id FROM key_owner_names WHERE name = $1) \
             AND archived_key IS NOT NULL ORDER BY request_id LIMIT $2"
        )))
        .bind(name)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn append_audit(&self, audit: &[AuditEntry]) -> StoreResult<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        let head = self.append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        self.after_commit(head);
        Ok(())
    }

    async fn audit_records(&self, from: i64, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, category, action, target, outcome, details, prev_hash, hash FROM audit_log \
             WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(from)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_record_from_row).collect()
    }

    async fn last_audit_record(&self) -> StoreResult<Option<AuditRecord>> {
        let row = sqlx::query(
            "SELECT seq, at, actor, category, action, target, outcome, details, prev_hash, hash FROM audit_log \
             ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(audit_record_from_row).transpose()
    }

    async fn add_audit_head(&self, head: &AuditHead) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        sqlx::query(
            "INSERT INTO audit_heads (seq, hash, signature, at) VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING",
        )
        .bind(head.seq)
        .bind(&head.hash)
        .bind(&head.signature)
        .bind(head.at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>> {
        let rows = sqlx::query("SELECT seq, hash, signature, at FROM audit_heads ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_head_from_row).collect()
    }

    async fn last_audit_head(&self) -> StoreResult<Option<AuditHead>> {
        let row = sqlx::query(
            "SELECT seq, hash, signature, at FROM audit_heads ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(audit_head_from_row).transpose()
    }

    async fn add_event(
        &self,
        at: i64,
        event_id: i64,
        level: &str,
        message: &str,
    ) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        sqlx::query("INSERT INTO events (at, event_id, level, message) VALUES ($1, $2, $3, $4)")
            .bind(at)
            .bind(event_id)
            .bind(level)
            .bind(message)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn events(&self, limit: i64) -> StoreResult<Vec<EventRecord>> {
        let rows = sqlx::query(
            "SELECT id, at, event_id, level, message FROM events ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EventRecord {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    event_id: r.try_get("event_id")?,
                    level: r.try_get("level")?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }

    async fn get_by_thumbprint(&self, thumbprint: &str) -> StoreResult<Option<RequestRecord>> {
        let sql = format!("SELECT {SELECT_COLUMNS} FROM requests WHERE thumbprint = $1 LIMIT 1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(thumbprint)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn unmatched_key_exists(&self, key_id: &str) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM unmatched_keys WHERE key_id = $1")
            .bind(key_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    async fn principal(&self, name: &str) -> StoreResult<Option<Principal>> {
        let row = sqlx::query(
            "SELECT name, kind, upn, email, downlevel, password_hash, created_at FROM principals WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(principal_from_row).transpose()
    }

    async fn principals(&self) -> StoreResult<Vec<Principal>> {
        let rows = sqlx::query(
            "SELECT name, kind, upn, email, downlevel, password_hash, created_at FROM principals ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(principal_from_row).collect()
    }

    async fn groups_of(&self, name: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT group_name FROM group_members WHERE member_name = $1 ORDER BY group_name",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn members(&self, group: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT member_name FROM group_members WHERE group_name = $1 ORDER BY member_name",
        )
        .bind(group)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn token(&self, id: &str) -> StoreResult<Option<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT principal, secret_hash FROM api_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn principal_for_certificate(&self, thumbprint: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT principal FROM certificate_mappings WHERE thumbprint = $1")
                .bind(thumbprint)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn roles(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT principal, role FROM roles ORDER BY principal, role")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn permissions(&self, template: &str) -> StoreResult<Vec<Permission>> {
        let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT template, principal, allow, rights FROM template_permissions WHERE template = $1 ORDER BY principal",
        )
        .bind(template)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(template, principal, allow, rights)| Permission {
                template,
                principal,
                allow: allow != 0,
                rights: rights
                    .split(',')
                    .filter(|r| !r.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
            .collect())
    }

    async fn restrictions(&self, manager: &str) -> StoreResult<(Vec<String>, Vec<String>)> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT kind, value FROM manager_restrictions WHERE manager = $1 ORDER BY kind, value",
        )
        .bind(manager)
        .fetch_all(&self.pool)
        .await?;
        let mut groups = Vec::new();
        let mut templates = Vec::new();
        for (kind, value) in rows {
            if kind == "group" {
                groups.push(value);
            } else {
                templates.push(value);
            }
        }
        Ok((groups, templates))
    }

    async fn credential_version(&self) -> StoreResult<i64> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT value FROM counters WHERE name = 'credential_version'")
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.unwrap_or(0))
    }

    async fn tokens(&self, principal: &str) -> StoreResult<Vec<TokenInfo>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT id, principal, created_at FROM api_tokens WHERE principal = $1 ORDER BY created_at, id",
        )
        .bind(principal)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, principal, created_at)| TokenInfo {
                id,
                principal,
                created_at,
            })
            .collect())
    }

    async fn certificate_mappings(&self, principal: &str) -> StoreResult<Vec<CertificateMapping>> {
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT thumbprint, principal, serial FROM certificate_mappings WHERE principal = $1 ORDER BY thumbprint",
        )
        .bind(principal)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(thumbprint, principal, serial)| CertificateMapping {
                thumbprint,
                principal,
                serial,
            })
            .collect())
    }

    async fn integrity_check(&self) -> StoreResult<()> {
        let result: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&self.pool)
            .await?;
        if result != "ok" {
            return Err(StoreError::Integrity(result));
        }
        Ok(())
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
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_hash(b: &[u8]) -> String {
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

    fn new_req(disposition: Disposition, cert: Option<CertFields>) -> NewRequest {
        NewRequest {
            request_der: vec![0x30, 0x00],
            request_kind: "pkcs10".into(),
            requester: "alice".into(),
            template: Some("User".into()),
            request_subject: "CN=Alice".into(),
            request_common_name: Some("Alice".into()),
            request_upn: None,
            request_email: None,
            disposition,
            disposition_message: "x".into(),
            status_code: 0,
            submitted_at: 1_700_000_000,
            cert,
            archived_key: None,
            kra_hashes: None,
        }
    }

    fn cert(serial: &str) -> CertFields {
        CertFields {
            cert_der: vec![0x30, 0x00],
            serial: serial.into(),
            subject: "CN=Alice".into(),
            common_name: Some("Alice".into()),
            upn: Some("alice@contoso.com".into()),
            email: None,
            key_id: "aa".into(),
            thumbprint: "bb".into(),
            not_before: 1_700_000_000,
            not_after: 1_800_000_000,
            key_algorithm: "rsa".into(),
            key_length: 2048,
        }
    }

    #[tokio::test]
    async fn lifecycle() {
        let s = SqliteStore::open_in_memory(test_hash).await.unwrap();
        let a = s
            .insert_request(&new_req(Disposition::Issued, Some(cert("01"))), &[])
            .await
            .unwrap();
        let b = s
            .insert_request(&new_req(Disposition::Pending, None), &[])
            .await
            .unwrap();
        assert!(b > a);
        s.issue_pending(b, &cert("02"), "Issued", 1, &[])
            .await
            .unwrap();
        assert!(matches!(
            s.issue_pending(b, &cert("03"), "Issued", 1, &[]).await,
            Err(StoreError::Conflict(_))
        ));
        // Duplicate serial is refused by the unique index and changes nothing.
        let c = s
            .insert_request(&new_req(Disposition::Issued, Some(cert("01"))), &[])
            .await;
        assert!(c.is_err());
        assert_eq!(s.query(&[], 100).await.unwrap().len(), 2);
        s.revoke("01", 1, 5, &[]).await.unwrap();
        assert!(matches!(
            s.revoke("01", 1, 5, &[]).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.revoke("ff", 1, 5, &[]).await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(s.revoked().await.unwrap().len(), 1);
        assert_eq!(s.next_crl_number().await.unwrap(), 1);
        assert_eq!(s.next_crl_number().await.unwrap(), 2);
        let r = s
            .query(
                &[Restriction {
                    column: Column::Disposition,
                    op: Op::Eq,
                    value: Value::Text("issued".into()),
                }],
                10,
            )
            .await
            .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].request_id, b);
        s.integrity_check().await.unwrap();
    }

    /// The plan of `query` for `restrictions` (EXPLAIN QUERY PLAN details).
    async fn plan(s: &SqliteStore, restrictions: &[Restriction]) -> String {
        let sql = format!("EXPLAIN QUERY PLAN {}", query_sql(restrictions));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for r in restrictions {
            q = match &r.value {
                Value::Text(t) => q.bind(t.clone()),
                Value::Int(n) => q.bind(*n),
            };
        }
        let rows = q.bind(10i64).fetch_all(&s.pool).await.unwrap();
        rows.iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[tokio::test]
    async fn hot_lookups_use_selective_indexes() {
        let s = SqliteStore::open_in_memory(test_hash).await.unwrap();
        let eq = |column, value: &str| Restriction {
            column,
            op: Op::Eq,
            value: Value::Text(value.into()),
        };
        // The exchange-certificate lookup made by every archival must not walk
        // every issued row through `requests_disposition`.
        let p = plan(
            &s,
            &[
                eq(Column::Template, "CAExchange"),
                eq(Column::Disposition, "issued"),
            ],
        )
        .await;
        assert!(p.contains("requests_template_disposition"), "{p}");
        // Recovery candidate searches.
        for column in [
            Column::CommonName,
            Column::Upn,
            Column::Email,
            Column::Requester,
        ] {
            let p = plan(
                &s,
                &[
                    eq(column, "x"),
                    Restriction {
                        column: Column::ArchivedKey,
                        op: Op::Eq,
                        value: Value::Int(1),
                    },
                ],
            )
            .await;
            assert!(p.starts_with("SEARCH requests USING INDEX"), "{p}");
            // case-insensitive recovery searches use the NOCASE indexes
            let p = plan(
                &s,
                &[
                    Restriction {
                        column,
                        op: Op::EqNoCase,
                        value: Value::Text("x".into()),
                    },
                    Restriction {
                        column: Column::ArchivedKey,
                        op: Op::Eq,
                        value: Value::Int(1),
                    },
                ],
            )
            .await;
            assert!(
                p.starts_with("SEARCH requests USING INDEX") && p.contains("_nocase"),
                "{p}"
            );
        }
        // imported owners' names
        let rows = sqlx::query(
            "EXPLAIN QUERY PLAN SELECT request_id FROM key_owner_names WHERE name = 'x'",
        )
        .fetch_all(&s.pool)
        .await
        .unwrap();
        let p: String = rows
            .iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect();
        assert!(
            p.contains("USING COVERING INDEX key_owner_names_name"),
            "{p}"
        );
    }

    #[tokio::test]
    async fn statistics_steer_mixed_lookups_to_the_selective_index() {
        let s = SqliteStore::open_in_memory(test_hash).await.unwrap();
        for i in 0..400 {
            let mut c = cert(&format!("{i:04x}"));
            c.common_name = Some(format!("User {i}"));
            c.thumbprint = format!("{i:040x}");
            s.insert_request(&new_req(Disposition::Issued, Some(c)), &[])
                .await
                .unwrap();
        }
        s.optimize().await.unwrap();
        let p = plan(
            &s,
            &[
                Restriction {
                    column: Column::CommonName,
                    op: Op::Eq,
                    value: Value::Text("User 7".into()),
                },
                Restriction {
                    column: Column::Disposition,
                    op: Op::Eq,
                    value: Value::Text("issued".into()),
                },
            ],
        )
        .await;
        assert!(!p.contains("requests_disposition"), "{p}");
    }

    #[tokio::test]
    async fn denial_clears_archived_key() {
        let s = SqliteStore::open_in_memory(test_hash).await.unwrap();
        let mut n = new_req(Disposition::Pending, None);
        n.archived_key = Some(vec![1, 2, 3]);
        let id = s.insert_request(&n, &[]).await.unwrap();
        assert!(s.get_request(id).await.unwrap().unwrap().has_archived_key);
        s.deny_pending(id, "Denied by officer", 0, 2, &[])
            .await
            .unwrap();
        let r = s.get_request(id).await.unwrap().unwrap();
        assert_eq!(r.disposition, Disposition::Denied);
        assert!(!r.has_archived_key);
    }
}

#[cfg(test)]
mod audit_tests {
    use super::*;

    fn h(b: &[u8]) -> String {
        format!(
            "{:x}",
            b.iter()
                .fold(0u64, |h, x| h.wrapping_mul(131).wrapping_add(*x as u64))
        )
    }

    fn entry(action: &str) -> AuditEntry {
        AuditEntry {
            at: 1,
            actor: "a".into(),
            category: "config".into(),
            action: action.into(),
            target: "t".into(),
            outcome: "success".into(),
            details: "{}".into(),
        }
    }

    #[tokio::test]
    async fn audit_chain_links_and_config_changes_are_atomic() {
        let s = SqliteStore::open_in_memory(h).await.unwrap();
        s.append_audit(&[entry("one"), entry("two")]).await.unwrap();
        // a failing change leaves neither the change nor its audit record
        let bad = s
            .apply(
                &[Change::RemoveKra {
                    thumbprint: "nope".into(),
                }],
                &[entry("three")],
            )
            .await;
        assert!(bad.is_err());
        let recs = s.audit_records(1, 100).await.unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].prev_hash, GENESIS_HASH);
        assert_eq!(recs[1].prev_hash, recs[0].hash);
        assert_eq!(
            recs[1].hash,
            h(&AuditRecord::chain_input(2, &recs[1].entry, &recs[0].hash))
        );
        s.apply(
            &[Change::SetSetting {
                name: "x".into(),
                value: "1".into(),
            }],
            &[entry("four")],
        )
        .await
        .unwrap();
        assert_eq!(s.setting("x").await.unwrap().as_deref(), Some("1"));
        assert_eq!(s.audit_records(1, 100).await.unwrap().len(), 3);
    }
}
