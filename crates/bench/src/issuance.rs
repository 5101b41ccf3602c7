//! `lockbox bench issuance`: PKCS#10 issuance over HTTP with an RSA-2048 CA,
//! against the RSA-2048 sign rate.

use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, Result};
use lockbox_crypto::{KeySpec, SoftwareKey};
use lockbox_engine::certbuild::sign_request;
use serde_json::json;
use x509_cert::name::Name;

use crate::fixture::{admin_token, bench_ca, BenchKeys};
use crate::http::{warm_then_drive, Service};
use crate::limits::sign_rate;
use crate::stats::{cores, latency_ms, passed, print_latency, rounded};

/// Times `requests` PKCS#10 enrollments (after a warm-up) with `concurrency`
/// clients; the sign rate is measured for `sign_seconds` first. Prints the
/// report (JSON with `json`); fails when a request failed.
pub async fn issuance(
    json: bool,
    requests: usize,
    concurrency: usize,
    sign_seconds: f64,
    keys: BenchKeys,
) -> Result<ExitCode> {
    let sign_rate = sign_rate(sign_seconds).await?;

    let dir = tempfile::tempdir().context("temporary CA home")?;
    let ca = bench_ca(dir.path(), None, keys).await?;
    let on_token = crate::limits::token_limit(&ca, sign_seconds).await?;
    let server = Service::start(ca.clone()).await?;

    let warmup = 20.min(requests);
    let mut csrs = pkcs10_requests(requests + warmup).await?;

    let url = format!("http://{}/api/v1/requests?template=BenchUser", server.addr);
    let token = admin_token(dir.path())?;
    let timed = csrs.split_off(warmup);
    let (latencies, errors, elapsed) =
        warm_then_drive(&[url], csrs, timed, concurrency, &token).await?;
    server.stop();
    let rate = latencies.len() as f64 / elapsed;
    let report = json!({
        "benchmark": "pkcs10_issuance_http",
        "requests": latencies.len(),
        "errors": errors,
        "concurrency": concurrency,
        "cores": cores(),
        "rsa2048_sign_per_s": rounded(sign_rate, 1),
        "issuance_per_s": rounded(rate, 1),
        "ratio_to_sign_limit": rounded(rate / sign_rate, 3),
        "latency_ms_p50": latency_ms(&latencies, 50.0),
        "latency_ms_p99": latency_ms(&latencies, 99.0),
        "durable_commits": "sqlite WAL, synchronous=FULL",
        "keys": keys.name(),
    });
    let mut report = report;
    if let Some(t) = &on_token {
        report["token_rsa2048_sign_per_s"] = json!(rounded(t.sign_rate, 1));
        report["ratio_to_token_sign_limit"] = json!(rounded(rate / t.sign_rate, 3));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "RSA-2048 sign limit (aws-lc-rs, all cores): {:.1} ops/s",
            sign_rate
        );
        println!(
            "PKCS#10 issuance over HTTP: {:.1} certs/s ({} requests, {} clients, {} errors, CA key in {})",
            rate,
            latencies.len(),
            concurrency,
            errors,
            keys.name()
        );
        println!("ratio to the sign limit: {:.3}", rate / sign_rate);
        if let Some(t) = &on_token {
            println!(
                "the token's own sign rate (all cores): {:.1}/s; ratio {:.3}",
                t.sign_rate,
                rate / t.sign_rate
            );
        }
        print_latency(&latencies);
    }
    Ok(passed(errors))
}

/// `total` PKCS#10 requests, each with a fresh P-256 key and its own name.
pub(crate) async fn pkcs10_requests(total: usize) -> Result<Vec<Vec<u8>>> {
    tokio::task::spawn_blocking(move || -> Result<Vec<Vec<u8>>> {
        (0..total)
            .map(|i| {
                let key = SoftwareKey::generate(KeySpec::P256)?;
                let subject = Name::from_str(&format!("CN=bench-user-{i},O=Lockbox Bench"))?;
                Ok(sign_request(&key, subject, vec![])?)
            })
            .collect()
    })
    .await?
}
