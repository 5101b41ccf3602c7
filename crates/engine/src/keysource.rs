//! Where the CA's private keys live: a key file in the home (the embedded
//! default) or a PKCS#11 token (`[pkcs11]`, `ca.key_label`/`ca.key_id`).
//! [`CaKeySource::load`] is the one way to the CA signing key, for the
//! engine and for the audit head sealer alike.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lockbox_crypto::pkcs11::{Token, TokenConfig};
use lockbox_crypto::{KeyProvider, PrivateKey};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::certs::load_home_key;
use crate::config::{Config, Home, Pkcs11Section, PKCS11_PIN_ENV};
use crate::{EngineError, EngineResult};

/// Reads the token's user PIN: `pin_file` (absolute or relative to the
/// home; it must not be readable by group or others), else
/// `LOCKBOX_PKCS11_PIN`. The PIN is never put in a message.
pub(crate) fn read_pin(home: &Home, section: &Pkcs11Section) -> EngineResult<Zeroizing<String>> {
    if let Some(f) = &section.pin_file {
        let path = if Path::new(f).is_absolute() {
            PathBuf::from(f)
        } else {
            home.path(f)
        };
        return read_pin_file(&path);
    }
    match std::env::var(PKCS11_PIN_ENV) {
        Ok(pin) if !pin.is_empty() => Ok(Zeroizing::new(pin)),
        _ => Err(EngineError::Config(format!(
            "the CA keys are on PKCS#11 token '{}': set pkcs11.pin_file or {PKCS11_PIN_ENV}",
            section.token_label
        ))),
    }
}

/// Reads a PIN file (trailing newline removed), refusing one that group or
/// others may read.
pub fn read_pin_file(path: &Path) -> EngineResult<Zeroizing<String>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(EngineError::io(format!(
            "reading PIN file {}",
            path.display()
        )))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(EngineError::Config(format!(
                "PIN file {} may be read by group or others: chmod 600 it",
                path.display()
            )));
        }
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(EngineError::io(format!(
        "reading PIN file {}",
        path.display()
    )))?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| EngineError::Config(format!("PIN file {} is not text", path.display())))?;
    let pin = Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_string());
    if pin.is_empty() {
        return Err(EngineError::Config(format!(
            "PIN file {} is empty",
            path.display()
        )));
    }
    Ok(pin)
}

/// A configuration that did not come from the home (a backup's) may name
/// a module only where nobody but its owner could have put it: an absolute
/// path outside `untrusted_dir`, neither the file nor its directory
/// writable by group or others; its PIN file likewise outside. Loading a
/// module runs its code, and it is given the PIN.
pub(crate) fn check_foreign_token_config(
    section: &Pkcs11Section,
    untrusted_dir: &Path,
) -> EngineResult<()> {
    let refuse = |why: String| {
        Err(EngineError::Config(format!(
            "the backup's [pkcs11] configuration is not used: {why}"
        )))
    };
    let module = Path::new(&section.module);
    let untrusted = std::fs::canonicalize(untrusted_dir).unwrap_or(untrusted_dir.to_path_buf());
    let inside = |p: &Path| {
        std::fs::canonicalize(p)
            .map(|c| c.starts_with(&untrusted))
            .unwrap_or(true)
    };
    if !module.is_absolute() || inside(module) {
        return refuse(format!(
            "module {} is not an absolute path outside the backup",
            module.display()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [Some(module), module.parent()].into_iter().flatten() {
            match std::fs::metadata(p) {
                Ok(m) if m.permissions().mode() & 0o022 == 0 => {}
                _ => return refuse(format!("{} may be changed by group or others", p.display())),
            }
        }
    }
    if let Some(f) = &section.pin_file {
        if !Path::new(f).is_absolute() || inside(Path::new(f)) {
            return refuse(format!("PIN file {f} is inside the backup"));
        }
    }
    Ok(())
}

/// Loads the `[pkcs11]` module of a configuration (the token is looked for
/// on first use, so a CA whose token is away still opens).
pub(crate) fn open_token(home: &Home, config: &Config) -> EngineResult<Option<Arc<Token>>> {
    let Some(section) = &config.pkcs11 else {
        return Ok(None);
    };
    let pin = read_pin(home, section)?;
    Ok(Some(Token::open(TokenConfig {
        module: PathBuf::from(&section.module),
        token_label: section.token_label.clone(),
        pin,
        max_sessions: section.max_sessions,
        token_serial: section.token_serial.clone(),
    })?))
}

/// Where the CA signing key is, and how to load it.
pub(crate) enum CaKeySource {
    /// A PKCS#8 file in the home, perhaps encrypted under the CA passphrase.
    File {
        /// Loads the key bytes.
        keys: Arc<dyn KeyProvider>,
        /// The home.
        home: Home,
        /// The key file, relative to the home.
        key_file: String,
        /// The passphrase file, if configured.
        passphrase_file: Option<String>,
    },
    /// A key pair on a token, named by `CKA_ID`.
    Token {
        /// The token.
        token: Arc<Token>,
        /// `CKA_ID`.
        id: Vec<u8>,
        /// `CKA_LABEL`.
        label: String,
    },
}

impl std::fmt::Debug for CaKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaKeySource::File { key_file, .. } => write!(f, "CaKeySource::File({key_file})"),
            CaKeySource::Token { token, label, .. } => {
                write!(f, "CaKeySource::Token({token:?}, {label})")
            }
        }
    }
}

/// Where a CA key lives, as `lockbox key status` reports it.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "store", rename_all = "lowercase")]
pub enum KeyLocation {
    /// A key file in the home.
    File {
        /// The file, relative to the home.
        path: String,
        /// Whether it is encrypted under the CA passphrase.
        encrypted: bool,
    },
    /// A key on a PKCS#11 token.
    Token {
        /// The module.
        module: String,
        /// The token label.
        token_label: String,
        /// The key's `CKA_LABEL`.
        key_label: String,
        /// The key's `CKA_ID` (hex).
        key_id: String,
    },
    /// An exchange key in the database, sealed to the home's wrapping key.
    Database {
        /// The wrapping key's file, relative to the home.
        sealed_to: String,
    },
}

impl CaKeySource {
    /// The source the configuration names (`token`: the opened `[pkcs11]`
    /// module, when there is one).
    pub(crate) fn for_config(
        home: &Home,
        config: &Config,
        keys: Arc<dyn KeyProvider>,
        token: Option<&Arc<Token>>,
    ) -> EngineResult<CaKeySource> {
        match (&config.ca.key_label, token) {
            (Some(label), Some(token)) => {
                let id = hex::decode(config.ca.key_id.as_deref().unwrap_or_default())
                    .map_err(|_| EngineError::Config("ca.key_id is not hex".into()))?;
                if id.is_empty() {
                    return Err(EngineError::Config(
                        "ca.key_label is set but ca.key_id is not: the CA key on the token is named by its CKA_ID".into(),
                    ));
                }
                Ok(CaKeySource::Token {
                    token: token.clone(),
                    id,
                    label: label.clone(),
                })
            }
            (Some(_), None) => Err(EngineError::Config(
                "ca.key_label names a key on a token, but the configuration has no [pkcs11] section".into(),
            )),
            (None, _) => Ok(CaKeySource::File {
                keys,
                home: home.clone(),
                key_file: config.ca.key_file.clone(),
                passphrase_file: config.ca.passphrase_file.clone(),
            }),
        }
    }

    /// The source of an earlier CA key (`[[ca.history]]`).
    pub(crate) fn for_generation(
        home: &Home,
        config: &Config,
        keys: Arc<dyn KeyProvider>,
        token: Option<&Arc<Token>>,
        g: &crate::config::CaGeneration,
    ) -> EngineResult<CaKeySource> {
        let mut c = config.clone();
        c.ca.key_file = g.key_file.clone();
        c.ca.key_label = g.key_label.clone();
        c.ca.key_id = g.key_id.clone();
        CaKeySource::for_config(home, &c, keys, token)
    }

    /// Loads the key (from the file, or finds it on the token).
    pub(crate) fn load(&self) -> EngineResult<Arc<dyn PrivateKey>> {
        match self {
            CaKeySource::File {
                keys,
                home,
                key_file,
                passphrase_file,
            } => load_home_key(&**keys, home, key_file, passphrase_file.as_deref()),
            CaKeySource::Token { token, id, label } => Ok(Arc::new(token.key_by_id(id, label)?)),
        }
    }

    /// Where the key is.
    pub(crate) fn location(&self, config: &Config) -> KeyLocation {
        match self {
            CaKeySource::File { key_file, .. } => KeyLocation::File {
                path: key_file.clone(),
                encrypted: config.ca.key_encrypted,
            },
            CaKeySource::Token { token, id, label } => KeyLocation::Token {
                module: token.module().display().to_string(),
                token_label: token.label().to_string(),
                key_label: label.clone(),
                key_id: hex::encode(id),
            },
        }
    }

    /// Whether the key is on a token.
    pub(crate) fn on_token(&self) -> bool {
        matches!(self, CaKeySource::Token { .. })
    }
}

/// One private key of the CA, as `lockbox key status` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct KeyReport {
    /// What the key is for: `ca`, or `exchange` (with `serial`).
    pub role: String,
    /// The serial of the exchange certificate (exchange keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Where the key is.
    pub location: KeyLocation,
    /// Whether the key could be reached now (file read, token found).
    pub available: bool,
    /// Whether its public key is the one of its certificate (None: it could
    /// not be reached, or the CA has no certificate yet).
    pub matches_certificate: Option<bool>,
    /// How a key on a token is protected there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protection: Option<lockbox_crypto::pkcs11::KeyProtection>,
    /// Why it could not be reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where each CA key lives and whether it matches its certificate (the CA
/// administrator; nothing secret is read out).
pub(crate) async fn key_status(
    core: &crate::core::Core,
    actor: &crate::actor::Actor,
) -> EngineResult<Vec<KeyReport>> {
    crate::authz::authorize(core, actor, crate::actor::Op::Configure).await?;
    let protection = |key: &Arc<dyn PrivateKey>| {
        let (Some(id), Some(token)) = (key.token_id(), core.token.as_ref()) else {
            return None;
        };
        token.key_by_id(&id, "").ok()?.protection().ok()
    };
    let report = |role: &str,
                  serial: Option<String>,
                  location: KeyLocation,
                  key: EngineResult<Arc<dyn PrivateKey>>,
                  expected: Option<&spki::SubjectPublicKeyInfoOwned>| {
        match key {
            Ok(key) => KeyReport {
                role: role.into(),
                serial,
                location,
                available: true,
                matches_certificate: expected.map(|spki| spki == key.public_key_info()),
                protection: protection(&key),
                error: None,
            },
            Err(e) => KeyReport {
                role: role.into(),
                serial,
                location,
                available: false,
                matches_certificate: None,
                protection: None,
                error: Some(e.to_string()),
            },
        }
    };
    let mut out = vec![report(
        "ca",
        None,
        core.ca_key.location(&core.config),
        core.ca_key.load(),
        core.cert
            .as_ref()
            .map(|(_, c)| c.tbs_certificate().subject_public_key_info()),
    )];
    // The exchange certificates in force whose key the CA holds (a key that
    // was never restored is replaced, not missing); where each key is comes
    // from what the database stores for it.
    for (der, cert) in crate::archival::exchange::usable_exchange_certificates(core)
        .await?
        .iter()
    {
        use crate::archival::exchange_keys::{
            legacy_file, token_reference, TOKEN_LABEL, WRAP_KEY_FILE,
        };
        let serial = crate::certs::cert_fields(der)?.serial;
        let stored = core.store.exchange_key(&serial).await?;
        let location = match (stored.as_deref().map(token_reference), core.token.as_ref()) {
            (Some(Some(id)), Some(token)) => KeyLocation::Token {
                module: token.module().display().to_string(),
                token_label: token.label().to_string(),
                key_label: TOKEN_LABEL.into(),
                key_id: hex::encode(id),
            },
            (Some(_), _) => KeyLocation::Database {
                sealed_to: WRAP_KEY_FILE.into(),
            },
            (None, _) => KeyLocation::File {
                path: legacy_file(&serial),
                encrypted: core.config.ca.key_encrypted,
            },
        };
        let key = crate::archival::exchange_keys::exchange_key(core, cert).await;
        out.push(report(
            "exchange",
            Some(serial),
            location,
            key,
            // Opening an exchange key checks it against its certificate.
            Some(cert.tbs_certificate().subject_public_key_info()),
        ));
    }
    Ok(out)
}
