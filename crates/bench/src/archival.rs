//! `lockbox bench archival`: archival enrollments (CMC with the key
//! encrypted to an RSA-2048 exchange key) over HTTP, against the machine's
//! RSA-2048 limits measured in the same run: the honest limit (1 decrypt +
//! 2 signatures: certificate and CMC response) and the earlier decrypt +
//! sign figure; with the service's own CPU time per enrollment against what
//! its private-key operations cost.

use std::process::ExitCode;

use anyhow::{Context, Result};
use lockbox_crypto::{KeySpec, SoftwareKey};
use serde_json::json;
use x509_cert::certificate::Certificate;

use crate::fixture::{
    admin, admin_token, archival_bench_ca, archival_body, start_nodes, Deployment,
};
use crate::http::{drive, warm_up, SERVICE_THREAD_PREFIXES};
use crate::limits::ArchivalLimit;
use crate::stats::{cores, latency_ms, passed, print_latency, rounded, threads_cpu_seconds};

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
    let limits = ArchivalLimit::measure(seconds).await?;
    let (honest, old_limit) = (limits.honest(), limits.decrypt_and_sign());

    let dir = tempfile::tempdir().context("temporary CA home")?;
    let (ca, xchg) =
        archival_bench_ca(dir.path(), deployment.database.as_deref(), deployment.keys).await?;

    let on_token = crate::limits::token_limit(&ca, seconds).await?;
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
    warm_up(&urls, bodies, &token).await?;
    let cpu_before = threads_cpu_seconds(&SERVICE_THREAD_PREFIXES);
    let (latencies, errors, elapsed) = drive(&urls, timed, concurrency, &token).await?;
    let service_cpu = threads_cpu_seconds(&SERVICE_THREAD_PREFIXES) - cpu_before;
    for n in nodes {
        n.stop();
    }
    let archived = ca
        .view(&admin(), "ArchivedKey=true", 1_000_000)
        .await?
        .len();
    let done = latencies.len();
    let rate = done as f64 / elapsed;
    let cpu_per_enrollment = service_cpu / done.max(1) as f64;
    let key_cpu = limits.key_cpu_seconds(cores());
    let p50 = latency_ms(&latencies, 50.0);
    let p99 = latency_ms(&latencies, 99.0);
    let report = json!({
        "benchmark": "archival_enrollment_http",
        "requests": done,
        "errors": errors,
        "archived_rows": archived,
        "concurrency": concurrency,
        "cores": cores(),
        "rsa2048_sign_per_s": rounded(limits.sign_rate, 1),
        "rsa2048_decrypt_per_s": rounded(limits.decrypt_rate, 1),
        "honest_limit_per_s": rounded(honest, 1),
        "honest_limit_ops": "1 decrypt + 1 certificate signature + 1 CMC response signature",
        "limit_per_s": rounded(old_limit, 1),
        "limit_ops": "1 decrypt + 1 signature",
        "archival_enrollments_per_s": rounded(rate, 1),
        "ratio_to_honest_limit": rounded(rate / honest, 3),
        "ratio_to_limit": rounded(rate / old_limit, 3),
        "latency_ms_p50": p50,
        "latency_ms_p99": p99,
        "p99_over_p50": rounded(p99 / p50.max(0.001), 2),
        "service_cpu_ms_per_enrollment": rounded(cpu_per_enrollment * 1000.0, 3),
        "key_operations_cpu_ms_per_enrollment": rounded(key_cpu * 1000.0, 3),
        "service_cpu_over_key_cpu": rounded(cpu_per_enrollment / key_cpu, 2),
        "backend": deployment.backend(),
        "keys": deployment.keys.name(),
        "nodes": urls.len(),
        "durable_commits": deployment.durability(),
    });
    let mut report = report;
    if let Some(t) = &on_token {
        report["token_rsa2048_sign_per_s"] = json!(rounded(t.sign_rate, 1));
        report["token_rsa2048_decrypt_per_s"] = json!(rounded(t.decrypt_rate, 1));
        report["token_honest_limit_per_s"] = json!(rounded(t.honest(), 1));
        report["ratio_to_token_honest_limit"] = json!(rounded(rate / t.honest(), 3));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "RSA-2048 (aws-lc-rs, all cores): sign {:.1}/s, decrypt {:.1}/s",
            limits.sign_rate, limits.decrypt_rate
        );
        println!("honest limit (1 decrypt + 2 signatures): {honest:.1} enrollments/s; decrypt + sign: {old_limit:.1}/s");
        println!("archival enrollments over HTTP: {rate:.1}/s ({done} requests, {concurrency} clients, {errors} errors, {archived} archived rows; {} on {} node(s), keys in {})", deployment.backend(), urls.len(), deployment.keys.name());
        println!(
            "ratio to the honest limit: {:.3}; to decrypt + sign: {:.3}",
            rate / honest,
            rate / old_limit
        );
        print_latency(&latencies);
        if let Some(t) = &on_token {
            println!(
                "the token itself (all cores): sign {:.1}/s, decrypt {:.1}/s, honest limit {:.1}/s; ratio {:.3}",
                t.sign_rate,
                t.decrypt_rate,
                t.honest(),
                rate / t.honest()
            );
        }
        println!(
            "service CPU per enrollment {:.3} ms; its private-key operations {:.3} ms; ratio {:.2}",
            cpu_per_enrollment * 1000.0,
            key_cpu * 1000.0,
            cpu_per_enrollment / key_cpu
        );
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
