//! `lockbox db status`: which database the CA runs on and what it holds.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::backend::{local, local_only};
use crate::global::Global;

#[derive(Subcommand, Debug)]
pub enum DbCmd {
    /// Backend, schema version and row counts (requests, archived keys, audit records).
    Status,
}

/// `lockbox db ...`
pub async fn db(g: &Global, cmd: DbCmd) -> Result<ExitCode> {
    match cmd {
        DbCmd::Status => status(g).await,
    }
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
