//! `lockbox export-keys`: users' key histories for another server (KMS
//! "Export Users"), optionally removed here once written and verified.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;

use crate::backend::Local;
use crate::files::write_secret;
use crate::global::Global;

/// `lockbox export-keys`
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Export the keys of one user (any getkey token).
    #[arg(long, conflicts_with_all = ["group", "all"])]
    pub user: Option<String>,
    /// Export the keys of every member of a group.
    #[arg(long, conflicts_with = "all")]
    pub group: Option<String>,
    /// Export every archived key.
    #[arg(long)]
    pub all: bool,
    /// The destination's export certificate (the lock box is encrypted to it).
    #[arg(long, value_name = "CERT")]
    pub to: PathBuf,
    /// The export file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The key recovery agent's PKCS#12 (keys are decrypted to be re-locked for the destination).
    #[arg(long, value_name = "PFX")]
    pub kra: PathBuf,
    /// Its password (or LOCKBOX_KRA_PASSWORD).
    #[arg(
        long = "kra-password",
        env = "LOCKBOX_KRA_PASSWORD",
        hide_env_values = true
    )]
    pub kra_password: Option<String>,
    /// Delete the exported keys here once the file is written and verified (asks first; back up before).
    #[arg(long)]
    pub remove: bool,
    /// Answer yes to the --remove confirmation.
    #[arg(long)]
    pub yes: bool,
}

/// Writes a key-history export file.
pub async fn export(g: &Global, a: ExportArgs) -> Result<ExitCode> {
    use lockbox_engine::export::Selection;
    let home = g
        .home
        .clone()
        .ok_or_else(|| anyhow::anyhow!("export-keys works on the local CA home (--home)"))?;
    let local = Local::open(&home).await?;
    let selection = match (&a.user, &a.group, a.all) {
        (Some(u), _, _) => Selection::User(u.clone()),
        (None, Some(gr), _) => Selection::Group(gr.clone()),
        (None, None, true) => Selection::All,
        _ => bail!("choose --user TOKEN, --group G or --all"),
    };
    let dest = std::fs::read(&a.to).with_context(|| format!("reading {}", a.to.display()))?;
    let pfx = std::fs::read(&a.kra).with_context(|| format!("reading {}", a.kra.display()))?;
    let (pkcs8, certs) =
        lockbox_crypto::pkcs12::read_pfx(&pfx, a.kra_password.as_deref().unwrap_or(""))?;
    let kra_key = lockbox_crypto::SoftwareKey::from_pkcs8_der(&pkcs8)?;
    let kra_cert = certs
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the agent's PKCS#12 holds no certificate"))?;
    let export = local
        .ca
        .export_keys(&local.actor, &selection, &dest, &kra_key, &kra_cert)
        .await?;
    write_secret(&a.out, &export.file)?;
    // Verify what was written before anything is removed.
    let written = std::fs::read(&a.out)?;
    lockbox_crypto::cms::verify_signed_data(&written)
        .map_err(|e| anyhow::anyhow!("the written export does not verify: {e}"))?;
    if !g.json {
        println!(
            "Exported {} key(s) of {} user(s) to {}",
            export.request_ids.len(),
            export.users,
            a.out.display()
        );
    }
    if a.remove {
        let confirmed = a.yes
            || {
                if !std::io::stdin().is_terminal() {
                    bail!("--remove deletes the exported keys here: confirm with --yes (take a backup first)");
                }
                eprint!(
                    "Delete {} exported key(s) from this CA? Take a backup first. [y/N] ",
                    export.request_ids.len()
                );
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line.trim().eq_ignore_ascii_case("y")
            };
        if confirmed {
            local
                .ca
                .remove_exported_keys(&local.actor, &export.request_ids)
                .await?;
            if !g.json {
                println!(
                    "Removed {} exported key(s) from this CA",
                    export.request_ids.len()
                );
            }
        }
    }
    if g.json {
        println!(
            "{}",
            json!({ "out": a.out, "keys": export.request_ids.len(), "users": export.users, "removed": a.remove })
        );
    }
    Ok(ExitCode::SUCCESS)
}
