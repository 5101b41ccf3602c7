//! Principals, groups, roles, template permissions, manager restrictions,
//! role separation, the audit trail and the CA event log.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use lockbox_engine::authz::Role;
use lockbox_engine::period::{parse_datetime, rfc3339};
use lockbox_engine::Actor;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::backend::Local;
use crate::Global;

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

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Add a group.
    Add { name: String },
    /// Add a user or group to a group.
    AddMember { group: String, member: String },
}

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

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Set a CA setting: role_separation, kra.enable_foreign (true/false) or kra_expiry_warning_days (N).
    Set {
        /// The setting.
        key: Setting,
        /// Its new value.
        value: String,
    },
}

/// The CA settings `lockbox config set` changes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Setting {
    /// true/false: a principal holding two CA roles is refused everything (0x80094008).
    #[value(name = "role_separation")]
    RoleSeparation,
    /// true/false: importkms -f may archive keys whose certificates other CAs issued.
    #[value(name = "kra.enable_foreign")]
    KraEnableForeign,
    /// N: days before a KRA certificate expires that event 127 warns (default 30).
    #[value(name = "kra_expiry_warning_days")]
    KraExpiryWarningDays,
}

/// A yes/no setting value; anything else is refused rather than read as "no".
fn parse_switch(value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "on" | "1" | "yes" => Ok(true),
        "false" | "off" | "0" | "no" => Ok(false),
        _ => Err(lockbox_engine::EngineError::bad_input(
            lockbox_engine::codes::E_INVALIDARG,
            format!("'{value}' is not true or false"),
        )
        .into()),
    }
}

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

fn local_only(g: &Global, what: &str) -> Result<()> {
    if g.server.is_some() {
        bail!("'{what}' works on the local CA home (--home); remote administration of principals is not offered yet");
    }
    Ok(())
}

async fn local(g: &Global) -> Result<Local> {
    let home = g
        .home
        .clone()
        .ok_or_else(|| anyhow!("no CA home: give --home DIR or set LOCKBOX_HOME"))?;
    Ok(Local::open(&home).await?)
}

fn print(g: &Global, v: Value, text: String) {
    if g.json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        // Names from certificates and requests: control characters escaped.
        println!("{}", crate::output::safe_lines(&text));
    }
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
            let password = match password_file {
                Some(f) => {
                    let mut p = std::fs::read_to_string(&f)
                        .with_context(|| format!("reading {}", f.display()))?;
                    while p.ends_with('\n') || p.ends_with('\r') {
                        p.pop();
                    }
                    Some(Zeroizing::new(p))
                }
                None => None,
            };
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
        PrincipalCmd::List => {
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
        }
        PrincipalCmd::Remove { name } => {
            l.ca.remove_principal(a, &name).await?;
            print(g, json!({ "removed": name }), format!("Removed {name}"));
        }
        PrincipalCmd::Token {
            cmd: Some(TokenCmd::New { name }),
            ..
        }
        | PrincipalCmd::Token {
            cmd: None,
            name: Some(name),
        } => {
            let t = l.ca.add_token(a, &name).await?;
            print(
                g,
                json!({ "principal": name, "token": t }),
                format!("API token for {name} (shown once):\n{t}"),
            );
        }
        PrincipalCmd::Token {
            cmd: None,
            name: None,
        } => {
            bail!("give a user name: principal token NAME | token list NAME | token revoke NAME ID")
        }
        PrincipalCmd::Token {
            cmd: Some(TokenCmd::List { name }),
            ..
        } => {
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
        PrincipalCmd::Token {
            cmd: Some(TokenCmd::Revoke { name, id }),
            ..
        } => {
            l.ca.revoke_token(a, &name, &id).await?;
            print(
                g,
                json!({ "principal": name, "revoked": id }),
                format!("Revoked API token {id} of {name}"),
            );
        }
        PrincipalCmd::UnmapCert { name, serial } => {
            let thumb = l.ca.unmap_certificate(a, &name, &serial).await?;
            print(
                g,
                json!({ "principal": name, "unmapped": thumb }),
                format!("Certificate {thumb} no longer authenticates {name}"),
            );
        }
        PrincipalCmd::Certs { name } => {
            let list = l.ca.certificate_mappings(a, &name).await?;
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
        }
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

/// `lockbox role ...`
pub async fn role(g: &Global, cmd: RoleCmd) -> Result<ExitCode> {
    local_only(g, "role")?;
    let l = local(g).await?;
    match cmd {
        RoleCmd::Grant { principal, role } => {
            let r = Role::parse(&role)?;
            l.ca.set_role(&l.actor, &principal, r, true).await?;
            print(
                g,
                json!({ "principal": principal, "role": r.name(), "granted": true }),
                format!("{principal} now holds {}", r.name()),
            );
        }
        RoleCmd::Revoke { principal, role } => {
            let r = Role::parse(&role)?;
            l.ca.set_role(&l.actor, &principal, r, false).await?;
            print(
                g,
                json!({ "principal": principal, "role": r.name(), "granted": false }),
                format!("{principal} no longer holds {}", r.name()),
            );
        }
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

/// `lockbox template permit|deny-permission`
pub async fn template_permission(
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

/// `lockbox config set KEY VALUE`
pub async fn config(g: &Global, cmd: ConfigCmd) -> Result<ExitCode> {
    local_only(g, "config")?;
    let l = local(g).await?;
    let ConfigCmd::Set { key, value } = cmd;
    match key {
        Setting::RoleSeparation => {
            let on = parse_switch(&value)?;
            l.ca.set_role_separation(&l.actor, on).await?;
            print(
                g,
                json!({ "role_separation": on }),
                format!("Role separation is {}", if on { "on" } else { "off" }),
            );
        }
        Setting::KraEnableForeign => {
            let on = parse_switch(&value)?;
            l.ca.set_foreign_enabled(&l.actor, on).await?;
            print(
                g,
                json!({ "kra.enable_foreign": on }),
                format!(
                    "Foreign certificate import is {}",
                    if on { "enabled" } else { "disabled" }
                ),
            );
        }
        Setting::KraExpiryWarningDays => {
            let days: u32 = value.trim().parse().map_err(|_| {
                lockbox_engine::EngineError::bad_input(
                    lockbox_engine::codes::E_INVALIDARG,
                    format!("'{value}' is not a number of days"),
                )
            })?;
            l.ca.set_kra_expiry_warning_days(&l.actor, days).await?;
            print(
                g,
                json!({ "kra_expiry_warning_days": days }),
                format!("KRA certificates are reported {days} day(s) before they expire"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn remote_json(g: &Global, path: &str) -> Result<Value> {
    let server = g.server.as_deref().unwrap_or_default();
    let remote = crate::backend::Remote::new(server, g.ca_cert.as_ref(), g.token.clone())?;
    Ok(remote.get_json(path).await?)
}

/// `lockbox audit ...`
pub async fn audit(g: &Global, cmd: AuditCmd) -> Result<ExitCode> {
    match cmd {
        AuditCmd::List { since, limit } => {
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
            let text = v
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| {
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
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            print(g, v, text);
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Verify => {
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
    let text = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    format!(
                        "{}  {:>4}  {:<7} {}",
                        rfc3339(e["at"].as_i64().unwrap_or(0)),
                        e["event_id"],
                        e["level"].as_str().unwrap_or(""),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    print(g, v, text);
    Ok(ExitCode::SUCCESS)
}
