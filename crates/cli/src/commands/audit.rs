//! `lockbox audit` (the tamper-evident audit trail) and `lockbox events`
//! (the CA event log); both local or over --server.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use lockbox_engine::period::{parse_datetime, rfc3339};
use lockbox_engine::Actor;
use serde_json::json;

use crate::backend::{local, local_only, remote_json, Local};
use crate::global::Global;
use crate::output::print;

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// List audit records.
    List {
        /// Only records at or after this time (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// At most this many (the latest).
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Verify the hash chain and the signed heads.
    Verify,
    /// Show or set the audited categories.
    Categories {
        /// New comma-separated list (backup, config, security, requests, revocation, keys, audit, service).
        #[arg(long, value_delimiter = ',')]
        set: Option<Vec<String>>,
    },
    /// Sign the current chain head with the CA key now.
    Sign,
}

/// `lockbox audit ...`
pub async fn audit(g: &Global, cmd: AuditCmd) -> Result<ExitCode> {
    match cmd {
        AuditCmd::List { since, limit } => list(g, since, limit).await,
        AuditCmd::Verify => verify(g).await,
        AuditCmd::Categories { set } => {
            local_only(g, "audit categories")?;
            let l = local(g).await?;
            let cats = match set {
                Some(list) => {
                    // The local administrator is not the Auditor: act as one only when role separation allows.
                    l.ca.set_audit_categories(&auditor_or_local(&l), &list)
                        .await?
                }
                None => l.ca.audit_categories().await,
            };
            print(
                g,
                json!({ "categories": cats }),
                format!("Audited categories: {}", cats.join(", ")),
            );
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Sign => {
            local_only(g, "audit sign")?;
            let l = local(g).await?;
            let head = l.ca.sign_audit_head().await?;
            print(
                g,
                json!({ "head": head }),
                match head {
                    Some(h) => format!("Signed audit head at record {}", h.seq),
                    None => "The audit trail is empty".into(),
                },
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `lockbox audit list`
async fn list(g: &Global, since: Option<String>, limit: i64) -> Result<ExitCode> {
    let since = since.as_deref().map(parse_datetime).transpose()?;
    let v = if g.server.is_some() {
        let mut path = format!("/api/v1/audit?limit={limit}");
        if let Some(s) = since {
            path.push_str(&format!("&since={s}"));
        }
        remote_json(g, &path).await?
    } else {
        let l = local(g).await?;
        serde_json::to_value(l.ca.audit_list(&l.actor, since, limit).await?)?
    };
    Ok(print_rows(g, v, |r| {
        format!(
            "{:>6}  {}  {:<8} {:<9} {:<30} {:<24} {}",
            r["seq"],
            rfc3339(r["at"].as_i64().unwrap_or(0)),
            r["outcome"].as_str().unwrap_or(""),
            r["category"].as_str().unwrap_or(""),
            r["action"].as_str().unwrap_or(""),
            r["target"].as_str().unwrap_or(""),
            r["actor"].as_str().unwrap_or("")
        )
    }))
}

/// `lockbox audit verify`: exit 7 when the chain or a signed head does not verify.
async fn verify(g: &Global) -> Result<ExitCode> {
    let v = if g.server.is_some() {
        remote_json(g, "/api/v1/audit/verify").await?
    } else {
        let l = local(g).await?;
        serde_json::to_value(l.ca.audit_verify(&l.actor).await?)?
    };
    let problems = v["problems"].as_array().cloned().unwrap_or_default();
    let text = if problems.is_empty() {
        format!(
            "Audit chain intact: {} records, {} signed heads verified ({} in the head file outside the database)",
            v["records"], v["signed_heads"], v["external_heads"]
        )
    } else {
        problems
            .iter()
            .map(|p| {
                format!(
                    "position {}: {}",
                    p["position"],
                    p["problem"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    print(g, v, text);
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(7)
    })
}

fn auditor_or_local(l: &Local) -> Actor {
    l.actor.clone()
}

/// `lockbox events`
pub async fn events(g: &Global, limit: i64) -> Result<ExitCode> {
    let v = if g.server.is_some() {
        remote_json(g, &format!("/api/v1/events?limit={limit}")).await?
    } else {
        let l = local(g).await?;
        serde_json::to_value(l.ca.events(&l.actor, limit).await?)?
    };
    Ok(print_rows(g, v, |e| {
        format!(
            "{}  {:>4}  {:<7} {}",
            rfc3339(e["at"].as_i64().unwrap_or(0)),
            e["event_id"],
            e["level"].as_str().unwrap_or(""),
            e["message"].as_str().unwrap_or("")
        )
    }))
}

/// Prints the JSON array `v`: as it is with --json, else one `line` per
/// element.
fn print_rows(
    g: &Global,
    v: serde_json::Value,
    line: impl Fn(&serde_json::Value) -> String,
) -> ExitCode {
    let text = v
        .as_array()
        .map(|a| a.iter().map(&line).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default();
    print(g, v, text);
    ExitCode::SUCCESS
}
