//! `importkms` and `importcert`: manual archival and migration with the
//! seed's counters, a per-key report, and a progress bar on a terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use lockbox_engine::codes;
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
    /// Key-history export files (.lbx): the trusted source CA certificate.
    #[arg(long = "source-ca", value_name = "FILE")]
    pub source_ca: Option<PathBuf>,
    /// Key-history export files: this server's export (lock box) private key.
    #[arg(long = "dest-key", value_name = "FILE")]
    pub dest_key: Option<PathBuf>,
    /// Key-history export files: this server's export certificate.
    #[arg(long = "dest-cert", value_name = "FILE")]
    pub dest_cert: Option<PathBuf>,
}

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
    crate::keys::write_secret(&a.out, &export.file)?;
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
    let all_files = collect(
        &a.inputs,
        if keys {
            &["pfx", "p12", "lbx"]
        } else {
            &["cer", "crt", "pem", "der"]
        },
    );
    let (exports, files): (Vec<PathBuf>, Vec<PathBuf>) = all_files
        .into_iter()
        .partition(|f| f.extension().is_some_and(|e| e == "lbx"));
    let mut export_lines: Vec<String> = Vec::new();
    let mut export_users = 0usize;
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
    for f in &exports {
        let (Some(src), Some(key), Some(cert)) = (&a.source_ca, &a.dest_key, &a.dest_cert) else {
            bail!(
                "{}: key-history exports need --source-ca, --dest-key and --dest-cert",
                f.display()
            );
        };
        let data = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let key_bytes = zeroize::Zeroizing::new(
            std::fs::read(key).with_context(|| format!("reading {}", key.display()))?,
        );
        let dest_key = lockbox_engine::ca::load_private_key(&key_bytes, None)?;
        let source = f.display().to_string();
        match local
            .ca
            .import_key_history(
                &local.actor,
                &data,
                &std::fs::read(src)?,
                &dest_key,
                &std::fs::read(cert)?,
                &source,
                &opts,
            )
            .await
        {
            Ok((issuer, users, mut v)) => {
                export_lines.push(format!("Processing KMS exports from: {issuer}"));
                export_lines.push(format!("  {source}: signature verified; lock box opened"));
                export_users += users;
                items.append(&mut v);
            }
            Err(e) => {
                if matches!(
                    e.code(),
                    codes::CERTSRV_E_KEY_ARCHIVAL_NOT_CONFIGURED | codes::CERTSRV_E_NO_VALID_KRA
                ) {
                    return Err(e.into());
                }
                failures.push((source, e.to_string()));
            }
        }
    }
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
                    if matches!(
                        e.code(),
                        codes::CERTSRV_E_KEY_ARCHIVAL_NOT_CONFIGURED
                            | codes::CERTSRV_E_NO_VALID_KRA
                    ) {
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
        "files": files.len() + exports.len(),
        "users": owners.len().max(export_users),
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
        for l in &export_lines {
            println!("{}", crate::output::safe_lines(l));
        }
        if let Some(issuer) = items
            .iter()
            .filter(|_| export_lines.is_empty())
            .filter_map(|i| i.issuer.as_deref())
            .next()
        {
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
