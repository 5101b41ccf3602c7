//! Helpers shared by the end-to-end tests of the `lockbox` binary.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The `lockbox` binary with no LOCKBOX_* variables from the caller's
/// environment, except the switch that runs the suite on PostgreSQL
/// (`LOCKBOX_TEST_DATABASE`: every CA `init` creates gets a new database).
pub fn lockbox_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lockbox"));
    for (k, _) in std::env::vars() {
        if k.starts_with("LOCKBOX_") && k != "LOCKBOX_TEST_DATABASE" {
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

/// A TCP connection to `listen` from the local address `from` (Linux routes
/// all of 127/8 to loopback), with a small receive buffer if `recv_buffer`.
pub fn connect_from(from: &str, listen: &str, recv_buffer: Option<u32>) -> std::net::TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(n) = recv_buffer {
            socket.set_recv_buffer_size(n).unwrap();
        }
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let stream = socket.connect(listen.parse().unwrap()).await.unwrap();
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
    })
}

/// `lockbox serve` on `listen` (HTTPS), killed when dropped.
pub struct Server(pub std::process::Child);

impl Server {
    /// Starts the service for `home` and waits until it accepts connections.
    pub fn start(home: &Path, listen: &str) -> Server {
        Server::start_with(home, listen, &[])
    }

    /// [`Server::start`] with `extra` arguments after `--listen` (e.g. `--http`).
    pub fn start_with(home: &Path, listen: &str, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--home", s(home), "--listen", listen];
        args.extend_from_slice(extra);
        let child = lockbox_cmd(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start lockbox serve");
        Server::running(child, listen)
    }

    /// Takes over a started `lockbox serve` and waits until it accepts
    /// connections on `listen`.
    pub fn running(child: std::process::Child, listen: &str) -> Server {
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

/// Creates a CA at `home` called `name` that has issued one KRA certificate
/// to `subject` (`d/STEM.key`, `d/STEM.req`, `d/STEM.pem`, and `d/STEM.pfx`
/// with password "kra"); archival is not yet required. Returns the PKCS#12.
pub fn ca_issuing_a_kra(
    home: &Path,
    d: &Path,
    name: &str,
    subject: &str,
    stem: &str,
) -> std::path::PathBuf {
    let file = |ext: &str| d.join(format!("{stem}.{ext}"));
    ok(lb(home, &["init", "--name", name]));
    ok(lb(home, &["ca", "templates", "add", "KeyRecoveryAgent"]));
    ok(request_new(
        home,
        "KeyRecoveryAgent",
        subject,
        &[],
        &file("req"),
        &file("key"),
    ));
    ok(lb(home, &["submit", s(&file("req"))]));
    ok(lb(home, &["issue", "1", "--out", s(&file("pem"))]));
    pkcs12_export(&file("key"), &file("pem"), &file("pfx"), "kra", &[]);
    file("pfx")
}

/// A root CA in `d/ca` with one issued KRA (`d/kra.key`, `d/kra.pem`,
/// `d/kra.pfx` with password "kra") configured and required.
pub fn ca_with_one_kra(d: &Path) -> std::path::PathBuf {
    let home = d.join("ca");
    ca_issuing_a_kra(&home, d, "Contoso Issuing CA", "CN=Agent", "kra");
    ok(lb(&home, &["kra", "required", "1"]));
    home
}

/// Creates a CA called `name` with a P-256 key (quick to make) in `d/ca`;
/// returns its home.
pub fn p256_ca(d: &Path, name: &str) -> std::path::PathBuf {
    let home = d.join("ca");
    ok(lockbox(&[
        "init",
        "--home",
        s(&home),
        "--name",
        name,
        "--key",
        "p256",
    ]));
    home
}

/// `lockbox request new --template TEMPLATE --subject SUBJECT EXTRA... --out
/// REQ --key-out KEY` for the CA at `home` (`extra`: `--archive`, ...).
pub fn request_new(
    home: &Path,
    template: &str,
    subject: &str,
    extra: &[&str],
    req: &Path,
    key: &Path,
) -> Output {
    let mut args = vec![
        "request",
        "new",
        "--template",
        template,
        "--subject",
        subject,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", s(req), "--key-out", s(key)]);
    lb(home, &args)
}

/// Runs `lockbox` with `LOCKBOX_HOME` set to `home`.
pub fn lb(home: &Path, args: &[&str]) -> Output {
    lockbox_cmd(args)
        .env("LOCKBOX_HOME", home)
        .output()
        .expect("run lockbox")
}

/// The key recovery agent's offline step: `lockbox recoverkey BLOB OUT --kra
/// PFX --kra-password KRA_PASSWORD -p PASSWORD --ca-cert CA_PEM`.
pub fn recoverkey(
    blob: &Path,
    out: &Path,
    kra: &Path,
    kra_password: &str,
    password: &str,
    ca_pem: &Path,
) -> Output {
    lockbox_cmd(&[
        "recoverkey",
        s(blob),
        s(out),
        "--kra",
        s(kra),
        "--kra-password",
        kra_password,
        "-p",
        password,
        "--ca-cert",
        s(ca_pem),
    ])
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

/// `openssl crl` reading the DER CRL `crl` and checking its signature with
/// `ca_pem` (`-noout`, then `extra`, e.g. `-text`).
pub fn openssl_crl_check(crl: &Path, ca_pem: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "crl",
        "-inform",
        "DER",
        "-in",
        s(crl),
        "-CAfile",
        s(ca_pem),
        "-noout",
    ];
    args.extend_from_slice(extra);
    openssl(&args)
}

/// `openssl pkcs12 -export` of `key` and `cert` to `out` with `password`
/// (`extra` options such as `-legacy` right after `-export`).
pub fn pkcs12_export(key: &Path, cert: &Path, out: &Path, password: &str, extra: &[&str]) {
    let passout = format!("pass:{password}");
    let mut args = vec!["pkcs12", "-export"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-inkey", s(key), "-in", s(cert), "-out", s(out)]);
    args.extend_from_slice(&["-passout", &passout]);
    ok(openssl(&args));
}

/// The private keys of the PKCS#12 `pfx` (password `password`) in PEM,
/// unencrypted, written to `out` if given; returns openssl's output.
pub fn pkcs12_keys(pfx: &Path, password: &str, out: Option<&Path>) -> String {
    let passin = format!("pass:{password}");
    let mut args = vec![
        "pkcs12",
        "-in",
        s(pfx),
        "-passin",
        &passin,
        "-nocerts",
        "-nodes",
    ];
    if let Some(out) = out {
        args.extend_from_slice(&["-out", s(out)]);
    }
    ok(openssl(&args))
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
    ok(request_new(
        home,
        "ExchangeUser",
        &format!("CN={cn}"),
        &["--archive"],
        &req,
        &key,
    ));
    let out: serde_json::Value = serde_json::from_str(&ok(lb(
        home,
        &["submit", s(&req), "--out", s(&pem), "--json"],
    )))
    .unwrap();
    assert_eq!(out["archived"], true);
    (pem, key, out["serial"].as_str().unwrap().to_string())
}

/// The API token (`lbt_...`) in the output of `principal add|token ... --token`.
pub fn token_in(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("lbt_"))
        .expect("a token")
        .trim()
        .to_string()
}

/// Adds principal `name` (UPN `name@contoso.com`) with an API token; returns the token.
pub fn principal_with_token(home: &Path, name: &str) -> String {
    let upn = format!("{name}@contoso.com");
    token_in(&ok(lb(
        home,
        &["principal", "add", name, "--upn", &upn, "--token"],
    )))
}

/// An OpenSSL key (`dir/NAME.key`) and certificate request (`dir/NAME.csr`)
/// for `subj`, the key made as `newkey` says (e.g. `["-newkey", "rsa:2048"]`).
/// Returns the request file.
pub fn openssl_csr(dir: &Path, name: &str, subj: &str, newkey: &[&str]) -> std::path::PathBuf {
    let key = dir.join(format!("{name}.key"));
    let req = dir.join(format!("{name}.csr"));
    let mut args = vec!["req", "-new", "-nodes"];
    args.extend_from_slice(newkey);
    args.extend_from_slice(&["-subj", subj, "-keyout", s(&key), "-out", s(&req)]);
    ok(openssl(&args));
    req
}

/// Turns on `server.allow_anonymous_enrollment` (off on a new CA) in the
/// home's configuration, for tests about something else that post without
/// credentials. Start the service afterwards.
pub fn allow_anonymous_enrollment(home: &Path) {
    let path = home.join("lockbox.toml");
    let text = std::fs::read_to_string(&path).expect("lockbox.toml");
    let updated = text.replace(
        "allow_anonymous_enrollment = false",
        "allow_anonymous_enrollment = true",
    );
    assert_ne!(
        text, updated,
        "no allow_anonymous_enrollment setting in {text}"
    );
    std::fs::write(&path, updated).expect("write lockbox.toml");
}

/// Whether the suite runs on PostgreSQL (`LOCKBOX_TEST_DATABASE` set).
pub fn on_postgres() -> bool {
    std::env::var("LOCKBOX_TEST_DATABASE").is_ok_and(|v| !v.trim().is_empty())
}
