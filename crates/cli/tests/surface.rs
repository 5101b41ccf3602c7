//! The service's and the command's surface: connection timeouts and limits,
//! who may fetch a request's certificate, caching of secrets, passwords kept
//! off command lines, and terminal output (escaping, broken pipes, colour,
//! subject names, `config set`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

/// A CA (P-256, quick) in `d/ca`.
fn quick_ca(d: &Path) -> std::path::PathBuf {
    p256_ca(d, "Surface CA")
}

/// Sets `[server.limits]` in the CA's configuration.
fn set_limits(home: &Path, limits: &str) {
    let path = home.join("lockbox.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.trim() == "[server.limits]" {
            skipping = true;
            continue;
        }
        if skipping && line.starts_with('[') {
            skipping = false;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("\n[server.limits]\n");
    out.push_str(limits);
    out.push('\n');
    std::fs::write(&path, out).unwrap();
}

/// `lockbox serve` (plain HTTP with `--http`), killed when dropped.
fn serve(home: &Path, http: bool) -> (Server, String) {
    let listen = free_listen_address();
    let extra: &[&str] = if http { &["--http"] } else { &[] };
    (Server::start_with(home, &listen, extra), listen)
}

/// A quick CA in `d/ca` with `[server.limits]` set to `limits`, served
/// over plain HTTP.
fn serve_with_limits(d: &Path, limits: &str) -> (Server, String) {
    let home = quick_ca(d);
    set_limits(&home, limits);
    serve(&home, true)
}

/// How long until the server closes `stream` (reading and discarding what it
/// sends); `None` if it is still open after `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

/// One HTTP/1.1 exchange on a new connection: status, headers (lower-case names) and body.
fn http(
    listen: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).unwrap();
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response");
    let text = String::from_utf8_lossy(&resp[..split]).to_string();
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, resp[split + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn slow_idle_and_excess_connections_are_closed_or_held_back() {
    let dir = tempfile::tempdir().unwrap();
    let home = quick_ca(dir.path());
    set_limits(
        &home,
        "handshake_timeout_secs = 1\nheader_timeout_secs = 1\nbody_timeout_secs = 2\nidle_timeout_secs = 2\nmax_connections = 64",
    );
    let limit = Duration::from_secs(6);
    {
        let (_server, listen) = serve(&home, true);
        // a partial header (slowloris) is cut off
        let mut slow = TcpStream::connect(&listen).unwrap();
        slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
        let t = closed_within(&mut slow, limit).expect("a partial header holds the connection");
        assert!(t >= Duration::from_millis(500), "closed too early: {t:?}");
        // a connection that never sends anything is closed
        let mut idle = TcpStream::connect(&listen).unwrap();
        closed_within(&mut idle, limit).expect("an idle connection stays open");
        // a keep-alive connection that sends no second request is closed
        let mut keep = TcpStream::connect(&listen).unwrap();
        keep.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        keep.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 512];
        let n = keep.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        closed_within(&mut keep, limit).expect("an idle keep-alive connection stays open");
        // a body that stops arriving is cut off
        let mut body = TcpStream::connect(&listen).unwrap();
        body.write_all(b"POST /api/v1/requests HTTP/1.1\r\nHost: x\r\nContent-Type: application/pkcs10\r\nContent-Length: 1000\r\n\r\nMIIB")
            .unwrap();
        closed_within(&mut body, limit).expect("a stalled body holds the connection");
        // the service still answers
        let (status, _, _) = http(&listen, "GET", "/health", &[], b"");
        assert_eq!(status, 200);
    }
    {
        // over TLS: a client that never completes the handshake, and a partial
        // header inside the TLS session
        let (_server, listen) = serve(&home, false);
        let mut raw = TcpStream::connect(&listen).unwrap();
        let t = closed_within(&mut raw, limit).expect("a silent TLS client stays connected");
        assert!(t < Duration::from_secs(4), "{t:?}");
        let mut client = Command::new("openssl")
            .args(["s_client", "-quiet", "-connect", &listen])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl is required");
        let mut stdin = client.stdin.take().unwrap();
        stdin
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
        stdin.flush().unwrap();
        let start = Instant::now();
        let closed = loop {
            if client.try_wait().unwrap().is_some() {
                break true;
            }
            if start.elapsed() > limit {
                let _ = client.kill();
                let _ = client.wait();
                break false;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        drop(stdin);
        assert!(closed, "a partial header over TLS holds the connection");
    }
    // at most max_connections are served at once: the next waits for a free slot
    set_limits(
        &home,
        "idle_timeout_secs = 30\nheader_timeout_secs = 30\nmax_connections = 1",
    );
    let (_server, listen) = serve(&home, true);
    let first = TcpStream::connect(&listen).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut second = TcpStream::connect(&listen).unwrap();
    second
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    second
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(
        second.read(&mut buf).is_err(),
        "a second connection was served beyond max_connections = 1"
    );
    drop(first);
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let n = second.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

/// Sends `GET /health` on `stream` and returns the start of the answer.
fn health_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).to_string()
}

#[test]
fn one_address_cannot_take_every_connection_slot() {
    // fix-conns: max_connections_per_address
    let dir = tempfile::tempdir().unwrap();
    let (_server, listen) = serve_with_limits(
        dir.path(),
        "idle_timeout_secs = 30\nheader_timeout_secs = 30\nmax_connections = 8\nmax_connections_per_address = 2",
    );
    // the service answers, and the probe connection of `serve` is gone
    let (status, _, _) = http(&listen, "GET", "/health", &[], b"");
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(300));
    // two idle connections from 127.0.0.1 are held...
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| connect_from("127.0.0.1", &listen, None))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // ...and every further one from that address is closed at once, so that
    // it cannot fill the 8 slots
    let mut extra = Vec::new();
    for i in 0..7 {
        let mut c = connect_from("127.0.0.1", &listen, None);
        let t = closed_within(&mut c, Duration::from_secs(3));
        assert!(
            t.is_some(),
            "connection {} from one address was kept beyond max_connections_per_address = 2",
            i + 3
        );
        extra.push(c);
    }
    // another address is served
    let mut other = connect_from("127.0.0.2", &listen, None);
    let answer = health_on(&mut other);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "a connection from 127.0.0.2 was not served: {answer:?}"
    );
    // and the connections held from 127.0.0.1 still are
    let answer = health_on(&mut held[0]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}

#[test]
fn a_client_that_never_reads_its_response_is_disconnected() {
    // fix-conns: response_timeout_secs
    let dir = tempfile::tempdir().unwrap();
    let (_server, listen) = serve_with_limits(
        dir.path(),
        "idle_timeout_secs = 30\nheader_timeout_secs = 30\nresponse_timeout_secs = 2",
    );
    let (status, _, doc) = http(&listen, "GET", "/api/v1/openapi.json", &[], b"");
    assert_eq!(status, 200);
    // pipelined requests for far more than the socket buffers hold (16 MB),
    // on a connection with a small receive buffer, and nothing read
    let count = (16 << 20) / doc.len().max(1) + 1;
    let expected = count * doc.len();
    let mut stream = connect_from("127.0.0.1", &listen, Some(4096));
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let one = b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n";
        for _ in 0..count {
            if writer.write_all(one).is_err() {
                break;
            }
        }
    });
    // 2 s without write progress (checked every second), then at most 5 s of
    // graceful close, and a margin for a loaded machine
    std::thread::sleep(Duration::from_secs(12));
    // what the server sent is still readable; then the connection must end,
    // well short of everything asked for
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let start = Instant::now();
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let ended = loop {
        if start.elapsed() > Duration::from_secs(15) {
            break false;
        }
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => received += n,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                // drained and still open
                if received > 0 {
                    break false;
                }
            }
            Err(_) => break true,
        }
    };
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    assert!(
        ended,
        "a client that never read its responses kept its connection ({received} bytes read after the wait)"
    );
    assert!(
        received < expected,
        "the whole response was sent ({received} of {expected} bytes)"
    );
    // the service still answers
    let (status, _, _) = http(&listen, "GET", "/health", &[], b"");
    assert_eq!(status, 200);
}

fn token_for(home: &Path, name: &str) -> String {
    token_in(&ok(lb(home, &["principal", "add", name, "--token"])))
}

#[test]
fn certificates_go_to_their_requester_and_secrets_are_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = ca_with_one_kra(d);
    let (_pem, _key, _serial) = enroll(&home, d, "alice", "Alice Example");
    let admin = std::fs::read_to_string(home.join("admin.token")).unwrap();
    let admin = format!("Bearer {}", admin.trim());
    let bob = format!("Bearer {}", token_for(&home, "bob"));
    let carol = format!("Bearer {}", token_for(&home, "carol"));
    let (_server, listen) = serve(&home, true);

    // bob enrolls over the API
    let csr = d.join("bob.csr");
    ok(openssl(&[
        "req",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-subj",
        "/CN=bob",
        "-keyout",
        s(&d.join("bob.key")),
        "-out",
        s(&csr),
    ]));
    let (status, _, body) = http(
        &listen,
        "POST",
        "/api/v1/requests?template=User",
        &[
            ("Authorization", &bob),
            ("Content-Type", "application/pkcs10"),
        ],
        &std::fs::read(&csr).unwrap(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = v["request_id"].as_i64().unwrap();
    let cert = |auth: Option<&str>, id: i64| {
        let h: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        http(
            &listen,
            "GET",
            &format!("/api/v1/requests/{id}/certificate"),
            &h,
            b"",
        )
    };
    // the requester and readers of the database get it
    let (status, _, body) = cert(Some(&bob), id);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("BEGIN CERTIFICATE"));
    assert_eq!(cert(Some(&admin), id).0, 200);
    assert_eq!(cert(Some(&admin), 999).0, 404, "readers see what exists");
    // anyone else gets one answer whether the request exists or not
    let answer = |auth: Option<&str>, id: i64| {
        let (status, _, body) = cert(auth, id);
        let v: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{status} {}", String::from_utf8_lossy(&body)));
        let message = v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .replace(&id.to_string(), "N");
        (status, v["error"]["status"].clone(), message)
    };
    for who in [None, Some(carol.as_str())] {
        let theirs = answer(who, id);
        assert_eq!(theirs.0, 403, "{theirs:?}");
        assert_eq!(theirs.1, "0x80070005", "{theirs:?}");
        assert_eq!(theirs, answer(who, 999), "existing vs missing ID");
        assert_eq!(theirs, answer(who, 1), "the admin's request vs missing ID");
    }

    // the recovery blob (an archived key) and other private answers are not cached
    let (status, headers, body) = http(
        &listen,
        "GET",
        "/api/v1/keys/blob?token=Alice%20Example",
        &[("Authorization", &admin)],
        b"",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));
    let (_, headers, _) = http(
        &listen,
        "GET",
        "/api/v1/view",
        &[("Authorization", &admin)],
        b"",
    );
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));
    let (_, headers, _) = cert(Some(&bob), id);
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));
    // the CA certificate and CRL stay public and cacheable
    for path in ["/api/v1/ca/certificate", "/api/v1/crl"] {
        let (status, headers, _) = http(&listen, "GET", path, &[], b"");
        assert_eq!(status, 200, "{path}");
        assert_eq!(header(&headers, "cache-control"), None, "{path}");
    }
}

#[test]
fn recovery_script_keeps_passwords_off_command_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = ca_with_one_kra(d);
    let (_pem, _key, serial) = enroll(&home, d, "alice", "Alice Example");
    let (_pem2, _key2, serial2) = enroll(&home, d, "alice2", "Alice Example");
    // the agent's PKCS#12 under a password we can look for
    let kra_pw = "S3cret-agent-passw0rd";
    ok(openssl(&[
        "pkcs12",
        "-export",
        "-inkey",
        s(&d.join("kra.key")),
        "-in",
        s(&d.join("kra.pem")),
        "-out",
        s(&d.join("agent.pfx")),
        "-passout",
        &format!("pass:{kra_pw}"),
    ]));
    let script = ok(lb(&home, &["getkey", "--script", "Alice Example"]));
    assert!(script.contains(&serial) && script.contains(&serial2));
    assert!(!script.contains("--kra-password \"") && !script.contains(" -p "));
    std::fs::write(d.join("recover.sh"), &script).unwrap();
    // every lockbox command line the script runs is logged
    let log = d.join("argv.log");
    let wrapper = d.join("lockbox-wrapper.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >>'{}'\nexec '{}' \"$@\"\n",
            s(&log),
            env!("CARGO_BIN_EXE_lockbox")
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let pw_file = d.join("agent.pw");
    std::fs::write(&pw_file, format!("{kra_pw}\n")).unwrap();
    for (var, value) in [
        ("KRA_PASSWORD_FILE", s(&pw_file).to_string()),
        ("KRA_PASSWORD", kra_pw.to_string()),
    ] {
        let _ = std::fs::remove_file(&log);
        let run = Command::new("sh")
            .arg(d.join("recover.sh"))
            .current_dir(d)
            .env("KRA_PFX", d.join("agent.pfx"))
            .env(var, &value)
            .env("LOCKBOX", &wrapper)
            .env_remove("LOCKBOX_HOME")
            .output()
            .unwrap();
        let text = ok(run);
        let password = text.trim().rsplit(' ').next().unwrap().to_string();
        let keys = pkcs12_keys(&d.join("Alice_Example.p12"), &password, None);
        assert_eq!(keys.matches("BEGIN PRIVATE KEY").count(), 2, "{var}");
        let argv = std::fs::read_to_string(&log).unwrap();
        assert!(
            argv.contains("recoverkey") && argv.contains("mergepfx"),
            "{argv}"
        );
        assert!(
            !argv.contains(kra_pw),
            "the agent's password on a command line: {argv}"
        );
        assert!(
            !argv.contains(&password),
            "the output password on a command line: {argv}"
        );
    }
    // recoverkey and mergepfx take their passwords from files
    let blob = d.join("alice.rec");
    ok(lb(&home, &["getkey", &serial, s(&blob)]));
    std::fs::write(d.join("out.pw"), "file-password\n").unwrap();
    ok(lockbox(&[
        "recoverkey",
        s(&blob),
        s(&d.join("a.pfx")),
        "--kra",
        s(&d.join("agent.pfx")),
        "--kra-password-file",
        s(&pw_file),
        "--password-file",
        s(&d.join("out.pw")),
        "--ca-cert",
        s(&home.join("certs/ca.pem")),
    ]));
    ok(openssl(&[
        "pkcs12",
        "-in",
        s(&d.join("a.pfx")),
        "-passin",
        "pass:file-password",
        "-nokeys",
    ]));
    // the existing flags keep working
    ok(recoverkey(
        &blob,
        &d.join("b.pfx"),
        &d.join("agent.pfx"),
        kra_pw,
        "pw",
        &home.join("certs/ca.pem"),
    ));
    ok(lockbox(&[
        "recoverkey",
        s(&blob),
        s(&d.join("c.pfx")),
        "--kra-key",
        s(&d.join("kra.key")),
        "--kra-cert",
        s(&d.join("kra.pem")),
        "-p",
        "pw",
        "--ca-cert",
        s(&home.join("certs/ca.pem")),
    ]));
    std::fs::write(d.join("merge.pw"), "file-password\npw\nmerged\n").unwrap();
    ok(lockbox(&[
        "mergepfx",
        &format!("{},{}", s(&d.join("a.pfx")), s(&d.join("b.pfx"))),
        s(&d.join("m.pfx")),
        "--password-file",
        s(&d.join("merge.pw")),
    ]));
    ok(openssl(&[
        "pkcs12",
        "-in",
        s(&d.join("m.pfx")),
        "-passin",
        "pass:merged",
        "-nokeys",
    ]));
}

/// A CA holding one issued request whose common name carries terminal escape sequences.
fn ca_with_hostile_name(d: &Path) -> std::path::PathBuf {
    let home = quick_ca(d);
    let req = d.join("evil.req");
    ok(request_new(
        &home,
        "User",
        "CN=evil\u{1b}[2J\u{1b}]0;owned\u{7}",
        &["--key", "p256"],
        &req,
        &d.join("evil.key"),
    ));
    ok(lb(&home, &["submit", s(&req), "--template", "User"]));
    home
}

#[test]
fn view_escapes_control_characters_in_names() {
    let dir = tempfile::tempdir().unwrap();
    let home = ca_with_hostile_name(dir.path());
    for extra in [&[][..], &["--csv"][..]] {
        let mut args = vec!["view", "--out", "RequestID,CommonName,Subject"];
        args.extend_from_slice(extra);
        let out = ok(lb(&home, &args));
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
        assert!(out.contains("evil\\x1b[2J\\x1b]0;owned\\x07"), "{out}");
    }
    let out = ok(lb(&home, &["pending", "list"]));
    assert!(!out.contains('\u{1b}'), "{out:?}");
    // JSON keeps the real characters (escaped by JSON itself)
    let json: serde_json::Value =
        serde_json::from_str(&ok(lb(&home, &["view", "--json", "--out", "CommonName"]))).unwrap();
    assert!(json.to_string().contains("\\u001b[2J"), "{json}");
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let home = quick_ca(dir.path());
    // `lockbox view | head -1`: the reader goes away; no panic, a quiet exit
    let mut child = lockbox_cmd(&["view"])
        .env("LOCKBOX_HOME", &home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}

#[test]
fn no_colour_codes_on_a_stderr_that_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let home = quick_ca(dir.path());
    let out = lockbox_cmd(&["ca", "cert"])
        .env("LOCKBOX_HOME", &home)
        .env("LOCKBOX_LOG", "debug")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.is_empty(), "no log output to check");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

#[test]
fn subjects_take_the_attribute_names_operators_type() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = quick_ca(d);
    let req = d.join("x.req");
    ok(request_new(&home, "User", "CN=x, E=y@contoso.com, UID=jdoe, SERIALNUMBER=42, STREET=1 Main St, L=Redmond, ST=WA, DC=contoso, DC=com, emailAddress=z@contoso.com", &["--key", "p256"], &req, &d.join("x.key")));
    let dump = ok(lb(&home, &["dump", s(&req)]));
    for want in [
        "y@contoso.com",
        "z@contoso.com",
        "jdoe",
        "Redmond",
        "1 Main St",
    ] {
        assert!(dump.contains(want), "{want}: {dump}");
    }
    let bad = request_new(
        &home,
        "User",
        "CN=x,NOPE=y",
        &[],
        &d.join("y.req"),
        &d.join("y.key"),
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("unknown attribute 'NOPE'"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn config_set_lists_and_checks_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let home = quick_ca(dir.path());
    let help = ok(lockbox(&["config", "set", "--help"]));
    for key in [
        "role_separation",
        "kra.enable_foreign",
        "kra_expiry_warning_days",
    ] {
        assert!(help.contains(key), "{key} missing from:\n{help}");
    }
    ok(lb(
        &home,
        &["config", "set", "kra_expiry_warning_days", "45"],
    ));
    ok(lb(&home, &["config", "set", "kra.enable_foreign", "on"]));
    let r = lb(&home, &["config", "set", "role_separation", "maybe"]);
    assert_eq!(r.status.code(), Some(3), "an unclear value is refused");
    let r = lb(&home, &["config", "set", "no_such_key", "1"]);
    assert_eq!(r.status.code(), Some(2), "an unknown key is a usage error");
}

#[test]
fn db_status_reports_backend_schema_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let home = quick_ca(dir.path());
    let status = |home: &Path| -> serde_json::Value {
        serde_json::from_str(&ok(lb(home, &["--json", "db", "status"]))).unwrap()
    };
    let before = status(&home);
    let backend = if on_postgres() { "postgres" } else { "sqlite" };
    assert_eq!(before["backend"], backend);
    assert!(before["schema_version"].as_i64().unwrap() >= 7, "{before}");
    assert!(before["audit_records"].as_i64().unwrap() > 0, "{before}");
    let req = openssl_csr(
        dir.path(),
        "alice",
        "/CN=Alice Example",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    ok(lb(&home, &["submit", s(&req), "--template", "User"]));
    let after = status(&home);
    assert_eq!(
        after["requests"].as_i64().unwrap(),
        before["requests"].as_i64().unwrap() + 1,
        "{before} -> {after}"
    );
    assert_eq!(after["archived_keys"], before["archived_keys"]);
    assert!(after["audit_records"].as_i64().unwrap() > before["audit_records"].as_i64().unwrap());
    let text = ok(lb(&home, &["db", "status"]));
    assert!(
        text.contains(&format!("backend:         {backend}")),
        "{text}"
    );
    let remote = lb(&home, &["--server", "https://127.0.0.1:1", "db", "status"]);
    assert!(!remote.status.success(), "db status is local only");
}
