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

/// Where an agent's key on a token is: `--kra-pkcs11
/// module=PATH,token=LABEL,label=KEYLABEL[,pin-file=FILE]`.
#[derive(Clone, Debug)]
pub struct KraToken {
    module: std::path::PathBuf,
    token: String,
    label: String,
    pin_file: Option<std::path::PathBuf>,
}

impl std::str::FromStr for KraToken {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (mut module, mut token, mut label, mut pin_file) = (None, None, None, None);
        for part in s.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("'{part}' is not KEY=VALUE"))?;
            let slot = match k.trim() {
                "module" => &mut module,
                "token" => &mut token,
                "label" => &mut label,
                "pin-file" => &mut pin_file,
                other => {
                    return Err(format!(
                        "unknown key '{other}' (module=, token=, label=, pin-file=)"
                    ))
                }
            };
            if slot.replace(v.to_string()).is_some() {
                return Err(format!("'{}' given twice", k.trim()));
            }
        }
        let need = |v: Option<String>, k: &str| v.ok_or_else(|| format!("{k}= is required"));
        Ok(KraToken {
            module: need(module, "module")?.into(),
            token: need(token, "token")?,
            label: need(label, "label")?,
            pin_file: pin_file.map(Into::into),
        })
    }
}

/// The agent's key on its token (it never leaves it) and its certificate:
/// `cert` when given, else the certificate stored on the token with the key.
fn token_agent(t: &KraToken, cert: Option<&Path>) -> Result<(AgentKey, Vec<u8>)> {
    let pin = match &t.pin_file {
        Some(f) => lockbox_engine::keysource::read_pin_file(f)?,
        None => match std::env::var(lockbox_engine::config::PKCS11_PIN_ENV) {
            Ok(p) if !p.is_empty() => Zeroizing::new(p),
            _ => bail!(
                "the agent's token PIN: give pin-file= in --kra-pkcs11 or set {}",
                lockbox_engine::config::PKCS11_PIN_ENV
            ),
        },
    };
    let token = lockbox_crypto::pkcs11::Token::open(lockbox_crypto::pkcs11::TokenConfig {
        module: t.module.clone(),
        token_label: t.token.clone(),
        pin,
        max_sessions: 1,
        token_serial: None,
    })?;
    let key = token.find_key(&t.label)?.allow_padded_decryption();
    let cert = match cert {
        Some(c) => {
            let cb = std::fs::read(c).with_context(|| format!("reading {}", c.display()))?;
            decode_input(&cb)?.der
        }
        None => key.certificate()?.ok_or_else(|| {
            anyhow!(
                "no certificate with the key '{}' on token '{}': give it with --kra-cert",
                t.label,
                t.token
            )
        })?,
    };
    Ok((Box::new(key), cert))
}

/// The agent's private key: in software, or on a token.
pub type AgentKey = Box<dyn lockbox_crypto::PrivateKey>;

/// The agent's key and certificate, from a PKCS#12, PEM files or a token.
pub fn agent(
    kra: Option<&Path>,
    password: Option<&str>,
    key: Option<&Path>,
    cert: Option<&Path>,
    token: Option<&KraToken>,
) -> Result<(AgentKey, Vec<u8>)> {
    if let Some(t) = token {
        if kra.is_some() || key.is_some() {
            bail!("--kra-pkcs11 goes without --kra and --kra-key");
        }
        return token_agent(t, cert);
    }
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
            Ok((Box::new(key), cert))
        }
        (None, Some(k), Some(c)) => {
            let kb = Zeroizing::new(
                std::fs::read(k).with_context(|| format!("reading {}", k.display()))?,
            );
            let key = load_private_key(&kb, password.map(|p| p.as_bytes()))?;
            let cb = std::fs::read(c).with_context(|| format!("reading {}", c.display()))?;
            Ok((Box::new(key), decode_input(&cb)?.der))
        }
        _ => bail!(
            "give the agent's credentials: --kra KRA.pfx, --kra-key KEY.pem --kra-cert CERT.pem, \
             or --kra-pkcs11 module=PATH,token=LABEL,label=KEYLABEL[,pin-file=FILE]"
        ),
    }
}
