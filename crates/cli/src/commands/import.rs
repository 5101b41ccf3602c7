//! `importkms` and `importcert`: manual archival and migration with the
//! seed's counters, a per-key report, and a progress bar on a terminal.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use lockbox_engine::import::{ImportItem, ImportOptions};
use lockbox_engine::EngineError;

use super::import_report::{print_summary, stops_the_run, write_report, ImportRun};
use crate::backend::{local, Local};
use crate::global::Global;

/// What the import of one file gave: its items, or the error.
type FileResult = (String, Result<Vec<ImportItem>, EngineError>);

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

/// The files named, directories searched recursively for the extensions `exts`.
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

/// `lockbox importkms` (keys) and `lockbox importcert` (certificates only).
pub async fn run(g: &Global, a: ImportArgs, keys: bool) -> Result<ExitCode> {
    if g.server.is_some() {
        bail!("import works on the local CA home (--home)");
    }
    let local = local(g).await?;
    let password = pkcs12_password(&a)?;
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
    let opts = ImportOptions {
        foreign: a.foreign,
        keys,
    };
    let bar = progress_bar(
        !g.json && std::io::stderr().is_terminal() && files.len() > 1,
        files.len(),
    );
    let mut run = ImportRun::default();
    import_exports(&local, &a, &exports, &opts, &mut run).await?;
    // Keys: batches of files, one transaction each; certificates: one by one.
    for chunk in files.chunks(if keys { 250 } else { 1 }) {
        let loaded = read_chunk(chunk, &mut run);
        let results = match import_chunk(&local, &loaded, keys, &password, &opts).await {
            Ok(r) => r,
            Err(e) => {
                bar.finish_and_clear();
                return Err(e.into());
            }
        };
        for (source, result) in results {
            if let Err(e) = run.record(source, result) {
                bar.finish_and_clear();
                return Err(e.into());
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    if let Some(r) = &a.report {
        write_report(r, &run.items, &run.failures)?;
    }
    print_summary(g, &run, files.len(), exports.len(), keys)?;
    Ok(if run.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The PKCS#12 password: -p, else its file, else empty.
fn pkcs12_password(a: &ImportArgs) -> Result<String> {
    Ok(match (&a.password, &a.password_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("reading {}", f.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
        (None, None) => String::new(),
    })
}

/// A progress bar over `len` files, drawn only when `show`.
fn progress_bar(show: bool, len: usize) -> indicatif::ProgressBar {
    let bar = if show {
        indicatif::ProgressBar::new(len as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files {per_sec} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Key-history export files (.lbx): each opened with this server's export
/// key and checked against the source CA. Archival not configured stops the
/// run; other failures are recorded per file.
async fn import_exports(
    local: &Local,
    a: &ImportArgs,
    exports: &[PathBuf],
    opts: &ImportOptions,
    run: &mut ImportRun,
) -> Result<()> {
    for f in exports {
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
        let dest_key = lockbox_engine::load_private_key(&key_bytes, None)?;
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
                opts,
            )
            .await
        {
            Ok((issuer, users, mut v)) => {
                run.export_lines
                    .push(format!("Processing KMS exports from: {issuer}"));
                run.export_lines
                    .push(format!("  {source}: signature verified; lock box opened"));
                run.export_users += users;
                run.items.append(&mut v);
            }
            Err(e) => {
                if stops_the_run(&e) {
                    return Err(e.into());
                }
                run.failures.push((source, e.to_string()));
            }
        }
    }
    Ok(())
}

/// Reads the files of a chunk; unreadable ones are recorded as failures.
fn read_chunk(chunk: &[PathBuf], run: &mut ImportRun) -> Vec<(String, Vec<u8>)> {
    let mut loaded = Vec::new();
    for f in chunk {
        let source = f.display().to_string();
        match std::fs::read(f) {
            Ok(data) => loaded.push((source, data)),
            Err(e) => run.failures.push((source, format!("cannot read: {e}"))),
        }
    }
    loaded
}

/// Imports one chunk: PKCS#12 files in one transaction, or certificates one by one.
async fn import_chunk(
    local: &Local,
    loaded: &[(String, Vec<u8>)],
    keys: bool,
    password: &str,
    opts: &ImportOptions,
) -> Result<Vec<FileResult>, EngineError> {
    if keys {
        return local
            .ca
            .import_pkcs12_many(&local.actor, loaded, password, opts)
            .await;
    }
    let mut r = Vec::new();
    for (source, data) in loaded {
        let one = match lockbox_codec::pem::decode_input(data) {
            Ok(d) => local
                .ca
                .import_certificate(&local.actor, &d.der, source, opts)
                .await
                .map(|i| vec![i]),
            Err(e) => Err(e.into()),
        };
        r.push((source.clone(), one));
    }
    Ok(r)
}
