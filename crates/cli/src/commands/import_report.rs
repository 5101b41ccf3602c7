//! The outcome of an import run: what it gave, the per-key report file
//! (CSV or JSON) and the seed's summary counters.

use std::path::Path;

use anyhow::{Context, Result};
use lockbox_engine::codes;
use lockbox_engine::import::ImportItem;
use lockbox_engine::EngineError;
use serde_json::{json, Value};

use crate::global::Global;
use crate::output::{csv_field, safe_lines};

/// What an import run gave: the items, the files that failed, and for
/// key-history exports the lines to show and the number of users.
#[derive(Default)]
pub struct ImportRun {
    /// One per key or certificate met.
    pub items: Vec<ImportItem>,
    /// (file, error) of the files not processed.
    pub failures: Vec<(String, String)>,
    /// Lines about the key-history exports opened.
    pub export_lines: Vec<String>,
    /// Users in the key-history exports.
    pub export_users: usize,
}

impl ImportRun {
    /// Records the import of one file; an error that stops the run is handed back.
    pub fn record(
        &mut self,
        source: String,
        result: Result<Vec<ImportItem>, EngineError>,
    ) -> Result<(), EngineError> {
        match result {
            Ok(mut v) => self.items.append(&mut v),
            Err(e) => {
                // Archival not configured stops the run: nothing can be archived.
                if stops_the_run(&e) {
                    return Err(e);
                }
                self.failures.push((source, e.to_string()));
            }
        }
        Ok(())
    }
}

/// Archival not configured (or no valid KRA): nothing can be archived.
pub fn stops_the_run(e: &EngineError) -> bool {
    matches!(
        e.code(),
        codes::CERTSRV_E_KEY_ARCHIVAL_NOT_CONFIGURED | codes::CERTSRV_E_NO_VALID_KRA
    )
}

/// Writes the per-key report: JSON when the name ends in .json, else CSV.
pub fn write_report(
    path: &Path,
    items: &[ImportItem],
    failures: &[(String, String)],
) -> Result<()> {
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

/// The counters of a run, as the seed reports them.
struct Counts {
    foreign_imported: usize,
    imported: usize,
    not_imported: usize,
    keys_archived: usize,
}

/// The summary document of a run over `files` files and `exports` key-history exports.
fn summary(run: &ImportRun, files: usize, exports: usize, keys: bool) -> (Value, Counts) {
    let items = &run.items;
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
        "files": files + exports,
        "users": owners.len().max(run.export_users),
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
        "failed_files": run.failures.iter().map(|(f, e)| json!({ "file": f, "error": e })).collect::<Vec<_>>(),
        "items": items,
        "success": run.failures.is_empty(),
    });
    let counts = Counts {
        foreign_imported,
        imported,
        not_imported,
        keys_archived,
    };
    (summary, counts)
}

/// Prints the summary of a run (JSON with `--json`).
pub fn print_summary(
    g: &Global,
    run: &ImportRun,
    files: usize,
    exports: usize,
    keys: bool,
) -> Result<()> {
    let (summary, counts) = self::summary(run, files, exports, keys);
    let cmd = if keys { "importkms" } else { "importcert" };
    if g.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_text(run, &summary, &counts, files, keys, cmd);
    }
    Ok(())
}

/// The seed's text summary: counters, items in error, files not processed.
fn print_text(
    run: &ImportRun,
    summary: &Value,
    counts: &Counts,
    files: usize,
    keys: bool,
    cmd: &str,
) {
    let Counts {
        foreign_imported,
        imported,
        not_imported,
        keys_archived,
    } = counts;
    let items = &run.items;
    for l in &run.export_lines {
        println!("{}", safe_lines(l));
    }
    if let Some(issuer) = items
        .iter()
        .filter(|_| run.export_lines.is_empty())
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
    for (f, e) in &run.failures {
        println!("  {f}: not processed: {e}");
    }
    if run.failures.is_empty() {
        println!("lockbox: {cmd} completed successfully.");
    } else {
        println!(
            "lockbox: {cmd} FAILED for {} of {} file(s).",
            run.failures.len(),
            files
        );
    }
}
