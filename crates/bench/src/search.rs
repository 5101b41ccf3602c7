//! `lockbox bench search`: recovery candidate search latency per token type
//! over a database of archived keys.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use lockbox_engine::Ca;
use lockbox_store::{CertFields, Disposition, NewRequest};
use serde_json::json;

use crate::fixture::{admin, bench_ca};
use crate::stats::{percentile, sort};

/// Builds the search token of generated row `k`.
type TokenFn = Box<dyn Fn(usize) -> String>;

/// Rows inserted per store call while generating.
const BATCH: usize = 20_000;

/// The hex digest of generated row `i` with `salt`, cut to `len` bytes: the
/// serial (salt 1), key ID (2) and thumbprint (3) of that row.
fn row_hex(i: usize, salt: u8, len: usize) -> String {
    let d = lockbox_crypto::digest::sha256(&[&i.to_be_bytes()[..], &[salt]].concat());
    hex::encode(&d[..len])
}

/// Times `lookups` candidate searches per token type over `rows` generated
/// archived keys (kept in `data_dir` when given, and reused when it already
/// holds them). Prints the report (JSON with `json`).
pub async fn search(
    json: bool,
    rows: usize,
    lookups: usize,
    data_dir: Option<PathBuf>,
) -> Result<ExitCode> {
    let tmp = tempfile::tempdir()?;
    let home = data_dir.unwrap_or_else(|| tmp.path().join("ca"));
    let fresh = !home.join("lockbox.toml").exists();
    let ca = if fresh {
        bench_ca(&home, None, crate::fixture::BenchKeys::Software).await?
    } else {
        Arc::new(Ca::open(&home).await?)
    };
    let existing = ca.view(&admin(), "ArchivedKey=true", 2).await?.len();
    let started = Instant::now();
    if fresh || existing == 0 {
        generate_rows(&ca, rows, json).await?;
    }
    let generated_in = started.elapsed().as_secs_f64();
    let report = time_lookups(&ca, rows, lookups).await?;
    let out = json!({ "benchmark": "recovery_candidate_search", "rows": rows, "lookups_per_token": lookups, "generate_seconds": (generated_in * 10.0).round() / 10.0, "latency": report });
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("recovery candidate search over {rows} archived keys ({lookups} lookups per token type; data generated in {generated_in:.1} s):");
        for (k, v) in out["latency"].as_object().into_iter().flatten() {
            println!(
                "  {k:<20} p50 {:>7.3} ms   p99 {:>7.3} ms",
                v["p50_ms"].as_f64().unwrap_or(0.0),
                v["p99_ms"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Inserts `rows` issued requests with archived keys straight into the store.
async fn generate_rows(ca: &Ca, rows: usize, json: bool) -> Result<()> {
    let mut i = 0;
    while i < rows {
        let n = BATCH.min(rows - i);
        let news: Vec<NewRequest> = (i..i + n).map(generated_row).collect();
        ca.store().insert_requests_bulk(&news).await?;
        i += n;
        if !json && i % 200_000 == 0 {
            eprintln!("generated {i} rows");
        }
    }
    Ok(())
}

/// Generated row `k`: user `k` of Contoso with an archived key.
fn generated_row(k: usize) -> NewRequest {
    NewRequest {
        request_der: vec![0x30, 0x00],
        request_kind: "cmc".into(),
        requester: format!("CONTOSO\\user{k}"),
        template: Some("ExchangeUser".into()),
        request_subject: format!("CN=User {k}"),
        request_common_name: None,
        request_upn: None,
        request_email: None,
        disposition: Disposition::Issued,
        disposition_message: "Issued".into(),
        status_code: 0,
        submitted_at: 1_700_000_000 + k as i64,
        cert: Some(CertFields {
            cert_der: vec![0x30, 0x00],
            serial: row_hex(k, 1, 16),
            subject: format!("CN=User {k},O=Contoso"),
            common_name: Some(format!("User {k}")),
            upn: Some(format!("user{k}@contoso.com")),
            email: Some(format!("user{k}@mail.contoso.com")),
            key_id: row_hex(k, 2, 20),
            thumbprint: row_hex(k, 3, 20),
            not_before: 1_700_000_000,
            not_after: 1_800_000_000,
            key_algorithm: "rsa".into(),
            key_length: 2048,
            issuer_key_id: None,
        }),
        archived_key: Some(vec![0x30, 0x00]),
        kra_hashes: Some("00".into()),
        renewal_of: None,
    }
}

/// p50/p99 (ms) of `lookups` searches per token type, each expected to find
/// exactly one candidate.
async fn time_lookups(
    ca: &Ca,
    rows: usize,
    lookups: usize,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let admin = admin();
    let mut report = serde_json::Map::new();
    let kinds: Vec<(&str, TokenFn)> = vec![
        ("cn", Box::new(|k| format!("User {k}"))),
        ("upn", Box::new(|k| format!("user{k}@contoso.com"))),
        ("email", Box::new(|k| format!("user{k}@mail.contoso.com"))),
        (
            "downlevel_requester",
            Box::new(|k| format!("CONTOSO\\user{k}")),
        ),
        ("serial", Box::new(|k| row_hex(k, 1, 16))),
        ("thumbprint", Box::new(|k| row_hex(k, 3, 20))),
        ("key_id", Box::new(|k| row_hex(k, 2, 20))),
    ];
    for (name, token) in kinds {
        let mut lat = Vec::with_capacity(lookups);
        for j in 0..lookups {
            let k = (j * 7919 + 13) % rows;
            let t = Instant::now();
            let found = ca.find_candidates(&admin, &token(k)).await?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(
                found.len() == 1,
                "{name} lookup for row {k} found {}",
                found.len()
            );
        }
        sort(&mut lat);
        report.insert(
            name.into(),
            json!({ "p50_ms": (percentile(&lat, 50.0) * 1000.0).round() / 1000.0, "p99_ms": (percentile(&lat, 99.0) * 1000.0).round() / 1000.0 }),
        );
    }
    Ok(report)
}
