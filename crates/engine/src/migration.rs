//! `lockbox db migrate --to postgres://...`: moves a CA's SQLite database to
//! an empty PostgreSQL database.
//!
//! The order keeps the CA whole at every step:
//! 1. no `lockbox serve` may run on the home (it holds `serve.lock`) and the
//!    SQLite file must not be open elsewhere;
//!    the target must be reachable and empty;
//! 2. a "migrate database" record (outcome `started`) is appended and signed
//!    in the SQLite chain, so the copy carries it;
//! 3. every row is copied in one target transaction that compares the counts
//!    before it commits;
//! 4. the audit chain is verified on the target, with the home's head file;
//! 5. only then is the configuration switched (an atomic rewrite) and the
//!    SQLite file renamed `ca.db.migrated-<time>`; the first record on the
//!    new database says `success`.
//!
//! A failure before step 5 leaves the home on SQLite, records the failure
//! there, and leaves rows in the target to be dropped.

use std::path::{Path, PathBuf};

use lockbox_store::{CopyReport, DatabaseUrl, SqlStore};
use serde::Serialize;

use crate::category::{AuditAction, AuditCategory};
use crate::config::Home;
use crate::core::Core;
use crate::database::{location, Location};
use crate::period::now;
use crate::{codes, Actor, EngineError, EngineResult, Op};

/// What `db migrate` did.
#[derive(Clone, Debug, Serialize)]
pub struct MigrateReport {
    /// The database the CA used before.
    pub from: String,
    /// The database it uses now.
    pub to: String,
    /// Rows copied per table (equal in source and target).
    pub rows: CopyReport,
    /// Audit records verified on the target.
    pub audit_records: i64,
    /// Signed heads verified on the target.
    pub signed_heads: usize,
    /// Where the SQLite file was kept.
    pub sqlite_kept_as: PathBuf,
}

/// Migrates the CA of `root` to the empty PostgreSQL database `to`, as the
/// local administrator `who`.
pub async fn migrate(root: &Path, to: &str, who: &str) -> EngineResult<MigrateReport> {
    let home = Home::new(root);
    let config = home.load_config()?;
    let Location::Sqlite(path) = location(&home, &config)? else {
        return Err(EngineError::Conflict(
            "the CA database is already PostgreSQL: db migrate moves an SQLite CA".into(),
        ));
    };
    let DatabaseUrl::Postgres(pg) = DatabaseUrl::parse(to)
        .map_err(|e| EngineError::bad_input(codes::E_INVALIDARG, e.to_string()))?
    else {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "db migrate --to takes a postgres:// URL",
        ));
    };
    let target = SqlStore::connect_postgres(&pg, crate::audit::chain_hash).await?;
    if !target.is_empty().await? {
        return Err(EngineError::Conflict(format!(
            "the database {pg} is not empty: db migrate copies into an empty database only"
        )));
    }
    // No service on this home (it holds the lock for its lifetime), and no
    // other connection to the file; the lock is held until the switch is done.
    let _service_lock = home.lock_service()?;
    lockbox_store::ensure_sqlite_unused(&path).await?;

    let source = crate::init::open_with(home.clone(), config.clone()).await?;
    let actor = Actor::local_admin(who);
    crate::authz::authorize(&source, &actor, Op::Configure).await?;
    // Exchange keys still kept as files go into the database (sealed), so
    // every node that gets a copy of this home can use them.
    crate::archival::exchange_keys::ensure_wrap_key(&home, &config, &*source.keys)?;
    crate::archival::exchange_keys::seal_key_files(&source).await?;
    let from = config.database.url.clone();
    // Kept as written (the secure defaults apply whenever it is parsed).
    let to_text = to.to_string();
    record(&source, &actor, &to_text, "started", &from).await?;

    let mut target_config = config.clone();
    target_config.database.url = to_text.clone();
    let copied = copy_and_verify(&path, &target, &home, target_config.clone()).await;
    target.close().await;
    let (rows, target_core, audit_records, signed_heads) = match copied {
        Ok(done) => done,
        Err(e) => {
            let _ = record(&source, &actor, &to_text, "failure", &e.to_string()).await;
            source.store.close().await;
            return Err(e);
        }
    };

    // Switch: the configuration names the target, the SQLite file is kept aside.
    source.store.close().await;
    home.save_config(&target_config)?;
    let kept = PathBuf::from(format!("{}.migrated-{}", path.display(), now()));
    std::fs::rename(&path, &kept).map_err(EngineError::io(format!(
        "keeping {} as {}",
        path.display(),
        kept.display()
    )))?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            let _ = std::fs::rename(&side, format!("{}{suffix}", kept.display()));
        }
    }
    let details = serde_json::json!({ "from": from, "sqlite_kept_as": kept.display().to_string(),
        "requests": rows.rows_of("requests"), "audit_records": audit_records })
    .to_string();
    record(&target_core, &actor, &to_text, "success", &details).await?;
    target_core.store.close().await;
    Ok(MigrateReport {
        from,
        to: to_text,
        rows,
        audit_records,
        signed_heads,
        sqlite_kept_as: kept,
    })
}

/// Copies the SQLite file's rows into `target` and verifies the audit chain
/// there through a CA opened on the target configuration.
async fn copy_and_verify(
    path: &Path,
    target: &SqlStore,
    home: &Home,
    target_config: crate::config::Config,
) -> EngineResult<(CopyReport, Core, i64, usize)> {
    let reader = SqlStore::open(path, crate::audit::chain_hash).await?;
    let copied = reader.copy_into(target).await;
    reader.close().await;
    let rows = copied?;
    let core = crate::init::open_with(home.clone(), target_config).await?;
    let report = crate::audit::verify::verify(&core).await?;
    if let Some(p) = report.problems.first() {
        core.store.close().await;
        return Err(EngineError::Conflict(format!(
            "the audit chain does not verify on the target (record {}: {}); the CA stays on SQLite",
            p.position, p.problem
        )));
    }
    Ok((rows, core, report.records, report.signed_heads))
}

/// Appends a "migrate database" record with `outcome` (always kept: a change
/// of database is never filtered out by the audited categories).
async fn record(
    core: &Core,
    actor: &Actor,
    to: &str,
    outcome: &str,
    details: &str,
) -> EngineResult<()> {
    let mut entry = crate::audit::chain::audit_entry(
        core,
        actor,
        AuditCategory::Config,
        AuditAction::MigrateDatabase,
        to,
        details,
    );
    for e in &mut entry {
        e.outcome = outcome.to_string();
    }
    core.store.append_audit(&entry).await?;
    Ok(())
}
