//! `lockbox revoke` and `lockbox crl publish`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use lockbox_codec::pem::encode_pem;
use lockbox_engine::period::rfc3339;

use crate::backend;
use crate::files::write_file;
use crate::global::Global;
use crate::output::print_json;

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// Serial number (hex; spaces and colons allowed).
    pub serial: String,
    /// Reason: unspecified, keyCompromise, cACompromise, affiliationChanged,
    /// superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise.
    /// A certificate on hold (certificateHold) may later be revoked with another reason.
    #[arg(long, default_value = "unspecified", conflicts_with = "unrevoke")]
    pub reason: String,
    /// Release a certificate on hold instead: it is valid again, and the next
    /// delta CRL lists it as removeFromCRL.
    #[arg(long)]
    pub unrevoke: bool,
}

#[derive(Subcommand, Debug)]
pub enum CrlCmd {
    /// Sign and publish a new CRL.
    Publish {
        /// Also write it here (DER; PEM if the name ends in .pem).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Publish a delta CRL (what changed since the latest base CRL)
        /// instead of a base CRL.
        #[arg(long)]
        delta: bool,
        /// The CRL of this CA key (0: the first; default: the current key);
        /// an earlier key signs the CRLs of what it issued.
        #[arg(long = "key-index", value_name = "K")]
        key_index: Option<u32>,
    },
}

/// `lockbox revoke SERIAL`
pub async fn revoke(g: &Global, args: RevokeArgs) -> Result<ExitCode> {
    if args.unrevoke {
        let r = backend::open(g).await?.unrevoke(&args.serial).await?;
        if g.json {
            print_json(&r)?;
        } else {
            println!(
                "Released from hold: RequestId {} serial {}",
                r.request_id,
                r.cert.as_ref().map(|c| c.serial.as_str()).unwrap_or("")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let r = backend::open(g)
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

/// `lockbox crl publish`
pub async fn crl(g: &Global, cmd: CrlCmd) -> Result<ExitCode> {
    let CrlCmd::Publish {
        out,
        delta,
        key_index,
    } = cmd;
    let b = backend::open(g).await?;
    let info = match (key_index, delta) {
        (Some(_), _) => b.publish_crl_of_key(delta, key_index).await?,
        (None, true) => b.publish_delta_crl().await?,
        (None, false) => b.publish_crl().await?,
    };
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
        match info.delta_base {
            Some(base) => println!(
                "Delta CRL number {} (base CRL {base}) published: {} changed, next update {}",
                info.number,
                info.entries,
                rfc3339(info.next_update)
            ),
            None => println!(
                "CRL number {} published: {} revoked, next update {}",
                info.number,
                info.entries,
                rfc3339(info.next_update)
            ),
        }
        if let Some(p) = out {
            println!("Written to {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
