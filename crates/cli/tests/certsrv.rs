//! Web enrollment (`/certsrv/`) against clients nobody here wrote: the
//! `certsrv` PyPI package and Certipy's web enrollment code
//! (tests/interop/certsrv_web.py), over HTTPS with Basic authentication.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("LOCKBOX_CERTIPY_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let p = PathBuf::from(home).join(".cache/lockbox-tools/certipy-venv/bin/python");
    assert!(
        p.exists(),
        "certipy-ad and certsrv are required: run scripts/test.sh (it creates {})",
        p.display()
    );
    p
}

fn script(dir: &Path, args: &[&str]) -> Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/certsrv_web.py");
    Command::new(python())
        .arg(path)
        .args(args)
        // requests lets these override the client's own CA file (psf/requests#3829)
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .current_dir(dir)
        .output()
        .expect("run python")
}

#[test]
fn certsrv_clients_enroll_and_collect_pending_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("ca");
    let h = s(&home);
    ok(lockbox(&["init", "--home", h, "--name", "Contoso Web CA"]));
    let ca_pem = d.join("ca.pem");
    ok(lockbox(&["ca", "cert", "--home", h, "--out", s(&ca_pem)]));
    std::fs::write(d.join("pw"), "Corr3ct horse\n").unwrap();
    ok(lockbox(&[
        "--home",
        h,
        "principal",
        "add",
        "webalice",
        "--upn",
        "webalice@contoso.com",
        "--password-file",
        s(&d.join("pw")),
    ]));
    ok(lockbox(&[
        "--home",
        h,
        "template",
        "duplicate",
        "User",
        "Approved",
    ]));
    ok(lockbox(&[
        "--home",
        h,
        "template",
        "set",
        "Approved",
        "requires_approval=true",
    ]));
    ok(lockbox(&[
        "--home",
        h,
        "ca",
        "templates",
        "add",
        "Approved",
    ]));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let _server = Server(
        lockbox_cmd(&["serve", "--home", h, "--listen", &listen])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let pw = "Corr3ct horse";
    let out = ok(script(d, &["submit", &listen, s(&ca_pem), "webalice", pw]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    assert_eq!(v["issued_subject"], "CN=Web Alice", "{v}");
    assert_eq!(v["chain_length"], 1);
    assert_eq!(v["pending_message"], "Taken Under Submission", "{v}");
    assert!(
        v["denied_message"]
            .as_str()
            .unwrap()
            .contains("template that is not supported"),
        "{v}"
    );
    assert_eq!(v["cross_site_status"], 403, "{v}");
    assert_eq!(v["junk_status"], 400, "{v}");
    assert_eq!(v["junk_escaped"], true, "{v}");
    assert_eq!(v["junk_has_error_number"], true, "{v}");
    let pending = v["pending_id"].as_i64().unwrap().to_string();

    // the officer approves; the user collects it the way certsrv clients do
    ok(lockbox(&["--home", h, "issue", &pending]));
    let out = ok(script(
        d,
        &["retrieve", &listen, s(&ca_pem), "webalice", pw, &pending],
    ));
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    assert_eq!(v["retrieved_subject"], "CN=Web Bob", "{v}");
    assert_eq!(v["certipy_retrieved"], true);

    // the requests are recorded under the authenticated principal
    let rows: serde_json::Value = serde_json::from_str(&ok(lockbox(&[
        "--home",
        h,
        "view",
        "--json",
        "--restrict",
        "CommonName=Web Bob",
    ])))
    .unwrap();
    let row = &rows.as_array().unwrap()[0];
    assert!(row.to_string().contains("webalice"), "{row}");
}
