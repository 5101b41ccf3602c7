//! `getkey`, `recoverkey`, `mergepfx`, `recover-user`: the certificate manager
//! retrieves recovery blobs; the key recovery agent opens them offline.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::keys::write_secret;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use lockbox_codec::pem::{decode_all, decode_input};
use lockbox_crypto::pkcs12::{merge_pfx, read_pfx, write_pfx};
use lockbox_crypto::SoftwareKey;
use lockbox_engine::ca::load_private_key;
use lockbox_engine::period::rfc3339;
use lockbox_engine::recovery::{recover_from_blob, Candidate, RecoveryBlob};
use serde_json::json;
use zeroize::Zeroizing;

use crate::backend::Backend;
use crate::output::safe;
use crate::Global;

#[derive(Args, Debug)]
pub struct GetkeyArgs {
    /// TOKEN [OUTFILE] (CN, UPN, DOMAIN\user, e-mail, requester, serial, SHA-1 thumbprint or key ID);
    /// with --p7m: [OUTDIR].
    #[arg(num_args = 0..=2)]
    pub args: Vec<String>,
    /// Write a POSIX shell script that recovers every candidate of TOKEN into one PKCS#12.
    #[arg(long)]
    pub script: bool,
    /// Find the keys able to decrypt this encrypted message (.p7m, DER/PEM/MIME) and retrieve their blobs.
    #[arg(long, value_name = "FILE")]
    pub p7m: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// The recovery blob from `getkey`.
    pub blob: PathBuf,
    /// The PKCS#12 to write.
    pub out: PathBuf,
    /// The agent's PKCS#12 (key and KRA certificate).
    #[arg(long, value_name = "PFX")]
    pub kra: Option<PathBuf>,
    /// Password of the agent's PKCS#12 (or LOCKBOX_KRA_PASSWORD).
    #[arg(
        long = "kra-password",
        env = "LOCKBOX_KRA_PASSWORD",
        hide_env_values = true
    )]
    pub kra_password: Option<String>,
    /// File holding the agent's password, instead of --kra-password (keeps it off the command line).
    #[arg(long = "kra-password-file", value_name = "FILE")]
    pub kra_password_file: Option<PathBuf>,
    /// The agent's private key (PEM/DER PKCS#8), instead of --kra.
    #[arg(long = "kra-key", value_name = "FILE")]
    pub kra_key: Option<PathBuf>,
    /// The agent's KRA certificate, with --kra-key.
    #[arg(long = "kra-cert", value_name = "FILE")]
    pub kra_cert: Option<PathBuf>,
    /// Password for the new PKCS#12 (else --password-file, else prompted twice on a terminal).
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// File holding the password for the new PKCS#12 (keeps it off the command line).
    #[arg(
        long = "password-file",
        value_name = "FILE",
        conflicts_with = "password"
    )]
    pub password_file: Option<PathBuf>,
    /// 3DES/SHA-1 PKCS#12 for old Windows.
    #[arg(long)]
    pub legacy: bool,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Inputs, comma separated (certutil style): IN1.pfx,IN2.pfx
    pub inputs: String,
    /// Output PKCS#12.
    pub out: PathBuf,
    /// Passwords P1,P2,...,POUT (comma separated, or the flag repeated).
    #[arg(short = 'p', long = "password", value_delimiter = ',')]
    pub passwords: Vec<String>,
    /// File holding the passwords instead, one per line: P1, P2, ..., POUT.
    #[arg(
        long = "password-file",
        value_name = "FILE",
        conflicts_with = "passwords"
    )]
    pub password_file: Option<PathBuf>,
    /// 3DES/SHA-1 output for old Windows.
    #[arg(long)]
    pub legacy: bool,
}

#[derive(Args, Debug)]
pub struct RecoverUserArgs {
    /// Whose keys (any getkey token).
    pub token: String,
    /// The agent's PKCS#12.
    #[arg(long, value_name = "PFX")]
    pub kra: PathBuf,
    /// Its password (or LOCKBOX_KRA_PASSWORD).
    #[arg(
        long = "kra-password",
        env = "LOCKBOX_KRA_PASSWORD",
        hide_env_values = true
    )]
    pub kra_password: Option<String>,
    /// File holding the agent's password, instead of --kra-password.
    #[arg(long = "kra-password-file", value_name = "FILE")]
    pub kra_password_file: Option<PathBuf>,
    /// The PKCS#12 to write with every recovered key.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Its password (else --password-file, else prompted twice on a terminal).
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// File holding its password (keeps it off the command line).
    #[arg(
        long = "password-file",
        value_name = "FILE",
        conflicts_with = "password"
    )]
    pub password_file: Option<PathBuf>,
}

/// A secret from a file (a trailing line break is not part of it).
fn read_secret_file(path: &Path) -> Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    Ok(Zeroizing::new(
        text.trim_end_matches(['\r', '\n']).to_string(),
    ))
}

/// The agent's password: from its file when one is given, else the option or
/// LOCKBOX_KRA_PASSWORD.
fn kra_password(given: Option<String>, file: Option<&Path>) -> Result<Option<Zeroizing<String>>> {
    match file {
        Some(f) => Ok(Some(read_secret_file(f)?)),
        None => Ok(given.map(Zeroizing::new)),
    }
}

/// The new PKCS#12 password: given, read from a file, or prompted twice on a
/// terminal; never guessed.
fn new_password(given: Option<String>, file: Option<&Path>) -> Result<Zeroizing<String>> {
    if let Some(p) = given {
        return Ok(Zeroizing::new(p));
    }
    if let Some(f) = file {
        let p = read_secret_file(f)?;
        if p.is_empty() {
            bail!("the password file {} is empty", f.display());
        }
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no password: give -p PASSWORD (there is no terminal to prompt on)");
    }
    let a = Zeroizing::new(rpassword::prompt_password("New PKCS#12 password: ")?);
    let b = Zeroizing::new(rpassword::prompt_password("Confirm password: ")?);
    if a != b {
        bail!("the passwords do not match");
    }
    if a.is_empty() {
        bail!("an empty password is not allowed");
    }
    Ok(a)
}

fn trusted_ca(g: &Global) -> Result<Vec<u8>> {
    let path = match (&g.ca_cert, &g.home) {
        (Some(p), _) => p.clone(),
        (None, Some(h)) => h.join("certs/ca.pem"),
        (None, None) => {
            bail!("give the trusted CA certificate with --ca-cert (or --home of the CA)")
        }
    };
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(decode_input(&bytes)?.der)
}

/// The agent's key and certificate, from a PKCS#12 or PEM files.
fn agent(
    kra: Option<&Path>,
    password: Option<&str>,
    key: Option<&Path>,
    cert: Option<&Path>,
) -> Result<(SoftwareKey, Vec<u8>)> {
    match (kra, key, cert) {
        (Some(pfx), _, _) => {
            let data = std::fs::read(pfx).with_context(|| format!("reading {}", pfx.display()))?;
            let (pkcs8, certs) = read_pfx(&data, password.unwrap_or(""))?;
            let key = SoftwareKey::from_pkcs8_der(&pkcs8)?;
            let cert = certs
                .into_iter()
                .find(|c| {
                    lockbox_engine::certbuild::decode_certificate(c)
                        .map(|x| {
                            x.tbs_certificate().subject_public_key_info()
                                == lockbox_crypto::KeyHandle::public_key_info(&key)
                        })
                        .unwrap_or(false)
                })
                .ok_or_else(|| anyhow!("the agent's PKCS#12 holds no certificate for its key"))?;
            Ok((key, cert))
        }
        (None, Some(k), Some(c)) => {
            let kb = Zeroizing::new(
                std::fs::read(k).with_context(|| format!("reading {}", k.display()))?,
            );
            let key = load_private_key(&kb, password.map(|p| p.as_bytes()))?;
            let cb = std::fs::read(c).with_context(|| format!("reading {}", c.display()))?;
            Ok((key, decode_input(&cb)?.der))
        }
        _ => bail!(
            "give the agent's credentials: --kra KRA.pfx, or --kra-key KEY.pem --kra-cert CERT.pem"
        ),
    }
}

fn print_candidates(g: &Global, list: &[Candidate]) -> Result<()> {
    if g.json {
        println!("{}", serde_json::to_string_pretty(list)?);
        return Ok(());
    }
    for c in list {
        println!("Serial Number: {}", c.serial);
        println!("  Subject: {}", safe(&c.subject));
        println!("  UPN: {}", safe(c.upn.as_deref().unwrap_or("")));
        println!("  NotBefore: {}", rfc3339(c.not_before));
        println!("  NotAfter: {}", rfc3339(c.not_after));
        println!("  Template: {}", safe(c.template.as_deref().unwrap_or("")));
        println!("  Version: {}", safe(c.version.as_deref().unwrap_or("")));
        println!("  Cert Hash(sha1): {}", c.cert_hash);
        println!(
            "  RequestID: {}  Requester: {}",
            c.request_id,
            safe(&c.requester)
        );
    }
    println!("{} candidate(s)", list.len());
    Ok(())
}

fn print_blob(g: &Global, b: &RecoveryBlob, out: &Path) -> Result<()> {
    if g.json {
        println!(
            "{}",
            json!({ "out": out, "candidate": b.candidate, "recipients": b.recipients })
        );
        return Ok(());
    }
    println!(
        "Recovery blob for serial {} ({}) written to {}",
        b.candidate.serial,
        safe(&b.candidate.subject),
        out.display()
    );
    println!("Recipient Info (KRAs able to open it):");
    for r in &b.recipients {
        println!(
            "  issuer: {}\n  serial: {}\n  sha1:   {}",
            safe(&r.issuer),
            r.serial,
            r.sha1
        );
    }
    Ok(())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `lockbox getkey`
pub async fn getkey(g: &Global, b: Box<dyn Backend>, a: GetkeyArgs) -> Result<ExitCode> {
    if let Some(msg) = &a.p7m {
        let data = std::fs::read(msg).with_context(|| format!("reading {}", msg.display()))?;
        let outdir = PathBuf::from(a.args.first().cloned().unwrap_or_else(|| ".".into()));
        std::fs::create_dir_all(&outdir)?;
        let list = b.candidates_for_message(data).await?;
        if list.is_empty() {
            bail!("no archived key matches a recipient of {}", msg.display());
        }
        for c in &list {
            let blob = b.get_key_by_request(c.request_id).await?;
            let path = outdir.join(format!("{}.rec", c.serial));
            write_secret(&path, &blob.blob)?;
            print_blob(g, &blob, &path)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let token = a.args.first().ok_or_else(|| {
        anyhow!("give a search token (CN, UPN, DOMAIN\\user, e-mail, serial, thumbprint or key ID)")
    })?;
    if a.script {
        let list = b.find_candidates(token).await?;
        if list.is_empty() {
            bail!("no archived key matches '{token}'");
        }
        print!("{}", script(g, token, &list));
        return Ok(ExitCode::SUCCESS);
    }
    match a.args.get(1) {
        None => {
            let list = b.find_candidates(token).await?;
            print_candidates(g, &list)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(out) => {
            let blob = match b.get_key(token).await {
                Ok(blob) => blob,
                Err(e) if e.code() == lockbox_engine::codes::TYPE_E_AMBIGUOUSNAME => {
                    if !g.json {
                        print_candidates(g, &b.find_candidates(token).await.unwrap_or_default())?;
                    }
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            };
            let out = PathBuf::from(out);
            write_secret(&out, &blob.blob)?;
            print_blob(g, &blob, &out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The seed's batch recovery, as a POSIX shell script.
fn script(g: &Global, token: &str, list: &[Candidate]) -> String {
    let mut ctx = String::new();
    if let Some(h) = &g.home {
        ctx.push_str(&format!(
            " --home {}",
            shell_quote(&h.display().to_string())
        ));
    }
    if let Some(s) = &g.server {
        ctx.push_str(&format!(" --server {}", shell_quote(s)));
    }
    if let Some(c) = &g.ca_cert {
        ctx.push_str(&format!(
            " --ca-cert {}",
            shell_quote(&c.display().to_string())
        ));
    }
    let user: String = token
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut s = String::new();
    s.push_str("#!/bin/sh\n");
    s.push_str(&format!(
        "# Recover every archived key of {} ({} certificate(s)) into {user}.p12.\n",
        script_comment(token),
        list.len()
    ));
    s.push_str("# Needs: KRA_PFX (the agent's PKCS#12) and its password in the file named by\n");
    s.push_str("# KRA_PASSWORD_FILE, or in KRA_PASSWORD. No password is put on a command line:\n");
    s.push_str("# each one travels in a file (mode 0600) in a private temporary directory.\n");
    s.push_str("set -eu\n: \"${KRA_PFX:?set KRA_PFX to the key recovery agent's PKCS#12}\"\n");
    s.push_str(
        "umask 077\nLOCKBOX=\"${LOCKBOX:-lockbox}\"\nwork=$(mktemp -d)\ntrap 'rm -rf \"$work\"' EXIT\n",
    );
    s.push_str("if [ -n \"${KRA_PASSWORD_FILE:-}\" ]; then\n  kra_pw=\"$KRA_PASSWORD_FILE\"\nelif [ -n \"${KRA_PASSWORD+set}\" ]; then\n  printf '%s\\n' \"$KRA_PASSWORD\" >\"$work/kra.pw\"\n  kra_pw=\"$work/kra.pw\"\nelse\n  echo \"set KRA_PASSWORD_FILE (a file holding the agent's password) or KRA_PASSWORD\" >&2\n  exit 1\nfi\n");
    s.push_str("pw() { od -An -tx1 -N18 /dev/urandom | tr -d ' \\n'; echo; }\n");
    let mut inputs = Vec::new();
    let mut pws = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let n = i + 1;
        s.push_str(&format!(
            "# {} (serial {}, {} .. {})\n",
            script_comment(&c.subject),
            c.serial,
            rfc3339(c.not_before),
            rfc3339(c.not_after)
        ));
        s.push_str(&format!(
            "\"$LOCKBOX\"{ctx} getkey {} \"$work/{n}.rec\" >/dev/null\n",
            shell_quote(&c.serial)
        ));
        s.push_str(&format!("pw >\"$work/{n}.pw\"\n"));
        s.push_str(&format!(
            "\"$LOCKBOX\"{ctx} recoverkey \"$work/{n}.rec\" \"$work/{n}.pfx\" --kra \"$KRA_PFX\" --kra-password-file \"$kra_pw\" --password-file \"$work/{n}.pw\" >/dev/null\n"
        ));
        inputs.push(format!("$work/{n}.pfx"));
        pws.push(format!("\"$work/{n}.pw\""));
    }
    s.push_str("pw >\"$work/final.pw\"\n");
    s.push_str(&format!(
        "cat {} \"$work/final.pw\" >\"$work/merge.pw\"\n",
        pws.join(" ")
    ));
    s.push_str(&format!(
        "\"$LOCKBOX\" mergepfx \"{}\" {} --password-file \"$work/merge.pw\" >/dev/null\n",
        inputs.join(","),
        shell_quote(&format!("{user}.p12")),
    ));
    s.push_str(&format!(
        "echo \"Recovered {} key(s) into {user}.p12; its password is: $(cat \"$work/final.pw\")\"\n",
        list.len()
    ));
    s
}

/// Text for a comment line of the script: no line breaks or control characters.
fn script_comment(text: &str) -> String {
    safe(text).replace(['\n', '\r'], " ")
}

/// `lockbox recoverkey`
pub async fn recoverkey(g: &Global, a: RecoverArgs) -> Result<ExitCode> {
    let ca = trusted_ca(g)?;
    let blob = std::fs::read(&a.blob).with_context(|| format!("reading {}", a.blob.display()))?;
    let kra_pw = kra_password(a.kra_password, a.kra_password_file.as_deref())?;
    let (key, cert) = agent(
        a.kra.as_deref(),
        kra_pw.as_ref().map(|p| p.as_str()),
        a.kra_key.as_deref(),
        a.kra_cert.as_deref(),
    )?;
    let rec = recover_from_blob(&blob, &ca, &key, &cert)?;
    let password = new_password(a.password, a.password_file.as_deref())?;
    let mut certs = vec![rec.certificate.clone()];
    certs.extend(rec.chain);
    let pfx = write_pfx(&rec.pkcs8, &certs, &password, a.legacy)?;
    write_secret(&a.out, &pfx)?;
    let f = lockbox_engine::ca::cert_fields(&rec.certificate)?;
    if g.json {
        println!(
            "{}",
            json!({ "out": a.out, "serial": f.serial, "subject": f.subject })
        );
    } else {
        println!(
            "Recovered the key of {} (serial {}) into {}",
            safe(&f.subject),
            f.serial,
            a.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `lockbox mergepfx`
pub fn mergepfx(g: &Global, a: MergeArgs) -> Result<ExitCode> {
    let inputs: Vec<&str> = a
        .inputs
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if inputs.is_empty() {
        bail!("give the input files, comma separated");
    }
    let passwords: Vec<Zeroizing<String>> = match &a.password_file {
        Some(f) => read_secret_file(f)?
            .lines()
            .map(|l| Zeroizing::new(l.trim_end_matches('\r').to_string()))
            .collect(),
        None => a.passwords.iter().cloned().map(Zeroizing::new).collect(),
    };
    if passwords.len() != inputs.len() + 1 {
        bail!("give one password per input and one for the output: -p P1,...,Pn,POUT or --password-file with one per line ({} inputs, {} passwords)", inputs.len(), passwords.len());
    }
    let mut data = Vec::new();
    for (i, path) in inputs.iter().enumerate() {
        let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
        data.push((bytes, passwords[i].to_string()));
    }
    let out_pw = passwords.last().map(|p| p.to_string()).unwrap_or_default();
    let pfx = merge_pfx(&data, &out_pw, a.legacy)?;
    write_secret(&a.out, &pfx)?;
    if g.json {
        println!("{}", json!({ "out": a.out, "inputs": inputs.len() }));
    } else {
        println!(
            "Merged {} PKCS#12 file(s) into {}",
            inputs.len(),
            a.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `lockbox recover-user`: one person holds both roles (refused under role separation).
pub async fn recover_user(g: &Global, a: RecoverUserArgs) -> Result<ExitCode> {
    let home = g
        .home
        .clone()
        .ok_or_else(|| anyhow!("recover-user works on the local CA home (--home)"))?;
    let local = crate::backend::Local::open(&home).await?;
    if local.ca.role_separation().await? {
        bail!("recover-user needs one person to retrieve and decrypt; role separation is on, so use getkey (certificate manager) and recoverkey (key recovery agent)");
    }
    let ca = trusted_ca(g)?;
    let kra_pw = kra_password(a.kra_password, a.kra_password_file.as_deref())?;
    let (key, cert) = agent(
        Some(&a.kra),
        kra_pw.as_ref().map(|p| p.as_str()),
        None,
        None,
    )?;
    let candidates = local.ca.find_candidates(&local.actor, &a.token).await?;
    if candidates.is_empty() {
        bail!("no archived key matches '{}'", a.token);
    }
    let password = new_password(a.password, a.password_file.as_deref())?;
    let mut parts = Vec::new();
    let tmp_pw = lockbox_codec::hexfmt::to_hex(&lockbox_crypto::random::random_bytes(16)?);
    for c in &candidates {
        let blob = local
            .ca
            .get_key_by_request(&local.actor, c.request_id)
            .await?;
        let rec = recover_from_blob(&blob.blob, &ca, &key, &cert)?;
        let mut certs = vec![rec.certificate];
        certs.extend(rec.chain);
        parts.push((
            write_pfx(&rec.pkcs8, &certs, &tmp_pw, false)?,
            tmp_pw.clone(),
        ));
    }
    let pfx = merge_pfx(&parts, &password, false)?;
    write_secret(&a.out, &pfx)?;
    if g.json {
        println!("{}", json!({ "out": a.out, "keys": candidates.len() }));
    } else {
        println!(
            "Recovered {} key(s) of {} into {}",
            candidates.len(),
            a.token,
            a.out.display()
        );
    }
    let _ = decode_all("", "CERTIFICATE");
    Ok(ExitCode::SUCCESS)
}
