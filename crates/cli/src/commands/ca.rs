//! `lockbox ca`: the CA certificate, installing a subordinate CA's
//! certificate, and the templates the CA issues.

use std::path::PathBuf;
use std::process::ExitCode;

use std::str::FromStr;

use anyhow::{bail, Result};
use clap::Subcommand;
use lockbox_codec::pem::encode_pem;
use lockbox_engine::Ca;
use serde_json::json;

use crate::backend::{self, home_of};
use crate::files::{read_file, write_file};
use crate::global::Global;
use crate::output::print_json;

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
        /// The CA certificate with this renewal index (0: the first).
        #[arg(long, value_name = "N", conflicts_with_all = ["exchange", "chain"])]
        renewal: Option<u32>,
        /// The cross-certificates between CA keys made by renewals with a new key.
        #[arg(long, conflicts_with_all = ["exchange", "chain", "renewal"])]
        cross: bool,
    },
    /// Renew the CA certificate (the service must be stopped): with the same
    /// key, or --new-key (cross-certificates between the keys; the old key
    /// keeps signing the CRLs of what it issued).
    Renew {
        /// Generate a new CA key.
        #[arg(long = "new-key")]
        new_key: bool,
        /// The new key's type: rsa2048, rsa3072, rsa4096, p256, p384 (with --new-key).
        #[arg(long)]
        key: Option<String>,
        /// Validity of the new certificate, e.g. 10y (default: ca.validity).
        #[arg(long)]
        validity: Option<String>,
        /// For a subordinate CA: write the renewal request for the parent here.
        #[arg(long = "csr-out", value_name = "FILE")]
        csr_out: Option<PathBuf>,
        /// Also write the new CA certificate here (PEM).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write a CA exchange private key (PEM, mode 0600; encrypted under the CA
    /// passphrase when the CA key is) for offline diagnosis of archival
    /// requests (`lockbox dump --privatekey --key FILE`). Local administrator
    /// only (--home); audited. Whoever holds it can open captured requests.
    #[command(name = "exchange-key")]
    ExchangeKey {
        /// Output file (created 0600).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The exchange certificate's serial number (hex); default: the current one.
        #[arg(long)]
        serial: Option<String>,
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

/// `lockbox ca ...`
pub async fn ca(g: &Global, cmd: CaCmd) -> Result<ExitCode> {
    match cmd {
        CaCmd::Cert {
            out,
            chain,
            exchange,
            renewal,
            cross,
        } => cert(g, out, chain, exchange, renewal, cross).await?,
        CaCmd::Renew {
            new_key,
            key,
            validity,
            csr_out,
            out,
        } => renew(g, new_key, key, validity, csr_out, out).await?,
        CaCmd::Install { cert, chain } => install(g, cert, chain).await?,
        CaCmd::ExchangeKey { out, serial } => {
            crate::backend::local_only(g, "ca exchange-key")?;
            let l = crate::backend::local(g).await?;
            let pem =
                l.ca.export_exchange_key(&l.actor, serial.as_deref())
                    .await?;
            crate::files::write_secret(&out, pem.as_bytes())?;
            println!("Exchange key written to {} (mode 0600)", out.display());
        }
        CaCmd::Templates(t) => templates(g, t).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `lockbox ca cert`: the CA (or exchange) certificate, or the chain, as PEM.
async fn cert(
    g: &Global,
    out: Option<PathBuf>,
    chain: bool,
    exchange: bool,
    renewal: Option<u32>,
    cross: bool,
) -> Result<()> {
    let b = backend::open(g).await?;
    let ders = if let Some(n) = renewal {
        vec![b.ca_cert_of_renewal(n).await?]
    } else if cross {
        b.cross_certs().await?
    } else if exchange {
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
    Ok(())
}

/// `lockbox ca renew`: a new CA certificate (same or new key).
async fn renew(
    g: &Global,
    new_key: bool,
    key: Option<String>,
    validity: Option<String>,
    csr_out: Option<PathBuf>,
    out: Option<PathBuf>,
) -> Result<()> {
    if g.server.is_some() {
        bail!("'ca renew' works on the local CA home only");
    }
    let home = home_of(g)?;
    // Every node reads its CA certificates at start: renew with the service stopped.
    let _lock = lockbox_engine::config::Home::new(&home)
        .lock_service()
        .map_err(|e| anyhow::anyhow!("stop 'lockbox serve' on this home first: {e}"))?;
    let l = backend::local(g).await?;
    let opts = lockbox_engine::ca_renewal::RenewOptions {
        new_key,
        key: key
            .as_deref()
            .map(lockbox_crypto::KeySpec::from_str)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--key: {e}"))?,
        validity: validity
            .as_deref()
            .map(lockbox_engine::period::Period::parse)
            .transpose()?,
    };
    if let Some(path) = csr_out {
        let pem = l.ca.request_renewal(&l.actor, &opts).await?;
        write_file(&path, pem.as_bytes())?;
        if g.json {
            print_json(&json!({ "csr_out": path, "new_key": new_key }))?;
        } else {
            println!(
                "Renewal request written to {}: have the parent CA sign it, then run \
                 'lockbox ca install CERT --chain PARENT_CHAIN'",
                path.display()
            );
        }
        return Ok(());
    }
    let o = l.ca.renew(&l.actor, &opts).await?;
    if let Some(p) = &out {
        write_file(p, o.certificate_pem.as_bytes())?;
    }
    if g.json {
        print_json(&o)?;
    } else {
        println!(
            "CA certificate renewed: renewal {} (key {}{}), serial {}, valid until {}",
            o.renewal,
            o.key_index,
            if o.new_key { ", new key" } else { "" },
            o.serial,
            lockbox_engine::period::rfc3339(o.not_after)
        );
        for c in &o.cross_certificates {
            println!("Cross-certificate: {c}");
        }
        if let Some(p) = out {
            println!("Written to {}", p.display());
        }
        println!("Copy the home to every node and start 'lockbox serve' again.");
    }
    Ok(())
}

/// `lockbox ca install`: the parent-signed certificate of a subordinate CA.
async fn install(g: &Global, cert: PathBuf, chain: Option<PathBuf>) -> Result<()> {
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
    Ok(())
}

/// Reports that the CA now issues template `n` (`enabled`) or no longer does.
fn print_ca_template(g: &Global, n: &str, enabled: bool) -> Result<()> {
    if g.json {
        print_json(&json!({ "template": n, "enabled": enabled }))?
    } else if enabled {
        println!("The CA now issues '{n}'")
    } else {
        println!("The CA no longer issues '{n}'")
    }
    Ok(())
}

/// `lockbox ca templates ...`
async fn templates(g: &Global, t: CaTemplatesCmd) -> Result<()> {
    let b = backend::open(g).await?;
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
            print_ca_template(g, &n, true)?;
        }
        CaTemplatesCmd::Remove { name } => {
            let n = b.set_ca_template(&name, false).await?;
            print_ca_template(g, &n, false)?;
        }
    }
    Ok(())
}
