//! The HTTPS service and the remote CLI: every operation over `--server`
//! goes through the same engine as local operation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::Path;

mod common;
use common::*;
use std::process::{Command, Output};

/// `lockbox serve` on a free loopback port with `extra` arguments; returns
/// the service and its URL (`http://` with `--http`, else `https://`).
fn start(home: &Path, extra: &[&str]) -> (Server, String) {
    let listen = free_listen_address();
    let server = Server::start_with(home, &listen, extra);
    let scheme = if extra.contains(&"--http") {
        "http"
    } else {
        "https"
    };
    (server, format!("{scheme}://{listen}"))
}

/// `lockbox --home H role grant WHO ROLE`.
fn grant(h: &str, who: &str, role: &str) {
    ok(lockbox(&["--home", h, "role", "grant", who, role]));
}

/// A CA (`Test CA`) in `d/ca` and the password file `d/pw`
/// ("correct horse battery").
fn ca_and_password_file(d: &Path) -> std::path::PathBuf {
    let home = p256_ca(d, "Test CA");
    std::fs::write(d.join("pw"), "correct horse battery\n").unwrap();
    home
}

/// An RSA-2048 OpenSSL request (`dir/NAME.csr`, key `dir/NAME.key`) for `subj`.
fn rsa_csr(dir: &Path, name: &str, subj: &str) -> std::path::PathBuf {
    openssl_csr(dir, name, subj, &["-newkey", "rsa:2048"])
}

#[test]
fn https_service_serves_remote_cli_operations() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = p256_ca(d, "Contoso Issuing CA");
    let ca_pem = d.join("ca.pem");
    ok(lockbox(&[
        "ca",
        "cert",
        "--home",
        s(&home),
        "--out",
        s(&ca_pem),
    ]));
    let token = std::fs::read_to_string(home.join("admin.token")).unwrap();
    // enrollees are principals: anonymous enrollment is off on a new CA
    let alice_token = principal_with_token(&home, "alice");
    let (_server, url) = start(&home, &[]);
    let remote = |args: &[&str]| -> Output {
        let mut all = vec!["--server", url.as_str(), "--ca-cert", s(&ca_pem)];
        all.extend_from_slice(args);
        lockbox(&all)
    };
    let enrollee = |args: &[&str]| -> Output {
        let mut all = vec![
            "--server",
            url.as_str(),
            "--ca-cert",
            s(&ca_pem),
            "--token",
            alice_token.as_str(),
        ];
        all.extend_from_slice(args);
        lockbox(&all)
    };
    // alice submits REQ for TEMPLATE; the JSON answer
    let submit_json = |req: &Path, template: &str| -> serde_json::Value {
        serde_json::from_str(&ok(enrollee(&[
            "submit",
            s(req),
            "--template",
            template,
            "--json",
        ])))
        .unwrap()
    };
    let officer = |args: &[&str]| -> Output {
        let mut all = args.to_vec();
        all.extend_from_slice(&[
            "--server",
            url.as_str(),
            "--ca-cert",
            s(&ca_pem),
            "--token",
            token.trim(),
        ]);
        lockbox(&all)
    };

    // TLS is verified against the CA certificate: without it, the connection is refused
    assert!(!lockbox(&["--server", &url, "ca", "cert"]).status.success());
    let remote_ca = ok(remote(&["ca", "cert"]));
    assert_eq!(remote_ca, std::fs::read_to_string(&ca_pem).unwrap());

    // anonymous enrollment is refused (off by default); a principal enrolls
    let csr = rsa_csr(d, "alice", "/CN=Alice");
    assert_eq!(
        remote(&["submit", s(&csr), "--template", "User"])
            .status
            .code(),
        Some(6)
    );
    let out: serde_json::Value = submit_json(&csr, "User");
    assert_eq!(out["disposition"], "issued");
    let id = out["request_id"].as_i64().unwrap().to_string();
    let cert = d.join("alice.pem");
    // the certificate goes to its requester (anonymous callers get 403)
    assert_eq!(
        remote(&["request", "retrieve", &id, "--out", s(&cert)])
            .status
            .code(),
        Some(6)
    );
    ok(enrollee(&["request", "retrieve", &id, "--out", s(&cert)]));
    let v = ok(Command::new("openssl")
        .args(["verify", "-CAfile", s(&ca_pem), s(&cert)])
        .output()
        .unwrap());
    assert!(v.contains(": OK"));

    // officer endpoints refuse callers without the token, and with a wrong one
    assert_eq!(remote(&["view"]).status.code(), Some(6));
    assert_eq!(
        lockbox(&[
            "--server",
            &url,
            "--ca-cert",
            s(&ca_pem),
            "--token",
            "lbx_wrong",
            "view"
        ])
        .status
        .code(),
        Some(6)
    );
    let rows: serde_json::Value = serde_json::from_str(&ok(officer(&[
        "view",
        "--json",
        "--restrict",
        "CommonName=alice",
    ])))
    .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);

    // a pending template, issued remotely
    ok(officer(&["template", "duplicate", "User", "Approved"]));
    ok(officer(&[
        "template",
        "set",
        "Approved",
        "requires_approval=true",
    ]));
    ok(officer(&["ca", "templates", "add", "Approved"]));
    let bob = rsa_csr(d, "bob", "/CN=Bob");
    let pend: serde_json::Value = submit_json(&bob, "Approved");
    assert_eq!(pend["disposition"], "pending");
    let pid = pend["request_id"].as_i64().unwrap().to_string();
    assert!(ok(officer(&["pending", "list"])).contains("alice"));
    assert_eq!(
        remote(&["issue", &pid]).status.code(),
        Some(6),
        "anonymous callers cannot issue"
    );
    ok(officer(&["issue", &pid]));

    // policy refusals travel with their AD CS code
    let refused = enrollee(&["submit", s(&bob), "--template", "ExchangeUser", "--json"]);
    assert_eq!(refused.status.code(), Some(3));
    let e: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(e["error"]["status"], "0x80094804");

    // revoke and fetch the CRL over the API
    let serial = rows[0]["SerialNumber"].as_str().unwrap().to_string();
    ok(officer(&["revoke", &serial, "--reason", "superseded"]));
    let crl = d.join("api.crl");
    ok(officer(&["crl", "publish", "--out", s(&crl)]));
    let text = ok(openssl_crl_check(&crl, &ca_pem, &["-text"]));
    assert!(
        text.to_uppercase().contains(&serial.to_uppercase()),
        "{text}"
    );
    assert!(text.contains("Superseded"));

    // A TLS client certificate mapped to a principal authenticates it.
    let carol_csr = rsa_csr(d, "carol", "/CN=Carol");
    let carol_pem = d.join("carol.pem");
    ok(lockbox(&[
        "--home",
        s(&home),
        "submit",
        s(&carol_csr),
        "--template",
        "User",
        "--out",
        s(&carol_pem),
    ]));
    ok(lockbox(&["--home", s(&home), "principal", "add", "carol"]));
    ok(lockbox(&[
        "--home",
        s(&home),
        "role",
        "grant",
        "carol",
        "CertificateManager",
    ]));
    ok(lockbox(&[
        "--home",
        s(&home),
        "principal",
        "map-cert",
        "carol",
        s(&carol_pem),
    ]));
    let mut identity = std::fs::read(&carol_pem).unwrap();
    identity.extend(std::fs::read(d.join("carol.key")).unwrap());
    let status = |with_identity: bool| -> u16 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_pem).unwrap()).unwrap();
            let mut b = reqwest::Client::builder().tls_certs_only(vec![ca]);
            if with_identity {
                b = b.identity(reqwest::Identity::from_pem(&identity).unwrap());
            }
            let client = b.build().unwrap();
            client
                .get(format!("{url}/api/v1/view"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    assert_eq!(
        status(true),
        200,
        "the mapped client certificate authenticates carol"
    );
    assert_eq!(status(false), 403, "without it the caller is anonymous");
}

#[test]
fn plain_http_is_loopback_only_and_api_is_described() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("ca");
    ok(lockbox(&[
        "init",
        "--home",
        s(&home),
        "--name",
        "Test CA",
        "--key",
        "p256",
    ]));
    let refused = lockbox(&[
        "serve",
        "--home",
        s(&home),
        "--http",
        "--listen",
        "0.0.0.0:0",
    ]);
    assert!(!refused.status.success());
    let alice_token = principal_with_token(&home, "alice");
    let (_server, url) = start(&home, &["--http"]);
    // the OpenAPI document is served and names the endpoints
    let doc = http_get(&url, "/api/v1/openapi.json");
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(v["openapi"], "3.0.3");
    assert!(v["paths"]["/api/v1/requests"]["post"].is_object());
    assert!(
        v["paths"]["/api/v1/requests"]["post"]["parameters"]
            .to_string()
            .contains("on_behalf_of"),
        "{v}"
    );
    let out = ok(lockbox(&[
        "--server",
        &url,
        "ca",
        "templates",
        "list",
        "--json",
    ]));
    assert!(out.contains("User"));
    let oversized = dir.path().join("big.req");
    std::fs::write(&oversized, vec![b'A'; 2 * 1024 * 1024]).unwrap();
    let r = lockbox(&[
        "--server",
        &url,
        "submit",
        s(&oversized),
        "--template",
        "User",
    ]);
    assert!(!r.status.success());
    // the server is still answering
    ok(lockbox(&["--server", &url, "ca", "cert"]));

    // Archival over the wire: KRA set up locally while the service runs (same database),
    // the client fetches the exchange certificate remotely, and posts CMC over HTTP (RFC 5273).
    let d = dir.path();
    let h = s(&home);
    ok(lockbox(&[
        "--home",
        h,
        "ca",
        "templates",
        "add",
        "KeyRecoveryAgent",
    ]));
    let kra_req = d.join("kra.req");
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
        s(&kra_req),
        "--key-out",
        s(&d.join("kra.key")),
    ]));
    ok(lockbox(&["--home", h, "submit", s(&kra_req)]));
    let kra = d.join("kra.pem");
    ok(lockbox(&["--home", h, "issue", "1", "--out", s(&kra)]));
    ok(lockbox(&["--home", h, "kra", "add", s(&kra)]));
    ok(lockbox(&["--home", h, "kra", "required", "1"]));
    let req = d.join("alice.req");
    ok(lockbox(&[
        "--server",
        &url,
        "request",
        "new",
        "--template",
        "ExchangeUser",
        "--subject",
        "CN=Alice",
        "--archive",
        "--out",
        s(&req),
        "--key-out",
        s(&d.join("alice.key")),
    ]));
    let body = std::fs::read(&req).unwrap();
    // anonymous enrollment is off by default: 401, for CMC too
    let (status, _, _) = http_post(&url, "/cmc", "application/pkcs7-mime", &body, None);
    assert_eq!(status, 401);
    let (status, _, _) = http_post(
        &url,
        "/api/v1/requests?template=User",
        "application/pkcs10",
        &std::fs::read(&kra_req).unwrap(),
        None,
    );
    assert_eq!(status, 401);
    let (status, ctype, resp) = http_post(
        &url,
        "/cmc",
        "application/pkcs7-mime",
        &body,
        Some(&alice_token),
    );
    assert_eq!(status, 200);
    assert!(ctype.contains("application/pkcs7-mime"), "{ctype}");
    let rsp = d.join("alice.rsp");
    std::fs::write(&rsp, &resp).unwrap();
    let dump = ok(lockbox(&["dump", s(&rsp)]));
    assert!(
        dump.contains("CMC status 0") && dump.contains("encrypted key hash"),
        "{dump}"
    );
    // a denied CMC request gets a CMC failure response
    let (status, _, resp) = http_post(
        &url,
        "/api/v1/requests?template=User",
        "application/pkcs7-mime",
        &body,
        Some(&alice_token),
    );
    assert_eq!(status, 200);
    std::fs::write(&rsp, &resp).unwrap();
    let dump = ok(lockbox(&["dump", s(&rsp)]));
    assert!(
        dump.contains("CMC status 2") && dump.contains("0x80094810"),
        "{dump}"
    );
}

#[test]
fn principals_authenticate_by_token_and_password_and_roles_decide() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = ca_and_password_file(d);
    let h = s(&home);
    let out = ok(lockbox(&[
        "--home",
        h,
        "principal",
        "add",
        "max",
        "--upn",
        "max@contoso.com",
        "--downlevel",
        "CONTOSO\\max",
        "--password-file",
        s(&d.join("pw")),
        "--token",
    ]));
    let max_token = token_in(&out);
    grant(h, "max", "CertificateManager");
    let out = ok(lockbox(&[
        "--home",
        h,
        "principal",
        "add",
        "aud",
        "--token",
    ]));
    let aud_token = token_in(&out);
    grant(h, "aud", "auditor");
    let (_server, url) = start(&home, &["--http"]);
    // the manager may read the database but not configure the CA
    ok(lockbox(&["--server", &url, "--token", &max_token, "view"]));
    assert_eq!(
        lockbox(&[
            "--server",
            &url,
            "--token",
            &max_token,
            "ca",
            "templates",
            "add",
            "KeyRecoveryAgent"
        ])
        .status
        .code(),
        Some(6)
    );
    // the auditor reads and verifies the audit trail remotely; the manager may not
    let v: serde_json::Value = serde_json::from_str(&ok(lockbox(&[
        "--server", &url, "--token", &aud_token, "audit", "verify", "--json",
    ])))
    .unwrap();
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);
    assert!(
        !lockbox(&["--server", &url, "--token", &max_token, "audit", "list"])
            .status
            .success()
    );
    let list: serde_json::Value = serde_json::from_str(&ok(lockbox(&[
        "--server", &url, "--token", &aud_token, "audit", "list", "--json",
    ])))
    .unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|r| r["outcome"] == "refused" && r["actor"] == "max"),
        "refusals are audited"
    );
    // HTTP Basic with the down-level name and the password
    let basic = lockbox_codec_b64("CONTOSO\\max:correct horse battery");
    assert!(http_get_auth(&url, "/api/v1/view", &basic).starts_with("HTTP/1.1 200"));
    let wrong = lockbox_codec_b64("CONTOSO\\max:wrong password");
    assert!(!http_get_auth(&url, "/api/v1/view", &wrong).starts_with("HTTP/1.1 200"));
    // a wrong token is refused
    assert_eq!(
        lockbox(&["--server", &url, "--token", "lbt_0000_1111", "view"])
            .status
            .code(),
        Some(6)
    );
    // a client cannot claim a certificate mapping by sending the internal header itself
    let ca_pem = d.join("ca.pem");
    ok(lockbox(&["--home", h, "ca", "cert", "--out", s(&ca_pem)]));
    let out: serde_json::Value = serde_json::from_str(&ok(lockbox(&[
        "--home",
        h,
        "principal",
        "map-cert",
        "max",
        s(&ca_pem),
        "--json",
    ])))
    .unwrap();
    let thumb = out["thumbprint"].as_str().unwrap().to_string();
    let resp = http_get_with(
        &url,
        "/api/v1/view",
        &format!("x-lockbox-client-certificate-sha1: {thumb}\r\n"),
    );
    assert!(
        resp.starts_with("HTTP/1.1 403"),
        "spoofed header must not authenticate: {resp}"
    );
}

fn lockbox_codec_b64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `GET path` on `url` (plain HTTP) with `headers` (each ending in CRLF);
/// the whole answer.
fn http_get_with(url: &str, path: &str, headers: &str) -> String {
    let host = url.trim_start_matches("http://");
    http_get_on(
        std::net::TcpStream::connect(host).unwrap(),
        host,
        path,
        headers,
    )
}

/// `GET path` with `headers` on `stream`, connected to `host`; the whole answer.
fn http_get_on(mut stream: std::net::TcpStream, host: &str, path: &str, headers: &str) -> String {
    use std::io::{Read, Write};
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    stream.read_to_string(&mut resp).unwrap();
    resp
}

fn http_get_auth(url: &str, path: &str, basic: &str) -> String {
    http_get_with(url, path, &format!("Authorization: Basic {basic}\r\n"))
}

fn http_post(
    url: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    bearer: Option<&str>,
) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let host = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-type:"))
        .unwrap_or_default()
        .to_string();
    (status, ctype, resp[split + 4..].to_vec())
}

fn http_get(url: &str, path: &str) -> String {
    let resp = http_get_with(url, path, "");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    resp.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// Issue 12, item 2 over the REST API: a principal gets its own names whatever
/// its request says; an EnrollmentAgent enrolls for another principal
/// (`on_behalf_of`), anyone else is refused with 0x80094012.
#[test]
fn enrollment_agents_enroll_for_others_and_principals_get_their_own_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = p256_ca(d, "Test CA");
    let h = s(&home);
    ok(lockbox(&[
        "--home",
        h,
        "principal",
        "add",
        "alice",
        "--upn",
        "alice@contoso.com",
    ]));
    let mallory = principal_with_token(&home, "mallory");
    let agent = principal_with_token(&home, "agent");
    grant(h, "agent", "EnrollmentAgent");
    let (_server, url) = start(&home, &["--http"]);
    let csr = rsa_csr(d, "forged", "/CN=Alice/emailAddress=alice@contoso.com");
    let submit = |token: &str, extra: &[&str]| -> Output {
        let mut all = vec![
            "--server",
            url.as_str(),
            "--token",
            token,
            "submit",
            s(&csr),
            "--template",
            "User",
            "--json",
        ];
        all.extend_from_slice(extra);
        lockbox(&all)
    };
    let subject_of = |out: Output| -> String {
        let v: serde_json::Value = serde_json::from_str(&ok(out)).unwrap();
        let pem = d.join("issued.pem");
        std::fs::write(&pem, v["certificate_pem"].as_str().unwrap()).unwrap();
        ok(Command::new("openssl")
            .args([
                "x509",
                "-in",
                s(&pem),
                "-noout",
                "-subject",
                "-ext",
                "subjectAltName",
            ])
            .output()
            .unwrap())
    };
    // mallory asks for Alice's names and gets her own
    let text = subject_of(submit(&mallory, &[]));
    assert!(
        text.contains("CN = mallory") && !text.contains("Alice") && !text.contains("alice@"),
        "{text}"
    );
    // the agent enrolls for alice: alice's record names the certificate
    let text = subject_of(submit(&agent, &["--on-behalf-of", "alice@contoso.com"]));
    assert!(
        text.contains("CN = alice") && text.contains("alice@contoso.com"),
        "{text}"
    );
    // mallory may not enroll on behalf of anyone
    let refused = submit(&mallory, &["--on-behalf-of", "alice"]);
    assert_eq!(refused.status.code(), Some(3));
    let e: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(e["error"]["status"], "0x80094012", "{e}");
    let rows: serde_json::Value = serde_json::from_str(&ok(lockbox(&[
        "--home",
        h,
        "view",
        "--json",
        "--out",
        "RequestID,RequesterName,CommonName",
    ])))
    .unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1]["RequesterName"], "alice", "{rows:?}");
    assert_eq!(rows[1]["CommonName"], "alice", "{rows:?}");
}

fn http_get_bearer(url: &str, path: &str, token: &str) -> String {
    http_get_with(url, path, &format!("Authorization: Bearer {token}\r\n"))
}

/// [`http_get_auth`] from a chosen local source address (e.g. `127.0.0.2`:
/// every 127/8 address is the loopback interface on Linux).
fn http_get_auth_from(source: &str, url: &str, path: &str, basic: &str) -> String {
    let host = url.trim_start_matches("http://");
    let stream = connect_from(source, host, None);
    http_get_on(
        stream,
        host,
        path,
        &format!("Authorization: Basic {basic}\r\n"),
    )
}

/// Issue 12 item 3 and the login weaknesses, end to end: the CLI (another
/// process) removes a principal, revokes a token or a role, and the running
/// service refuses at the next request; failed logins are audited and a
/// password guesser gets 429 from its own address, while the same principal
/// from another address still logs in (fix-lockout).
#[test]
fn revocations_by_the_cli_reach_the_running_service_and_guessers_are_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = ca_and_password_file(d);
    let h = s(&home);
    let tok = |out: String| token_in(&out);
    // `principal add max` with the password file (and `extra`)
    let pw = d.join("pw");
    let add_max = |extra: &[&str]| {
        let mut args = vec![
            "--home",
            h,
            "principal",
            "add",
            "max",
            "--password-file",
            s(&pw),
        ];
        args.extend_from_slice(extra);
        lockbox(&args)
    };
    let max = tok(ok(add_max(&["--token"])));
    grant(h, "max", "CertificateManager");
    let second = tok(ok(lockbox(&["--home", h, "principal", "token", "Max"])));
    let (_server, url) = start(&home, &["--http"]);
    assert!(http_get_bearer(&url, "/api/v1/view", &max).starts_with("HTTP/1.1 200"));
    assert!(http_get_bearer(&url, "/api/v1/view", &second).starts_with("HTTP/1.1 200"));
    // one token revoked by ID (from the listing)
    let list: serde_json::Value = serde_json::from_str(&ok(lockbox(&[
        "--home",
        h,
        "principal",
        "token",
        "list",
        "max",
        "--json",
    ])))
    .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let id = second.split('_').nth(1).unwrap();
    ok(lockbox(&[
        "--home",
        h,
        "principal",
        "token",
        "revoke",
        "max",
        id,
    ]));
    assert!(http_get_bearer(&url, "/api/v1/view", &second).starts_with("HTTP/1.1 403"));
    assert!(http_get_bearer(&url, "/api/v1/view", &max).starts_with("HTTP/1.1 200"));
    // role revoked
    ok(lockbox(&[
        "--home",
        h,
        "role",
        "revoke",
        "MAX",
        "CertificateManager",
    ]));
    assert!(http_get_bearer(&url, "/api/v1/view", &max).starts_with("HTTP/1.1 403"));
    // principal removed, then re-created under the same name
    grant(h, "max", "CertificateManager");
    assert!(http_get_bearer(&url, "/api/v1/view", &max).starts_with("HTTP/1.1 200"));
    ok(lockbox(&["--home", h, "principal", "remove", "max"]));
    ok(lockbox(&["--home", h, "principal", "add", "Max"]));
    grant(h, "Max", "CertificateManager");
    let r = http_get_bearer(&url, "/api/v1/view", &max);
    assert!(
        r.starts_with("HTTP/1.1 403"),
        "old token after removal: {r}"
    );
    // creating MAX beside Max is refused
    assert!(!lockbox(&["--home", h, "principal", "add", "MAX"])
        .status
        .success());
    // a password guesser: five failures, then 429 from that address even
    // with the right password
    ok(lockbox(&["--home", h, "principal", "remove", "max"]));
    ok(add_max(&[]));
    let wrong = lockbox_codec_b64("max:Tr0ub4dor&3");
    for _ in 0..5 {
        let r = http_get_auth(&url, "/api/v1/view", &wrong);
        assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    }
    let right = lockbox_codec_b64("max:correct horse battery");
    let r = http_get_auth(&url, "/api/v1/view", &right);
    assert!(r.starts_with("HTTP/1.1 429"), "{r}");
    assert!(r.to_ascii_lowercase().contains("retry-after: 60"), "{r}");
    assert!(r.contains("0x80070775"), "{r}");
    // the victim from another address is not locked out
    grant(h, "max", "CertificateManager");
    let r = http_get_auth_from("127.0.0.2", &url, "/api/v1/view", &right);
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let r = http_get_auth_from("127.0.0.2", &url, "/api/v1/view", &wrong);
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    let r = http_get_auth_from("127.0.0.2", &url, "/api/v1/view", &right);
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    // while the guesser's address stays throttled
    let r = http_get_auth(&url, "/api/v1/view", &right);
    assert!(r.starts_with("HTTP/1.1 429"), "{r}");
    // the failures are in the audit trail, without the password
    let audit = ok(lockbox(&["--home", h, "audit", "list", "--json"]));
    let records: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let logins: Vec<&serde_json::Value> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "login" && r["outcome"] == "refused")
        .collect();
    assert!(logins.len() >= 7, "{audit}");
    assert!(logins
        .iter()
        .any(|r| r["details"].as_str().unwrap_or("").contains("127.0.0.1")));
    assert!(!audit.contains("Tr0ub4dor"));
}

/// Issue 12 item 3: `principal unmap-cert NAME SERIAL`.
#[test]
fn unmap_cert_removes_a_client_certificate_mapping_by_serial() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = p256_ca(d, "Test CA");
    let h = s(&home);
    ok(lockbox(&["--home", h, "principal", "add", "max"]));
    let ca_pem = d.join("ca.pem");
    ok(lockbox(&["--home", h, "ca", "cert", "--out", s(&ca_pem)]));
    ok(lockbox(&[
        "--home",
        h,
        "principal",
        "map-cert",
        "max",
        s(&ca_pem),
    ]));
    let certs: serde_json::Value = serde_json::from_str(&ok(lockbox(&[
        "--home",
        h,
        "principal",
        "certs",
        "MAX",
        "--json",
    ])))
    .unwrap();
    let serial = certs[0]["serial"].as_str().unwrap().to_string();
    assert_eq!(
        lockbox(&["--home", h, "principal", "unmap-cert", "max", "0badc0de"])
            .status
            .code(),
        Some(4)
    );
    ok(lockbox(&[
        "--home",
        h,
        "principal",
        "unmap-cert",
        "Max",
        &serial,
    ]));
    let certs: serde_json::Value = serde_json::from_str(&ok(lockbox(&[
        "--home",
        h,
        "principal",
        "certs",
        "max",
        "--json",
    ])))
    .unwrap();
    assert_eq!(certs.as_array().unwrap().len(), 0);
    let audit = ok(lockbox(&["--home", h, "audit", "list"]));
    assert!(audit.contains("unmap certificate"), "{audit}");
}
