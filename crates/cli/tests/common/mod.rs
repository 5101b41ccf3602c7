//! Helpers shared by the end-to-end tests of the `lockbox` binary.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The `lockbox` binary with no LOCKBOX_* variables from the caller's environment.
pub fn lockbox_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lockbox"));
    for (k, _) in std::env::vars() {
        if k.starts_with("LOCKBOX_") {
            c.env_remove(k);
        }
    }
    c.args(args);
    c
}

/// Runs `lockbox` with `args`.
pub fn lockbox(args: &[&str]) -> Output {
    lockbox_cmd(args).output().expect("run lockbox")
}

/// Asserts success and returns stdout.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A path as &str.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The Python with certipy-ad, certsrv and cryptography (created by scripts/test.sh).
pub fn tools_python() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("LOCKBOX_CERTIPY_PYTHON") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let p = std::path::PathBuf::from(home).join(".cache/lockbox-tools/certipy-venv/bin/python");
    assert!(
        p.exists(),
        "the interop Python is required: run scripts/test.sh (it creates {})",
        p.display()
    );
    p
}

/// A free loopback address (`127.0.0.1:PORT`).
pub fn free_listen_address() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    format!("127.0.0.1:{port}")
}

/// `lockbox serve` on `listen` (HTTPS), killed when dropped.
pub struct Server(pub std::process::Child);

impl Server {
    /// Starts the service for `home` and waits until it accepts connections.
    pub fn start(home: &Path, listen: &str) -> Server {
        let child = lockbox_cmd(&["serve", "--home", s(home), "--listen", listen])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start lockbox serve");
        let server = Server(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(listen).is_err() {
            assert!(std::time::Instant::now() < deadline, "server did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server
    }

    /// Kills the service with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A root CA in `d/ca` with one issued KRA (`d/kra.key`, `d/kra.pem`,
/// `d/kra.pfx` with password "kra") configured and required.
pub fn ca_with_one_kra(d: &Path) -> std::path::PathBuf {
    let home = d.join("ca");
    let h = s(&home);
    ok(lockbox(&[
        "init",
        "--home",
        h,
        "--name",
        "Contoso Issuing CA",
    ]));
    ok(lockbox(&[
        "--home",
        h,
        "ca",
        "templates",
        "add",
        "KeyRecoveryAgent",
    ]));
    ok(lockbox(&[
        "--home",
        h,
        "request",
        "new",
        "--template",
        "KeyRecoveryAgent",
        "--subject",
        "CN=Agent",
        "--out",
        s(&d.join("kra.req")),
        "--key-out",
        s(&d.join("kra.key")),
    ]));
    ok(lockbox(&["--home", h, "submit", s(&d.join("kra.req"))]));
    ok(lockbox(&[
        "--home",
        h,
        "issue",
        "1",
        "--out",
        s(&d.join("kra.pem")),
    ]));
    ok(Command::new("openssl")
        .args([
            "pkcs12",
            "-export",
            "-inkey",
            s(&d.join("kra.key")),
            "-in",
            s(&d.join("kra.pem")),
            "-out",
            s(&d.join("kra.pfx")),
            "-passout",
            "pass:kra",
        ])
        .output()
        .expect("openssl is required"));
    ok(lockbox(&["--home", h, "kra", "required", "1"]));
    home
}

/// Runs `lockbox` with `LOCKBOX_HOME` set to `home`.
pub fn lb(home: &Path, args: &[&str]) -> Output {
    lockbox_cmd(args)
        .env("LOCKBOX_HOME", home)
        .output()
        .expect("run lockbox")
}

/// Runs the `openssl` CLI.
pub fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is required")
}

/// Enrolls `cn` for ExchangeUser with its key archived (`d/NAME.req|key|pem`);
/// returns the certificate file, the key file and the serial number.
pub fn enroll(
    home: &Path,
    d: &Path,
    name: &str,
    cn: &str,
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let req = d.join(format!("{name}.req"));
    let key = d.join(format!("{name}.key"));
    let pem = d.join(format!("{name}.pem"));
    ok(lb(
        home,
        &[
            "request",
            "new",
            "--template",
            "ExchangeUser",
            "--subject",
            &format!("CN={cn}"),
            "--archive",
            "--out",
            s(&req),
            "--key-out",
            s(&key),
        ],
    ));
    let out: serde_json::Value = serde_json::from_str(&ok(lb(
        home,
        &["submit", s(&req), "--out", s(&pem), "--json"],
    )))
    .unwrap();
    assert_eq!(out["archived"], true);
    (pem, key, out["serial"].as_str().unwrap().to_string())
}
