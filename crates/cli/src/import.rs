//! `importkms` and `importcert`: manual archival and migration with the
//! seed's counters, a per-key report, and a progress bar on a terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use lockbox_engine::import::{ImportItem, ImportOptions};
use serde_json::json;

use crate::backend::Local;
use crate::Global;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Files or directories (searched recursively for .pfx/.p12, or certificates for importcert).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Import foreign certificates (also needs the CA setting kra.enable_foreign).
    #[arg(short = 'f')]
    pub foreign: bool,
    /// Password of the PKCS#12 files.
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// File holding the PKCS#12 password.
    #[arg(long = "password-file", value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Write one line per key (owner, Key ID, serial, issuer, template, source, outcome, error): .csv or .json.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

fn collect(inputs: &[PathBuf], exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                let Ok(rd) = std::fs::read_dir(&d) else {
                    continue;
                };
                let mut entries: Vec<PathBuf> =
                    rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
                entries.sort();
                for e in entries {
                    if e.is_dir() {
                        stack.push(e);
                    } else if e
                        .extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(|x| exts.iter().any(|y| x.eq_ignore_ascii_case(y)))
                    {
                        out.push(e);
                    }
                }
            }
        } else {
            out.push(p.clone());
        }
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_report(path: &Path, items: &[ImportItem], failures: &[(String, String)]) -> Result<()> {
    let is_json = path.extension().is_some_and(|e| e == "json");
    let text = if is_json {
        serde_json::to_string_pretty(
            &json!({ "keys": items, "failed_files": failures.iter().map(|(f, e)| json!({ "source": f, "error": e })).collect::<Vec<_>>() }),
        )?
    } else {
        let mut s =
            String::from("owner,email,upn,key_id,serial,issuer,template,source,outcome,error\n");
        for i in items {
            let row = [
                i.owner.as_str(),
                i.email.as_deref().unwrap_or(""),
                i.upn.as_deref().unwrap_or(""),
                i.key_id.as_str(),
                i.serial.as_deref().unwrap_or(""),
                i.issuer.as_deref().unwrap_or(""),
                i.template.as_deref().unwrap_or(""),
                i.source.as_str(),
                i.outcome.as_str(),
                i.error.as_deref().unwrap_or(""),
            ];
            s.push_str(
                &row.iter()
                    .map(|f| csv_field(f))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            s.push('\n');
        }
        for (f, e) in failures {
            s.push_str(&format!(
                ",,,,,,,{},file error,{}\n",
                csv_field(f),
                csv_field(e)
            ));
        }
        s
    };
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `lockbox importkms` (keys) and `lockbox importcert` (certificates only).
pub async fn run(g: &Global, a: ImportArgs, keys: bool) -> Result<ExitCode> {
    if g.server.is_some() {
        bail!("import works on the local CA home (--home)");
    }
    let home = g
        .home
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no CA home: give --home DIR or set LOCKBOX_HOME"))?;
    let local = Local::open(&home).await?;
    let password = match (&a.password, &a.password_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("reading {}", f.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
        (None, None) => String::new(),
    };
    let files = collect(
        &a.inputs,
        if keys {
            &["pfx", "p12"]
        } else {
            &["cer", "crt", "pem", "der"]
        },
    );
    let opts = ImportOptions {
        foreign: a.foreign,
        keys,
    };
    let show_progress = !g.json && std::io::stderr().is_terminal() && files.len() > 1;
    let bar = if show_progress {
        indicatif::ProgressBar::new(files.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files {per_sec} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut items: Vec<ImportItem> = Vec::new();
    let mut failures: Vec<(String, String)> = Vec::new();
    // Keys: batches of files, one transaction each; certificates: one by one.
    for chunk in files.chunks(if keys { 250 } else { 1 }) {
        let mut loaded = Vec::new();
        for f in chunk {
            let source = f.display().to_string();
            match std::fs::read(f) {
                Ok(data) => loaded.push((source, data)),
                Err(e) => failures.push((source, format!("cannot read: {e}"))),
            }
        }
        let results: Vec<(String, Result<Vec<ImportItem>, lockbox_engine::EngineError>)> = if keys {
            match local
                .ca
                .import_pkcs12_many(&local.actor, &loaded, &password, &opts)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    bar.finish_and_clear();
                    return Err(e.into());
                }
            }
        } else {
            let mut r = Vec::new();
            for (source, data) in &loaded {
                let one = match lockbox_codec::pem::decode_input(data) {
                    Ok(d) => local
                        .ca
                        .import_certificate(&local.actor, &d.der, source, &opts)
                        .await
                        .map(|i| vec![i]),
                    Err(e) => Err(e.into()),
                };
                r.push((source.clone(), one));
            }
            r
        };
        for (source, result) in results {
            match result {
                Ok(mut v) => items.append(&mut v),
                Err(e) => {
                    // Archival not configured stops the run: nothing can be archived.
                    if matches!(e.code(), 0x8009_400A | 0x8009_400B) {
                        bar.finish_and_clear();
                        return Err(e.into());
                    }
                    failures.push((source, e.to_string()));
                }
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    if let Some(r) = &a.report {
        write_report(r, &items, &failures)?;
    }
    let count = |o: &str| items.iter().filter(|i| i.outcome == o).count();
    let mut owners: Vec<&str> = items
        .iter()
        .map(|i| i.owner.as_str())
        .filter(|o| !o.is_empty())
        .collect();
    owners.sort();
    owners.dedup();
    let imported = count("archived") + count("imported");
    let foreign_imported = items
        .iter()
        .filter(|i| i.foreign && (i.outcome == "archived" || i.outcome == "imported"))
        .count();
    let not_imported = count("refused foreign") + count("error");
    let keys_total = items
        .iter()
        .filter(|i| i.outcome != "ignored signature")
        .count();
    let keys_archived = count("archived") + count("unmatched");
    let summary = json!({
        "files": files.len(),
        "users": owners.len(),
        "ignored_signature_certificates": count("ignored signature"),
        "certificates_with_keys": if keys { items.iter().filter(|i| i.serial.is_some() && i.outcome != "ignored signature").count() } else { 0 },
        "foreign_certificates_imported": foreign_imported,
        "certificates_imported": imported,
        "certificates_not_imported": not_imported,
        "already_present": count("already archived") + count("already imported"),
        "keys": if keys { keys_total } else { 0 },
        "keys_archived": keys_archived,
        "keys_not_archived": if keys { keys_total.saturating_sub(keys_archived + count("already archived")) } else { 0 },
        "unmatched_keys": count("unmatched"),
        "failed_files": failures.iter().map(|(f, e)| json!({ "file": f, "error": e })).collect::<Vec<_>>(),
        "items": items,
        "success": failures.is_empty(),
    });
    let cmd = if keys { "importkms" } else { "importcert" };
    if g.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        if let Some(issuer) = items.iter().filter_map(|i| i.issuer.as_deref()).next() {
            println!(
                "Processing {} from: {issuer}",
                if keys { "key archives" } else { "certificates" }
            );
        }
        println!("Users: {}", summary["users"]);
        println!(
            "Ignored signature certificates: {}",
            summary["ignored_signature_certificates"]
        );
        if keys {
            println!(
                "Certificates with keys: {}",
                summary["certificates_with_keys"]
            );
        }
        println!("Foreign certificates imported: {foreign_imported}");
        println!("Certificates imported: {imported}");
        println!("Certificates not imported: {not_imported}");
        println!("Already present: {}", summary["already_present"]);
        if keys {
            println!("Keys: {}", summary["keys"]);
            println!("Keys archived: {keys_archived}");
            println!("Keys not archived: {}", summary["keys_not_archived"]);
            println!(
                "Unmatched keys (archived under their Key ID): {}",
                summary["unmatched_keys"]
            );
        }
        for i in items.iter().filter(|i| i.error.is_some()) {
            println!(
                "  {}: {} ({})",
                i.source,
                i.outcome,
                i.error.as_deref().unwrap_or("")
            );
        }
        for (f, e) in &failures {
            println!("  {f}: not processed: {e}");
        }
        if failures.is_empty() {
            println!("lockbox: {cmd} completed successfully.");
        } else {
            println!(
                "lockbox: {cmd} FAILED for {} of {} file(s).",
                failures.len(),
                files.len()
            );
        }
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
