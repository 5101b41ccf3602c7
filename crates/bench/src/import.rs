//! `lockbox bench import`: bulk import (importkms) of PKCS#12 files with
//! foreign P-256 keys, keys per second, against opening the same files on
//! every core with no store work.

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Instant;

use anyhow::Result;
use lockbox_crypto::{KeyHandle, KeySpec, SoftwareKey};
use lockbox_engine::import::ImportOptions;
use lockbox_engine::Ca;
use serde_json::json;
use x509_cert::name::Name;

use crate::fixture::{admin, bench_ca, issue_bench_kra};
use crate::stats::cores;

/// PKCS#12 files per import call (one transaction each).
const CHUNK: usize = 250;

/// Generates `files` PKCS#12 files and imports them into a bench CA with one
/// KRA. Prints the report (JSON with `json`); fails unless every key was
/// archived.
pub async fn import(json: bool, files: usize) -> Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let ca = bench_ca(
        &dir.path().join("ca"),
        None,
        crate::fixture::BenchKeys::Software,
    )
    .await?;
    let admin = admin();
    issue_bench_kra(&ca).await?;
    ca.set_kra_required(&admin, 1).await?;
    ca.set_foreign_enabled(&admin, true).await?;
    // Generate the PKCS#12 files (as an old key store would have exported them).
    let gen_started = Instant::now();
    let inputs = pkcs12_files(files).await?;
    let gen_secs = gen_started.elapsed().as_secs_f64();
    let cores = cores();
    let open_per_core = pkcs12_opens_per_second(&inputs)?;
    let limit = open_per_core * cores as f64;
    let started = Instant::now();
    let archived = import_all(&ca, inputs).await?;
    let secs = started.elapsed().as_secs_f64();
    let rate = archived as f64 / secs;
    let ratio = rate / limit;
    let out = json!({ "benchmark": "importkms_pkcs12", "files": files, "keys_archived": archived, "seconds": (secs * 100.0).round() / 100.0, "keys_per_s": (rate * 10.0).round() / 10.0, "limit_pkcs12_opens_per_s": (limit * 10.0).round() / 10.0, "cores": cores, "ratio_to_limit": (ratio * 1000.0).round() / 1000.0, "generate_seconds": (gen_secs * 10.0).round() / 10.0, "durable_commits": "one transaction per 250 files" });
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("imported {archived} keys from {files} PKCS#12 files in {secs:.2} s: {rate:.1} keys/s (files generated in {gen_secs:.1} s)");
        println!("limit: {limit:.1} PKCS#12 opens/s ({open_per_core:.1}/s per core x {cores} cores, no store); ratio {ratio:.3}");
    }
    Ok(if archived == files {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `files` PKCS#12 files (password "pw"), each a fresh P-256 key with a
/// self-signed certificate of a Fabrikam user.
async fn pkcs12_files(files: usize) -> Result<Vec<Vec<u8>>> {
    use lockbox_engine::certbuild::{sign_certificate, CertSpec};
    tokio::task::spawn_blocking(move || -> Result<Vec<Vec<u8>>> {
        (0..files)
            .map(|i| {
                let key = SoftwareKey::generate(KeySpec::P256)?;
                let name = Name::from_str(&format!("CN=Migrated User {i},O=Fabrikam"))?;
                let cert = sign_certificate(
                    &key,
                    CertSpec {
                        issuer: name.clone(),
                        subject: name,
                        spki: key.public_key_info().clone(),
                        serial: lockbox_crypto::random::serial_number(12)?,
                        not_before: 1_700_000_000,
                        not_after: 1_900_000_000,
                        extensions: vec![],
                    },
                )?;
                let der = der::Encode::to_der(&cert)?;
                Ok(lockbox_crypto::pkcs12::write_pfx_with_iterations(
                    key.pkcs8_der(),
                    &[der],
                    "pw",
                    false,
                    2048,
                )?)
            })
            .collect()
    })
    .await?
}

/// The machine's limit for this job, per core: opening PKCS#12 files
/// (password derivation, decryption) with no store work at all, timed over
/// up to 400 of `inputs`.
fn pkcs12_opens_per_second(inputs: &[Vec<u8>]) -> Result<f64> {
    let sample = inputs.len().min(400);
    let open_started = Instant::now();
    for d in &inputs[..sample] {
        lockbox_crypto::pkcs12::read_pfx(d, "pw")?;
    }
    Ok(sample as f64 / open_started.elapsed().as_secs_f64())
}

/// Imports `inputs` in chunks of [`CHUNK`]; returns the number of keys archived.
async fn import_all(ca: &Ca, inputs: Vec<Vec<u8>>) -> Result<usize> {
    let admin = admin();
    let o = ImportOptions {
        foreign: true,
        keys: true,
    };
    let named: Vec<(String, Vec<u8>)> = inputs
        .into_iter()
        .enumerate()
        .map(|(i, d)| (format!("bench-{i}.pfx"), d))
        .collect();
    let mut archived = 0usize;
    for chunk in named.chunks(CHUNK) {
        for (_, r) in ca.import_pkcs12_many(&admin, chunk, "pw", &o).await? {
            archived += r?.iter().filter(|x| x.outcome == "archived").count();
        }
    }
    Ok(archived)
}
