//! `lockbox bench load`: mixed load over HTTP: concurrent clients doing
//! archival enrollments, status queries and recovery-candidate searches for
//! a fixed time; errors, throughput, p50/p99 per operation and peak RSS.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lockbox_crypto::{KeySpec, SoftwareKey};
use serde_json::{json, Value};
use x509_cert::certificate::Certificate;

use crate::fixture::{admin_token, archival_bench_ca, archival_body, start_nodes, Deployment};
use crate::limits::ArchivalLimit;
use crate::stats::{cores, peak_rss_kb, percentile, sort};

/// One operation of the mixed load.
#[derive(Clone, Copy)]
enum LoadOp {
    Archival,
    Status,
    Search,
}

/// A prepared archival request: (CN, CMC request).
type Prepared = (String, Vec<u8>);

/// Latencies (ms) per operation: archival, status, search.
type Latencies = [Vec<f64>; 3];

/// What every client shares: the service, the prepared requests and the
/// requests enrolled so far.
#[derive(Clone)]
struct Shared {
    client: reqwest::Client,
    /// One base URL per node; client `c` uses node `c % n`.
    bases: Arc<Vec<String>>,
    token: String,
    /// Requests enrolled so far (ID, CN): status queries and searches pick from them.
    known: Arc<Mutex<Vec<(i64, String)>>>,
    counter: Arc<AtomicUsize>,
    pool: Arc<Vec<SoftwareKey>>,
    xchg: Arc<Certificate>,
    prepared: Arc<Mutex<Vec<Prepared>>>,
}

/// Runs `clients` clients for `seconds` against a bench CA with one KRA; the
/// archival limit is measured with `sign_seconds` per rate first. Prints the
/// report (JSON with `json`); fails when an operation failed.
pub async fn load(
    json: bool,
    clients: usize,
    seconds: f64,
    sign_seconds: f64,
    deployment: Deployment,
) -> Result<ExitCode> {
    let limit = ArchivalLimit::measure(sign_seconds).await?.honest();
    let dir = tempfile::tempdir().context("temporary CA home")?;
    let (ca, xchg) =
        archival_bench_ca(dir.path(), deployment.database.as_deref(), deployment.keys).await?;
    let token = admin_token(dir.path())?;
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
    let bodies = prepare_bodies(&pool, &xchg, (seconds * 250.0) as usize).await?;
    let nodes = start_nodes(dir.path(), ca.clone(), &deployment).await?;
    let shared = Shared {
        client: reqwest::Client::new(),
        bases: Arc::new(nodes.iter().map(|n| format!("http://{}", n.addr)).collect()),
        token,
        known: Arc::default(),
        counter: Arc::new(AtomicUsize::new(0)),
        pool,
        xchg,
        prepared: Arc::new(Mutex::new(bodies)),
    };
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        tasks.push(tokio::spawn(run_client(
            shared.clone(),
            c,
            clients,
            deadline,
        )));
    }
    let mut lat: Latencies = Default::default();
    let mut errors = Vec::new();
    for t in tasks {
        let (l, e) = t.await?;
        for (all, mine) in lat.iter_mut().zip(l) {
            all.extend(mine);
        }
        errors.extend(e);
    }
    let elapsed = started.elapsed().as_secs_f64();
    for n in nodes {
        n.stop();
    }
    for l in lat.iter_mut() {
        sort(l);
    }
    report(json, (clients, &deployment), elapsed, &lat, &errors, limit)?;
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `wanted` archival requests ("load-user-N"), built on every core.
async fn prepare_bodies(
    pool: &Arc<Vec<SoftwareKey>>,
    xchg: &Arc<Certificate>,
    wanted: usize,
) -> Result<Vec<Prepared>> {
    let cores = cores();
    let mut handles = Vec::new();
    for part in 0..cores {
        let (pool, xchg) = (pool.clone(), xchg.clone());
        handles.push(tokio::task::spawn_blocking(
            move || -> Result<Vec<Prepared>> {
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
    Ok(bodies)
}

/// Client `c` of `clients`: one operation after another until `deadline`.
async fn run_client(
    s: Shared,
    c: usize,
    clients: usize,
    deadline: Instant,
) -> (Latencies, Vec<String>) {
    let mut lat: Latencies = Default::default();
    let mut errors: Vec<String> = Vec::new();
    let base = s.bases[c % s.bases.len().max(1)].clone();
    let mut i = c;
    while Instant::now() < deadline {
        i += clients;
        let have = s.known.lock().map(|k| k.len()).unwrap_or(0);
        let op = match (i % 3, have) {
            (_, 0) | (0, _) => LoadOp::Archival,
            (1, _) => LoadOp::Status,
            _ => LoadOp::Search,
        };
        let pick = s
            .known
            .lock()
            .ok()
            .and_then(|k| k.get(i.wrapping_mul(7919) % k.len().max(1)).cloned());
        let t = Instant::now();
        let result = match op {
            LoadOp::Archival => enroll(&s, &base, &mut lat).await,
            LoadOp::Status | LoadOp::Search => {
                let (id, cn) = pick.unwrap_or((1, "load-user-0".into()));
                let url = match op {
                    LoadOp::Status => format!("{base}/api/v1/requests/{id}"),
                    _ => format!("{base}/api/v1/keys?token={cn}"),
                };
                match s.client.get(url).bearer_auth(&s.token).send().await {
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
}

/// One archival enrollment with the next prepared request (or one built
/// here, untimed, when they ran out); the enrolled request joins `known`.
async fn enroll(s: &Shared, base: &str, lat: &mut Latencies) -> Result<(), String> {
    let n = s.counter.fetch_add(1, Ordering::Relaxed);
    let next = s.prepared.lock().ok().and_then(|mut p| p.pop());
    let (cn, body) = match next {
        Some(b) => b,
        None => {
            // the prepared set ran out: build one here (untimed)
            let cn = format!("load-user-extra-{n}");
            let (pool, xchg, cn2) = (s.pool.clone(), s.xchg.clone(), cn.clone());
            match tokio::task::spawn_blocking(move || {
                archival_body(&pool[n % pool.len()], &cn2, &xchg)
            })
            .await
            {
                Ok(Ok(b)) => (cn, b),
                _ => return Err("building an archival request failed".into()),
            }
        }
    };
    let t = Instant::now();
    let r = s
        .client
        .post(format!("{base}/api/v1/requests?template=BenchExchangeUser"))
        .bearer_auth(&s.token)
        .body(body)
        .send()
        .await;
    match r {
        Ok(r) if r.status().is_success() => {
            let v: Value = r.json().await.unwrap_or_default();
            if v["archived"] == true {
                if let (Some(id), Ok(mut k)) = (v["request_id"].as_i64(), s.known.lock()) {
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
}

/// Prints the load report (JSON with `json`).
fn report(
    json: bool,
    (clients, deployment): (usize, &Deployment),
    elapsed: f64,
    lat: &Latencies,
    errors: &[String],
    limit: f64,
) -> Result<()> {
    let mut all: Vec<f64> = lat.iter().flatten().copied().collect();
    sort(&mut all);
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
        "backend": deployment.backend(),
        "nodes": deployment.nodes.max(1),
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
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
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
    Ok(())
}
