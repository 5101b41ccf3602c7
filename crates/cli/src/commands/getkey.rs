//! `lockbox getkey`: the certificate manager finds recovery candidates and
//! retrieves their recovery blobs (or a script that recovers them all).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use lockbox_engine::period::rfc3339;
use lockbox_engine::recovery::{Candidate, HistoryEntry, RecoveryBlob};
use serde_json::json;

use super::recovery_script;
use crate::backend::Backend;
use crate::files::write_secret;
use crate::global::Global;
use crate::output::safe;

#[derive(Args, Debug)]
pub struct GetkeyArgs {
    /// TOKEN [OUTFILE] (CN, UPN, DOMAIN\user, e-mail, requester, serial, SHA-1 thumbprint or key ID);
    /// with --p7m: [OUTDIR].
    #[arg(num_args = 0..=2)]
    pub args: Vec<String>,
    /// Write a POSIX shell script that recovers every candidate of TOKEN into one PKCS#12
    /// (with --history: every archived key of the user's key history).
    #[arg(long)]
    pub script: bool,
    /// List the key history of TOKEN: every certificate and archived key of the
    /// user across renewals and re-keys, oldest first.
    #[arg(long)]
    pub history: bool,
    /// Find the keys able to decrypt this encrypted message (.p7m, DER/PEM/MIME) and retrieve their blobs.
    #[arg(long, value_name = "FILE")]
    pub p7m: Option<PathBuf>,
}

/// Prints recovery candidates (JSON with `--json`).
fn print_candidates(g: &Global, list: &[Candidate]) -> Result<()> {
    if g.json {
        println!("{}", serde_json::to_string_pretty(list)?);
        return Ok(());
    }
    for c in list {
        println!("Serial Number: {}", c.serial);
        println!("  Subject: {}", safe(&c.subject));
        println!("  UPN: {}", safe(c.upn.as_deref().unwrap_or("")));
        println!("  NotBefore: {}", rfc3339(c.not_before));
        println!("  NotAfter: {}", rfc3339(c.not_after));
        println!("  Template: {}", safe(c.template.as_deref().unwrap_or("")));
        println!("  Version: {}", safe(c.version.as_deref().unwrap_or("")));
        println!("  Cert Hash(sha1): {}", c.cert_hash);
        println!(
            "  RequestID: {}  Requester: {}",
            c.request_id,
            safe(&c.requester)
        );
    }
    println!("{} candidate(s)", list.len());
    Ok(())
}

/// Prints a key history (JSON with `--json`).
fn print_history(g: &Global, list: &[HistoryEntry]) -> Result<()> {
    if g.json {
        println!("{}", serde_json::to_string_pretty(list)?);
        return Ok(());
    }
    for e in list {
        let c = &e.candidate;
        let state = match (e.superseded_by, e.disposition.as_str()) {
            (_, "revoked") => "revoked".to_string(),
            (Some(next), _) => format!("superseded by request {next}"),
            (None, _) => "current".to_string(),
        };
        println!("Serial Number: {} ({state})", c.serial);
        println!("  Subject: {}", safe(&c.subject));
        println!("  NotBefore: {}", rfc3339(c.not_before));
        println!("  NotAfter: {}", rfc3339(c.not_after));
        println!("  Template: {}", safe(c.template.as_deref().unwrap_or("")));
        println!("  Archived key: {}", if e.archived { "yes" } else { "no" });
        if let Some(prev) = e.renewal_of {
            println!("  Renews: request {prev}");
        }
        println!(
            "  RequestID: {}  Requester: {}",
            c.request_id,
            safe(&c.requester)
        );
    }
    let keys = list.iter().filter(|e| e.archived).count();
    println!(
        "{} certificate(s), {keys} archived key(s) in the key history",
        list.len()
    );
    Ok(())
}

/// Reports a recovery blob written to `out` and the agents able to open it.
fn print_blob(g: &Global, b: &RecoveryBlob, out: &Path) -> Result<()> {
    if g.json {
        println!(
            "{}",
            json!({ "out": out, "candidate": b.candidate, "recipients": b.recipients })
        );
        return Ok(());
    }
    println!(
        "Recovery blob for serial {} ({}) written to {}",
        b.candidate.serial,
        safe(&b.candidate.subject),
        out.display()
    );
    println!("Recipient Info (KRAs able to open it):");
    for r in &b.recipients {
        println!(
            "  issuer: {}\n  serial: {}\n  sha1:   {}",
            safe(&r.issuer),
            r.serial,
            r.sha1
        );
    }
    Ok(())
}

/// `lockbox getkey`
pub async fn getkey(g: &Global, b: Box<dyn Backend>, a: GetkeyArgs) -> Result<ExitCode> {
    if let Some(msg) = &a.p7m {
        let data = std::fs::read(msg).with_context(|| format!("reading {}", msg.display()))?;
        let outdir = PathBuf::from(a.args.first().cloned().unwrap_or_else(|| ".".into()));
        std::fs::create_dir_all(&outdir)?;
        let list = b.candidates_for_message(data).await?;
        if list.is_empty() {
            bail!("no archived key matches a recipient of {}", msg.display());
        }
        for c in &list {
            let blob = b.get_key_by_request(c.request_id).await?;
            let path = outdir.join(format!("{}.rec", c.serial));
            write_secret(&path, &blob.blob)?;
            print_blob(g, &blob, &path)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let token = a.args.first().ok_or_else(|| {
        anyhow!("give a search token (CN, UPN, DOMAIN\\user, e-mail, serial, thumbprint or key ID)")
    })?;
    if a.history {
        let history = b.key_history(token).await?;
        if a.script {
            let list: Vec<Candidate> = history
                .into_iter()
                .filter(|e| e.archived)
                .map(|e| e.candidate)
                .collect();
            if list.is_empty() {
                bail!("no archived key in the key history of '{token}'");
            }
            print!("{}", recovery_script::script(g, token, &list));
            return Ok(ExitCode::SUCCESS);
        }
        print_history(g, &history)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.script {
        let list = b.find_candidates(token).await?;
        if list.is_empty() {
            bail!("no archived key matches '{token}'");
        }
        print!("{}", recovery_script::script(g, token, &list));
        return Ok(ExitCode::SUCCESS);
    }
    match a.args.get(1) {
        None => {
            let list = b.find_candidates(token).await?;
            print_candidates(g, &list)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(out) => {
            let blob = match b.get_key(token).await {
                Ok(blob) => blob,
                Err(e) if e.code() == lockbox_engine::codes::TYPE_E_AMBIGUOUSNAME => {
                    if !g.json {
                        print_candidates(g, &b.find_candidates(token).await.unwrap_or_default())?;
                    }
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            };
            let out = PathBuf::from(out);
            write_secret(&out, &blob.blob)?;
            print_blob(g, &blob, &out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
