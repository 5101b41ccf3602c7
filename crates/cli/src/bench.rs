//! `lockbox bench`: throughput figures reported against the machine's limit
//! measured in the same run (never a timed test).

use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Subcommand;
use lockbox_crypto::{KeyHandle, KeySpec, SoftwareKey};
use lockbox_engine::certbuild::sign_request;
use lockbox_engine::period::Period;
use lockbox_engine::{Ca, InitOptions};
use serde_json::json;
use x509_cert::name::Name;

use crate::Global;

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// PKCS#10 issuance over HTTP with an RSA-2048 CA, against the RSA-2048 sign rate.
    Issuance {
        /// Requests to time.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds spent measuring the RSA-2048 sign rate.
        #[arg(long, default_value_t = 3.0)]
        sign_seconds: f64,
    },
}

/// RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second using every core.
pub fn rsa2048_sign_rate(seconds: f64) -> Result<f64> {
    let key = Arc::new(SoftwareKey::generate(KeySpec::Rsa2048)?);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let deadline = Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let key = key.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut n = 0u64;
                let msg = [0x5au8; 512];
                while start.elapsed() < deadline {
                    if key.sign(&msg).is_err() {
                        break;
                    }
                    n += 1;
                }
                n as f64 / start.elapsed().as_secs_f64()
            })
        })
        .collect();
    let mut total = 0.0;
    for h in handles {
        total += h
            .join()
            .map_err(|_| anyhow::anyhow!("sign thread panicked"))?;
    }
    Ok(total)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Runs a benchmark.
pub async fn run(g: &Global, cmd: BenchCmd) -> Result<ExitCode> {
    match cmd {
        BenchCmd::Issuance {
            requests,
            concurrency,
            sign_seconds,
        } => issuance(g, requests.max(1), concurrency.max(1), sign_seconds).await,
    }
}

async fn issuance(
    g: &Global,
    requests: usize,
    concurrency: usize,
    sign_seconds: f64,
) -> Result<ExitCode> {
    let sign_rate = tokio::task::spawn_blocking(move || rsa2048_sign_rate(sign_seconds)).await??;

    let dir = tempfile::tempdir().context("temporary CA home")?;
    Ca::init(InitOptions {
        home: dir.path().to_path_buf(),
        name: "Lockbox Bench CA".into(),
        subject: None,
        key: KeySpec::Rsa2048,
        validity: Period::Years(5),
        subordinate: false,
        passphrase: None,
        passphrase_file: None,
        cdp_urls: vec![],
        aia_urls: vec![],
    })
    .await?;
    let ca = Arc::new(Ca::open(dir.path()).await?);
    ca.signing_key()?;
    let app = lockbox_server::router(ca.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let warmup = 20.min(requests);
    let total = requests + warmup;
    let csrs: Vec<Vec<u8>> = tokio::task::spawn_blocking(move || -> Result<Vec<Vec<u8>>> {
        (0..total)
            .map(|i| {
                let key = SoftwareKey::generate(KeySpec::P256)?;
                let subject = Name::from_str(&format!("CN=bench-user-{i},O=Lockbox Bench"))?;
                Ok(sign_request(&key, subject, vec![])?)
            })
            .collect()
    })
    .await??;

    let client = reqwest::Client::new();
    let url = format!("http://{addr}/api/v1/requests?template=User");
    for csr in &csrs[..warmup] {
        let r = client.post(&url).body(csr.clone()).send().await?;
        anyhow::ensure!(
            r.status().is_success(),
            "warm-up request failed: {}",
            r.status()
        );
    }
    let timed: Vec<Vec<u8>> = csrs.into_iter().skip(warmup).collect();
    let work = Arc::new(tokio::sync::Mutex::new(timed.into_iter()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let work = work.clone();
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            loop {
                let next = work.lock().await.next();
                let Some(csr) = next else { break };
                let t = Instant::now();
                match client.post(&url).body(csr).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    server.abort();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let rate = latencies.len() as f64 / elapsed;
    let report = json!({
        "benchmark": "pkcs10_issuance_http",
        "requests": latencies.len(),
        "errors": errors,
        "concurrency": concurrency,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "rsa2048_sign_per_s": (sign_rate * 10.0).round() / 10.0,
        "issuance_per_s": (rate * 10.0).round() / 10.0,
        "ratio_to_sign_limit": (rate / sign_rate * 1000.0).round() / 1000.0,
        "latency_ms_p50": (percentile(&latencies, 50.0) * 100.0).round() / 100.0,
        "latency_ms_p99": (percentile(&latencies, 99.0) * 100.0).round() / 100.0,
        "durable_commits": "sqlite WAL, synchronous=FULL",
    });
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "RSA-2048 sign limit (aws-lc-rs, all cores): {:.1} ops/s",
            sign_rate
        );
        println!(
            "PKCS#10 issuance over HTTP: {:.1} certs/s ({} requests, {} clients, {} errors)",
            rate,
            latencies.len(),
            concurrency,
            errors
        );
        println!("ratio to the sign limit: {:.3}", rate / sign_rate);
        println!(
            "latency p50 {:.2} ms, p99 {:.2} ms",
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0)
        );
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
