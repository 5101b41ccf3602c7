//! Scale-out on PostgreSQL, end to end with real PostgreSQL servers started
//! by `scripts/pg-cluster.sh`: several `lockbox serve` nodes (each with a copy
//! of the CA home) on one database, archival enrollments through all of them
//! at once, a node killed under load, the primary database killed and its
//! synchronous standby promoted, and `lockbox db migrate` moving an SQLite CA
//! with its archived keys to PostgreSQL. Afterwards every enrollment a client
//! saw acknowledged is in the database with its archived key and the audit
//! chain verifies.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::*;

/// Runs `lockbox` with `args`, output to files (no pipe can fill up), killed
/// after `limit`: a client stuck on a dead node must not hang the test.
fn lockbox_bounded(args: &[&str], scratch: &Path, limit: Duration) -> Output {
    let out_file = scratch.with_extension("stdout");
    let err_file = scratch.with_extension("stderr");
    let mut child = lockbox_cmd(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .spawn()
        .expect("run lockbox");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: std::fs::read(&out_file).unwrap_or_default(),
        stderr: std::fs::read(&err_file).unwrap_or_default(),
    }
}

/// `lockbox serve --home HOME --listen LISTEN`, its stderr in `log`.
fn start_node(home: &Path, listen: &str, log: &Path) -> Server {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = lockbox_cmd(&["serve", "--home", s(home), "--listen", listen])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start lockbox serve");
    Server::running(child, listen)
}

/// The last lines of the nodes' logs, for failure messages.
fn log_tails(logs: &[PathBuf]) -> String {
    let mut text = String::new();
    for log in logs {
        let all = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = all.lines().collect();
        let from = lines.len().saturating_sub(15);
        text.push_str(&format!(
            "--- {}\n{}\n",
            log.display(),
            lines[from..].join("\n")
        ));
    }
    text
}

/// An enrollment a client saw issued with its key archived.
#[derive(Clone, Debug)]
struct Ack {
    request_id: i64,
    serial: String,
    /// Index of the node that answered.
    node: usize,
    /// When the client started the enrollment.
    started: Instant,
}

/// Parses a `submit --json` answer; `Some` only for "issued and archived".
fn acknowledged(out: &Output, node: usize, started: Instant) -> Option<Ack> {
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    if v["disposition"] == "issued" && v["archived"] == true {
        Some(Ack {
            request_id: v["request_id"].as_i64()?,
            serial: v["serial"].as_str()?.to_string(),
            node,
            started,
        })
    } else {
        None
    }
}

/// Worker threads enrolling with key archival (`request new --archive` +
/// `submit --json --token`), each going round the nodes in turn.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Ack>>>,
    attempts: Arc<AtomicUsize>,
    /// Distinct failure messages (first 160 characters), for the report.
    errors: Arc<Mutex<BTreeMap<String, usize>>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(d: &Path, nodes: &[String], ca_pem: &Path, token: &str, workers: usize) -> Load {
        let mut load = Load {
            stop: Arc::default(),
            acked: Arc::default(),
            attempts: Arc::default(),
            errors: Arc::default(),
            workers: vec![],
        };
        let dir = d.join("load");
        std::fs::create_dir_all(&dir).unwrap();
        let mut handles = vec![];
        for w in 0..workers {
            let (stop, acked, attempts, errors) = (
                load.stop.clone(),
                load.acked.clone(),
                load.attempts.clone(),
                load.errors.clone(),
            );
            let (dir, nodes, ca_pem, token) = (
                dir.clone(),
                nodes.to_vec(),
                ca_pem.to_path_buf(),
                token.to_string(),
            );
            handles.push(std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let node = (w + n) % nodes.len();
                    attempts.fetch_add(1, Ordering::Relaxed);
                    let started = Instant::now();
                    let stem = dir.join(format!("w{w}-{n}"));
                    let req = stem.with_extension("req");
                    let key = stem.with_extension("key");
                    let remote = |args: &[&str], what: &str| {
                        let mut all =
                            vec!["--server", nodes[node].as_str(), "--ca-cert", s(&ca_pem)];
                        all.extend_from_slice(args);
                        let scratch = dir.join(format!("w{w}-{n}-{what}"));
                        lockbox_bounded(&all, &scratch, Duration::from_secs(60))
                    };
                    let note = |out: &Output| {
                        let text = String::from_utf8_lossy(&out.stderr).to_string()
                            + &String::from_utf8_lossy(&out.stdout);
                        let text: String = text.trim().chars().take(160).collect();
                        *errors.lock().unwrap().entry(text).or_default() += 1;
                    };
                    let made = remote(
                        &[
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
                            s(&key),
                        ],
                        "new",
                    );
                    if !made.status.success() {
                        note(&made);
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                    let out = remote(&["submit", s(&req), "--json", "--token", &token], "submit");
                    match acknowledged(&out, node, started) {
                        Some(ack) => acked.lock().unwrap().push(ack),
                        None => {
                            note(&out);
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            }));
        }
        load.workers = handles;
        load
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Acknowledged enrollments that started after `t`.
    fn count_started_after(&self, t: Instant) -> usize {
        self.acked
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.started > t)
            .count()
    }

    /// Waits until `n` enrollments are acknowledged (panics after `limit`).
    fn wait_for(&self, n: usize, limit: Duration, logs: &[PathBuf]) {
        let deadline = Instant::now() + limit;
        while self.count() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} enrollments acknowledged in {limit:?} ({} attempts); errors: {:#?}\n{}",
                self.count(),
                self.attempts.load(Ordering::Relaxed),
                self.errors.lock().unwrap(),
                log_tails(logs)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the workers; returns the acknowledged enrollments, the number
    /// of attempts and the failure messages.
    fn finish(mut self) -> (Vec<Ack>, usize, BTreeMap<String, usize>) {
        self.stop.store(true, Ordering::Relaxed);
        for w in std::mem::take(&mut self.workers) {
            w.join().unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        let errors = self.errors.lock().unwrap().clone();
        (acked, self.attempts.load(Ordering::Relaxed), errors)
    }
}

impl Drop for Load {
    /// Stops the workers also when a test panics (they end after their
    /// current enrollment).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One test at a time: each runs PostgreSQL, servers and clients, and the
/// machine has two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// `lockbox view --json` of every request, through `home`.
fn view_rows(home: &Path) -> Vec<serde_json::Value> {
    let rows: serde_json::Value = serde_json::from_str(&ok(lb(
        home,
        &[
            "view",
            "--json",
            "--out",
            "RequestID,SerialNumber,Disposition,CertificateTemplate,ArchivedKey",
        ],
    )))
    .unwrap();
    rows.as_array().unwrap().clone()
}

/// Every acknowledged (request ID, serial) is in `rows` exactly once, issued,
/// with its archived key; request IDs and serial numbers are unique, and no
/// ExchangeUser certificate lacks its key.
fn assert_acknowledged_are_archived(rows: &[serde_json::Value], acked: &[Ack]) {
    let mut ids = HashSet::new();
    let mut serials = HashSet::new();
    for r in rows {
        assert!(
            ids.insert(r["RequestID"].as_i64().unwrap()),
            "duplicate request ID: {r}"
        );
        if let Some(serial) = r["SerialNumber"].as_str() {
            assert!(serials.insert(serial.to_string()), "duplicate serial: {r}");
        }
        if r["CertificateTemplate"] == "ExchangeUser" && r["Disposition"] == "issued" {
            assert_eq!(r["ArchivedKey"], "yes", "certificate without its key: {r}");
        }
    }
    let mut acked_ids = HashSet::new();
    let mut acked_serials = HashSet::new();
    for a in acked {
        assert!(
            acked_ids.insert(a.request_id),
            "request ID acknowledged twice: {a:?}"
        );
        assert!(
            acked_serials.insert(a.serial.clone()),
            "serial acknowledged twice: {a:?}"
        );
        let matching: Vec<&serde_json::Value> = rows
            .iter()
            .filter(|r| r["RequestID"] == a.request_id)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "acknowledged {a:?} is not there exactly once"
        );
        let row = matching[0];
        assert_eq!(row["SerialNumber"], a.serial.as_str(), "{a:?}: {row}");
        assert_eq!(row["Disposition"], "issued", "{a:?}: {row}");
        assert_eq!(row["ArchivedKey"], "yes", "{a:?}: {row}");
    }
}

/// A CA on `database` with one required KRA, a principal "worker" with an
/// API token, the CA certificate in `d/ca.pem`, and the home copied to
/// `d/cb` for a second node. Returns (home A, home B, token).
fn two_homes(d: &Path, database: &str) -> (PathBuf, PathBuf, String) {
    let home = ca_with_one_kra_init(d, &["--database", database]);
    // archival needs an authenticated enrollee (anonymous callers never archive)
    let token = principal_with_token(&home, "worker");
    ok(lb(&home, &["ca", "cert", "--out", s(&d.join("ca.pem"))]));
    // the home is copied before any exchange certificate exists: node B
    // uses whichever node makes it (the key is sealed in the database)
    let home_b = d.join("cb");
    copy_dir(&home, &home_b);
    (home, home_b, token)
}

fn audit_verify(home: &Path) -> String {
    let out = ok(lb(home, &["audit", "verify"]));
    assert!(out.contains("intact"), "{out}");
    out
}

/// The CRL number of the DER CRL `crl`, checked against `ca_pem`.
fn crl_number(crl: &Path, ca_pem: &Path) -> u128 {
    let out = ok(openssl_crl_check(crl, ca_pem, &["-crlnumber"]));
    let hex = out
        .trim()
        .strip_prefix("crlNumber=0x")
        .unwrap_or_else(|| panic!("no CRL number: {out}"));
    u128::from_str_radix(hex, 16).unwrap()
}

#[test]
fn two_nodes_on_one_database_serve_archival_concurrently() {
    let _serial = one_at_a_time();
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (home_a, home_b, token) = two_homes(d, &pg.url);
    let ca_pem = d.join("ca.pem");
    let admin = std::fs::read_to_string(home_a.join("admin.token")).unwrap();
    let admin = admin.trim();
    let (listen_a, listen_b) = (free_listen_address(), free_listen_address());
    let logs = [d.join("node-a.log"), d.join("node-b.log")];
    let _node_a = start_node(&home_a, &listen_a, &logs[0]);
    let _node_b = start_node(&home_b, &listen_b, &logs[1]);
    let nodes = [format!("https://{listen_a}"), format!("https://{listen_b}")];
    let remote = |node: usize, args: &[&str]| {
        let mut all = vec!["--server", nodes[node].as_str(), "--ca-cert", s(&ca_pem)];
        all.extend_from_slice(args);
        lockbox_cmd(&all).output().expect("run lockbox")
    };

    // Certipy-built archival requests (certipy-ad's own CMC builder) for the
    // exchange certificate node B hands out, one submitted through each node.
    let xchg_b = d.join("xchg-b.pem");
    ok(remote(
        1,
        &["ca", "cert", "--exchange", "--out", s(&xchg_b)],
    ));
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/certipy_archival.py");
    let certipy_reqs: Vec<PathBuf> = (0..2)
        .map(|i| {
            let req = d.join(format!("certipy{i}.req"));
            ok(Command::new(tools_python())
                .args([
                    s(&script),
                    s(&xchg_b),
                    s(&req),
                    s(&d.join(format!("certipy{i}.key"))),
                    "worker",
                ])
                .output()
                .unwrap());
            req
        })
        .collect();

    let load = Load::start(d, &nodes, &ca_pem, &token, 4);
    load.wait_for(2, Duration::from_secs(60), &logs);
    // CRLs published alternately through node A and node B while enrollments run
    let mut crls = vec![];
    for round in 0..3 {
        for node in 0..2 {
            let crl = d.join(format!("crl-{round}-{node}.crl"));
            ok(remote(
                node,
                &["--token", admin, "crl", "publish", "--out", s(&crl)],
            ));
            crls.push(crl);
            std::thread::sleep(Duration::from_millis(150));
        }
    }
    // the Certipy requests, through A and B
    let mut certipy_acks = vec![];
    for (node, req) in certipy_reqs.iter().enumerate() {
        let started = Instant::now();
        let out = remote(
            node,
            &[
                "submit",
                s(req),
                "--template",
                "ExchangeUser",
                "--json",
                "--token",
                &token,
            ],
        );
        let ack = acknowledged(&out, node, started).unwrap_or_else(|| {
            panic!(
                "Certipy request through node {node} not issued with its key archived: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        certipy_acks.push(ack);
    }
    load.wait_for(16, Duration::from_secs(90), &logs);
    // and through each home's CLI, straight on the database
    for (i, home) in [&home_a, &home_b].into_iter().enumerate() {
        let crl = d.join(format!("crl-cli-{i}.crl"));
        ok(lb(home, &["crl", "publish", "--out", s(&crl)]));
        crls.push(crl);
    }
    let (mut acked, attempts, errors) = load.finish();
    let per_node = [0, 1].map(|n| acked.iter().filter(|a| a.node == n).count());
    assert!(
        per_node.iter().all(|&n| n >= 4),
        "both nodes must have served enrollments: {per_node:?} ({attempts} attempts, errors {errors:#?})"
    );
    acked.extend(certipy_acks);

    // one database: both homes see every acknowledged enrollment
    for home in [&home_a, &home_b] {
        assert_acknowledged_are_archived(&view_rows(home), &acked);
    }
    let numbers: Vec<u128> = crls.iter().map(|c| crl_number(c, &ca_pem)).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "CRL numbers not strictly increasing across the nodes: {numbers:?}"
    );

    // the KRA removed through node A: archival through node B refuses at once
    let kra_serial = ok(openssl(&[
        "x509",
        "-in",
        s(&d.join("kra.pem")),
        "-noout",
        "-serial",
    ]));
    let kra_serial = kra_serial.trim().trim_start_matches("serial=").to_string();
    ok(remote(
        0,
        &["--token", admin, "kra", "remove", &kra_serial, "--force"],
    ));
    let req = d.join("after-removal.req");
    let made = remote(
        1,
        &[
            "request",
            "new",
            "--template",
            "ExchangeUser",
            "--subject",
            "CN=After Removal",
            "--archive",
            "--out",
            s(&req),
            "--key-out",
            s(&d.join("after-removal.key")),
        ],
    );
    let refusal = if made.status.success() {
        remote(1, &["submit", s(&req), "--json", "--token", &token])
    } else {
        made
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&refusal.stdout),
        String::from_utf8_lossy(&refusal.stderr)
    );
    assert!(
        !refusal.status.success() && text.contains("0x8009400a"),
        "node B still archived after node A removed the only KRA ({:?}): {text}",
        refusal.status
    );
    let rows = view_rows(&home_b);
    assert_eq!(
        rows.iter()
            .filter(|r| r["CertificateTemplate"] == "ExchangeUser")
            .count(),
        rows.iter()
            .filter(|r| r["CertificateTemplate"] == "ExchangeUser" && r["ArchivedKey"] == "yes")
            .count(),
        "an ExchangeUser row without a key after the refusal"
    );

    let verified_a = audit_verify(&home_a);
    let verified_b = audit_verify(&home_b);
    eprintln!(
        "two nodes: {} acknowledged (A {}, B {}, 2 Certipy) of {attempts} attempts; CRL numbers {numbers:?}; \
         audit A: {} | B: {}; failures: {errors:?}",
        acked.len(),
        per_node[0],
        per_node[1],
        verified_a.trim(),
        verified_b.trim()
    );
}

#[test]
fn failover_to_the_synchronous_standby_loses_no_acknowledged_key() {
    let _serial = one_at_a_time();
    let pg = PgCluster::start_pair();
    assert!(pg.url.contains(',') && pg.url.contains("target_session_attrs=read-write"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (home_a, home_b, token) = two_homes(d, &pg.url);
    let ca_pem = d.join("ca.pem");
    let (listen_a, listen_b) = (free_listen_address(), free_listen_address());
    let logs = [d.join("node-a.log"), d.join("node-b.log")];
    let _node_a = start_node(&home_a, &listen_a, &logs[0]);
    let _node_b = start_node(&home_b, &listen_b, &logs[1]);
    let nodes = [format!("https://{listen_a}"), format!("https://{listen_b}")];

    let load = Load::start(d, &nodes, &ca_pem, &token, 3);
    load.wait_for(6, Duration::from_secs(60), &logs);
    std::thread::sleep(Duration::from_millis(700)); // mid-load
    let before_kill = load.count();
    let ports = pg.ports();
    assert_eq!(pg.sql(ports[1], "SELECT pg_is_in_recovery()"), "t");
    pg.kill_primary();
    let killed = Instant::now();
    std::thread::sleep(Duration::from_secs(1)); // the operator's reaction time
    pg.promote_standby();
    let promoted = Instant::now();
    // the old primary is gone, the standby is the read-write primary now
    assert!(std::net::TcpStream::connect(("127.0.0.1", ports[0])).is_err());
    assert_eq!(pg.sql(ports[1], "SELECT pg_is_in_recovery()"), "f");
    // keep the load running until enrollments succeed on the promoted server
    let deadline = promoted + Duration::from_secs(40);
    while load.count_started_after(promoted) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let after_promotion = load.count_started_after(promoted);
    let (acked, attempts, errors) = load.finish();
    assert!(
        after_promotion >= 1,
        "no enrollment succeeded after the promotion ({} acknowledged, {attempts} attempts); \
         errors: {errors:#?}\n{}",
        acked.len(),
        log_tails(&logs)
    );

    // the home's multi-host URL now reaches the promoted server
    let status: serde_json::Value =
        serde_json::from_str(&ok(lb(&home_a, &["db", "status", "--json"]))).unwrap();
    assert_eq!(status["backend"], "postgres", "{status}");
    let rows = view_rows(&home_a);
    assert_acknowledged_are_archived(&rows, &acked);
    assert!(
        status["archived_keys"].as_i64().unwrap() >= acked.len() as i64,
        "{status} < {} acknowledged",
        acked.len()
    );
    let verified_a = audit_verify(&home_a);
    let verified_b = audit_verify(&home_b);
    eprintln!(
        "failover: {} acknowledged ({before_kill} before the kill, {after_promotion} started after the \
         promotion, promoted {:?} after the kill) of {attempts} attempts; audit A: {} | B: {}; \
         failures: {errors:?}",
        acked.len(),
        promoted - killed,
        verified_a.trim(),
        verified_b.trim()
    );
}

#[test]
fn a_node_killed_under_load_loses_nothing_acknowledged() {
    let _serial = one_at_a_time();
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (home_a, home_b, token) = two_homes(d, &pg.url);
    let ca_pem = d.join("ca.pem");
    let (listen_a, listen_b) = (free_listen_address(), free_listen_address());
    let logs = [d.join("node-a.log"), d.join("node-b.log")];
    let mut node_a = start_node(&home_a, &listen_a, &logs[0]);
    let _node_b = start_node(&home_b, &listen_b, &logs[1]);
    let nodes = [format!("https://{listen_a}"), format!("https://{listen_b}")];

    let load = Load::start(d, &nodes, &ca_pem, &token, 4);
    let mut last_restart = None;
    for (round, pause_ms) in [(1, 900u64), (2, 1400)] {
        load.wait_for(4 * round, Duration::from_secs(60), &logs);
        std::thread::sleep(Duration::from_millis(pause_ms)); // mid-load
        node_a.kill(); // SIGKILL
        std::thread::sleep(Duration::from_millis(150 * round as u64));
        node_a = start_node(&home_a, &listen_a, &logs[0]);
        last_restart = Some(Instant::now());
    }
    // node A serves again after its restart
    let restarted = last_restart.unwrap();
    let deadline = restarted + Duration::from_secs(30);
    let served_by_a = |acked: &[Ack]| {
        acked
            .iter()
            .filter(|a| a.node == 0 && a.started > restarted)
            .count()
    };
    while served_by_a(&load.acked.lock().unwrap()) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (acked, attempts, errors) = load.finish();
    assert!(
        served_by_a(&acked) >= 1,
        "node A served nothing after its restart; errors: {errors:#?}\n{}",
        log_tails(&logs)
    );
    for home in [&home_a, &home_b] {
        assert_acknowledged_are_archived(&view_rows(home), &acked);
    }
    let verified_a = audit_verify(&home_a);
    let verified_b = audit_verify(&home_b);
    eprintln!(
        "node kill: {} acknowledged of {attempts} attempts, node A SIGKILLed twice; audit A: {} | B: {}; \
         failures: {errors:?}",
        acked.len(),
        verified_a.trim(),
        verified_b.trim()
    );
}

/// The private key in `path` (PEM, any format openssl reads) as unencrypted PKCS#8 PEM.
fn normalized_key(path: &Path) -> String {
    ok(openssl(&["pkey", "-in", s(path)]))
}

/// `lockbox db status --json` of `home`.
fn db_status(home: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(lb(home, &["db", "status", "--json"]))).unwrap()
}

/// The names in `home` (without SQLite's `-wal`/`-shm` side files, which
/// come and go with any open) and its configuration.
fn home_snapshot(home: &Path) -> (Vec<String>, String) {
    let mut names: Vec<String> = std::fs::read_dir(home)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect();
    names.sort();
    (
        names,
        std::fs::read_to_string(home.join("lockbox.toml")).unwrap(),
    )
}

#[test]
fn db_migrate_moves_every_key_to_postgresql() {
    let _serial = one_at_a_time();
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // an SQLite CA (named explicitly: the suite's PostgreSQL switch would
    // otherwise give it a database) with archived keys, an imported key, a
    // principal with a role and its audit chain
    let home = ca_with_one_kra_init(d, &["--database", "sqlite:ca.db"]);
    assert_eq!(db_status(&home)["backend"], "sqlite");
    let mut keys: Vec<(String, PathBuf)> = vec![];
    for name in ["alice", "bob", "carol"] {
        let (_pem, key, serial) = enroll(&home, d, name, &format!("{name} Example"));
        keys.push((serial, key));
    }
    // manual archival: a certificate this CA issued without archival, its
    // key imported from a PKCS#12 afterwards (as importkms does for KMS)
    openssl_csr(d, "dan", "/CN=Dan Example", &["-newkey", "rsa:2048"]);
    let dan: serde_json::Value = serde_json::from_str(&ok(lb(
        &home,
        &[
            "submit",
            s(&d.join("dan.csr")),
            "--template",
            "User",
            "--out",
            s(&d.join("dan.pem")),
            "--json",
        ],
    )))
    .unwrap();
    let input = d.join("import");
    std::fs::create_dir_all(&input).unwrap();
    pkcs12_export(
        &d.join("dan.key"),
        &d.join("dan.pem"),
        &input.join("dan.pfx"),
        "pw",
        &[],
    );
    // and a key without a certificate (an unmatched key ID, as KMS exports have)
    ok(openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        s(&d.join("lone.key")),
    ]));
    ok(openssl(&[
        "pkcs12",
        "-export",
        "-nocerts",
        "-inkey",
        s(&d.join("lone.key")),
        "-out",
        s(&input.join("lone.pfx")),
        "-passout",
        "pass:pw",
    ]));
    let report = d.join("import.json");
    let imported: serde_json::Value = serde_json::from_str(&ok(lb(
        &home,
        &[
            "importkms",
            s(&input),
            "-p",
            "pw",
            "--report",
            s(&report),
            "--json",
        ],
    )))
    .unwrap();
    assert_eq!(imported["keys_archived"], 2, "{imported}");
    assert_eq!(imported["unmatched_keys"], 1, "{imported}");
    keys.push((
        dan["serial"].as_str().unwrap().to_string(),
        d.join("dan.key"),
    ));
    // (an unmatched key has no recovery path yet, on SQLite either: `getkey
    // KEYID` finds only keys with a request row, so it is only counted below)
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(
        report["keys"]
            .as_array()
            .is_some_and(|k| k.iter().any(|line| line["outcome"] == "unmatched")),
        "{report}"
    );
    ok(lb(
        &home,
        &[
            "principal",
            "add",
            "officer",
            "--upn",
            "officer@contoso.com",
        ],
    ));
    ok(lb(
        &home,
        &["role", "grant", "officer", "CertificateManager"],
    ));
    let roles_before = ok(lb(&home, &["role", "list"]));
    assert!(roles_before.contains("officer"), "{roles_before}");
    audit_verify(&home);
    let before = db_status(&home);
    assert_eq!(before["unmatched_keys"], 1, "{before}");
    assert!(before["archived_keys"].as_i64().unwrap() >= 4, "{before}");

    let migrated: serde_json::Value = serde_json::from_str(&ok(lb(
        &home,
        &["db", "migrate", "--to", &pg.url, "--json"],
    )))
    .unwrap();
    let after = db_status(&home);
    assert_eq!(after["backend"], "postgres", "{after}");
    for field in ["requests", "archived_keys", "unmatched_keys"] {
        assert_eq!(after[field], before[field], "{field}: {before} -> {after}");
    }
    // every record, plus "migration started" (written on SQLite, verified on
    // the target: the report's count) and "migration succeeded" on the target
    let audit_before = before["audit_records"].as_i64().unwrap();
    assert_eq!(
        migrated["audit_records"].as_i64(),
        Some(audit_before + 1),
        "{before} / {migrated}"
    );
    assert_eq!(
        after["audit_records"].as_i64(),
        Some(audit_before + 2),
        "{before} -> {after}"
    );
    assert_eq!(
        migrated["rows"]["rows"]["requests"].as_i64(),
        before["requests"].as_i64(),
        "{migrated}"
    );
    assert_eq!(ok(lb(&home, &["role", "list"])), roles_before);
    let kept = migrated["sqlite_kept_as"].as_str().unwrap();
    let kept_name = Path::new(kept)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(kept_name.starts_with("ca.db.migrated-"), "{migrated}");
    assert!(Path::new(kept).is_file() && !home.join("ca.db").exists());
    // the kept file is the whole SQLite database (read by Python's sqlite3)
    let kept_requests = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from requests').fetchone()[0])",
            kept,
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&kept_requests.stdout).trim(),
        before["requests"].to_string(),
        "{kept_requests:?}"
    );
    let config = std::fs::read_to_string(home.join("lockbox.toml")).unwrap();
    assert!(config.contains(&pg.url), "{config}");

    // every archived key recovers from PostgreSQL to the key the client made
    let ca_pem = home.join("certs/ca.pem");
    for (i, (serial, key)) in keys.iter().enumerate() {
        let blob = d.join(format!("recovered{i}.rec"));
        ok(lb(&home, &["getkey", serial, s(&blob)]));
        let pfx = d.join(format!("recovered{i}.pfx"));
        ok(recoverkey(
            &blob,
            &pfx,
            &d.join("kra.pfx"),
            "kra",
            "Rec0vered!",
            &ca_pem,
        ));
        let recovered = d.join(format!("recovered{i}.key"));
        pkcs12_keys(&pfx, "Rec0vered!", Some(&recovered));
        assert_eq!(
            normalized_key(&recovered),
            normalized_key(key),
            "key of {serial} recovered from PostgreSQL differs from the one made before"
        );
    }
    audit_verify(&home);

    // a second migration into the (now non-empty) database is refused, the
    // home left as it was: from the migrated home, and from another SQLite CA
    let snapshot = home_snapshot(&home);
    let again = lb(&home, &["db", "migrate", "--to", &pg.url]);
    assert!(
        !again.status.success()
            && String::from_utf8_lossy(&again.stderr).contains("already PostgreSQL"),
        "{again:?}"
    );
    assert_eq!(home_snapshot(&home), snapshot);
    assert_eq!(db_status(&home)["backend"], "postgres");
    let other_dir = d.join("other");
    let other = other_dir.join("ca");
    ok(lb(
        &other,
        &[
            "init",
            "--name",
            "Other CA",
            "--key",
            "p256",
            "--database",
            "sqlite:ca.db",
        ],
    ));
    let other_before = home_snapshot(&other);
    let refused = lb(&other, &["db", "migrate", "--to", &pg.url]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("not empty"),
        "{:?}: {err}",
        refused.status
    );
    assert_eq!(home_snapshot(&other), other_before, "{err}");
    assert_eq!(db_status(&other)["backend"], "sqlite");
    assert_eq!(db_status(&home)["requests"], before["requests"]);
    eprintln!(
        "migrate: {} keys recovered from PostgreSQL; rows {}; second migration: {}",
        keys.len(),
        migrated["rows"],
        err.trim()
    );
}

/// `curl` (a client nobody here wrote) to an authenticated endpoint that
/// reads the database: (HTTP status, headers, body).
fn curl_status(listen: &str, ca_pem: &Path, token: &str, scratch: &Path) -> (u16, String, String) {
    let (headers, body) = (scratch.join("h.txt"), scratch.join("b.txt"));
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "30", "--cacert", s(ca_pem)])
        .args(["-D", s(&headers), "-o", s(&body), "-w", "%{http_code}"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("https://{listen}/api/v1/requests/1"))
        .output()
        .expect("curl");
    let code = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (
        code,
        std::fs::read_to_string(&headers).unwrap_or_default(),
        std::fs::read_to_string(&body).unwrap_or_default(),
    )
}

/// A database the service cannot reach is HTTP 503 with the stable code
/// (`unavailable`, 0x800706BA RPC_S_SERVER_UNAVAILABLE, Retry-After), never
/// a panic or the driver's text (which names hosts); once the database is
/// back the same process answers again.
#[test]
fn an_unreachable_database_is_503_and_the_service_recovers() {
    let _serial = one_at_a_time();
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("ca");
    ok(lb(
        &home,
        &[
            "init",
            "--name",
            "Outage CA",
            "--key",
            "p256",
            "--database",
            &pg.url,
        ],
    ));
    let token = std::fs::read_to_string(home.join("admin.token")).unwrap();
    let token = token.trim();
    let ca_pem = d.join("ca.pem");
    ok(lb(&home, &["ca", "cert", "--out", s(&ca_pem)]));
    let listen = free_listen_address();
    let log = d.join("serve.log");
    let _node = start_node(&home, &listen, &log);

    let (up, _, body) = curl_status(&listen, &ca_pem, token, d);
    assert!(
        up == 200 || up == 404,
        "before the outage: HTTP {up} {body}"
    );

    pg.kill_primary();
    let (down, headers, body) = curl_status(&listen, &ca_pem, token, d);
    assert_eq!(down, 503, "{headers}{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["kind"], "unavailable", "{body}");
    assert_eq!(v["error"]["status"], "0x800706ba", "{body}");
    assert_eq!(v["error"]["name"], "RPC_S_SERVER_UNAVAILABLE", "{body}");
    assert!(
        headers.to_ascii_lowercase().contains("retry-after: 5"),
        "{headers}"
    );
    let port = pg.primary_port().to_string();
    assert!(
        !body.contains("127.0.0.1") && !body.contains(&port),
        "the 503 body names the database host: {body}"
    );

    // the database comes back: the same service answers again
    let started = pg_command(
        "pg_ctl",
        &[
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            s(&pg.primary_data()),
            "-l",
            s(&pg.primary_data().join("restart.log")),
        ],
    );
    assert!(started.status.success(), "pg_ctl start: {started:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, _, body) = curl_status(&listen, &ca_pem, token, d);
        if code == 200 || code == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after the database returned: HTTP {code} {body}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Issue 14 review: `db migrate` refuses while a `lockbox serve` runs on the
/// home (the service holds serve.lock for its lifetime), so no write is lost
/// to a database moved under a running service; once it stops, the same
/// migration goes through.
#[test]
fn db_migrate_refuses_while_the_service_runs() {
    let _serial = one_at_a_time();
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("ca");
    ok(lb(
        &home,
        &[
            "init",
            "--name",
            "Busy CA",
            "--key",
            "p256",
            "--database",
            "sqlite:ca.db",
        ],
    ));
    let listen = free_listen_address();
    let server = Server::start(&home, &listen);
    let busy = lb(&home, &["db", "migrate", "--to", &pg.url]);
    let err = String::from_utf8_lossy(&busy.stderr).to_string();
    assert!(
        !busy.status.success() && err.contains("lockbox serve` is running"),
        "{err}"
    );
    assert_eq!(db_status(&home)["backend"], "sqlite");
    drop(server);
    ok(lb(&home, &["db", "migrate", "--to", &pg.url]));
    assert_eq!(db_status(&home)["backend"], "postgres");
}
