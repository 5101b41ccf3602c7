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
    /// Bulk import (importkms) of PKCS#12 files with foreign P-256 keys, keys per second.
    Import {
        /// PKCS#12 files to generate and import.
        #[arg(long, default_value_t = 10_000)]
        files: usize,
    },
    /// Recovery candidate search latency per token type over a database of archived keys.
    Search {
        /// Archived-key rows to generate.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Lookups per token type.
        #[arg(long, default_value_t = 1000)]
        lookups: usize,
        /// Reuse this CA home (generated data is kept there) instead of a temporary one.
        #[arg(long = "data-dir", value_name = "DIR")]
        data_dir: Option<std::path::PathBuf>,
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
    /// Mixed load over HTTP: concurrent clients doing archival enrollments, status
    /// queries and recovery-candidate searches for a fixed time; errors, throughput,
    /// p50/p99 per operation and peak RSS.
    Load {
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Seconds of load.
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        /// Seconds spent measuring each RSA-2048 rate.
        #[arg(long, default_value_t = 2.0)]
        sign_seconds: f64,
    },
}

/// Posts every body with `concurrency` clients; returns (sorted latencies ms, errors, seconds).
async fn drive(
    url: &str,
    bodies: Vec<Vec<u8>>,
    concurrency: usize,
    token: &str,
) -> Result<(Vec<f64>, usize, f64)> {
    let client = reqwest::Client::new();
    let work = Arc::new(tokio::sync::Mutex::new(bodies.into_iter()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let work = work.clone();
        let client = client.clone();
        let url = url.to_string();
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            loop {
                let next = work.lock().await.next();
                let Some(body) = next else { break };
                let t = Instant::now();
                match client
                    .post(&url)
                    .bearer_auth(&token)
                    .body(body)
                    .send()
                    .await
                {
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
    let init = Ca::init(InitOptions {
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
    // The token is kept (as `lockbox init` does) for benchmarks that call the API.
    std::fs::write(dir.join("admin.token"), &init.admin_token)?;
    let ca = Arc::new(Ca::open(dir).await?);
    ca.signing_key()?;
    // Enrollment is authenticated (the admin token) and the generated names
    // are kept: templates whose enrollee supplies the subject.
    for (src, name) in BENCH_TEMPLATES {
        ca.duplicate_template(&lb_admin(), src, name).await?;
        ca.set_template(&lb_admin(), name, "enrollee_supplies_subject", "true")
            .await?;
        ca.set_ca_template(&lb_admin(), name, true).await?;
    }
    Ok(ca)
}

/// (built-in, bench copy) templates: the copies take the request's names.
const BENCH_TEMPLATES: [(&str, &str); 2] =
    [("User", "BenchUser"), ("ExchangeUser", "BenchExchangeUser")];

fn admin_token(dir: &std::path::Path) -> Result<String> {
    Ok(std::fs::read_to_string(dir.join("admin.token"))
        .context("reading the bench CA's admin token")?
        .trim()
        .to_string())
}

/// Issues a KRA certificate ("CN=Bench Recovery Agent", fresh RSA-2048 key) from the bench CA.
async fn issue_bench_kra(ca: &Ca) -> Result<lockbox_engine::Outcome> {
    ca.set_ca_template(&lb_admin(), "KeyRecoveryAgent", true)
        .await?;
    let kra_key = SoftwareKey::generate(KeySpec::Rsa2048)?;
    let kra_csr = sign_request(&kra_key, Name::from_str("CN=Bench Recovery Agent")?, vec![])?;
    let opts = lockbox_engine::SubmitOptions {
        template: Some("KeyRecoveryAgent".into()),
        requester: "bench".into(),
        attributes: vec![],
        actor: None,
        on_behalf_of: None,
    };
    let pending = ca.submit(&kra_csr, &opts).await?;
    Ok(ca.issue(pending.request_id, &lb_admin()).await?)
}

/// A bench CA with one KRA (required) and its current exchange certificate.
async fn archival_bench_ca(
    dir: &std::path::Path,
) -> Result<(Arc<Ca>, x509_cert::certificate::Certificate)> {
    use lockbox_engine::client::check_exchange_certificate;
    let ca = bench_ca(dir).await?;
    let issued = issue_bench_kra(&ca).await?;
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
    Ok((ca, xchg))
}

async fn archival(
    g: &Global,
    requests: usize,
    concurrency: usize,
    seconds: f64,
) -> Result<ExitCode> {
    let sign_rate = tokio::task::spawn_blocking(move || rsa2048_sign_rate(seconds)).await??;
    let decrypt_rate = tokio::task::spawn_blocking(move || rsa2048_decrypt_rate(seconds)).await??;
    // One exchange-key decrypt and one CA signature per enrollment, both on all cores.
    let limit = 1.0 / (1.0 / sign_rate + 1.0 / decrypt_rate);

    let dir = tempfile::tempdir().context("temporary CA home")?;
    let (ca, xchg) = archival_bench_ca(dir.path()).await?;

    let warmup = 10.min(requests);
    let total = requests + warmup;
    let bodies: Vec<Vec<u8>> = tokio::task::spawn_blocking(move || -> Result<Vec<Vec<u8>>> {
        // A pool of RSA-2048 user keys (generation is slow), reused under different names.
        let pool: Vec<SoftwareKey> = (0..16)
            .map(|_| SoftwareKey::generate(KeySpec::Rsa2048))
            .collect::<Result<_, _>>()?;
        (0..total)
            .map(|i| archival_body(&pool[i % pool.len()], &format!("archival-user-{i}"), &xchg))
            .collect()
    })
    .await??;

    let app = lockbox_server::router(ca.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}/api/v1/requests?template=BenchExchangeUser");
    let token = admin_token(dir.path())?;
    let mut bodies = bodies;
    let timed = bodies.split_off(warmup);
    let (_, warm_errors, _) = drive(&url, bodies, 2, &token).await?;
    anyhow::ensure!(warm_errors == 0, "warm-up requests failed");
    let (latencies, errors, elapsed) = drive(&url, timed, concurrency, &token).await?;
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
        BenchCmd::Import { files } => import(g, files.max(1)).await,
        BenchCmd::Search {
            rows,
            lookups,
            data_dir,
        } => search(g, rows, lookups.max(1), data_dir).await,
        BenchCmd::Archival {
            requests,
            concurrency,
            sign_seconds,
        } => archival(g, requests.max(1), concurrency.max(1), sign_seconds).await,
        BenchCmd::Load {
            clients,
            seconds,
            sign_seconds,
        } => load(g, clients.max(1), seconds.clamp(1.0, 3600.0), sign_seconds).await,
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

    let url = format!("http://{addr}/api/v1/requests?template=BenchUser");
    let token = admin_token(dir.path())?;
    let mut csrs = csrs;
    let timed = csrs.split_off(warmup);
    let (_, warm_errors, _) = drive(&url, csrs, 2, &token).await?;
    anyhow::ensure!(warm_errors == 0, "warm-up requests failed");
    let (latencies, errors, elapsed) = drive(&url, timed, concurrency, &token).await?;
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

/// Builds the search token of generated row `k`.
type TokenFn = Box<dyn Fn(usize) -> String>;

async fn search(
    g: &Global,
    rows: usize,
    lookups: usize,
    data_dir: Option<std::path::PathBuf>,
) -> Result<ExitCode> {
    use lockbox_store::{CertFields, Disposition, NewRequest};
    let tmp = tempfile::tempdir()?;
    let home = data_dir.unwrap_or_else(|| tmp.path().join("ca"));
    let fresh = !home.join("lockbox.toml").exists();
    let ca = if fresh {
        bench_ca(&home).await?
    } else {
        Arc::new(Ca::open(&home).await?)
    };
    let existing = ca.view(&lb_admin(), "ArchivedKey=true", 2).await?.len();
    let hex = |i: usize, salt: u8, len: usize| -> String {
        let d = lockbox_crypto::digest::sha256(&[&i.to_be_bytes()[..], &[salt]].concat());
        hex::encode(&d[..len])
    };
    let started = Instant::now();
    if fresh || existing == 0 {
        let batch = 20_000;
        let mut i = 0;
        while i < rows {
            let n = batch.min(rows - i);
            let news: Vec<NewRequest> = (i..i + n)
                .map(|k| NewRequest {
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
                        serial: hex(k, 1, 16),
                        subject: format!("CN=User {k},O=Contoso"),
                        common_name: Some(format!("User {k}")),
                        upn: Some(format!("user{k}@contoso.com")),
                        email: Some(format!("user{k}@mail.contoso.com")),
                        key_id: hex(k, 2, 20),
                        thumbprint: hex(k, 3, 20),
                        not_before: 1_700_000_000,
                        not_after: 1_800_000_000,
                        key_algorithm: "rsa".into(),
                        key_length: 2048,
                    }),
                    archived_key: Some(vec![0x30, 0x00]),
                    kra_hashes: Some("00".into()),
                })
                .collect();
            ca.store().insert_requests_bulk(&news).await?;
            i += n;
            if !g.json && i % 200_000 == 0 {
                eprintln!("generated {i} rows");
            }
        }
    }
    let generated_in = started.elapsed().as_secs_f64();
    let admin = lb_admin();
    let mut report = serde_json::Map::new();
    let kinds: Vec<(&str, TokenFn)> = vec![
        ("cn", Box::new(|k| format!("User {k}"))),
        ("upn", Box::new(|k| format!("user{k}@contoso.com"))),
        ("email", Box::new(|k| format!("user{k}@mail.contoso.com"))),
        (
            "downlevel_requester",
            Box::new(|k| format!("CONTOSO\\user{k}")),
        ),
        ("serial", Box::new(move |k| hex(k, 1, 16))),
        ("thumbprint", Box::new(move |k| hex(k, 3, 20))),
        ("key_id", Box::new(move |k| hex(k, 2, 20))),
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
        lat.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        report.insert(
            name.into(),
            json!({ "p50_ms": (percentile(&lat, 50.0) * 1000.0).round() / 1000.0, "p99_ms": (percentile(&lat, 99.0) * 1000.0).round() / 1000.0 }),
        );
    }
    let out = json!({ "benchmark": "recovery_candidate_search", "rows": rows, "lookups_per_token": lookups, "generate_seconds": (generated_in * 10.0).round() / 10.0, "latency": report });
    if g.json {
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

async fn import(g: &Global, files: usize) -> Result<ExitCode> {
    use lockbox_engine::certbuild::{sign_certificate, CertSpec};
    use lockbox_engine::import::ImportOptions;
    let dir = tempfile::tempdir()?;
    let ca = bench_ca(&dir.path().join("ca")).await?;
    let admin = lb_admin();
    issue_bench_kra(&ca).await?;
    ca.set_kra_required(&admin, 1).await?;
    ca.set_foreign_enabled(&admin, true).await?;
    // Generate the PKCS#12 files (as an old key store would have exported them).
    let gen_started = Instant::now();
    let inputs: Vec<Vec<u8>> = tokio::task::spawn_blocking(move || -> Result<Vec<Vec<u8>>> {
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
    .await??;
    let gen_secs = gen_started.elapsed().as_secs_f64();
    // The machine's limit for this job: opening PKCS#12 files (password
    // derivation, decryption) on every core, with no store work at all.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sample = inputs.len().min(400);
    let open_started = Instant::now();
    for d in &inputs[..sample] {
        lockbox_crypto::pkcs12::read_pfx(d, "pw")?;
    }
    let open_per_core = sample as f64 / open_started.elapsed().as_secs_f64();
    let limit = open_per_core * cores as f64;
    let o = ImportOptions {
        foreign: true,
        keys: true,
    };
    let started = Instant::now();
    let named: Vec<(String, Vec<u8>)> = inputs
        .into_iter()
        .enumerate()
        .map(|(i, d)| (format!("bench-{i}.pfx"), d))
        .collect();
    let mut archived = 0usize;
    for chunk in named.chunks(250) {
        for (_, r) in ca.import_pkcs12_many(&admin, chunk, "pw", &o).await? {
            archived += r?.iter().filter(|x| x.outcome == "archived").count();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = archived as f64 / secs;
    let ratio = rate / limit;
    let out = json!({ "benchmark": "importkms_pkcs12", "files": files, "keys_archived": archived, "seconds": (secs * 100.0).round() / 100.0, "keys_per_s": (rate * 10.0).round() / 10.0, "limit_pkcs12_opens_per_s": (limit * 10.0).round() / 10.0, "cores": cores, "ratio_to_limit": (ratio * 1000.0).round() / 1000.0, "generate_seconds": (gen_secs * 10.0).round() / 10.0, "durable_commits": "one transaction per 250 files" });
    if g.json {
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

/// Peak resident set size of this process (kB), from /proc.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// One operation of the mixed load.
#[derive(Clone, Copy)]
enum LoadOp {
    Archival,
    Status,
    Search,
}

/// A CMC archival request for `cn` with `key`, encrypted to `xchg`.
fn archival_body(
    key: &SoftwareKey,
    cn: &str,
    xchg: &x509_cert::certificate::Certificate,
) -> Result<Vec<u8>> {
    use lockbox_engine::client::{build_archival_request, ArchivalOptions, KeyPayload};
    let csr = sign_request(key, Name::from_str(&format!("CN={cn}"))?, vec![])?;
    let o = ArchivalOptions {
        template: Some("ExchangeUser".into()),
        cipher: lockbox_crypto::symmetric::ContentCipher::Aes256Cbc,
        transport: lockbox_crypto::keytransport::KeyTransport::RsaPkcs1v15,
        payload: KeyPayload::KeyBlob,
    };
    Ok(build_archival_request(key, &csr, xchg, &o)?)
}

async fn load(g: &Global, clients: usize, seconds: f64, sign_seconds: f64) -> Result<ExitCode> {
    let sign_rate = tokio::task::spawn_blocking(move || rsa2048_sign_rate(sign_seconds)).await??;
    let decrypt_rate =
        tokio::task::spawn_blocking(move || rsa2048_decrypt_rate(sign_seconds)).await??;
    let limit = 1.0 / (1.0 / sign_rate + 1.0 / decrypt_rate);
    let dir = tempfile::tempdir().context("temporary CA home")?;
    let (ca, xchg) = archival_bench_ca(dir.path()).await?;
    let token = std::fs::read_to_string(dir.path().join("admin.token"))
        .context("reading the bench CA's admin token")?
        .trim()
        .to_string();
    let pool: Arc<Vec<SoftwareKey>> = Arc::new(
        tokio::task::spawn_blocking(|| {
            (0..16)
                .map(|_| SoftwareKey::generate(KeySpec::Rsa2048))
                .collect::<Result<Vec<_>, _>>()
        })
        .await??,
    );
    let xchg = Arc::new(xchg);
    // Clients' own work (CSR signature, key encryption) is done before the clock
    // starts, on all cores: real clients are other machines.
    let wanted = (seconds * 250.0) as usize;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut handles = Vec::new();
    for part in 0..cores {
        let (pool, xchg) = (pool.clone(), xchg.clone());
        handles.push(tokio::task::spawn_blocking(
            move || -> Result<Vec<(String, Vec<u8>)>> {
                (part..wanted)
                    .step_by(cores)
                    .map(|n| {
                        let cn = format!("load-user-{n}");
                        let body = archival_body(&pool[n % pool.len()], &cn, &xchg)?;
                        Ok((cn, body))
                    })
                    .collect()
            },
        ));
    }
    let mut bodies = Vec::new();
    for h in handles {
        bodies.extend(h.await??);
    }
    let prepared = Arc::new(std::sync::Mutex::new(bodies));
    let app = lockbox_server::router(ca.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    // Requests enrolled so far (ID, CN): status queries and searches pick from them.
    let known: Arc<std::sync::Mutex<Vec<(i64, String)>>> = Arc::default();
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        let (known, counter, pool, xchg, prepared) = (
            known.clone(),
            counter.clone(),
            pool.clone(),
            xchg.clone(),
            prepared.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat: [Vec<f64>; 3] = Default::default();
            let mut errors: Vec<String> = Vec::new();
            let mut i = c;
            while Instant::now() < deadline {
                i += clients;
                let have = known.lock().map(|k| k.len()).unwrap_or(0);
                let op = match (i % 3, have) {
                    (_, 0) | (0, _) => LoadOp::Archival,
                    (1, _) => LoadOp::Status,
                    _ => LoadOp::Search,
                };
                let pick = known
                    .lock()
                    .ok()
                    .and_then(|k| k.get(i.wrapping_mul(7919) % k.len().max(1)).cloned());
                let t = Instant::now();
                let result = match op {
                    LoadOp::Archival => {
                        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let next = prepared.lock().ok().and_then(|mut p| p.pop());
                        let (cn, body) = match next {
                            Some(b) => b,
                            None => {
                                // the prepared set ran out: build one here (untimed)
                                let cn = format!("load-user-extra-{n}");
                                let (pool, xchg, cn2) = (pool.clone(), xchg.clone(), cn.clone());
                                match tokio::task::spawn_blocking(move || {
                                    archival_body(&pool[n % pool.len()], &cn2, &xchg)
                                })
                                .await
                                {
                                    Ok(Ok(b)) => (cn, b),
                                    _ => {
                                        errors.push("building an archival request failed".into());
                                        continue;
                                    }
                                }
                            }
                        };
                        let t = Instant::now();
                        let r = client
                            .post(format!("{base}/api/v1/requests?template=BenchExchangeUser"))
                            .bearer_auth(&token)
                            .body(body)
                            .send()
                            .await;
                        match r {
                            Ok(r) if r.status().is_success() => {
                                let v: serde_json::Value = r.json().await.unwrap_or_default();
                                if v["archived"] == true {
                                    if let (Some(id), Ok(mut k)) =
                                        (v["request_id"].as_i64(), known.lock())
                                    {
                                        k.push((id, cn));
                                    }
                                    lat[0].push(t.elapsed().as_secs_f64() * 1000.0);
                                    Ok(())
                                } else {
                                    Err(format!("archival not archived: {v}"))
                                }
                            }
                            Ok(r) => Err(format!("archival HTTP {}", r.status())),
                            Err(e) => Err(format!("archival: {e}")),
                        }
                        .map(|_| ())
                    }
                    LoadOp::Status | LoadOp::Search => {
                        let (id, cn) = pick.unwrap_or((1, "load-user-0".into()));
                        let url = match op {
                            LoadOp::Status => format!("{base}/api/v1/requests/{id}"),
                            _ => format!("{base}/api/v1/keys?token={cn}"),
                        };
                        match client.get(url).bearer_auth(&token).send().await {
                            Ok(r) if r.status().is_success() => {
                                let _ = r.bytes().await;
                                let slot = if matches!(op, LoadOp::Status) { 1 } else { 2 };
                                lat[slot].push(t.elapsed().as_secs_f64() * 1000.0);
                                Ok(())
                            }
                            Ok(r) => Err(format!("GET HTTP {}", r.status())),
                            Err(e) => Err(format!("GET: {e}")),
                        }
                    }
                };
                if let Err(e) = result {
                    errors.push(e);
                }
            }
            (lat, errors)
        }));
    }
    let mut lat: [Vec<f64>; 3] = Default::default();
    let mut errors = Vec::new();
    for t in tasks {
        let (l, e) = t.await?;
        for (all, mine) in lat.iter_mut().zip(l) {
            all.extend(mine);
        }
        errors.extend(e);
    }
    let elapsed = started.elapsed().as_secs_f64();
    server.abort();
    for l in lat.iter_mut() {
        l.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    }
    let mut all: Vec<f64> = lat.iter().flatten().copied().collect();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let round = |x: f64| (x * 100.0).round() / 100.0;
    let per_op = |name: &str, l: &Vec<f64>| {
        json!({ "operation": name, "count": l.len(), "per_s": round(l.len() as f64 / elapsed),
                "latency_ms_p50": round(percentile(l, 50.0)), "latency_ms_p99": round(percentile(l, 99.0)) })
    };
    let archival_rate = lat[0].len() as f64 / elapsed;
    let rss_mb = peak_rss_kb().map(|k| round(k as f64 / 1024.0));
    let report = json!({
        "benchmark": "mixed_load_http",
        "clients": clients,
        "seconds": round(elapsed),
        "operations": all.len(),
        "operations_per_s": round(all.len() as f64 / elapsed),
        "errors": errors.len(),
        "first_errors": errors.iter().take(5).collect::<Vec<_>>(),
        "latency_ms_p50": round(percentile(&all, 50.0)),
        "latency_ms_p99": round(percentile(&all, 99.0)),
        "by_operation": [per_op("archival enrollment", &lat[0]), per_op("status query", &lat[1]), per_op("candidate search", &lat[2])],
        "archival_limit_per_s": round(limit),
        "archival_ratio_to_limit": (archival_rate / limit * 1000.0).round() / 1000.0,
        "peak_rss_mb_process": rss_mb,
        "note": "server and clients share this process: the peak RSS covers both",
    });
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} clients for {:.1} s: {} operations ({:.1}/s), {} errors, p50 {:.2} ms, p99 {:.2} ms",
            clients,
            elapsed,
            all.len(),
            all.len() as f64 / elapsed,
            errors.len(),
            percentile(&all, 50.0),
            percentile(&all, 99.0)
        );
        for (name, l) in [
            ("archival enrollment", &lat[0]),
            ("status query", &lat[1]),
            ("candidate search", &lat[2]),
        ] {
            println!(
                "  {name}: {} ({:.1}/s), p50 {:.2} ms, p99 {:.2} ms",
                l.len(),
                l.len() as f64 / elapsed,
                percentile(l, 50.0),
                percentile(l, 99.0)
            );
        }
        println!(
            "archival limit {:.1}/s (RSA-2048 decrypt + sign on all cores): ratio {:.3}",
            limit,
            archival_rate / limit
        );
        if let Some(mb) = rss_mb {
            println!("peak RSS (server and clients, one process): {mb:.1} MB");
        }
        for e in errors.iter().take(5) {
            println!("  error: {e}");
        }
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
