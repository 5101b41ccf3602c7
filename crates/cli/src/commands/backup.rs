//! `lockbox backup`, `lockbox backup verify` and `lockbox restore`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use lockbox_engine::backup::Manifest;
use serde_json::json;
use zeroize::Zeroizing;

use crate::backend::{local_who, Local, Remote};
use crate::files::read_secret_file;
use crate::global::Global;

/// Environment variable holding the backup passphrase (when no file is given).
pub const BACKUP_PASSPHRASE_ENV: &str = "LOCKBOX_BACKUP_PASSPHRASE";

/// `lockbox backup --out DIR` or `lockbox backup verify DIR`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    cmd: Option<BackupCmd>,
    /// Directory to create the backup in (absent or empty).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// File holding the backup passphrase (else LOCKBOX_BACKUP_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Also back up the CA exchange private keys (local administrator on
    /// --home only). Left out by default: whoever holds them could open
    /// captured archival requests without a KRA; a restored CA makes a new
    /// exchange certificate.
    #[arg(long)]
    include_exchange_keys: bool,
}

#[derive(Subcommand, Debug)]
enum BackupCmd {
    /// Check a backup (manifest, hashes, database, keys against certificates) without restoring.
    Verify {
        /// The backup directory.
        dir: PathBuf,
        /// File holding the backup passphrase (else LOCKBOX_BACKUP_PASSPHRASE).
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
}

/// `lockbox restore DIR` into the home given by --home / LOCKBOX_HOME.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup directory.
    dir: PathBuf,
    /// File holding the backup passphrase (else LOCKBOX_BACKUP_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Move an existing (non-empty) home aside and restore in its place.
    #[arg(long)]
    force: bool,
    /// The database of the restored CA instead of the one the backup's
    /// configuration names: `sqlite:FILE` or an empty PostgreSQL database.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

/// The backup passphrase: from its file, else LOCKBOX_BACKUP_PASSPHRASE; required.
fn backup_passphrase(file: Option<&Path>) -> Result<Zeroizing<Vec<u8>>> {
    if let Some(f) = file {
        return Ok(Zeroizing::new(read_secret_file(f)?.as_bytes().to_vec()));
    }
    match std::env::var(BACKUP_PASSPHRASE_ENV) {
        Ok(p) if !p.is_empty() => Ok(Zeroizing::new(p.into_bytes())),
        _ => bail!(
            "a backup passphrase is required: --passphrase-file FILE or {BACKUP_PASSPHRASE_ENV}"
        ),
    }
}

/// The local CA home; backup and restore refuse --server.
fn local_home(g: &Global) -> Result<PathBuf> {
    if g.server.is_some() {
        bail!("backup and restore work on the local CA home (--home)");
    }
    g.home
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no CA home: give --home DIR or set LOCKBOX_HOME"))
}

/// Runs `lockbox backup`.
pub async fn backup(g: &Global, a: BackupArgs) -> Result<ExitCode> {
    if let Some(BackupCmd::Verify {
        dir,
        passphrase_file,
    }) = a.cmd
    {
        return verify(g, &dir, passphrase_file.as_deref()).await;
    }
    let out = a
        .out
        .ok_or_else(|| anyhow::anyhow!("give --out DIR (or 'backup verify DIR')"))?;
    if a.include_exchange_keys && g.server.is_some() {
        bail!("--include-exchange-keys is for the local administrator only (lockbox --home DIR backup)");
    }
    let pass = backup_passphrase(a.passphrase_file.as_deref())?;
    let m = if let Some(server) = &g.server {
        backup_remote(g, server, &pass, &out).await?
    } else {
        let local = Local::open(&local_home(g)?).await?;
        let options = lockbox_engine::backup::BackupOptions {
            include_exchange_keys: a.include_exchange_keys,
        };
        local
            .ca
            .backup_with(&local.actor, &out, &pass, options)
            .await?
    };
    if g.json {
        println!("{}", serde_json::to_string_pretty(&m)?);
    } else {
        println!("Backed up {} to {}", m.ca_name, out.display());
        println!(
            "Files: {} ({} keys, encrypted under the backup passphrase)",
            m.files.len(),
            m.files.iter().filter(|f| f.kind == "key").count()
        );
        println!("Audit records: {} (head {})", m.audit_records, m.audit_head);
    }
    Ok(ExitCode::SUCCESS)
}

/// A Backup Operator (or administrator) backs up a running service: the
/// archive is downloaded into `out` and verified there.
async fn backup_remote(g: &Global, server: &str, pass: &[u8], out: &Path) -> Result<Manifest> {
    let remote = Remote::new(server, g.ca_cert.as_ref(), g.token.clone())?;
    let text = Zeroizing::new(
        String::from_utf8(pass.to_vec()).context("the backup passphrase must be UTF-8")?,
    );
    remote.backup_into(&text, out).await?;
    let check = lockbox_engine::backup::verify_backup(out, pass).await?;
    if !check.problems.is_empty() {
        bail!(
            "the downloaded backup in {} does not verify: {}",
            out.display(),
            check.problems.join("; ")
        );
    }
    Ok(check.manifest)
}

/// `lockbox backup verify DIR`: exit 7 when the backup has problems.
async fn verify(g: &Global, dir: &Path, passphrase_file: Option<&Path>) -> Result<ExitCode> {
    let pass = backup_passphrase(passphrase_file)?;
    let check = lockbox_engine::backup::verify_backup(dir, &pass).await?;
    if g.json {
        println!("{}", serde_json::to_string_pretty(&check)?);
    } else {
        println!(
            "Backup of {} taken at {} ({} audit records)",
            check.manifest.ca_name,
            lockbox_engine::period::rfc3339(check.manifest.created_at),
            check.manifest.audit_records
        );
        println!(
            "Files verified: {}/{}",
            check.files_ok,
            check.manifest.files.len()
        );
        println!("Keys matched to certificates: {}", check.keys_ok);
        print_problems(
            &check.problems,
            "Backup verified.",
            "Backup FAILED verification.",
        );
    }
    Ok(exit_status(&check.problems))
}

/// Runs `lockbox restore`.
pub async fn restore(g: &Global, a: RestoreArgs) -> Result<ExitCode> {
    let home = local_home(g)?;
    let pass = backup_passphrase(a.passphrase_file.as_deref())?;
    let r = lockbox_engine::backup::restore_into(
        &a.dir,
        &home,
        &pass,
        a.force,
        &local_who(),
        a.database.as_deref(),
    )
    .await?;
    if g.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "manifest": r.manifest, "previous_home_moved_to": r.previous_home_moved_to,
                "audit_records": r.audit_records, "kras": r.kras, "problems": r.problems,
            }))?
        );
    } else {
        println!(
            "Restored {} (backup taken at {}) into {}",
            r.manifest.ca_name,
            lockbox_engine::period::rfc3339(r.manifest.created_at),
            home.display()
        );
        if let Some(p) = &r.previous_home_moved_to {
            println!("The previous home was moved to {}", p.display());
        }
        println!(
            "Audit records: {} ({} at the backup; the restore is record {})",
            r.audit_records, r.manifest.audit_records, r.audit_records
        );
        for (s, st) in &r.kras {
            println!("KRA {s}: {st}");
        }
        print_problems(
            &r.problems,
            "Restore complete: database, audit chain, CA key and KRAs check out.",
            "Restore finished WITH PROBLEMS (see above).",
        );
    }
    Ok(exit_status(&r.problems))
}

/// Prints each of `problems`, then the verdict: `clean` when there are
/// none, else `failed`.
fn print_problems(problems: &[String], clean: &str, failed: &str) {
    for p in problems {
        println!("PROBLEM: {p}");
    }
    println!("{}", if problems.is_empty() { clean } else { failed });
}

/// Success without `problems`, else exit status 7.
fn exit_status(problems: &[String]) -> ExitCode {
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(7)
    }
}
