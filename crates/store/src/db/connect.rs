//! Opening a store: an SQLite file (created 0600), an in-memory SQLite
//! database for tests, or PostgreSQL on the first host of a URL's list that
//! answers (and accepts writes, with `target_session_attrs=read-write`).
//!
//! sqlx knows one host per pool. For a multi-host URL a watcher task checks
//! the pool's host every second; when it stops answering or turns read-only
//! (a failover), the watcher finds the new primary and points the pool's
//! future connections at it. Requests in flight at that moment fail with
//! [`StoreError::Unavailable`] and their transactions roll back.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};

use super::{Hasher, SqlStore};
use crate::dialect::{self, Backend};
use crate::url::PgUrl;
use crate::{StoreError, StoreResult};

/// How long a request waits for a database connection before it gets
/// "database unavailable" (PostgreSQL; during a failover).
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one host gets to answer when looking for the primary.
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How often the watcher checks the host of a multi-host pool.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Connections per PostgreSQL pool (per node).
const PG_CONNECTIONS: u32 = 16;

/// Creates `path` as an empty file with mode 0600 when it does not exist yet.
pub(super) fn create_private_file(path: &Path) -> StoreResult<()> {
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

fn sqlite_options(path: &Path) -> StoreResult<AnyConnectOptions> {
    let abs = std::path::absolute(path).map_err(|e| {
        StoreError::Database(sqlx::Error::Io(std::io::Error::new(
            e.kind(),
            format!("resolving {}: {e}", path.display()),
        )))
    })?;
    let url = SqliteConnectOptions::new()
        .filename(abs)
        .create_if_missing(true)
        .to_url_lossy();
    Ok(AnyConnectOptions::from_url(&url)?)
}

/// Fails when another connection (another process: a running `lockbox
/// serve`) has the SQLite file open: leaving WAL mode needs the only
/// connection. The file is put back in WAL mode before returning.
pub async fn ensure_sqlite_unused(path: &Path) -> StoreResult<()> {
    use sqlx::sqlite::SqliteConnection;
    let mut conn =
        SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path)).await?;
    let mode: Result<String, sqlx::Error> = sqlx::query_scalar("PRAGMA journal_mode = DELETE")
        .fetch_one(&mut conn)
        .await;
    let _ = sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    match mode {
        Ok(m) if m.eq_ignore_ascii_case("delete") => Ok(()),
        _ => Err(StoreError::Conflict(format!(
            "{} is in use by another process (stop every `lockbox serve` on this home first)",
            path.display()
        ))),
    }
}

impl SqlStore {
    /// Opens (creating if needed) an SQLite database file and applies migrations.
    pub async fn open(path: &Path, hasher: Hasher) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        // SQLite gives the -wal and -shm files the database file's mode: create
        // it 0600 (an empty file is an empty database) so all three are private.
        create_private_file(path)?;
        // Readers run in parallel under WAL; writers queue on the write gate.
        // Enough connections that reads do not queue behind 64 clients.
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(dialect::sqlite::CONNECTION_PRAGMAS).await?;
                    Ok(())
                })
            })
            .connect_with(sqlite_options(path)?)
            .await?;
        let store = SqlStore::with_pool(Backend::Sqlite, pool, hasher);
        store.migrate().await?;
        store.optimize().await?;
        Ok(store)
    }

    /// Opens an in-memory SQLite database (tests).
    pub async fn open_in_memory(hasher: Hasher) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            })
            .connect_with(AnyConnectOptions::from_str("sqlite::memory:")?)
            .await?;
        let store = SqlStore::with_pool(Backend::Sqlite, pool, hasher);
        store.migrate().await?;
        Ok(store)
    }

    /// Connects to PostgreSQL (the primary of the URL's hosts when it asks
    /// for `read-write`) and applies migrations.
    pub async fn connect_postgres(url: &PgUrl, hasher: Hasher) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let url = Arc::new(url.clone());
        let options = find_host(&url).await?;
        let read_write = url.read_write;
        let pool = AnyPoolOptions::new()
            .max_connections(PG_CONNECTIONS)
            .acquire_timeout(PG_ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    conn.execute(dialect::postgres::SESSION_SETTINGS).await?;
                    if read_write {
                        let primary: bool = sqlx::query_scalar(dialect::postgres::IS_PRIMARY)
                            .fetch_one(&mut *conn)
                            .await?;
                        if !primary {
                            return Err(sqlx::Error::Configuration(
                                "the database host is a read-only standby".into(),
                            ));
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let store = SqlStore::with_pool(Backend::Postgres, pool, hasher);
        store.migrate().await?;
        if url.hosts.len() > 1 {
            tokio::spawn(watch_primary(store.pool.clone(), url));
        }
        Ok(store)
    }
}

/// The first host of `url` that answers (and accepts writes, when asked).
async fn find_host(url: &PgUrl) -> StoreResult<AnyConnectOptions> {
    let mut last = String::from("no host");
    for i in 0..url.hosts.len() {
        let Some(single) = url.single_host_url(i) else {
            continue;
        };
        let options = AnyConnectOptions::from_str(&single)?;
        match tokio::time::timeout(PG_CONNECT_TIMEOUT, probe(&options, url.read_write)).await {
            Ok(Ok(true)) => return Ok(options),
            Ok(Ok(false)) => {
                last = format!(
                    "{}:{} is a read-only standby",
                    url.hosts[i].0, url.hosts[i].1
                )
            }
            Ok(Err(e)) => last = format!("{}:{}: {e}", url.hosts[i].0, url.hosts[i].1),
            Err(_) => last = format!("{}:{}: no answer", url.hosts[i].0, url.hosts[i].1),
        }
    }
    Err(StoreError::Unavailable(format!(
        "no PostgreSQL host of the database URL is available ({last})"
    )))
}

/// Whether the host answers and, when `read_write`, is a primary.
async fn probe(options: &AnyConnectOptions, read_write: bool) -> Result<bool, sqlx::Error> {
    let mut conn = sqlx::AnyConnection::connect_with(options).await?;
    let ok = if read_write {
        sqlx::query_scalar(dialect::postgres::IS_PRIMARY)
            .fetch_one(&mut conn)
            .await?
    } else {
        true
    };
    let _ = conn.close().await;
    Ok(ok)
}

/// Keeps a multi-host pool on a host that answers (and accepts writes): on
/// failure, future connections go to the host [`find_host`] picks. Ends when
/// the pool is closed.
async fn watch_primary(pool: sqlx::AnyPool, url: Arc<PgUrl>) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        if pool.is_closed() {
            return;
        }
        let healthy = tokio::time::timeout(PG_CONNECT_TIMEOUT, async {
            let mut conn = pool.acquire().await?;
            if url.read_write {
                sqlx::query_scalar::<_, bool>(dialect::postgres::IS_PRIMARY)
                    .fetch_one(&mut *conn)
                    .await
            } else {
                conn.ping().await.map(|_| true)
            }
        })
        .await;
        if matches!(healthy, Ok(Ok(true))) {
            continue;
        }
        match find_host(&url).await {
            Ok(options) => {
                tracing::warn!(
                    "database host changed: new connections go to the available primary"
                );
                pool.set_connect_options(options);
            }
            Err(e) => tracing::warn!(error = %e, "no database host available"),
        }
    }
}
