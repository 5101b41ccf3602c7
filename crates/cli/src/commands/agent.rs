//! What the key recovery agent brings: its key and certificate (a PKCS#12
//! or PEM files), its password, the trusted CA, and the new PKCS#12 password.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use lockbox_codec::pem::decode_input;
use lockbox_crypto::pkcs12::read_pfx;
use lockbox_crypto::SoftwareKey;
use lockbox_engine::load_private_key;
use zeroize::Zeroizing;

use crate::files::read_secret_file;
use crate::global::Global;

/// The agent's password: from its file when one is given, else the option or
/// LOCKBOX_KRA_PASSWORD.
pub fn kra_password(
    given: Option<String>,
    file: Option<&Path>,
) -> Result<Option<Zeroizing<String>>> {
    match file {
        Some(f) => Ok(Some(read_secret_file(f)?)),
        None => Ok(given.map(Zeroizing::new)),
    }
}

/// The new PKCS#12 password: given, read from a file, or prompted twice on a
/// terminal; never guessed.
pub fn new_password(given: Option<String>, file: Option<&Path>) -> Result<Zeroizing<String>> {
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

/// The trusted CA certificate (DER): --ca-cert, else the CA certificate of --home.
pub fn trusted_ca(g: &Global) -> Result<Vec<u8>> {
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
pub fn agent(
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
