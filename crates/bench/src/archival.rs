//! `lockbox bench archival`: archival enrollments (CMC with the key
//! encrypted to an RSA-2048 exchange key) over HTTP, against the machine's
//! RSA-2048 decrypt + sign limit.

use std::process::ExitCode;

use anyhow::{Context, Result};
use lockbox_crypto::{KeySpec, SoftwareKey};
use serde_json::json;
use x509_cert::certificate::Certificate;

use crate::fixture::{
    admin, admin_token, archival_bench_ca, archival_body, start_nodes, Deployment,
};
use crate::http::warm_then_drive;
use crate::limits::archival_limit;
use crate::stats::{cores, latency_ms, passed, print_latency, rounded};

/// Times `requests` archival enrollments (after a warm-up) with
/// `concurrency` clients; each RSA-2048 rate is measured for `seconds`
/// first. The CA runs as `deployment` says (SQLite or PostgreSQL, one or
/// more nodes; clients spread over the nodes). Prints the report (JSON with
/// `json`); fails when a request failed.
pub async fn archival(
    json: bool,
    requests: usize,
    concurrency: usize,
    seconds: f64,
    deployment: Deployment,
) -> Result<ExitCode> {
    let (sign_rate, decrypt_rate, limit) = archival_limit(seconds).await?;

    let dir = tempfile::tempdir().context("temporary CA home")?;
    let (ca, xchg) = archival_bench_ca(dir.path(), deployment.database.as_deref()).await?;

    let warmup = 10.min(requests);
    let mut bodies = archival_requests(requests + warmup, xchg).await?;

    let nodes = start_nodes(dir.path(), ca.clone(), &deployment).await?;
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| {
            format!(
                "http://{}/api/v1/requests?template=BenchExchangeUser",
                n.addr
            )
        })
        .collect();
    let token = admin_token(dir.path())?;
    let timed = bodies.split_off(warmup);
    let (latencies, errors, elapsed) =
        warm_then_drive(&urls, bodies, timed, concurrency, &token).await?;
    for n in nodes {
        n.stop();
    }
    let archived = ca
        .view(&admin(), "ArchivedKey=true", 1_000_000)
        .await?
        .len();
    let rate = latencies.len() as f64 / elapsed;
    let report = json!({
        "benchmark": "archival_enrollment_http",
        "requests": latencies.len(),
        "errors": errors,
        "archived_rows": archived,
        "concurrency": concurrency,
        "cores": cores(),
        "rsa2048_sign_per_s": rounded(sign_rate, 1),
        "rsa2048_decrypt_per_s": rounded(decrypt_rate, 1),
        "limit_per_s": rounded(limit, 1),
        "archival_enrollments_per_s": rounded(rate, 1),
        "ratio_to_limit": rounded(rate / limit, 3),
        "latency_ms_p50": latency_ms(&latencies, 50.0),
        "latency_ms_p99": latency_ms(&latencies, 99.0),
        "backend": deployment.backend(),
        "nodes": urls.len(),
        "durable_commits": deployment.durability(),
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("RSA-2048 limits (aws-lc-rs, all cores): sign {sign_rate:.1}/s, decrypt {decrypt_rate:.1}/s -> {limit:.1} enrollments/s (1 decrypt + 1 sign)");
        println!("archival enrollments over HTTP: {rate:.1}/s ({} requests, {concurrency} clients, {errors} errors, {archived} archived rows; {} on {} node(s))", latencies.len(), deployment.backend(), urls.len());
        println!("ratio to the limit: {:.3}", rate / limit);
        print_latency(&latencies);
    }
    Ok(passed(errors))
}

/// `total` archival requests encrypted to `xchg`.
async fn archival_requests(total: usize, xchg: Certificate) -> Result<Vec<Vec<u8>>> {
    tokio::task::spawn_blocking(move || -> Result<Vec<Vec<u8>>> {
        // A pool of RSA-2048 user keys (generation is slow), reused under different names.
        let pool: Vec<SoftwareKey> = (0..16)
            .map(|_| SoftwareKey::generate(KeySpec::Rsa2048))
            .collect::<Result<_, _>>()?;
        (0..total)
            .map(|i| archival_body(&pool[i % pool.len()], &format!("archival-user-{i}"), &xchg))
            .collect()
    })
    .await?
}
