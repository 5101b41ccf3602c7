//! Subcommand arguments and their execution.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use lockbox_codec::pem::encode_pem;
use lockbox_engine::config::PASSPHRASE_ENV;
use lockbox_engine::period::{rfc3339, Period};
use lockbox_engine::view::parse_columns;
use lockbox_engine::{Ca, Disposition, EngineError, InitOptions, Outcome};
use serde_json::json;
use zeroize::Zeroizing;

use crate::backend::{Backend, Local, Remote};
use crate::output::{rows_csv, rows_json, rows_table, safe};
use crate::{Cli, Command, Global};

#[derive(Args, Debug)]
pub struct InitArgs {
    /// CA common name, e.g. "Contoso Issuing CA".
    #[arg(long)]
    pub name: String,
    /// Full subject DN (default: CN=<name>).
    #[arg(long)]
    pub subject: Option<String>,
    /// Key algorithm: rsa2048, rsa3072, rsa4096, p256, p384.
    #[arg(long, default_value = "rsa2048")]
    pub key: String,
    /// CA certificate validity (e.g. 10y, 5y, 365d).
    #[arg(long, default_value = "10y")]
    pub validity: String,
    /// Create a subordinate CA: generate the key and a request for the parent CA.
    #[arg(long)]
    pub subordinate: bool,
    /// Where to write the subordinate CA request (PEM).
    #[arg(long = "csr-out", value_name = "FILE")]
    pub csr_out: Option<PathBuf>,
    /// File holding the passphrase that protects the CA key (else LOCKBOX_CA_PASSPHRASE).
    #[arg(long = "passphrase-file", value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// CRL distribution point URL for issued certificates (repeatable).
    #[arg(long = "cdp-url", value_name = "URL")]
    pub cdp_url: Vec<String>,
    /// AIA caIssuers URL for issued certificates (repeatable).
    #[arg(long = "aia-url", value_name = "URL")]
    pub aia_url: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum CaCmd {
    /// Write the CA certificate (PEM).
    Cert {
        /// Output file (default: stdout).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Include the parent chain.
        #[arg(long)]
        chain: bool,
        /// The current CA exchange certificate instead (clients encrypt archived keys to it).
        #[arg(long)]
        exchange: bool,
    },
    /// Install the parent-signed certificate of a subordinate CA.
    Install {
        /// The signed CA certificate (PEM or DER; may include the chain).
        cert: PathBuf,
        /// The parent chain (PEM), issuer first or in any order.
        #[arg(long, value_name = "FILE")]
        chain: Option<PathBuf>,
    },
    /// Templates this CA issues.
    #[command(subcommand)]
    Templates(CaTemplatesCmd),
}

#[derive(Subcommand, Debug)]
pub enum CaTemplatesCmd {
    /// List the templates this CA issues.
    List,
    /// Start issuing a template.
    Add { name: String },
    /// Stop issuing a template.
    Remove { name: String },
}

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

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// Request file (PKCS#10 or CMC; PEM, base64 or DER).
    pub request: PathBuf,
    /// Template (overrides the request's template attribute).
    #[arg(long)]
    pub template: Option<String>,
    /// Write the issued certificate here (PEM).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// For CMC requests, write the CMC Full PKI Response here (DER).
    #[arg(long = "response-out", value_name = "FILE")]
    pub response_out: Option<PathBuf>,
    /// Enroll for this principal (name, UPN or DOMAIN\name): it becomes the
    /// requester and the certificate names come from its record. For the
    /// local administrator (--home) and holders of the EnrollmentAgent role.
    #[arg(long = "on-behalf-of", value_name = "PRINCIPAL")]
    pub on_behalf_of: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum PendingCmd {
    /// List pending requests.
    List,
}

#[derive(Args, Debug)]
pub struct IssueArgs {
    /// Request ID.
    pub id: i64,
    /// Write the issued certificate here (PEM).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct IdArgs {
    /// Request ID.
    pub id: i64,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// Serial number (hex; spaces and colons allowed).
    pub serial: String,
    /// Reason: unspecified, keyCompromise, cACompromise, affiliationChanged,
    /// superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise.
    #[arg(long, default_value = "unspecified")]
    pub reason: String,
}

#[derive(Subcommand, Debug)]
pub enum CrlCmd {
    /// Sign and publish a new CRL.
    Publish {
        /// Also write it here (DER; PEM if the name ends in .pem).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct ViewArgs {
    /// Restrictions, e.g. "CertificateTemplate=ExchangeUser,NotBefore>=2026-01-01".
    #[arg(long)]
    pub restrict: Option<String>,
    /// Columns, e.g. "RequestID,SerialNumber,CommonName,NotBefore".
    #[arg(long)]
    pub out: Option<String>,
    /// CSV output.
    #[arg(long)]
    pub csv: bool,
    /// Maximum rows.
    #[arg(long, default_value_t = 100_000)]
    pub limit: i64,
}

#[derive(Subcommand, Debug)]
pub enum RequestCmd {
    /// Fetch the certificate of an issued request (certreq -retrieve).
    Retrieve {
        /// Request ID.
        id: i64,
        /// Output file (PEM; DER if it ends in .cer/.der/.crt... no: .der only).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Build a CMC request (with --archive: the key encrypted to the CA exchange certificate).
    New(crate::keys::NewRequestArgs),
    /// Verify a CA response and bundle the key and certificate into a PKCS#12.
    Accept(crate::keys::AcceptArgs),
    /// Show a request's status.
    Status {
        /// Request ID.
        id: i64,
    },
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: String,
    /// Plain HTTP (loopback only, for tests).
    #[arg(long)]
    pub http: bool,
    /// Extra host names for the TLS certificate (repeatable).
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
}

fn home_of(g: &Global) -> Result<PathBuf> {
    g.home.clone().ok_or_else(|| {
        anyhow!("no CA home: give --home DIR or set LOCKBOX_HOME (or --server URL for a remote CA)")
    })
}

async fn backend(g: &Global) -> Result<Box<dyn Backend>> {
    if let Some(server) = &g.server {
        return Ok(Box::new(Remote::new(
            server,
            g.ca_cert.as_ref(),
            g.token.clone(),
        )?));
    }
    Ok(Box::new(Local::open(&home_of(g)?).await?))
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > 16 * 1024 * 1024 {
        bail!("{} is too large ({} bytes)", path.display(), meta.len());
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn print_outcome(o: &Outcome, json: bool, out: Option<&Path>) -> Result<()> {
    if let (Some(path), Some(pem)) = (out, &o.certificate_pem) {
        write_file(path, pem.as_bytes())?;
    }
    if json {
        return print_json(o);
    }
    println!("RequestId: {}", o.request_id);
    match o.disposition {
        Disposition::Issued => {
            println!("Disposition: issued ({})", o.message);
            if let Some(s) = &o.serial {
                println!("SerialNumber: {s}");
            }
            match out {
                Some(p) => println!("Certificate written to {}", p.display()),
                None if o.certificate_pem.is_some() => {
                    print!("{}", o.certificate_pem.as_deref().unwrap_or(""))
                }
                None => {}
            }
        }
        Disposition::Pending => println!(
            "Disposition: pending ({}) - a certificate manager must issue it",
            o.message
        ),
        d => println!("Disposition: {} ({})", d.as_str(), o.message),
    }
    Ok(())
}

/// The passphrase to protect a new CA key with, and the file to record.
type InitPassphrase = (Option<Zeroizing<Vec<u8>>>, Option<String>);

fn passphrase_for_init(args: &InitArgs) -> Result<InitPassphrase> {
    if let Some(f) = &args.passphrase_file {
        let mut data = Zeroizing::new(read_file(f)?);
        while data.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            data.pop();
        }
        if data.is_empty() {
            bail!("passphrase file {} is empty", f.display());
        }
        let abs = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        return Ok((Some(data), Some(abs.display().to_string())));
    }
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        if !p.is_empty() {
            return Ok((Some(Zeroizing::new(p.into_bytes())), None));
        }
    }
    Ok((None, None))
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let g = cli.global.clone();
    match cli.command {
        Command::Init(args) => init(&g, args).await,
        Command::Ca(cmd) => ca(&g, cmd).await,
        Command::Template(cmd) => template(&g, cmd).await,
        Command::Submit(args) => {
            let req = read_file(&args.request)?;
            let o = backend(&g)
                .await?
                .submit(req, args.template, args.on_behalf_of)
                .await?;
            if let (Some(path), Some(b64)) = (&args.response_out, &o.cmc_response) {
                write_file(path, &lockbox_codec::pem::decode_input(b64.as_bytes())?.der)?;
            }
            print_outcome(&o, g.json, args.out.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Pending(PendingCmd::List) => {
            let rows = backend(&g).await?.pending().await?;
            let cols = parse_columns(Some(
                "RequestID,RequesterName,CertificateTemplate,Subject,SubmittedWhen",
            ))?;
            if g.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows_json(&rows, &cols))?
                );
            } else {
                print!("{}", rows_table(&rows, &cols));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Issue(args) => {
            let o = backend(&g).await?.issue(args.id).await?;
            print_outcome(&o, g.json, args.out.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Deny(args) => {
            let o = backend(&g).await?.deny(args.id).await?;
            print_outcome(&o, g.json, None)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Revoke(args) => {
            let r = backend(&g)
                .await?
                .revoke(&args.serial, &args.reason)
                .await?;
            if g.json {
                print_json(&r)?;
            } else {
                println!(
                    "Revoked: RequestId {} serial {} reason {} at {}",
                    r.request_id,
                    r.cert.as_ref().map(|c| c.serial.as_str()).unwrap_or(""),
                    lockbox_engine::crl::reason_name(r.revocation_reason.unwrap_or(0)),
                    r.revoked_at.map(rfc3339).unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Crl(CrlCmd::Publish { out }) => {
            let info = backend(&g).await?.publish_crl().await?;
            if let Some(p) = &out {
                let is_pem = p.extension().is_some_and(|e| e == "pem");
                let data = if is_pem {
                    encode_pem("X509 CRL", &info.der).into_bytes()
                } else {
                    info.der.clone()
                };
                write_file(p, &data)?;
            }
            if g.json {
                print_json(&info)?;
            } else {
                println!(
                    "CRL number {} published: {} revoked, next update {}",
                    info.number,
                    info.entries,
                    rfc3339(info.next_update)
                );
                if let Some(p) = out {
                    println!("Written to {}", p.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::View(args) => {
            let cols = parse_columns(args.out.as_deref())?;
            let rows = backend(&g)
                .await?
                .view(args.restrict.as_deref().unwrap_or(""), args.limit)
                .await?;
            if g.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows_json(&rows, &cols))?
                );
            } else if args.csv {
                print!("{}", rows_csv(&rows, &cols));
            } else {
                print!("{}", rows_table(&rows, &cols));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Request(RequestCmd::Retrieve { id, out }) => {
            let der = backend(&g).await?.certificate(id).await?;
            let pem = encode_pem("CERTIFICATE", &der);
            match &out {
                Some(p) if p.extension().is_some_and(|e| e == "der") => write_file(p, &der)?,
                Some(p) => write_file(p, pem.as_bytes())?,
                None => print!("{pem}"),
            }
            if g.json {
                print_json(&json!({ "request_id": id, "out": out, "certificate_pem": pem }))?;
            } else if let Some(p) = out {
                println!("Certificate of request {id} written to {}", p.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Request(RequestCmd::Status { id }) => {
            let r = backend(&g).await?.request(id).await?;
            if g.json {
                print_json(&r)?;
            } else {
                println!("RequestId: {}\nDisposition: {}\nMessage: {}\nRequester: {}\nTemplate: {}\nSubmitted: {}",
                    r.request_id, r.disposition.as_str(), safe(&r.disposition_message), safe(&r.requester),
                    safe(r.template.as_deref().unwrap_or("")), rfc3339(r.submitted_at));
                if let Some(c) = &r.cert {
                    println!(
                        "SerialNumber: {}\nNotAfter: {}",
                        c.serial,
                        rfc3339(c.not_after)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => serve(&g, args).await,
        Command::Backup(args) => crate::backup::backup(&g, args).await,
        Command::Restore(args) => crate::backup::restore(&g, args).await,
        Command::Bench(cmd) => crate::bench::run(&g, cmd).await,
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Principal(cmd) => crate::security::principal(&g, cmd).await,
        Command::Group(cmd) => crate::security::group(&g, cmd).await,
        Command::Role(cmd) => crate::security::role(&g, cmd).await,
        Command::Officer(cmd) => crate::security::officer(&g, cmd).await,
        Command::Config(cmd) => crate::security::config(&g, cmd).await,
        Command::Audit(cmd) => crate::security::audit(&g, cmd).await,
        Command::Events { limit } => crate::security::events(&g, limit).await,
        Command::Getkey(args) => crate::recover::getkey(&g, backend(&g).await?, args).await,
        Command::Recoverkey(args) => crate::recover::recoverkey(&g, args).await,
        Command::Mergepfx(args) => crate::recover::mergepfx(&g, args),
        Command::RecoverUser(args) => crate::recover::recover_user(&g, args).await,
        Command::Importkms(args) => crate::import::run(&g, args, true).await,
        Command::Importcert(args) => crate::import::run(&g, args, false).await,
        Command::ExportKeys(args) => crate::import::export(&g, args).await,
        Command::Kra(cmd) => crate::keys::kra(&g, backend(&g).await?, cmd).await,
        Command::Verifykeys(args) => crate::keys::verifykeys(&g, args),
        Command::Dump(args) => crate::keys::dump(&g, args),
        Command::Request(RequestCmd::New(args)) => {
            crate::keys::request_new(&g, backend(&g).await?, args).await
        }
        Command::Request(RequestCmd::Accept(args)) => crate::keys::request_accept(&g, args).await,
    }
}

async fn init(g: &Global, args: InitArgs) -> Result<ExitCode> {
    let home = home_of(g)?;
    let key = args
        .key
        .parse()
        .map_err(|e: lockbox_crypto::CryptoError| anyhow!("{e}"))?;
    let validity = Period::parse(&args.validity)?;
    let (passphrase, passphrase_file) = passphrase_for_init(&args)?;
    if args.csr_out.is_some() && !args.subordinate {
        bail!("--csr-out goes with --subordinate");
    }
    let outcome = Ca::init(InitOptions {
        home: home.clone(),
        name: args.name,
        subject: args.subject,
        key,
        validity,
        subordinate: args.subordinate,
        passphrase,
        passphrase_file,
        cdp_urls: args.cdp_url,
        aia_urls: args.aia_url,
    })
    .await?;
    let csr_path = match (&outcome.csr_pem, &args.csr_out) {
        (Some(csr), Some(p)) => {
            write_file(p, csr.as_bytes())?;
            Some(p.clone())
        }
        (Some(csr), None) => {
            let p = home.join("certs/ca.req");
            write_file(&p, csr.as_bytes())?;
            Some(p)
        }
        _ => None,
    };
    let token_file = home.join("admin.token");
    lockbox_engine::config::Home::new(&home).write_atomic(
        "admin.token",
        outcome.admin_token.as_bytes(),
        true,
    )?;
    if g.json {
        print_json(&json!({
            "home": outcome.home, "subject": outcome.subject, "subordinate": csr_path.is_some(),
            "csr_out": csr_path, "key_protected": outcome.key_protected,
            "admin_token_file": token_file, "ca_cert_pem": outcome.ca_cert_pem,
        }))?;
    } else {
        println!("Created CA '{}' in {}", outcome.subject, home.display());
        if let Some(p) = csr_path {
            println!("Subordinate CA request written to {}", p.display());
            println!("Have the parent CA sign it, then run: lockbox ca install SIGNED.pem --chain PARENT.pem --home {}", home.display());
        }
        if !outcome.key_protected {
            eprintln!("warning: the CA key is not passphrase-protected (file mode 0600); set {PASSPHRASE_ENV} or --passphrase-file to encrypt it");
        }
        println!(
            "Administrator API token written to {} (mode 0600)",
            token_file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn ca(g: &Global, cmd: CaCmd) -> Result<ExitCode> {
    match cmd {
        CaCmd::Cert {
            out,
            chain,
            exchange,
        } => {
            let b = backend(g).await?;
            let ders = if exchange {
                vec![b.exchange_cert().await?]
            } else if chain {
                b.ca_chain().await?
            } else {
                vec![b.ca_cert().await?]
            };
            let pem: String = ders.iter().map(|d| encode_pem("CERTIFICATE", d)).collect();
            match &out {
                Some(p) => {
                    write_file(p, pem.as_bytes())?;
                    if g.json {
                        print_json(&json!({ "out": p, "certificates": ders.len() }))?;
                    } else {
                        println!(
                            "{} written to {}",
                            if exchange {
                                "CA exchange certificate"
                            } else {
                                "CA certificate"
                            },
                            p.display()
                        );
                    }
                }
                None if g.json => print_json(&json!({ "certificate_pem": pem }))?,
                None => print!("{pem}"),
            }
        }
        CaCmd::Install { cert, chain } => {
            if g.server.is_some() {
                bail!("'ca install' works on the local CA home only");
            }
            let mut ca = Ca::open(&home_of(g)?).await?;
            let cert_bytes = read_file(&cert)?;
            let chain_bytes = chain.as_deref().map(read_file).transpose()?;
            let subject = ca
                .install_certificate(&cert_bytes, chain_bytes.as_deref())
                .await?;
            if g.json {
                print_json(&json!({ "installed": subject }))?;
            } else {
                println!("Installed CA certificate for '{subject}'; the CA is active");
            }
        }
        CaCmd::Templates(t) => {
            let b = backend(g).await?;
            match t {
                CaTemplatesCmd::List => {
                    let names = b.ca_templates().await?;
                    if g.json {
                        print_json(&names)?;
                    } else {
                        for n in names {
                            println!("{n}");
                        }
                    }
                }
                CaTemplatesCmd::Add { name } => {
                    let n = b.set_ca_template(&name, true).await?;
                    if g.json {
                        print_json(&json!({ "template": n, "enabled": true }))?
                    } else {
                        println!("The CA now issues '{n}'")
                    }
                }
                CaTemplatesCmd::Remove { name } => {
                    let n = b.set_ca_template(&name, false).await?;
                    if g.json {
                        print_json(&json!({ "template": n, "enabled": false }))?
                    } else {
                        println!("The CA no longer issues '{n}'")
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn template(g: &Global, cmd: TemplateCmd) -> Result<ExitCode> {
    let b = backend(g).await?;
    match cmd {
        TemplateCmd::Permit {
            template,
            principal,
            rights,
        } => {
            return crate::security::template_permission(g, &template, &principal, &rights, true)
                .await;
        }
        TemplateCmd::DenyPermission {
            template,
            principal,
            rights,
        } => {
            return crate::security::template_permission(g, &template, &principal, &rights, false)
                .await;
        }
        TemplateCmd::List => {
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
        }
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

async fn serve(g: &Global, args: ServeArgs) -> Result<ExitCode> {
    // Everything the service creates (database journals, TLS key, backups) is
    // private to its owner, whatever umask it was started with.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let home = home_of(g)?;
    let ca = Arc::new(Ca::open(&home).await?);
    for finding in lockbox_engine::ca::permission_findings(ca.home(), ca.config()) {
        eprintln!("lockbox: WARNING: {finding}");
    }
    // Load the key now so a wrong passphrase fails at start, not at the first request.
    ca.signing_key().map_err(|e: EngineError| anyhow!(e))?;
    // KRAs are validated when the service starts (and on every KRA change).
    let (valid, total) = ca.validate_kras().await?;
    if total > 0 {
        eprintln!("lockbox: {valid} of {total} KRA certificates valid");
    }
    let listen: std::net::SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("bad --listen address '{}'", args.listen))?;
    let mut hosts = vec!["localhost".to_string(), listen.ip().to_string()];
    if listen.ip().is_unspecified() {
        hosts.push("127.0.0.1".into());
    }
    hosts.extend(args.hosts);
    hosts.dedup();
    lockbox_server::serve(
        ca,
        lockbox_server::ServeOptions {
            listen,
            plain_http: args.http,
            hosts,
        },
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
