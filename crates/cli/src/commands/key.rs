//! `lockbox key status`: where each CA key lives (file, database or token)
//! and whether it matches its certificate.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use lockbox_engine::keysource::{KeyLocation, KeyReport};

use crate::backend::{local, local_only};
use crate::global::Global;

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Where each CA key lives (file, database or PKCS#11 token: module,
    /// token label, key label) and whether it matches its certificate.
    Status {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `lockbox key ...`
pub async fn key(g: &Global, cmd: KeyCmd) -> Result<ExitCode> {
    match cmd {
        KeyCmd::Status { json } => status(g, json || g.json).await,
    }
}

fn where_text(l: &KeyLocation) -> String {
    match l {
        KeyLocation::File { path, encrypted } => format!(
            "file {path}{}",
            if *encrypted { " (encrypted)" } else { "" }
        ),
        KeyLocation::Token {
            module,
            token_label,
            key_label,
            key_id,
        } => format!(
            "token '{token_label}' (module {module}), key label '{key_label}', CKA_ID {key_id}"
        ),
        KeyLocation::Database { sealed_to } => format!("database, sealed to {sealed_to}"),
    }
}

fn print_report(r: &KeyReport) {
    let name = match &r.serial {
        Some(s) => format!("{} {s}", r.role),
        None => r.role.clone(),
    };
    println!("{name}");
    println!("  where:     {}", where_text(&r.location));
    let matches = match r.matches_certificate {
        Some(true) => "matches its certificate",
        Some(false) => "DOES NOT MATCH its certificate",
        None => "not checked",
    };
    if r.available {
        println!("  status:    available, {matches}");
    } else {
        println!(
            "  status:    UNAVAILABLE: {}",
            r.error.as_deref().unwrap_or("unknown")
        );
    }
    if let Some(p) = &r.protection {
        println!(
            "  on token:  sensitive={} extractable={} never_extractable={}",
            p.sensitive, p.extractable, p.never_extractable
        );
    }
}

async fn status(g: &Global, json: bool) -> Result<ExitCode> {
    local_only(g, "key status")?;
    let l = local(g).await?;
    let reports = l.ca.key_status(&l.actor).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "keys": reports }))?
        );
    } else {
        for r in &reports {
            print_report(r);
        }
    }
    let healthy = reports
        .iter()
        .all(|r| r.available && r.matches_certificate != Some(false));
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
