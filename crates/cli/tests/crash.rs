//! Crash safety: concurrent archival enrollments against `lockbox serve`
//! while the server is killed with SIGKILL at random moments and restarted.
//! Afterwards every enrollment a client saw issued is in the database with
//! its archived key, no archival-template certificate lacks its key, the
//! audit chain verifies and SQLite's own integrity check passes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;
use common::*;

/// A small deterministic-per-run pseudo-random source (no extra dependency).
fn jitter(seed: &mut u64, lo_ms: u64, hi_ms: u64) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    Duration::from_millis(lo_ms + *seed % (hi_ms - lo_ms))
}

#[test]
fn acknowledged_archival_enrollments_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let home = ca_with_one_kra(&d);
    let ca_pem = d.join("ca.pem");
    ok(lb(&home, &["ca", "cert", "--out", s(&ca_pem)]));
    // archival needs an authenticated enrollee (anonymous callers never archive)
    let token = principal_with_token(&home, "worker");

    let listen = free_listen_address();
    let url = format!("https://{listen}");
    let mut server = Server::start(&home, &listen);

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(i64, String)>>> = Arc::default();
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = vec![];
    for w in 0..4 {
        let (stop, acked, attempts) = (stop.clone(), acked.clone(), attempts.clone());
        let (d, url, ca_pem): (PathBuf, String, PathBuf) = (d.clone(), url.clone(), ca_pem.clone());
        let token = token.clone();
        workers.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                attempts.fetch_add(1, Ordering::Relaxed);
                let req = d.join(format!("w{w}-{n}.req"));
                let remote = |args: &[&str]| {
                    let mut all = vec!["--server", url.as_str(), "--ca-cert", s(&ca_pem)];
                    all.extend_from_slice(args);
                    lockbox_cmd(&all).output().expect("run lockbox")
                };
                let made = remote(&[
                    "request",
                    "new",
                    "--template",
                    "ExchangeUser",
                    "--subject",
                    &format!("CN=Worker {w} Enrollment {n}"),
                    "--archive",
                    "--out",
                    s(&req),
                    "--key-out",
                    s(&d.join(format!("w{w}-{n}.key"))),
                ]);
                if !made.status.success() {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                let out = remote(&["submit", s(&req), "--json", "--token", token.as_str()]);
                if !out.status.success() {
                    continue;
                }
                let v: serde_json::Value = match serde_json::from_slice(&out.stdout) {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                if v["disposition"] == "issued" && v["archived"] == true {
                    acked.lock().unwrap().push((
                        v["request_id"].as_i64().unwrap(),
                        v["serial"].as_str().unwrap().to_string(),
                    ));
                }
            }
        }));
    }

    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ listen.len() as u64 ^ std::process::id() as u64;
    for _ in 0..4 {
        std::thread::sleep(jitter(&mut seed, 1200, 3500));
        server.kill(); // SIGKILL
        std::thread::sleep(jitter(&mut seed, 50, 400));
        server = Server::start(&home, &listen);
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    server.kill();

    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 4,
        "too few enrollments completed to judge ({} of {} attempts)",
        acked.len(),
        attempts.load(Ordering::Relaxed)
    );
    let rows: serde_json::Value = serde_json::from_str(&ok(lb(
        &home,
        &[
            "view",
            "--json",
            "--out",
            "RequestID,SerialNumber,Disposition,CertificateTemplate,ArchivedKey",
        ],
    )))
    .unwrap();
    let rows = rows.as_array().unwrap();
    for (id, serial) in &acked {
        let row = rows
            .iter()
            .find(|r| r["RequestID"] == *id)
            .unwrap_or_else(|| panic!("acknowledged request {id} is missing"));
        assert_eq!(row["SerialNumber"], serial.as_str(), "{row}");
        assert_eq!(row["Disposition"], "issued", "{row}");
        assert_eq!(row["ArchivedKey"], "yes", "{row}");
    }
    for r in rows {
        if r["CertificateTemplate"] == "ExchangeUser" {
            assert_eq!(r["ArchivedKey"], "yes", "certificate without its key: {r}");
        }
    }
    ok(lb(&home, &["audit", "verify"]));
    if on_postgres() {
        // PostgreSQL's own client, by a tool other than ours: every
        // acknowledged request is a row with its archived key
        let url = database_url(&home);
        let ids: Vec<String> = acked.iter().map(|(id, _)| id.to_string()).collect();
        let check = Command::new("psql")
            .args([
                url.as_str(),
                "-At",
                "-c",
                &format!(
                    "SELECT COUNT(*) FROM requests WHERE archived_key IS NOT NULL AND request_id IN ({})",
                    ids.join(",")
                ),
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&check.stdout).trim(),
            acked.len().to_string(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    } else {
        // SQLite's own check, by a tool other than ours (the file must exist:
        // sqlite3 would make an empty one)
        assert!(home.join("ca.db").is_file());
        let check = Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('pragma integrity_check').fetchone()[0])",
                s(&home.join("ca.db")),
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "ok");
    }
    eprintln!(
        "crash test: {} acknowledged of {} attempts, 4 SIGKILLs",
        acked.len(),
        attempts.load(Ordering::Relaxed)
    );
}
