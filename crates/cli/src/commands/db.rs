//! `lockbox db status`: which database the CA runs on and what it holds;
//! `lockbox db migrate --to postgres://...`: moving an SQLite CA to PostgreSQL.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::backend::{local, local_only, local_who};
use crate::global::Global;

#[derive(Subcommand, Debug)]
pub enum DbCmd {
    /// Backend, schema version and row counts (requests, archived keys, audit records).
    Status,
    /// Copies this SQLite CA into an empty PostgreSQL database, verifies the
    /// counts and the audit chain there, then switches the home to it (the
    /// SQLite file is kept as ca.db.migrated-TIME). Stop `lockbox serve` first.
    Migrate {
        /// The target: `postgres://USER@HOST:PORT/DB` (an empty database;
        /// several hosts for failover). Passwords come from PGPASSWORD or ~/.pgpass.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

/// `lockbox db ...`
pub async fn db(g: &Global, cmd: DbCmd) -> Result<ExitCode> {
    match cmd {
        DbCmd::Status => status(g).await,
        DbCmd::Migrate { to } => migrate(g, &to).await,
    }
}

async fn migrate(g: &Global, to: &str) -> Result<ExitCode> {
    local_only(g, "db migrate")?;
    let home = g
        .home
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no CA home: give --home DIR or set LOCKBOX_HOME"))?;
    let r = lockbox_engine::migration::migrate(&home, to, &local_who()).await?;
    if g.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("Migrated {} -> {}", r.from, r.to);
        for (table, n) in &r.rows.rows {
            println!("  {table:<22} {n} rows");
        }
        println!(
            "Audit chain verified on the target: {} records, {} signed heads",
            r.audit_records, r.signed_heads
        );
        println!("SQLite file kept as {}", r.sqlite_kept_as.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(g: &Global) -> Result<ExitCode> {
    local_only(g, "db status")?;
    let l = local(g).await?;
    let s = l.ca.db_status(&l.actor).await?;
    if g.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!("backend:         {}", s.backend);
        println!("schema version:  {}", s.schema_version);
        println!("requests:        {}", s.requests);
        println!("archived keys:   {}", s.archived_keys);
        println!("unmatched keys:  {}", s.unmatched_keys);
        println!("audit records:   {}", s.audit_records);
        println!("audit heads:     {}", s.audit_heads);
    }
    Ok(ExitCode::SUCCESS)
}
