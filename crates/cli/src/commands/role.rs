//! `lockbox role` (CA roles) and `lockbox officer` (certificate-manager restrictions).

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use lockbox_engine::Role;
use serde_json::json;

use crate::backend::{local, local_only, Local};
use crate::global::Global;
use crate::output::print;

#[derive(Subcommand, Debug)]
pub enum RoleCmd {
    /// Grant a role: CAAdministrator, CertificateManager, BackupOperator, Auditor, EnrollmentAgent.
    Grant { principal: String, role: String },
    /// Revoke a role.
    Revoke { principal: String, role: String },
    /// List role grants.
    List,
}

#[derive(Subcommand, Debug)]
pub enum OfficerCmd {
    /// Restrict a certificate manager to requesters in groups and/or to templates (empty: unrestricted).
    Restrict {
        manager: String,
        /// Groups of subjects the manager may act for, comma separated.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Templates the manager may act on, comma separated.
        #[arg(long, value_delimiter = ',')]
        templates: Vec<String>,
    },
    /// Show a manager's restrictions.
    Show { manager: String },
}

/// `lockbox role grant` (`granted`) or `role revoke`: changes the grant
/// and reports it.
async fn set_role(g: &Global, l: &Local, principal: &str, role: &str, granted: bool) -> Result<()> {
    let r = Role::parse(role)?;
    l.ca.set_role(&l.actor, principal, r, granted).await?;
    let text = if granted {
        format!("{principal} now holds {}", r.name())
    } else {
        format!("{principal} no longer holds {}", r.name())
    };
    print(
        g,
        json!({ "principal": principal, "role": r.name(), "granted": granted }),
        text,
    );
    Ok(())
}

/// `lockbox role ...`
pub async fn role(g: &Global, cmd: RoleCmd) -> Result<ExitCode> {
    local_only(g, "role")?;
    let l = local(g).await?;
    match cmd {
        RoleCmd::Grant { principal, role } => set_role(g, &l, &principal, &role, true).await?,
        RoleCmd::Revoke { principal, role } => set_role(g, &l, &principal, &role, false).await?,
        RoleCmd::List => {
            let grants = l.ca.role_grants(&l.actor).await?;
            let sep = l.ca.role_separation().await?;
            let text = format!(
                "role separation: {}\n{}",
                if sep { "on" } else { "off" },
                grants
                    .iter()
                    .map(|(p, r)| format!("{p}  {r}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            print(
                g,
                json!({ "role_separation": sep, "grants": grants.iter().map(|(p, r)| json!({ "principal": p, "role": r })).collect::<Vec<_>>() }),
                text,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `lockbox officer ...`
pub async fn officer(g: &Global, cmd: OfficerCmd) -> Result<ExitCode> {
    local_only(g, "officer")?;
    let l = local(g).await?;
    match cmd {
        OfficerCmd::Restrict {
            manager,
            groups,
            templates,
        } => {
            l.ca.set_restrictions(&l.actor, &manager, groups.clone(), templates.clone())
                .await?;
            print(
                g,
                json!({ "manager": manager, "groups": groups, "templates": templates }),
                format!("Restrictions of {manager} updated"),
            );
        }
        OfficerCmd::Show { manager } => {
            let (groups, templates) = l.ca.restrictions(&manager).await?;
            print(
                g,
                json!({ "manager": manager, "groups": groups, "templates": templates }),
                format!(
                    "{manager}: groups [{}] templates [{}]",
                    groups.join(", "),
                    templates.join(", ")
                ),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
