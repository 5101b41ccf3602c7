//! `lockbox bench ocsp`: OCSP responses over HTTP (POST, each with its own
//! nonce so that nothing can be cached), against the sign rate of the
//! responder's key type (RSA-2048) on all cores, measured in the same run.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use der::asn1::OctetString;
use der::{Decode, Encode};
use lockbox_codec::ocsp::{
    CertId, OcspRequest, OcspResponse, ResponseStatus, SingleRequest, TbsRequest,
    ID_PKIX_OCSP_NONCE,
};
use lockbox_crypto::digest::sha1;
use serde_json::json;
use x509_cert::certificate::Certificate;
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;

use crate::fixture::{admin, admin_token, bench_ca, BenchKeys};
use crate::http::{warm_up, Service};
use crate::limits::sign_rate;
use crate::stats::{cores, latency_ms, passed, print_latency, rounded, sort};

/// Certificates issued first, which the OCSP requests ask about in turn.
const CERTIFICATES: usize = 50;

/// Times `requests` OCSP requests with `concurrency` clients; the RSA-2048
/// sign rate is measured for `sign_seconds` first. A response counts only
/// when it is a successful OCSP response.
pub async fn ocsp(
    json: bool,
    requests: usize,
    concurrency: usize,
    sign_seconds: f64,
) -> Result<ExitCode> {
    let sign_rate = sign_rate(sign_seconds).await?;
    let dir = tempfile::tempdir().context("temporary CA home")?;
    drop(bench_ca(dir.path(), None, BenchKeys::Software).await?);
    // The bench CA names no OCSP URL: turn the responder on, then open it again.
    let home = lockbox_engine::config::Home::new(dir.path());
    let mut config = home.load_config()?;
    config.ocsp.enabled = Some(true);
    home.save_config(&config)?;
    let ca = std::sync::Arc::new(lockbox_engine::Ca::open(dir.path()).await?);
    let server = Service::start(ca.clone()).await?;
    let token = admin_token(dir.path())?;
    let issue_url = format!("http://{}/api/v1/requests?template=BenchUser", server.addr);
    warm_up(
        &[issue_url],
        crate::issuance::pkcs10_requests(CERTIFICATES).await?,
        &token,
    )
    .await?;
    let serials: Vec<Vec<u8>> = ca
        .view(&admin(), "", CERTIFICATES as i64 * 2)
        .await?
        .into_iter()
        .filter_map(|r| r.cert)
        .filter_map(|c| hex::decode(c.serial).ok())
        .collect();
    anyhow::ensure!(!serials.is_empty(), "no certificates to ask about");
    let ca_der = ca.ca_certificate_der()?;
    let ca_cert = Certificate::from_der(&ca_der)?;
    let bodies = (0..requests + 20)
        .map(|i| ocsp_request(&ca_cert, &serials[i % serials.len()], i as u64))
        .collect::<Result<Vec<_>>>()?;
    let mut bodies = bodies;
    let timed = bodies.split_off(20);
    let url = format!("http://{}/ocsp", server.addr);
    let (_, warm_errors, _) = drive(&url, bodies, 2).await?;
    anyhow::ensure!(warm_errors == 0, "warm-up OCSP requests failed");
    let (latencies, errors, elapsed) = drive(&url, timed, concurrency).await?;
    server.stop();
    let rate = latencies.len() as f64 / elapsed;
    let report = json!({
        "benchmark": "ocsp_http",
        "requests": latencies.len(),
        "errors": errors,
        "concurrency": concurrency,
        "cores": cores(),
        "rsa2048_sign_per_s": rounded(sign_rate, 1),
        "ocsp_per_s": rounded(rate, 1),
        "ratio_to_sign_limit": rounded(rate / sign_rate, 3),
        "latency_ms_p50": latency_ms(&latencies, 50.0),
        "latency_ms_p99": latency_ms(&latencies, 99.0),
        "responder_key": "RSA-2048 (software)",
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("RSA-2048 sign limit (aws-lc-rs, all cores): {sign_rate:.1} ops/s");
        println!(
            "OCSP over HTTP (POST, a nonce each): {rate:.1} responses/s ({} requests, {concurrency} clients, {errors} errors)",
            latencies.len()
        );
        println!("ratio to the sign limit: {:.3}", rate / sign_rate);
        print_latency(&latencies);
    }
    Ok(passed(errors))
}

/// A DER OCSP request for `serial` of `ca` (SHA-1 CertID), with a nonce made of `n`.
fn ocsp_request(ca: &Certificate, serial: &[u8], n: u64) -> Result<Vec<u8>> {
    let tbs = ca.tbs_certificate();
    let cert_id = CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: der::asn1::ObjectIdentifier::new_unwrap("1.3.14.3.2.26"),
            parameters: None,
        },
        issuer_name_hash: OctetString::new(sha1(&tbs.subject().to_der()?).to_vec())?,
        issuer_key_hash: OctetString::new(
            sha1(tbs.subject_public_key_info().subject_public_key.raw_bytes()).to_vec(),
        )?,
        serial_number: SerialNumber::new(serial)?,
    };
    let nonce = OctetString::new(n.to_be_bytes().to_vec())?.to_der()?;
    Ok(OcspRequest {
        tbs_request: TbsRequest {
            version: 0,
            requestor_name: None,
            request_list: vec![SingleRequest {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions: Some(vec![Extension {
                extn_id: ID_PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(nonce)?,
            }]),
        },
        optional_signature: None,
    }
    .to_der()?)
}

/// Posts every body with `concurrency` clients; a success is a successful
/// OCSP response. Returns (sorted latencies ms, errors, seconds).
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
        let (work, client, url) = (work.clone(), client.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0usize);
            loop {
                let next = work.lock().await.next();
                let Some(body) = next else { break };
                let t = Instant::now();
                let sent = client
                    .post(&url)
                    .header("content-type", "application/ocsp-request")
                    .body(body)
                    .send()
                    .await;
                let good = match sent {
                    Ok(r) if r.status().is_success() => r.bytes().await.ok().is_some_and(|b| {
                        OcspResponse::from_der(&b)
                            .is_ok_and(|o| o.response_status == ResponseStatus::Successful)
                    }),
                    _ => false,
                };
                if good {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    sort(&mut latencies);
    Ok((latencies, errors, elapsed))
}
