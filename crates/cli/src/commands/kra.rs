//! `lockbox kra`: the Key Recovery Agent certificates of this CA.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Subcommand;
use lockbox_engine::period::rfc3339;
use serde_json::json;

use crate::backend::Backend;
use crate::files::read;
use crate::global::Global;
use crate::output::safe;

#[derive(Subcommand, Debug)]
pub enum KraCmd {
    /// Add a KRA certificate: a certificate file, or the serial number of a certificate this CA issued.
    Add {
        /// CERTFILE or SERIAL.
        cert: String,
        /// For a KRA certificate of another CA: its chain up to the root (PEM).
        #[arg(long, value_name = "FILE")]
        chain: Option<PathBuf>,
        /// For a KRA certificate of another CA: its issuer's CRL (file path or http:// URL).
        #[arg(long, value_name = "FILE|URL")]
        crl: Option<String>,
    },
    /// Remove a KRA certificate (thumbprint or serial). Refused when it is the
    /// last configured agent able to open some archived keys (they are listed).
    Remove {
        id: String,
        /// Remove it even though some archived keys then have no configured agent.
        #[arg(long)]
        force: bool,
    },
    /// List the configured KRA certificates and their status.
    List,
    /// Set how many KRAs each archived key is encrypted to.
    Required { n: usize },
}

/// `lockbox kra ...`
pub async fn kra(g: &Global, b: Box<dyn Backend>, cmd: KraCmd) -> Result<ExitCode> {
    match cmd {
        KraCmd::Add { cert, chain, crl } => {
            let chain = chain.map(|p| read(&p)).transpose()?;
            let bytes = match std::fs::read(&cert) {
                Ok(b) => b,
                Err(_) if lockbox_codec::hexfmt::normalize_hex(&cert).is_some() => {
                    cert.into_bytes()
                }
                Err(e) => bail!("reading {cert}: {e}"),
            };
            let k = b.kra_add(bytes, chain, crl).await?;
            if g.json {
                println!("{}", serde_json::to_string_pretty(&k)?);
            } else {
                println!(
                    "Added KRA certificate {} ({}): {}",
                    k.thumbprint,
                    safe(&k.subject),
                    k.status
                );
            }
        }
        KraCmd::Remove { id, force } => {
            let t = b.kra_remove(&id, force).await?;
            if g.json {
                println!("{}", json!({ "removed": t }))
            } else {
                println!("Removed KRA certificate {t}")
            }
        }
        KraCmd::List => {
            let list = b.kra_list().await?;
            let required = b.kra_required(None).await?;
            if g.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({ "required": required, "certificates": list })
                    )?
                );
            } else {
                println!("Key recovery agents required per key: {required}");
                for k in &list {
                    println!(
                        "{}  {:<28} serial {}  expires {}  {}",
                        k.thumbprint,
                        k.status,
                        k.serial,
                        rfc3339(k.not_after),
                        safe(&k.subject)
                    );
                }
                println!(
                    "{} KRA certificate(s), {} valid",
                    list.len(),
                    list.iter().filter(|k| k.status == "valid").count()
                );
            }
        }
        KraCmd::Required { n } => {
            let v = b.kra_required(Some(n)).await?;
            if g.json {
                println!("{}", json!({ "required": v }))
            } else {
                println!("Each archived key is encrypted to {v} KRA(s)")
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
