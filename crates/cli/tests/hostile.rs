//! The hostile-input catalogue (tests/hostile/catalogue.py, documented there):
//! malformed and malicious inputs over HTTPS (REST API, CMC endpoint, certsrv
//! form) and through the CLI's file inputs. Each gets a clear refusal with a
//! stable code, the request table is unchanged and the service keeps answering.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::Path;

mod common;
use common::*;

#[test]
fn hostile_inputs_are_refused_without_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A CA with a required KRA, so that archival requests reach the exchange
    // key, and a principal who may enroll for ExchangeUser.
    let home = ca_with_one_kra(d);
    let h = s(&home);
    let password = "hostile enrollee password";
    let pw_file = d.join("enrollee.pw");
    std::fs::write(&pw_file, password).unwrap();
    ok(lb(
        &home,
        &[
            "principal",
            "add",
            "enrollee",
            "--password-file",
            s(&pw_file),
        ],
    ));
    // The exchange certificate exists before the catalogue counts rows.
    ok(lb(
        &home,
        &["ca", "cert", "--exchange", "--out", s(&d.join("xchg.pem"))],
    ));
    let ca_pem = d.join("ca.pem");
    ok(lockbox(&["ca", "cert", "--home", h, "--out", s(&ca_pem)]));
    let token = std::fs::read_to_string(home.join("admin.token")).unwrap();
    // the decoders behind anonymous enrollment are what most cases attack
    allow_anonymous_enrollment(&home);
    let listen = free_listen_address();
    let _server = Server::start(&home, &listen);
    let work = d.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/hostile/catalogue.py");
    let out = std::process::Command::new(tools_python())
        .arg(script)
        .args([
            &format!("https://{listen}"),
            s(&ca_pem),
            token.trim(),
            &database_url(&home),
            env!("CARGO_BIN_EXE_lockbox"),
            s(&work),
        ])
        .env("LOCKBOX_HOME", &home)
        .env("LOCKBOX_HOSTILE_USER", "enrollee")
        .env("LOCKBOX_HOSTILE_PASSWORD", password)
        .env_remove("LOCKBOX_SERVER")
        .env_remove("LOCKBOX_TOKEN")
        .output()
        .expect("run the catalogue");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|_| {
        panic!(
            "catalogue output:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    println!("hostile catalogue: {} cases", v["cases"]);
    let names: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["case"].as_str())
        .collect();
    assert!(
        names.iter().filter(|n| n.starts_with("oracle ")).count() >= 15,
        "the exchange-key oracle probes ran: {names:?}"
    );
    assert!(v["cases"].as_u64().unwrap() >= 50, "{v}");
    assert_eq!(v["failed"], serde_json::json!([]), "{:#}", v["failed"]);
    assert_eq!(v["rows_unchanged"], true, "{}", v["rows"]);
    assert!(out.status.success());
}
