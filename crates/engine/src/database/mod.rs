//! The CA database itself: where the configuration says it lives (an SQLite
//! file in the home, or PostgreSQL), opening it with the audit head sealer
//! and facts about it (`lockbox db status`). Moving it to PostgreSQL
//! (`lockbox db migrate`) is [`crate::migration`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use lockbox_crypto::KeyHandle;
use lockbox_store::{DatabaseStatus, DatabaseUrl, PgUrl, SqlStore, Store};

use crate::config::{Config, Home};
use crate::core::Core;
use crate::{Actor, EngineError, EngineResult, Op};

/// Where a CA's database lives.
#[derive(Clone, Debug)]
pub(crate) enum Location {
    /// An SQLite file (absolute, or inside the home).
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(PgUrl),
}

/// Reads `database.url` of a configuration.
pub(crate) fn location(home: &Home, config: &Config) -> EngineResult<Location> {
    let url =
        DatabaseUrl::parse(&config.database.url).map_err(|e| EngineError::Config(e.to_string()))?;
    Ok(match url {
        DatabaseUrl::Sqlite(file) => Location::Sqlite(if Path::new(&file).is_absolute() {
            PathBuf::from(file)
        } else {
            home.path(&file)
        }),
        DatabaseUrl::Postgres(pg) => Location::Postgres(pg),
    })
}

/// Opens a store without a head sealer (copies, migrations, checks).
pub(crate) async fn open_plain(location: &Location) -> EngineResult<SqlStore> {
    Ok(match location {
        Location::Sqlite(path) => SqlStore::open(path, crate::audit::chain_hash).await?,
        Location::Postgres(pg) => SqlStore::connect_postgres(pg, crate::audit::chain_hash).await?,
    })
}

/// Opens the database with a head sealer sharing `key` (the CA key slot), so
/// every transaction that appends audit records also signs the chain head;
/// `unsealed` is raised whenever records commit without a signed head.
pub(crate) async fn open_store(
    home: &Home,
    config: &Config,
    source: Arc<crate::keysource::CaKeySource>,
    key: Arc<Mutex<Option<Arc<dyn KeyHandle>>>>,
    unsealed: Arc<std::sync::atomic::AtomicBool>,
) -> EngineResult<Arc<dyn Store>> {
    let store = open_plain(&location(home, config)?).await?;
    store.set_head_sealer(Arc::new(crate::audit::heads::HeadSeal {
        key,
        source,
        home: home.clone(),
        warned: Default::default(),
        unsealed,
    }));
    Ok(Arc::new(store))
}

/// The `database.url` of a new CA: the one asked for, else (with the test
/// switch `LOCKBOX_TEST_DATABASE` set) a new database on the test server,
/// else `sqlite:ca.db` in the home. A PostgreSQL database must be empty.
pub(crate) async fn new_database_url(
    asked: Option<&str>,
    default_file: &str,
) -> EngineResult<String> {
    let url = match asked {
        Some(u) => u.to_string(),
        None => match lockbox_store::test_server() {
            Some(server) => {
                let url = lockbox_store::create_fresh_database(&server).await?;
                tracing::warn!(
                    "{} is set: this CA's database is {url}, a new database on the test server",
                    lockbox_store::TEST_DATABASE_ENV
                );
                url
            }
            None => format!("sqlite:{default_file}"),
        },
    };
    let parsed = DatabaseUrl::parse(&url)
        .map_err(|e| EngineError::bad_input(crate::codes::E_INVALIDARG, e.to_string()))?;
    if let DatabaseUrl::Postgres(pg) = &parsed {
        let store = SqlStore::connect_postgres(pg, crate::audit::chain_hash).await?;
        let empty = store.is_empty().await?;
        store.close().await;
        if !empty {
            return Err(EngineError::Conflict(format!(
                "the database {pg} already holds a CA's rows: a new CA needs an empty database"
            )));
        }
    }
    // The configuration keeps the URL as the operator wrote it; the secure
    // defaults (TLS for remote hosts, read-write for several) apply each
    // time it is parsed to connect.
    Ok(url)
}

/// The backend, its schema version and its row counts. Whole-table counts
/// cross every manager restriction, so this is the CA administrator's.
pub(crate) async fn status(core: &Core, actor: &Actor) -> EngineResult<DatabaseStatus> {
    crate::authz::authorize(core, actor, Op::Configure).await?;
    Ok(core.store.status().await?)
}
