//! `lockbox principal`: local principals (users), their API tokens and
//! client-certificate mappings.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use lockbox_engine::period::rfc3339;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::backend::{local, local_only, Local};
use crate::global::Global;
use crate::output::print;

#[derive(Subcommand, Debug)]
pub enum PrincipalCmd {
    /// Add a user.
    Add {
        name: String,
        /// User principal name.
        #[arg(long)]
        upn: Option<String>,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
        /// Down-level logon name, DOMAIN\name.
        #[arg(long)]
        downlevel: Option<String>,
        /// File holding the password for HTTP Basic (web enrollment clients).
        #[arg(long = "password-file", value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// List principals.
    List,
    /// Remove a principal (tokens, roles and memberships go with it).
    Remove { name: String },
    /// API tokens: `token NAME` (or `token new NAME`) creates one (shown once),
    /// `token list NAME` lists their IDs, `token revoke NAME ID` revokes one.
    #[command(args_conflicts_with_subcommands = true)]
    Token {
        #[command(subcommand)]
        cmd: Option<TokenCmd>,
        /// The user to create a token for.
        name: Option<String>,
    },
    /// Map a TLS client certificate to a principal.
    MapCert { name: String, cert: PathBuf },
    /// Remove a client-certificate mapping by the certificate's serial number (or thumbprint).
    UnmapCert { name: String, serial: String },
    /// List the client certificates mapped to a principal.
    Certs { name: String },
}

/// `lockbox principal token ...`
#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create another API token for a user (shown once).
    New { name: String },
    /// List a user's API tokens (IDs and dates; secrets are never kept).
    List { name: String },
    /// Revoke one API token (refused at the next request of every process).
    Revoke { name: String, id: String },
}

/// `lockbox principal ...`
pub async fn principal(g: &Global, cmd: PrincipalCmd) -> Result<ExitCode> {
    local_only(g, "principal")?;
    let l = local(g).await?;
    let a = &l.actor;
    match cmd {
        PrincipalCmd::Add {
            name,
            upn,
            email,
            downlevel,
            password_file,
        } => {
            // `--token` without a value (the global option) asks for a new API token.
            let token = g.token.as_deref() == Some("");
            let password = password_file.as_deref().map(read_password).transpose()?;
            let out =
                l.ca.add_principal(a, &name, false, upn, email, downlevel, password, token)
                    .await?;
            print(
                g,
                json!({ "principal": out.principal, "token": out.token }),
                match &out.token {
                    Some(t) => format!("Added {name}. API token (shown once, keep it safe):\n{t}"),
                    None => format!("Added {name}"),
                },
            );
        }
        PrincipalCmd::List => list(g, &l).await?,
        PrincipalCmd::Remove { name } => {
            l.ca.remove_principal(a, &name).await?;
            print(g, json!({ "removed": name }), format!("Removed {name}"));
        }
        PrincipalCmd::Token { cmd, name } => token(g, &l, cmd, name).await?,
        PrincipalCmd::UnmapCert { name, serial } => {
            let thumb = l.ca.unmap_certificate(a, &name, &serial).await?;
            print(
                g,
                json!({ "principal": name, "unmapped": thumb }),
                format!("Certificate {thumb} no longer authenticates {name}"),
            );
        }
        PrincipalCmd::Certs { name } => certs(g, &l, &name).await?,
        PrincipalCmd::MapCert { name, cert } => {
            let bytes =
                std::fs::read(&cert).with_context(|| format!("reading {}", cert.display()))?;
            let thumb = l.ca.map_certificate(a, &name, &bytes).await?;
            print(
                g,
                json!({ "principal": name, "thumbprint": thumb }),
                format!("Certificate {thumb} now authenticates {name}"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The HTTP Basic password from its file (trailing line breaks dropped).
fn read_password(f: &std::path::Path) -> Result<Zeroizing<String>> {
    let mut p = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
    while p.ends_with('\n') || p.ends_with('\r') {
        p.pop();
    }
    Ok(Zeroizing::new(p))
}

/// `lockbox principal list`: principals with their roles.
async fn list(g: &Global, l: &Local) -> Result<()> {
    let a = &l.actor;
    let list = l.ca.principals(a).await?;
    let grants = l.ca.role_grants(a).await?;
    let rows: Vec<Value> = list
        .iter()
        .map(|p| {
            let roles: Vec<&str> = grants.iter().filter(|(w, _)| w == &p.name).map(|(_, r)| r.as_str()).collect();
            json!({ "name": p.name, "kind": p.kind, "upn": p.upn, "email": p.email, "downlevel": p.downlevel, "password": p.password_hash.is_some(), "roles": roles })
        })
        .collect();
    let text = rows
        .iter()
        .map(|r| {
            format!(
                "{:<20} {:<6} upn={} email={} roles={}",
                r["name"].as_str().unwrap_or(""),
                r["kind"].as_str().unwrap_or(""),
                r["upn"].as_str().unwrap_or("-"),
                r["email"].as_str().unwrap_or("-"),
                r["roles"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    print(g, Value::Array(rows), text);
    Ok(())
}

/// `lockbox principal token [new|list|revoke] NAME`
async fn token(g: &Global, l: &Local, cmd: Option<TokenCmd>, name: Option<String>) -> Result<()> {
    let a = &l.actor;
    match (cmd, name) {
        (Some(TokenCmd::New { name }), _) | (None, Some(name)) => {
            let t = l.ca.add_token(a, &name).await?;
            print(
                g,
                json!({ "principal": name, "token": t }),
                format!("API token for {name} (shown once):\n{t}"),
            );
        }
        (None, None) => {
            bail!("give a user name: principal token NAME | token list NAME | token revoke NAME ID")
        }
        (Some(TokenCmd::List { name }), _) => {
            let list = l.ca.tokens(a, &name).await?;
            let text = if list.is_empty() {
                format!("{name} has no API tokens")
            } else {
                list.iter()
                    .map(|t| format!("{}  created {}", t.id, rfc3339(t.created_at)))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            print(g, serde_json::to_value(&list)?, text);
        }
        (Some(TokenCmd::Revoke { name, id }), _) => {
            l.ca.revoke_token(a, &name, &id).await?;
            print(
                g,
                json!({ "principal": name, "revoked": id }),
                format!("Revoked API token {id} of {name}"),
            );
        }
    }
    Ok(())
}

/// `lockbox principal certs NAME`: the client certificates mapped to a principal.
async fn certs(g: &Global, l: &Local, name: &str) -> Result<()> {
    let list = l.ca.certificate_mappings(&l.actor, name).await?;
    let text = if list.is_empty() {
        format!("no certificates are mapped to {name}")
    } else {
        list.iter()
            .map(|m| {
                format!(
                    "serial {}  thumbprint {}",
                    m.serial.as_deref().unwrap_or("-"),
                    m.thumbprint
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    print(g, serde_json::to_value(&list)?, text);
    Ok(())
}
