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

/// The database of the CA in `home`, as a URL other tools take: its
/// PostgreSQL URL, or the path of its SQLite file.
pub fn database_url(home: &Path) -> String {
    let config = std::fs::read_to_string(home.join("lockbox.toml")).expect("lockbox.toml");
    let url = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("url = "))
        .map(|u| u.trim_matches('"').to_string())
        .expect("database.url");
    if url.starts_with("postgres") {
        url
    } else {
        home.join("ca.db").display().to_string()
    }
}

/// Whether the suite runs on PostgreSQL (`LOCKBOX_TEST_DATABASE` set).
pub fn on_postgres() -> bool {
    std::env::var("LOCKBOX_TEST_DATABASE").is_ok_and(|v| !v.trim().is_empty())
}

/// [`ca_issuing_a_kra`] with `init_extra` arguments for `lockbox init` (e.g.
/// `["--database", URL]`).
pub fn ca_issuing_a_kra_init(
    home: &Path,
    d: &Path,
    name: &str,
    subject: &str,
    stem: &str,
    init_extra: &[&str],
) -> std::path::PathBuf {
    let file = |ext: &str| d.join(format!("{stem}.{ext}"));
    let mut init = vec!["init", "--name", name];
    init.extend_from_slice(init_extra);
    ok(lb(home, &init));
    ok(lb(home, &["ca", "templates", "add", "KeyRecoveryAgent"]));
    ok(request_new(
        home,
        "KeyRecoveryAgent",
        subject,
        &[],
        &file("req"),
        &file("key"),
    ));
    let out: serde_json::Value =
        serde_json::from_str(&ok(lb(home, &["submit", s(&file("req")), "--json"]))).unwrap();
    ok(lb(
        home,
        &[
            "issue",
            &out["request_id"].to_string(),
            "--out",
            s(&file("pem")),
        ],
    ));
    pkcs12_export(&file("key"), &file("pem"), &file("pfx"), "kra", &[]);
    file("pfx")
}

/// [`ca_with_one_kra`] with `init_extra` arguments for `lockbox init` (e.g.
/// `["--database", URL]` for a CA on PostgreSQL).
pub fn ca_with_one_kra_init(d: &Path, init_extra: &[&str]) -> std::path::PathBuf {
    let home = d.join("ca");
    ca_issuing_a_kra_init(
        &home,
        d,
        "Contoso Issuing CA",
        "CN=Agent",
        "kra",
        init_extra,
    );
    ok(lb(&home, &["kra", "required", "1"]));
    home
}

/// Copies the directory `from` (a CA home) recursively to `to`, keeping
/// file modes (a second node of a CA on PostgreSQL gets such a copy).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    let mode = std::fs::metadata(from).expect("stat").permissions();
    std::fs::set_permissions(to, mode).expect("chmod the copy");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// The PostgreSQL server binaries (`PGBIN`, or the newest
/// `/usr/lib/postgresql/*/bin`, as `scripts/pg-cluster.sh` picks them).
/// Panics with what to install when there are none: the tests that need
/// PostgreSQL fail rather than skip.
pub fn pg_bin() -> std::path::PathBuf {
    let found = match std::env::var("PGBIN") {
        Ok(p) => Some(std::path::PathBuf::from(p)),
        Err(_) => {
            let mut dirs: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                    Some((v, e.path().join("bin")))
                })
                .collect();
            dirs.sort();
            dirs.pop().map(|(_, p)| p)
        }
    };
    match found {
        Some(p) if p.join("initdb").exists() && p.join("pg_ctl").exists() => p,
        other => panic!(
            "PostgreSQL server binaries are required for this test and were not found \
             (looked in {}): scripts/test.sh installs them, or run `apt-get install postgresql`",
            other.map_or_else(
                || "PGBIN (unset) and /usr/lib/postgresql/*/bin".to_string(),
                |p| p.display().to_string()
            )
        ),
    }
}

/// Whether this process runs as root (the PostgreSQL server then runs as the
/// `postgres` user).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A PostgreSQL command (`pg_ctl`, ...) from [`pg_bin`], run as the `postgres`
/// user when root.
pub fn pg_command(tool: &str, args: &[&str]) -> Output {
    let bin = pg_bin().join(tool);
    let mut c = if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    c.args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()))
}

/// Throw-away PostgreSQL started by `scripts/pg-cluster.sh` in its own
/// temporary directory; stopped (and the directory removed) when dropped,
/// also when a test panics.
pub struct PgCluster {
    /// The database URL the script printed (multi-host for a pair).
    pub url: String,
    dir: tempfile::TempDir,
}

impl PgCluster {
    /// One primary; `url` is `postgres://lockbox@127.0.0.1:PORT/lockbox`
    /// (an empty database).
    pub fn start() -> PgCluster {
        PgCluster::run_script("start")
    }

    /// A primary and a synchronous standby; `url` names both hosts with
    /// `target_session_attrs=read-write`.
    pub fn start_pair() -> PgCluster {
        PgCluster::run_script("start-pair")
    }

    fn script() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-cluster.sh")
    }

    fn run_script(verb: &str) -> PgCluster {
        pg_bin(); // a clear failure when PostgreSQL is missing
        let dir = tempfile::Builder::new()
            .prefix("lockbox-pg-")
            .tempdir()
            .expect("temporary directory");
        // the server runs as `postgres` when we are root: it must reach its directory
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod the cluster directory");
        }
        let mut cluster = PgCluster {
            url: String::new(),
            dir,
        };
        let out = Command::new("bash")
            .arg(PgCluster::script())
            .arg(verb)
            .arg(cluster.root())
            .output()
            .expect("run scripts/pg-cluster.sh");
        assert!(
            out.status.success(),
            "scripts/pg-cluster.sh {verb} failed ({:?}); PostgreSQL is required for this test \
             (scripts/test.sh installs it)\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.url = String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .find(|l| l.starts_with("postgres://"))
            .expect("the script prints the database URL")
            .trim()
            .to_string();
        cluster
    }

    /// The directory holding `primary/` (and `standby/`).
    pub fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("pg")
    }

    /// The primary's data directory.
    pub fn primary_data(&self) -> std::path::PathBuf {
        self.root().join("primary/data")
    }

    /// The standby's data directory (pairs only).
    pub fn standby_data(&self) -> std::path::PathBuf {
        self.root().join("standby/data")
    }

    /// The port of the first host in `url`.
    pub fn primary_port(&self) -> u16 {
        let rest = self.url.split("@127.0.0.1:").nth(1).expect("a port");
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().expect("a port number")
    }

    /// The ports of the hosts in `url`, in order.
    pub fn ports(&self) -> Vec<u16> {
        self.url
            .split("127.0.0.1:")
            .skip(1)
            .map(|rest| {
                let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                digits.parse().expect("a port number")
            })
            .collect()
    }

    /// `psql -Atc QUERY` against the server on `port` (database `lockbox`);
    /// returns its output.
    pub fn sql(&self, port: u16, query: &str) -> String {
        let port = port.to_string();
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "lockbox",
                "-d",
                "lockbox",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-Atc", query])
            .output()
            .expect("psql (postgresql-client) is required");
        assert!(out.status.success(), "psql -p {port} -c {query}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// SIGKILL to the primary's postmaster (the first line of its
    /// `postmaster.pid`); returns once the process is gone.
    pub fn kill_primary(&self) {
        let pidfile = self.primary_data().join("postmaster.pid");
        let text = std::fs::read_to_string(&pidfile).expect("the primary's postmaster.pid");
        let pid = text.lines().next().expect("a pid").trim().to_string();
        let out = Command::new("kill").args(["-KILL", &pid]).output().unwrap();
        assert!(out.status.success(), "kill -KILL {pid}: {out:?}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() {
            // a zombie until its parent (pg_ctl's shell, gone) is replaced by init
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.contains(") Z ") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "postmaster {pid} survived SIGKILL"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// `pg_ctl promote -w` on the standby.
    pub fn promote_standby(&self) {
        let data = self.standby_data();
        let out = pg_command("pg_ctl", &["promote", "-w", "-t", "60", "-D", s(&data)]);
        assert!(
            out.status.success(),
            "pg_ctl promote failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(PgCluster::script())
            .arg("stop")
            .arg(self.root())
            .output();
    }
}

/// Runs an external tool the test needs (failing loudly when it is missing).
pub fn tool(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is required for this test: {e}"))
}

/// Asserts pkilint (`lint_pkix_cert`) finds nothing at WARNING or above.
pub fn pkilint_cert(path: &Path) {
    let out = tool("lint_pkix_cert", &["lint", "-s", "WARNING", s(path)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "pkilint findings for {}:\n{text}{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts pkilint (`lint_crl`, PKIX) finds nothing at WARNING or above.
pub fn pkilint_crl(path: &Path) {
    let out = tool(
        "lint_crl",
        &["lint", "-t", "CRL", "-p", "PKIX", "-s", "WARNING", s(path)],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "pkilint CRL findings:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
