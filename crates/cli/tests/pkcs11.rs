//! Keys on a PKCS#11 token, through the `lockbox` command, against SoftHSM2
//! and with `pkcs11-tool` (OpenSC), `openssl` and pkilint as the witnesses
//! nobody here wrote. The test script installs SoftHSM2 and OpenSC and sets
//! `LOCKBOX_REQUIRE_SOFTHSM`, which turns a missing SoftHSM2 into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::*;
use lockbox_crypto::pkcs11::softhsm::SoftHsm;

const CA_PIN: &str = "ca-pin-2718";
const KRA_PIN: &str = "kra-pin-3141";

/// A SoftHSM2 directory under `d` with the tokens `labels` (PIN `pin` each).
fn softhsm(d: &Path, tokens: &[(&str, &str)]) -> Option<SoftHsm> {
    let Some(hsm) = SoftHsm::create(&d.join("hsm")).unwrap() else {
        assert!(
            std::env::var_os("LOCKBOX_REQUIRE_SOFTHSM").is_none(),
            "LOCKBOX_REQUIRE_SOFTHSM is set but SoftHSM2 is not installed"
        );
        eprintln!("SoftHSM2 not installed: PKCS#11 tests skipped");
        return None;
    };
    for (label, pin) in tokens {
        hsm.init_token(label, pin).unwrap();
    }
    Some(hsm)
}

/// Writes `pin` to a 0600 file.
fn pin_file(d: &Path, name: &str, pin: &str) -> PathBuf {
    let p = d.join(name);
    std::fs::write(&p, format!("{pin}\n")).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    p
}

/// `lockbox` with `LOCKBOX_HOME` and the SoftHSM2 configuration.
fn lbt(hsm: &SoftHsm, home: &Path, args: &[&str]) -> Output {
    lockbox_cmd(args)
        .env("LOCKBOX_HOME", home)
        .env("SOFTHSM2_CONF", &hsm.conf)
        .output()
        .expect("run lockbox")
}

/// `pkcs11-tool` (OpenSC) on the token `label`.
fn pkcs11_tool(hsm: &SoftHsm, label: &str, pin: &str, args: &[&str]) -> String {
    let module = hsm.module.display().to_string();
    let mut all = vec![
        "--module",
        &module,
        "--token-label",
        label,
        "--login",
        "--pin",
        pin,
    ];
    all.extend_from_slice(args);
    let out = Command::new("pkcs11-tool")
        .args(&all)
        .env("SOFTHSM2_CONF", &hsm.conf)
        .output()
        .expect("pkcs11-tool (Debian's opensc) is required");
    assert!(
        out.status.success(),
        "pkcs11-tool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every `*.key` file under `dir`.
fn key_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(key_files(&p));
        } else if p.extension().is_some_and(|x| x == "key") {
            out.push(p);
        }
    }
    out
}

fn pkilint_cert(path: &Path) {
    let out = Command::new("lint_pkix_cert")
        .args(["lint", "-s", "WARNING", s(path)])
        .output()
        .expect("pkilint is required");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "pkilint findings for {}:\n{text}",
        path.display()
    );
}

/// A CA whose key and exchange keys are on token "ca"; a KRA whose key is
/// imported into token "kra" (as onto a smart card) and whose key file is
/// then deleted; archival from `lockbox request new --archive` and from
/// Certipy; recovery with `recoverkey --kra-pkcs11`; every signature checked
/// by openssl and pkilint, the key's protection by pkcs11-tool.
#[test]
fn a_ca_on_a_token_issues_archives_and_an_agent_on_a_token_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(hsm) = softhsm(d, &[("ca", CA_PIN), ("kra", KRA_PIN)]) else {
        return;
    };
    let module = hsm.module.display().to_string();
    let pin = pin_file(d, "ca.pin", CA_PIN);
    let home = d.join("ca");
    let out = ok(lbt(
        &hsm,
        &home,
        &[
            "init",
            "--name",
            "Token Issuing CA",
            "--pkcs11-module",
            &module,
            "--token-label",
            "ca",
            "--pin-file",
            s(&pin),
            "--key",
            "rsa3072",
            "--exchange-on-token",
            "--cdp-url",
            "http://pki.example.test/ca.crl",
        ],
    ));
    assert!(out.contains("CA key on token 'ca'"), "{out}");
    assert!(!out.contains(CA_PIN));
    // The CA key is on the token: sensitive, never extractable; no key file.
    let objects = pkcs11_tool(&hsm, "ca", CA_PIN, &["--list-objects"]);
    // One block per object: a header line, then indented attributes.
    let mut blocks: Vec<String> = vec![];
    for line in objects.lines() {
        if line.starts_with(char::is_whitespace) {
            if let Some(b) = blocks.last_mut() {
                b.push_str(line);
                b.push('\n');
            }
        } else {
            blocks.push(format!("{line}\n"));
        }
    }
    let private = blocks
        .iter()
        .find(|b| b.starts_with("Private Key Object") && b.contains("lockbox-ca"))
        .unwrap_or_else(|| panic!("no CA private key on the token:\n{objects}"));
    assert!(
        private.contains("sensitive") && private.contains("never extractable"),
        "{private}"
    );
    assert!(key_files(&home).is_empty(), "{:?}", key_files(&home));
    let config = std::fs::read_to_string(home.join("lockbox.toml")).unwrap();
    assert!(
        !config.contains(CA_PIN),
        "the PIN is not in the configuration"
    );

    // The agent: a key made in software, certified, moved onto its token.
    ok(lbt(
        &hsm,
        &home,
        &["ca", "templates", "add", "KeyRecoveryAgent"],
    ));
    ok(lbt(
        &hsm,
        &home,
        &[
            "request",
            "new",
            "--template",
            "KeyRecoveryAgent",
            "--subject",
            "CN=Token Agent",
            "--out",
            s(&d.join("kra.req")),
            "--key-out",
            s(&d.join("kra.key")),
        ],
    ));
    ok(lbt(&hsm, &home, &["submit", s(&d.join("kra.req"))]));
    let kra_pem = d.join("kra.pem");
    ok(lbt(&hsm, &home, &["issue", "1", "--out", s(&kra_pem)]));
    ok(openssl(&[
        "verify",
        "-CAfile",
        s(&home.join("certs/ca.pem")),
        s(&kra_pem),
    ]));
    pkcs11_tool(
        &hsm,
        "kra",
        KRA_PIN,
        &[
            "--write-object",
            s(&d.join("kra.key")),
            "--type",
            "privkey",
            "--label",
            "agent",
            "--id",
            "a1",
            "--usage-decrypt",
        ],
    );
    pkcs11_tool(
        &hsm,
        "kra",
        KRA_PIN,
        &[
            "--write-object",
            s(&kra_pem),
            "--type",
            "cert",
            "--label",
            "agent",
            "--id",
            "a1",
        ],
    );
    std::fs::remove_file(d.join("kra.key")).unwrap();
    ok(lbt(&hsm, &home, &["kra", "add", s(&kra_pem)]));
    ok(lbt(&hsm, &home, &["kra", "required", "1"]));

    // Archival: lockbox's own client, then Certipy.
    let (req, key, cert) = (
        d.join("alice.req"),
        d.join("alice.key"),
        d.join("alice.pem"),
    );
    ok(lbt(
        &hsm,
        &home,
        &[
            "request",
            "new",
            "--template",
            "ExchangeUser",
            "--subject",
            "CN=Alice Example",
            "--archive",
            "--out",
            s(&req),
            "--key-out",
            s(&key),
        ],
    ));
    let out: serde_json::Value = serde_json::from_str(&ok(lbt(
        &hsm,
        &home,
        &["submit", s(&req), "--out", s(&cert), "--json"],
    )))
    .unwrap();
    assert_eq!(out["disposition"], "issued", "{out}");
    assert_eq!(out["archived"], true, "{out}");
    ok(openssl(&[
        "verify",
        "-CAfile",
        s(&home.join("certs/ca.pem")),
        s(&cert),
    ]));
    pkilint_cert(&cert);

    let xchg = d.join("xchg.pem");
    ok(lbt(
        &hsm,
        &home,
        &["ca", "cert", "--exchange", "--out", s(&xchg)],
    ));
    let (creq, ckey, ccert) = (d.join("bob.req"), d.join("bob.key"), d.join("bob.pem"));
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/certipy_archival.py");
    ok(Command::new(tools_python())
        .args([s(&script), s(&xchg), s(&creq), s(&ckey), "bob"])
        .output()
        .unwrap());
    let out: serde_json::Value = serde_json::from_str(&ok(lbt(
        &hsm,
        &home,
        &[
            "submit",
            s(&creq),
            "--template",
            "ExchangeUser",
            "--out",
            s(&ccert),
            "--json",
        ],
    )))
    .unwrap();
    assert_eq!(out["archived"], true, "{out}");
    assert!(ok(lbt(&hsm, &home, &["verifykeys", s(&ckey), s(&ccert)])).contains("matches"));
    // The exchange key cannot be written out: it is on the token.
    let refused = lbt(
        &hsm,
        &home,
        &["ca", "exchange-key", "--out", s(&d.join("x.key"))],
    );
    assert!(!refused.status.success());
    assert!(!d.join("x.key").exists());

    // CRL signed on the token.
    let crl = d.join("ca.crl");
    ok(lbt(&hsm, &home, &["crl", "publish", "--out", s(&crl)]));
    let v = openssl_crl_check(&crl, &home.join("certs/ca.pem"), &[]);
    assert!(
        String::from_utf8_lossy(&v.stderr).contains("verify OK")
            || String::from_utf8_lossy(&v.stdout).contains("verify OK"),
        "{}",
        String::from_utf8_lossy(&v.stderr)
    );

    // key status: both keys on the token, matching their certificates.
    let status: serde_json::Value =
        serde_json::from_str(&ok(lbt(&hsm, &home, &["key", "status", "--json"]))).unwrap();
    let keys = status["keys"].as_array().unwrap();
    assert!(keys.len() >= 2, "{status}");
    for k in keys {
        assert_eq!(k["location"]["store"], "token", "{k}");
        assert_eq!(k["location"]["token_label"], "ca", "{k}");
        assert_eq!(k["matches_certificate"], true, "{k}");
        assert_eq!(k["protection"]["extractable"], false, "{k}");
    }

    // Recovery: the manager's blob, opened by the agent's key on its token.
    let blob = d.join("alice.rec");
    ok(lbt(&hsm, &home, &["getkey", "Alice Example", s(&blob)]));
    let kpin = pin_file(d, "kra.pin", KRA_PIN);
    let spec = format!(
        "module={module},token=kra,label=agent,pin-file={}",
        s(&kpin)
    );
    let pfx = d.join("alice-recovered.pfx");
    let out = lockbox_cmd(&[
        "recoverkey",
        s(&blob),
        s(&pfx),
        "--kra-pkcs11",
        &spec,
        "-p",
        "recovered",
        "--ca-cert",
        s(&home.join("certs/ca.pem")),
    ])
    .env("SOFTHSM2_CONF", &hsm.conf)
    .output()
    .unwrap();
    let text = ok(out);
    assert!(text.contains("Recovered"), "{text}");
    let recovered = pkcs12_keys(&pfx, "recovered", Some(&d.join("alice-recovered.key")));
    assert!(recovered.is_empty() || !recovered.contains("error"));
    let modulus = |k: &Path| ok(openssl(&["rsa", "-in", s(k), "-noout", "-modulus"]));
    assert_eq!(modulus(&d.join("alice-recovered.key")), modulus(&key));

    // Backup: the keys on the token are listed, not copied; verify and
    // restore check that the token holds them, and refuse once it does not.
    let pass = pin_file(d, "backup.pass", "backup passphrase 1");
    let b1 = d.join("backup");
    ok(lbt(
        &hsm,
        &home,
        &["backup", "--out", s(&b1), "--passphrase-file", s(&pass)],
    ));
    assert!(key_files(&b1).is_empty(), "{:?}", key_files(&b1));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b1.join("manifest.json")).unwrap()).unwrap();
    let listed = manifest["keys_on_token"].as_array().unwrap();
    assert!(listed.iter().any(|k| k["role"] == "ca"), "{manifest}");
    assert!(listed.iter().any(|k| k["role"] == "exchange"), "{manifest}");
    let verified = ok(lbt(
        &hsm,
        &home,
        &["backup", "verify", s(&b1), "--passphrase-file", s(&pass)],
    ));
    assert!(verified.contains("Backup verified."), "{verified}");
    let restored = d.join("restored");
    let out = ok(lbt(
        &hsm,
        &restored,
        &["restore", s(&b1), "--passphrase-file", s(&pass)],
    ));
    assert!(out.contains("Restore complete"), "{out}");
    assert!(
        key_files(&restored).is_empty(),
        "{:?}",
        key_files(&restored)
    );
    let status: serde_json::Value =
        serde_json::from_str(&ok(lbt(&hsm, &restored, &["key", "status", "--json"]))).unwrap();
    assert_eq!(status["keys"][0]["matches_certificate"], true, "{status}");

    // A wrong agent PIN: a clear refusal, the PIN in no message.
    let bad = pin_file(d, "bad.pin", "0000-wrong");
    let spec = format!("module={module},token=kra,label=agent,pin-file={}", s(&bad));
    let out = lockbox_cmd(&[
        "recoverkey",
        s(&blob),
        s(&d.join("never.pfx")),
        "--kra-pkcs11",
        &spec,
        "-p",
        "x",
        "--ca-cert",
        s(&home.join("certs/ca.pem")),
    ])
    .env("SOFTHSM2_CONF", &hsm.conf)
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("PIN was refused"),
        "{err}"
    );
    assert!(!err.contains("0000-wrong"), "{err}");
    assert!(!d.join("never.pfx").exists());

    // The CA key removed from the token: key status, enrollment, backup
    // verify and restore all say so, and nothing is issued.
    let ids = |o: &str| o.lines().filter(|l| l.contains("ID:")).count();
    let before = ids(&pkcs11_tool(
        &hsm,
        "ca",
        CA_PIN,
        &["--list-objects", "--type", "privkey"],
    ));
    pkcs11_tool(
        &hsm,
        "ca",
        CA_PIN,
        &[
            "--delete-object",
            "--type",
            "privkey",
            "--label",
            "lockbox-ca",
        ],
    );
    assert_eq!(
        ids(&pkcs11_tool(
            &hsm,
            "ca",
            CA_PIN,
            &["--list-objects", "--type", "privkey"]
        )),
        before - 1
    );
    let status = lbt(&hsm, &home, &["key", "status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        !status.status.success() && text.contains("UNAVAILABLE"),
        "{text}"
    );
    let rows = |h: &Path| ok(lbt(&hsm, h, &["view", "--csv"])).lines().count();
    let rows_before = rows(&home);
    let (req2, key2) = (d.join("carol.req"), d.join("carol.key"));
    ok(lbt(
        &hsm,
        &home,
        &[
            "request",
            "new",
            "--template",
            "ExchangeUser",
            "--subject",
            "CN=Carol",
            "--archive",
            "--out",
            s(&req2),
            "--key-out",
            s(&key2),
        ],
    ));
    let refused = lbt(&hsm, &home, &["submit", s(&req2)]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.contains("0x80090030") || err.contains("NTE_DEVICE_NOT_READY"),
        "{err}"
    );
    assert_eq!(rows(&home), rows_before, "nothing recorded or issued");
    let check = lbt(
        &hsm,
        &home,
        &["backup", "verify", s(&b1), "--passphrase-file", s(&pass)],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        !check.status.success() && text.contains("does not hold it"),
        "{text}"
    );
    let again = lbt(
        &hsm,
        &d.join("restored-2"),
        &["restore", s(&b1), "--passphrase-file", s(&pass)],
    );
    assert!(!again.status.success());
    assert!(!d.join("restored-2").join("lockbox.toml").exists());
}

/// `--pkcs11-key-label` uses a key pair made on the token by someone else
/// (pkcs11-tool); a second `init` on the same token without it refuses to
/// make a second `lockbox-ca` key.
#[test]
fn init_uses_an_existing_key_pair_on_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(hsm) = softhsm(d, &[("ca", CA_PIN)]) else {
        return;
    };
    let module = hsm.module.display().to_string();
    pkcs11_tool(
        &hsm,
        "ca",
        CA_PIN,
        &[
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            "made-by-opensc",
            "--id",
            "0c",
            "--usage-sign",
        ],
    );
    // A key that also decrypts (pkcs11-tool's default usage) is refused.
    pkcs11_tool(
        &hsm,
        "ca",
        CA_PIN,
        &[
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            "all-purpose",
            "--id",
            "0d",
        ],
    );
    let unfit = lockbox_cmd(&[
        "init",
        "--name",
        "Unfit Key CA",
        "--pkcs11-module",
        &module,
        "--token-label",
        "ca",
        "--pkcs11-key-label",
        "all-purpose",
    ])
    .env("LOCKBOX_HOME", d.join("unfit"))
    .env("SOFTHSM2_CONF", &hsm.conf)
    .env("LOCKBOX_PKCS11_PIN", CA_PIN)
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&unfit.stderr);
    assert!(
        !unfit.status.success() && err.contains("not fit to be a CA key"),
        "{err}"
    );
    assert!(!d.join("unfit").join("lockbox.toml").exists());
    let home = d.join("ca");
    let out = lockbox_cmd(&[
        "init",
        "--name",
        "Existing Key CA",
        "--pkcs11-module",
        &module,
        "--token-label",
        "ca",
        "--pkcs11-key-label",
        "made-by-opensc",
    ])
    .env("LOCKBOX_HOME", &home)
    .env("SOFTHSM2_CONF", &hsm.conf)
    .env("LOCKBOX_PKCS11_PIN", CA_PIN)
    .output()
    .unwrap();
    ok(out);
    let pem = home.join("certs/ca.pem");
    ok(openssl(&["verify", "-CAfile", s(&pem), s(&pem)]));
    let text = ok(openssl(&["x509", "-in", s(&pem), "-noout", "-text"]));
    assert!(
        text.contains("ecdsa-with-SHA256") && text.contains("prime256v1"),
        "{text}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&ok(lockbox_cmd(&["key", "status", "--json"])
            .env("LOCKBOX_HOME", &home)
            .env("SOFTHSM2_CONF", &hsm.conf)
            .env("LOCKBOX_PKCS11_PIN", CA_PIN)
            .output()
            .unwrap()))
        .unwrap();
    assert_eq!(status["keys"][0]["location"]["key_label"], "made-by-opensc");
    assert_eq!(status["keys"][0]["location"]["key_id"], "0c");
    // Without the PIN: a clear error naming what to set.
    let out = lockbox_cmd(&["key", "status"])
        .env("LOCKBOX_HOME", &home)
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env_remove("LOCKBOX_PKCS11_PIN")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("LOCKBOX_PKCS11_PIN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second CA generating its key on the same token: lockbox-ca is free,
    // so it works once, then refuses a duplicate label.
    let second = |name: &str| {
        lockbox_cmd(&[
            "init",
            "--name",
            name,
            "--pkcs11-module",
            &module,
            "--token-label",
            "ca",
            "--key",
            "p256",
        ])
        .env("LOCKBOX_HOME", d.join(name))
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env("LOCKBOX_PKCS11_PIN", CA_PIN)
        .output()
        .unwrap()
    };
    ok(second("two"));
    let dup = second("three");
    assert!(!dup.status.success());
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("--pkcs11-key-label lockbox-ca"),
        "{}",
        String::from_utf8_lossy(&dup.stderr)
    );
}

/// POSTs `body` with `curl` (bearer `token`); returns (status, body).
fn curl_post(url: &str, token: &str, body: &Path) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            &format!("@{}", s(body)),
            "-w",
            "\n%{http_code}",
            url,
        ])
        .output()
        .expect("curl is required");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

fn curl_status(url: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", url])
        .output()
        .expect("curl is required");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The token goes away under a running service (its SoftHSM2 directory is
/// moved off): enrollments get 503 with NTE_DEVICE_NOT_READY and nothing is
/// recorded, what needs no key keeps answering, and enrollments work again
/// once the token is back. A wrong PIN: the service starts, key operations
/// get 503 with SCARD_W_WRONG_CHV, and the PIN is in no answer.
#[test]
fn a_token_that_goes_away_gives_503_and_the_service_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(hsm) = softhsm(d, &[("ca", CA_PIN)]) else {
        return;
    };
    let module = hsm.module.display().to_string();
    let pin = pin_file(d, "ca.pin", CA_PIN);
    let home = d.join("ca");
    ok(lbt(
        &hsm,
        &home,
        &[
            "init",
            "--name",
            "Flaky Token CA",
            "--key",
            "p256",
            "--pkcs11-module",
            &module,
            "--token-label",
            "ca",
            "--pin-file",
            s(&pin),
        ],
    ));
    let admin = std::fs::read_to_string(home.join("admin.token")).unwrap();
    let admin = admin.trim();
    let csr = openssl_csr(
        d,
        "u",
        "/CN=u1",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let der = d.join("u.der");
    ok(openssl(&[
        "req",
        "-in",
        s(&csr),
        "-outform",
        "DER",
        "-out",
        s(&der),
    ]));
    let serve = |listen: &str| {
        let child = lockbox_cmd(&["serve", "--home", s(&home), "--listen", listen, "--http"])
            .env("SOFTHSM2_CONF", &hsm.conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Server::running(child, listen)
    };
    let listen = free_listen_address();
    let server = serve(&listen);
    let base = format!("http://{listen}");
    let enroll = format!("{base}/api/v1/requests?template=User");
    let (code, body) = curl_post(&enroll, admin, &der);
    assert_eq!(code, 200, "{body}");

    let token_dir = hsm.token_dir("ca").expect("the token's directory");
    let away = d.join("token-away");
    std::fs::rename(&token_dir, &away).unwrap();
    let rows = ok(lbt(&hsm, &home, &["view", "--csv"])).lines().count();
    for _ in 0..2 {
        let (code, body) = curl_post(&enroll, admin, &der);
        assert_eq!(code, 503, "{body}");
        assert!(
            body.contains("NTE_DEVICE_NOT_READY") && body.contains("0x80090030"),
            "{body}"
        );
        assert!(!body.contains(&module), "no module path to clients: {body}");
    }
    assert_eq!(
        ok(lbt(&hsm, &home, &["view", "--csv"])).lines().count(),
        rows
    );
    assert_eq!(curl_status(&format!("{base}/health")), 200);
    assert_eq!(curl_status(&format!("{base}/api/v1/ca/certificate")), 200);

    std::fs::rename(&away, &token_dir).unwrap();
    // The module is looked at again at most every 5 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (code, body) = curl_post(&enroll, admin, &der);
        if code == 200 {
            break;
        }
        assert_eq!(code, 503, "{body}");
        assert!(std::time::Instant::now() < deadline, "no recovery: {body}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    drop(server);

    // Wrong PIN: the service starts; signing is refused with its own code.
    std::fs::write(&pin, "9999-wrong\n").unwrap();
    let listen = free_listen_address();
    let _server = serve(&listen);
    let base = format!("http://{listen}");
    assert_eq!(curl_status(&format!("{base}/health")), 200);
    let (code, body) = curl_post(
        &format!("{base}/api/v1/requests?template=User"),
        admin,
        &der,
    );
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("SCARD_W_WRONG_CHV"), "{body}");
    assert!(!body.contains("9999"), "{body}");
}
