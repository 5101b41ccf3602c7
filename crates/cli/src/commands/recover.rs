//! The key recovery agent's side: `recoverkey` opens a recovery blob
//! offline, `mergepfx` merges PKCS#12 files, `recover-user` does both roles
//! in one step (refused under role separation).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use lockbox_client::recover_from_blob;
use lockbox_codec::pem::decode_all;
use lockbox_crypto::pkcs12::{merge_pfx, write_pfx};
use serde_json::json;
use zeroize::Zeroizing;

use super::agent::{agent, kra_password, new_password, trusted_ca, KraToken};
use crate::backend::Local;
use crate::files::{read_secret_file, write_secret};
use crate::global::Global;
use crate::output::safe;

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
    /// The agent's KRA certificate, with --kra-key (or --kra-pkcs11 when the
    /// token holds no certificate beside the key).
    #[arg(long = "kra-cert", value_name = "FILE")]
    pub kra_cert: Option<PathBuf>,
    /// The agent's key on a PKCS#11 token (it stays there):
    /// module=PATH,token=LABEL,label=KEYLABEL[,pin-file=FILE] (PIN else LOCKBOX_PKCS11_PIN).
    #[arg(long = "kra-pkcs11", value_name = "SPEC")]
    pub kra_pkcs11: Option<KraToken>,
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
        a.kra_pkcs11.as_ref(),
    )?;
    let rec = recover_from_blob(&blob, &ca, &*key, &cert)?;
    let password = new_password(a.password, a.password_file.as_deref())?;
    let mut certs = vec![rec.certificate.clone()];
    certs.extend(rec.chain);
    let pfx = write_pfx(&rec.pkcs8, &certs, &password, a.legacy)?;
    write_secret(&a.out, &pfx)?;
    let f = lockbox_engine::cert_fields(&rec.certificate)?;
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
    let local = Local::open(&home).await?;
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
        let rec = recover_from_blob(&blob.blob, &ca, &*key, &cert)?;
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
