//! One switch runs the test suites on PostgreSQL: with
//! `LOCKBOX_TEST_DATABASE=postgres://USER@HOST:PORT/DB` set, every CA a test
//! creates without naming a database gets a new, empty database of its own
//! on that server (the test script starts a throw-away cluster). Unset, the
//! tests use SQLite as before. Only a server on a loopback address is taken,
//! and `init` logs a warning when the switch chose the database.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::any::AnyConnectOptions;
use sqlx::{AssertSqlSafe, Connection};

use crate::url::{is_loopback, DatabaseUrl, PgUrl};
use crate::{StoreError, StoreResult};

/// The environment variable naming the test PostgreSQL server.
pub const TEST_DATABASE_ENV: &str = "LOCKBOX_TEST_DATABASE";

/// The test server's URL, when the switch is set and names a PostgreSQL
/// server on this machine (loopback only: a switch left in a production
/// environment cannot send a CA's database to another machine).
pub fn test_server() -> Option<String> {
    let v = std::env::var(TEST_DATABASE_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())?;
    match DatabaseUrl::parse(&v) {
        Ok(DatabaseUrl::Postgres(pg)) if pg.hosts.iter().all(|(h, _)| is_loopback(h)) => Some(v),
        _ => {
            tracing::warn!("{TEST_DATABASE_ENV} is ignored: it must name a PostgreSQL server on a loopback address");
            None
        }
    }
}

/// Creates a new, empty database on the server `server` names (connecting
/// to the database in its URL) and returns the URL of the new one.
pub async fn create_fresh_database(server: &str) -> StoreResult<String> {
    static N: AtomicU64 = AtomicU64::new(0);
    let DatabaseUrl::Postgres(pg) =
        DatabaseUrl::parse(server).map_err(|e| StoreError::Schema(e.to_string()))?
    else {
        return Err(StoreError::Schema(format!(
            "{TEST_DATABASE_ENV} must be a postgres:// URL"
        )));
    };
    sqlx::any::install_default_drivers();
    let admin = pg
        .single_host_url(0)
        .ok_or_else(|| StoreError::Schema("no host".into()))?;
    let mut conn = sqlx::AnyConnection::connect_with(&AnyConnectOptions::from_str(&admin)?).await?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "lockbox_t{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos
    );
    // The name is made of digits and letters only.
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let _ = conn.close().await;
    Ok(PgUrl {
        database: name,
        ..pg
    }
    .to_string())
}
