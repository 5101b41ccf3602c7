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
    /// Archival enrollments (CMC with the key encrypted to an RSA-2048 exchange key) over HTTP,
    /// against the machine's RSA-2048 decrypt + sign limit.
    Archival {
        /// Requests to time.
        #[arg(long, default_value_t = 1000)]
        requests: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds spent measuring each RSA-2048 rate.
        #[arg(long, default_value_t = 3.0)]
        sign_seconds: f64,
    },
}

/// Posts every body with `concurrency` clients; returns (sorted latencies ms, errors, seconds).
async fn drive(
    url: &str,
    bodies: Vec<Vec<u8>>,
    concurrency: usize,
) -> Result<(Vec<f64>, usize, f64)> {
    let client = reqwest::Client::new();
    let work = Arc::new(tokio::sync::Mutex::new(bodies.into_iter()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let work = work.clone();
        let client = client.clone();
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            loop {
                let next = work.lock().await.next();
                let Some(body) = next else { break };
                let t = Instant::now();
                match client.post(&url).body(body).send().await {
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
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    Ok((latencies, errors, elapsed))
}

async fn bench_ca(dir: &std::path::Path) -> Result<Arc<Ca>> {
    Ca::init(InitOptions {
        home: dir.to_path_buf(),
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
    let ca = Arc::new(Ca::open(dir).await?);
    ca.signing_key()?;
    Ok(ca)
}

async fn archival(
    g: &Global,
    requests: usize,
    concurrency: usize,
    seconds: f64,
) -> Result<ExitCode> {
    use lockbox_engine::client::{
        build_archival_request, check_exchange_certificate, ArchivalOptions, KeyPayload,
    };
    let sign_rate = tokio::task::spawn_blocking(move || rsa2048_sign_rate(seconds)).await??;
    let decrypt_rate = tokio::task::spawn_blocking(move || rsa2048_decrypt_rate(seconds)).await??;
    // One exchange-key decrypt and one CA signature per enrollment, both on all cores.
    let limit = 1.0 / (1.0 / sign_rate + 1.0 / decrypt_rate);

    let dir = tempfile::tempdir().context("temporary CA home")?;
    let ca = bench_ca(dir.path()).await?;
    ca.set_ca_template(&lb_admin(), "KeyRecoveryAgent", true)
        .await?;
    let kra_key = SoftwareKey::generate(KeySpec::Rsa2048)?;
    let kra_csr = sign_request(&kra_key, Name::from_str("CN=Bench Recovery Agent")?, vec![])?;
    let opts = lockbox_engine::SubmitOptions {
        template: Some("KeyRecoveryAgent".into()),
        requester: "bench".into(),
        attributes: vec![],
        actor: None,
    };
    let pending = ca.submit(&kra_csr, &opts).await?;
    let issued = ca.issue(pending.request_id, &lb_admin()).await?;
    ca.kra_add(
        &lb_admin(),
        issued.serial.unwrap_or_default().as_bytes(),
        None,
        None,
    )
    .await?;
    ca.set_kra_required(&lb_admin(), 1).await?;
    let xchg_der = ca.current_exchange_certificate().await?;
    let xchg = check_exchange_certificate(&xchg_der, &ca.ca_certificate_der()?)?;

    let warmup = 10.min(requests);
    let total = requests + warmup;
    let bodies: Vec<Vec<u8>> = tokio::task::spawn_blocking(move || -> Result<Vec<Vec<u8>>> {
        // A pool of RSA-2048 user keys (generation is slow), reused under different names.
        let pool: Vec<SoftwareKey> = (0..16)
            .map(|_| SoftwareKey::generate(KeySpec::Rsa2048))
            .collect::<Result<_, _>>()?;
        let o = ArchivalOptions {
            template: Some("ExchangeUser".into()),
            cipher: lockbox_crypto::symmetric::ContentCipher::Aes256Cbc,
            transport: lockbox_crypto::keytransport::KeyTransport::RsaPkcs1v15,
            payload: KeyPayload::KeyBlob,
        };
        (0..total)
            .map(|i| {
                let key = &pool[i % pool.len()];
                let csr = sign_request(
                    key,
                    Name::from_str(&format!("CN=archival-user-{i}"))?,
                    vec![],
                )?;
                Ok(build_archival_request(key, &csr, &xchg, &o)?)
            })
            .collect()
    })
    .await??;

    let app = lockbox_server::router(ca.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}/api/v1/requests");
    let mut bodies = bodies;
    let timed = bodies.split_off(warmup);
    let (_, warm_errors, _) = drive(&url, bodies, 2).await?;
    anyhow::ensure!(warm_errors == 0, "warm-up requests failed");
    let (latencies, errors, elapsed) = drive(&url, timed, concurrency).await?;
    server.abort();
    let archived = ca
        .view(&lb_admin(), "ArchivedKey=true", 1_000_000)
        .await?
        .len();
    let rate = latencies.len() as f64 / elapsed;
    let report = json!({
        "benchmark": "archival_enrollment_http",
        "requests": latencies.len(),
        "errors": errors,
        "archived_rows": archived,
        "concurrency": concurrency,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "rsa2048_sign_per_s": (sign_rate * 10.0).round() / 10.0,
        "rsa2048_decrypt_per_s": (decrypt_rate * 10.0).round() / 10.0,
        "limit_per_s": (limit * 10.0).round() / 10.0,
        "archival_enrollments_per_s": (rate * 10.0).round() / 10.0,
        "ratio_to_limit": (rate / limit * 1000.0).round() / 1000.0,
        "latency_ms_p50": (percentile(&latencies, 50.0) * 100.0).round() / 100.0,
        "latency_ms_p99": (percentile(&latencies, 99.0) * 100.0).round() / 100.0,
        "durable_commits": "sqlite WAL, synchronous=FULL",
    });
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("RSA-2048 limits (aws-lc-rs, all cores): sign {sign_rate:.1}/s, decrypt {decrypt_rate:.1}/s -> {limit:.1} enrollments/s (1 decrypt + 1 sign)");
        println!("archival enrollments over HTTP: {rate:.1}/s ({} requests, {concurrency} clients, {errors} errors, {archived} archived rows)", latencies.len());
        println!("ratio to the limit: {:.3}", rate / limit);
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

/// Operations per second of `op`, run on every core for `seconds`.
fn rate_on_all_cores<F>(seconds: f64, op: F) -> Result<f64>
where
    F: Fn() -> bool + Send + Sync + 'static,
{
    let op = Arc::new(op);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let deadline = Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let op = op.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut n = 0u64;
                while start.elapsed() < deadline && op() {
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
            .map_err(|_| anyhow::anyhow!("benchmark thread panicked"))?;
    }
    Ok(total)
}

/// RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second using every core.
pub fn rsa2048_sign_rate(seconds: f64) -> Result<f64> {
    let key = SoftwareKey::generate(KeySpec::Rsa2048)?;
    rate_on_all_cores(seconds, move || key.sign(&[0x5au8; 512]).is_ok())
}

/// RSA-2048 PKCS#1 v1.5 decryptions per second using every core.
pub fn rsa2048_decrypt_rate(seconds: f64) -> Result<f64> {
    use lockbox_crypto::keytransport::{encrypt_key, DecryptionKey, KeyTransport};
    let key = SoftwareKey::generate(KeySpec::Rsa2048)?;
    let ct = encrypt_key(key.public_key_info(), KeyTransport::RsaPkcs1v15, &[7u8; 32])?;
    rate_on_all_cores(seconds, move || {
        key.decrypt_key(KeyTransport::RsaPkcs1v15, &ct).is_ok()
    })
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
        BenchCmd::Archival {
            requests,
            concurrency,
            sign_seconds,
        } => archival(g, requests.max(1), concurrency.max(1), sign_seconds).await,
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
    let ca = bench_ca(dir.path()).await?;
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

    let url = format!("http://{addr}/api/v1/requests?template=User");
    let mut csrs = csrs;
    let timed = csrs.split_off(warmup);
    let (_, warm_errors, _) = drive(&url, csrs, 2).await?;
    anyhow::ensure!(warm_errors == 0, "warm-up requests failed");
    let (latencies, errors, elapsed) = drive(&url, timed, concurrency).await?;
    server.abort();
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

/// The local administrator acting for this command.
fn lb_admin() -> lockbox_engine::Actor {
    lockbox_engine::Actor::local_admin(format!(
        "LOCAL\\{}",
        std::env::var("USER").unwrap_or_else(|_| "administrator".into())
    ))
}
