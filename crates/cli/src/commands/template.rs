//! `lockbox template`: certificate templates, and who may enroll for them.

use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Subcommand;
use serde_json::json;

use crate::backend::{self, local, local_only, Backend};
use crate::global::Global;
use crate::output::{print, print_json};

#[derive(Subcommand, Debug)]
pub enum TemplateCmd {
    /// List all templates.
    List,
    /// Show one template.
    Show { name: String },
    /// Duplicate a template under a new name (the copy is editable).
    Duplicate { name: String, new_name: String },
    /// Allow rights (Read,Enroll,Autoenroll,Write) on a template to a principal or group.
    Permit {
        template: String,
        principal: String,
        rights: String,
    },
    /// Deny rights on a template to a principal or group (deny wins over allow).
    DenyPermission {
        template: String,
        principal: String,
        rights: String,
    },
    /// Set properties: KEY=VALUE ...
    Set {
        name: String,
        #[arg(required = true, value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
}

/// `lockbox template ...`
pub async fn template(g: &Global, cmd: TemplateCmd) -> Result<ExitCode> {
    let b = backend::open(g).await?;
    match cmd {
        TemplateCmd::Permit {
            template,
            principal,
            rights,
        } => {
            return permission(g, &template, &principal, &rights, true).await;
        }
        TemplateCmd::DenyPermission {
            template,
            principal,
            rights,
        } => {
            return permission(g, &template, &principal, &rights, false).await;
        }
        TemplateCmd::List => list(g, b.as_ref()).await?,
        TemplateCmd::Show { name } => {
            let t = b.template(&name).await?;
            if g.json {
                print_json(&t)?;
            } else {
                print!("{}", toml::to_string_pretty(&t).unwrap_or_default());
            }
        }
        TemplateCmd::Duplicate { name, new_name } => {
            let t = b.duplicate_template(&name, &new_name).await?;
            if g.json {
                print_json(&t)?
            } else {
                println!(
                    "Template '{}' created from '{name}' (OID {})",
                    t.name, t.oid
                )
            }
        }
        TemplateCmd::Set { name, settings } => {
            let mut last = None;
            for s in &settings {
                let (k, v) = s
                    .split_once('=')
                    .ok_or_else(|| anyhow!("'{s}' is not KEY=VALUE"))?;
                last = Some(b.set_template(&name, k.trim(), v.trim()).await?);
            }
            if let Some(t) = last {
                if g.json {
                    print_json(&t)?
                } else {
                    println!(
                        "Template '{}' updated (version {}.{})",
                        t.name, t.major_version, t.minor_version
                    )
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `lockbox template list`: every template and whether this CA issues it.
async fn list(g: &Global, b: &dyn Backend) -> Result<()> {
    let all = b.templates().await?;
    let enabled = b.ca_templates().await?;
    if g.json {
        let v: Vec<_> = all
            .iter()
            .map(|t| json!({ "name": t.name, "display_name": t.display_name, "schema_version": t.schema_version,
                             "oid": t.oid, "archive_private_key": t.archive_private_key,
                             "requires_approval": t.requires_approval, "issued_by_ca": enabled.contains(&t.name) }))
            .collect();
        print_json(&v)?;
    } else {
        println!(
            "{:<24} {:<3} {:<8} {:<8} {:<8} DISPLAY NAME",
            "NAME", "V", "ARCHIVE", "PEND", "ON CA"
        );
        for t in all {
            println!(
                "{:<24} {:<3} {:<8} {:<8} {:<8} {}",
                t.name,
                t.schema_version,
                if t.archive_private_key { "yes" } else { "-" },
                if t.requires_approval { "yes" } else { "-" },
                if enabled.contains(&t.name) {
                    "yes"
                } else {
                    "-"
                },
                t.display_name
            );
        }
    }
    Ok(())
}

/// `lockbox template permit|deny-permission`
async fn permission(
    g: &Global,
    template: &str,
    who: &str,
    rights: &str,
    allow: bool,
) -> Result<ExitCode> {
    local_only(g, "template permit")?;
    let l = local(g).await?;
    let rights: Vec<String> = rights
        .split(',')
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    let p =
        l.ca.set_template_permission(&l.actor, template, who, &rights, allow)
            .await?;
    print(
        g,
        serde_json::to_value(&p)?,
        format!(
            "{} {} {} on {}",
            if allow { "Allow" } else { "Deny" },
            who,
            p.rights.join(","),
            p.template
        ),
    );
    Ok(ExitCode::SUCCESS)
}
