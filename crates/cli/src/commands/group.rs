//! `lockbox group`: groups of principals.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use crate::backend::{local, local_only};
use crate::global::Global;
use crate::output::print;

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Add a group.
    Add { name: String },
    /// Add a user or group to a group.
    AddMember { group: String, member: String },
}

/// `lockbox group ...`
pub async fn group(g: &Global, cmd: GroupCmd) -> Result<ExitCode> {
    local_only(g, "group")?;
    let l = local(g).await?;
    match cmd {
        GroupCmd::Add { name } => {
            l.ca.add_principal(&l.actor, &name, true, None, None, None, None, false)
                .await?;
            print(g, json!({ "group": name }), format!("Added group {name}"));
        }
        GroupCmd::AddMember { group, member } => {
            l.ca.add_member(&l.actor, &group, &member).await?;
            print(
                g,
                json!({ "group": group, "member": member }),
                format!("{member} is now a member of {group}"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
