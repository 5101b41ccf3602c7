//! Creating a CA, opening one, installing a subordinate CA's certificate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use der::Encode;
use lockbox_codec::hexfmt::to_hex;
use lockbox_codec::names::dn_string;
use lockbox_codec::pem::{decode_all, decode_input, encode_pem};
use lockbox_crypto::digest::sha256;
use lockbox_crypto::random::{random_bytes, serial_number};
use lockbox_crypto::{default_provider, KeyHandle, KeySpec, PrivateKey};
use lockbox_store::Change;
use serde::Serialize;
use x509_cert::certificate::Certificate;
use zeroize::Zeroizing;

use crate::category::{AuditAction, AuditCategory};
use crate::certbuild::{
    ca_extensions, decode_certificate, sign_certificate, sign_request, CertSpec,
};
use crate::certs::{is_ca_cert, key_pem, subject_name, verify_issued_by};
use crate::config::{
    CaSection, CaState, Config, DatabaseSection, Home, IssuanceSection, ServerSection,
};
use crate::core::{Core, CERT_FILE, CHAIN_FILE, DB_FILE, KEY_FILE};
use crate::period::{now, Period};
use crate::template::{builtins, DEFAULT_CA_TEMPLATES};
use crate::{codes, EngineError, EngineResult};

/// Options of `lockbox init`.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Home directory to create.
    pub home: PathBuf,
    /// CA common name.
    pub name: String,
    /// Full subject DN (default `CN=<name>`).
    pub subject: Option<String>,
    /// Key algorithm.
    pub key: KeySpec,
    /// CA certificate validity.
    pub validity: Period,
    /// Create a subordinate CA request instead of a self-signed root.
    pub subordinate: bool,
    /// Passphrase to protect the key with (None: 0600 file and a warning).
    pub passphrase: Option<Zeroizing<Vec<u8>>>,
    /// Passphrase file to record in the configuration.
    pub passphrase_file: Option<String>,
    /// CDP URLs for issued certificates.
    pub cdp_urls: Vec<String>,
    /// AIA caIssuers URLs for issued certificates.
    pub aia_urls: Vec<String>,
    /// `database.url`: `sqlite:FILE` or `postgres://USER@HOST:PORT/DB`
    /// (an empty database). None: `sqlite:ca.db` in the home.
    pub database: Option<String>,
}

/// What `init` produced.
#[derive(Clone, Debug, Serialize)]
pub struct InitOutcome {
    /// The home directory.
    pub home: PathBuf,
    /// CA subject.
    pub subject: String,
    /// Self-signed CA certificate (root).
    pub ca_cert_pem: Option<String>,
    /// Certificate request for the parent CA (subordinate).
    pub csr_pem: Option<String>,
    /// Administrator API token (shown once; only its hash is stored).
    pub admin_token: String,
    /// Whether the CA key is passphrase-protected.
    pub key_protected: bool,
}

/// The SQLite file the configuration names (relative paths are inside the
/// home); an error for a CA on PostgreSQL.
pub(crate) fn database_path(home: &Home, config: &Config) -> EngineResult<PathBuf> {
    match crate::database::location(home, config)? {
        crate::database::Location::Sqlite(path) => Ok(path),
        crate::database::Location::Postgres(_) => Err(EngineError::Config(
            "the CA database is PostgreSQL, not a file in the home".into(),
        )),
    }
}

/// Group- or world-accessible entries of a CA home (see
/// [`Home::permission_findings`]), the configured database and its `-wal` and
/// `-shm` files included; `lockbox serve` warns about each at start.
pub fn permission_findings(home: &Home, config: &Config) -> Vec<String> {
    home.permission_findings(database_path(home, config).ok().as_deref())
}

pub(crate) use crate::database::open_store;

/// Creates a new CA in an empty (or new) home directory.
pub(crate) async fn init(opts: InitOptions) -> EngineResult<InitOutcome> {
    let home = Home::new(&opts.home);
    if home.exists() {
        return Err(EngineError::Conflict(format!(
            "a CA already exists in {} (remove it or choose another --home)",
            opts.home.display()
        )));
    }
    if opts.name.trim().is_empty() {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "the CA name must not be empty",
        ));
    }
    let subject_dn = opts
        .subject
        .clone()
        .unwrap_or_else(|| format!("CN={}", opts.name.replace(',', "\\,")));
    let subject = subject_name(&subject_dn)?;
    // The home is private to the CA's owner (0700), whether created here or given empty.
    crate::config::create_private_dir(home.root())?;
    crate::config::make_dir_private(home.root())?;

    // The database is checked (reachable, empty) before any key exists.
    let database_url = crate::database::new_database_url(opts.database.as_deref(), DB_FILE).await?;
    let keys = default_provider();
    let key = keys.generate(opts.key, "ca")?;
    let pem = key_pem(&*key, opts.passphrase.as_deref().map(|p| p.as_slice()))?;
    home.write_atomic(KEY_FILE, pem.as_bytes(), true)?;

    let (ca_cert_pem, csr_pem, state) = ca_certificate_or_request(&home, &*key, &subject, &opts)?;

    let token_bytes = random_bytes(32)?;
    let admin_token = format!("lbx_{}", to_hex(&token_bytes));
    let mut config = initial_config(&opts, &subject_dn, state, &admin_token);
    config.database.url = database_url;
    // Made now, so every copy of the home (one per node) has the same one.
    crate::archival::exchange_keys::ensure_wrap_key(&home, &config, &*keys)?;
    let init_key: Arc<dyn KeyHandle> = key;
    let store = open_store(
        &home,
        &config,
        keys,
        Arc::new(Mutex::new(Some(init_key))),
        Default::default(),
    )
    .await?;
    let changes = initial_changes()?;
    let audit = vec![lockbox_store::AuditEntry {
        at: now(),
        actor: "lockbox init".into(),
        category: AuditCategory::Config.as_str().into(),
        action: AuditAction::CaCreated.as_str().into(),
        target: subject_dn.clone(),
        outcome: "success".into(),
        details:
            serde_json::json!({ "subordinate": opts.subordinate, "key": opts.key.to_string() })
                .to_string(),
    }];
    store.apply(&changes, &audit).await?;
    // The configuration is written last: its presence marks a complete CA.
    home.save_config(&config)?;
    Ok(InitOutcome {
        home: opts.home,
        subject: subject_dn,
        ca_cert_pem,
        csr_pem,
        admin_token,
        key_protected: opts.passphrase.is_some(),
    })
}

/// A root signs its own certificate (written to the home); a subordinate
/// makes the request for its parent. Returns the certificate PEM, the request
/// PEM and the state the CA starts in.
fn ca_certificate_or_request(
    home: &Home,
    key: &dyn PrivateKey,
    subject: &x509_cert::name::Name,
    opts: &InitOptions,
) -> EngineResult<(Option<String>, Option<String>, CaState)> {
    if opts.subordinate {
        let csr = sign_request(key, subject.clone(), vec![])?;
        return Ok((
            None,
            Some(encode_pem("CERTIFICATE REQUEST", &csr)),
            CaState::AwaitingCertificate,
        ));
    }
    let nb = now() - 600;
    let na = opts.validity.add_to(nb)?;
    let cert = sign_certificate(
        key,
        CertSpec {
            issuer: subject.clone(),
            subject: subject.clone(),
            spki: key.public_key_info().clone(),
            serial: serial_number(16)?,
            not_before: nb,
            not_after: na,
            extensions: ca_extensions(key.public_key_info(), true)?,
        },
    )?;
    let der = cert
        .to_der()
        .map_err(|e| EngineError::Config(e.to_string()))?;
    let pem = encode_pem("CERTIFICATE", &der);
    home.write_atomic(CERT_FILE, pem.as_bytes(), false)?;
    Ok((Some(pem), None, CaState::Active))
}

/// The configuration of a new CA.
fn initial_config(
    opts: &InitOptions,
    subject_dn: &str,
    state: CaState,
    admin_token: &str,
) -> Config {
    Config {
        ca: CaSection {
            name: opts.name.clone(),
            subject: subject_dn.to_string(),
            key: opts.key.to_string(),
            validity: opts.validity,
            subordinate: opts.subordinate,
            state,
            key_file: KEY_FILE.into(),
            key_encrypted: opts.passphrase.is_some(),
            passphrase_file: opts.passphrase_file.clone(),
            cert_file: CERT_FILE.into(),
            chain_file: CHAIN_FILE.into(),
        },
        issuance: IssuanceSection {
            serial_bytes: 16,
            backdate_seconds: 600,
            cdp_urls: opts.cdp_urls.clone(),
            aia_urls: opts.aia_urls.clone(),
            crl_validity: Period::Days(7),
        },
        server: ServerSection {
            limits: Default::default(),
            listen: "127.0.0.1:8443".into(),
            admin_token_sha256: to_hex(&sha256(admin_token.as_bytes())),
            allow_anonymous_enrollment: false,
        },
        database: DatabaseSection {
            url: format!("sqlite:{DB_FILE}"),
        },
        archival: Default::default(),
    }
}

/// The rows a new CA starts with: the built-in templates, the default CA templates.
fn initial_changes() -> EngineResult<Vec<Change>> {
    let mut changes = Vec::new();
    for t in builtins() {
        let json = serde_json::to_string(&t).map_err(|e| EngineError::Config(e.to_string()))?;
        changes.push(Change::PutTemplate {
            name: t.name.clone(),
            json,
        });
    }
    for name in DEFAULT_CA_TEMPLATES {
        changes.push(Change::SetCaTemplate {
            name: name.to_string(),
            enabled: true,
        });
    }
    Ok(changes)
}

/// Opens an existing CA.
pub(crate) async fn open(root: &Path) -> EngineResult<Core> {
    let home = Home::new(root);
    let config = home.load_config()?;
    open_with(home, config).await
}

/// Opens the CA of `home` with `config` (which need not be the saved one:
/// `db migrate` opens the target database before it switches the home).
pub(crate) async fn open_with(home: Home, config: Config) -> EngineResult<Core> {
    let keys = default_provider();
    let key = Arc::new(Mutex::new(None));
    // Raised at first: records an earlier process could not seal are
    // looked for once.
    let unsealed = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let store = open_store(&home, &config, keys.clone(), key.clone(), unsealed.clone()).await?;
    let directory: Arc<dyn crate::core::directory::Directory> =
        Arc::new(crate::core::directory::StoreDirectory(store.clone()));
    let (cert, chain) = if config.ca.state == CaState::Active {
        let pem = home.read(&config.ca.cert_file)?;
        let der = decode_input(&pem)
            .map_err(|e| EngineError::Config(format!("CA certificate: {e}")))?
            .der;
        let cert = decode_certificate(&der)?;
        let chain = match std::fs::read_to_string(home.path(&config.ca.chain_file)) {
            Ok(text) => decode_all(&text, "CERTIFICATE")
                .map_err(|e| EngineError::Config(format!("CA chain: {e}")))?,
            Err(_) => vec![],
        };
        (Some((der, cert)), chain)
    } else {
        (None, vec![])
    };
    Ok(Core {
        keys,
        crls: Arc::new(crate::crl_fetch::HttpCrlFetcher::default()),
        home,
        config,
        store,
        key,
        cert,
        chain,
        archival: crate::core::state::ArchivalState::new()?,
        cache: Default::default(),
        auth: Default::default(),
        head_signing: Default::default(),
        unsealed,
        directory,
        import_batch: Mutex::new(None),
    })
}

/// Installs the parent-signed certificate of a subordinate CA.
///
/// Checks: it is a CA certificate, its public key is this CA's key, and it
/// chains through `chain` (issuer first) to a core-signed root.
pub(crate) async fn install_certificate(
    core: &mut Core,
    cert_bytes: &[u8],
    chain_bytes: Option<&[u8]>,
) -> EngineResult<String> {
    let (leaf_der, chain) = read_installed_certificates(cert_bytes, chain_bytes)?;
    let leaf = decode_certificate(&leaf_der)?;
    check_is_our_ca_certificate(core, &leaf)?;
    let ordered = order_chain(&leaf, &chain)?;
    let chain_pem: String = ordered
        .iter()
        .map(|i| encode_pem("CERTIFICATE", &chain[*i]))
        .collect();
    core.home.write_atomic(
        &core.config.ca.cert_file,
        encode_pem("CERTIFICATE", &leaf_der).as_bytes(),
        false,
    )?;
    core.home
        .write_atomic(&core.config.ca.chain_file, chain_pem.as_bytes(), false)?;
    core.config.ca.state = CaState::Active;
    core.home.save_config(&core.config)?;
    core.chain = ordered.iter().map(|i| chain[*i].clone()).collect();
    core.cert = Some((leaf_der, leaf.clone()));
    Ok(dn_string(leaf.tbs_certificate().subject()))
}

/// The certificate to install (the first of a PEM bundle, or one DER) and
/// the chain: the rest of the bundle, then the certificates of `chain_bytes`.
fn read_installed_certificates(
    cert_bytes: &[u8],
    chain_bytes: Option<&[u8]>,
) -> EngineResult<(Vec<u8>, Vec<Vec<u8>>)> {
    let cert_text = String::from_utf8_lossy(cert_bytes);
    let mut certs: Vec<Vec<u8>> = decode_all(&cert_text, "CERTIFICATE").unwrap_or_default();
    if certs.is_empty() {
        certs.push(decode_input(cert_bytes)?.der);
    }
    let leaf_der = certs.remove(0);
    let mut chain = certs;
    if let Some(c) = chain_bytes {
        let text = String::from_utf8_lossy(c);
        let parents = decode_all(&text, "CERTIFICATE")?;
        if parents.is_empty() {
            chain.push(decode_input(c)?.der);
        } else {
            chain.extend(parents);
        }
    }
    Ok((leaf_der, chain))
}

/// The certificate is a CA certificate and carries this CA's public key.
fn check_is_our_ca_certificate(core: &Core, leaf: &Certificate) -> EngineResult<()> {
    if !is_ca_cert(leaf) {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "the certificate is not a CA certificate (basicConstraints cA is not set)",
        ));
    }
    let key = core.signing_key_unchecked()?;
    if leaf.tbs_certificate().subject_public_key_info() != key.public_key_info() {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "the certificate's public key does not match this CA's key",
        ));
    }
    Ok(())
}

/// Orders the chain from the issuer upward to a self-signed root, verifying
/// every link; returns the indexes into `chain` in that order.
fn order_chain(leaf: &Certificate, chain: &[Vec<u8>]) -> EngineResult<Vec<usize>> {
    let parents: Vec<Certificate> = chain
        .iter()
        .map(|d| decode_certificate(d))
        .collect::<EngineResult<_>>()?;
    let mut ordered: Vec<usize> = Vec::new();
    let mut current = leaf.clone();
    loop {
        if current.tbs_certificate().issuer() == current.tbs_certificate().subject() {
            verify_issued_by(&current, &current)?;
            break;
        }
        let idx = parents
            .iter()
            .position(|p| p.tbs_certificate().subject() == current.tbs_certificate().issuer())
            .ok_or_else(|| {
                EngineError::bad_input(
                    codes::E_INVALIDARG,
                    format!(
                        "issuer '{}' of '{}' is not in the chain (give it with --chain)",
                        current.tbs_certificate().issuer(),
                        current.tbs_certificate().subject()
                    ),
                )
            })?;
        if ordered.contains(&idx) || ordered.len() > 10 {
            return Err(EngineError::bad_input(
                codes::E_INVALIDARG,
                "the chain loops",
            ));
        }
        verify_issued_by(&current, &parents[idx])?;
        if !is_ca_cert(&parents[idx]) {
            return Err(EngineError::bad_input(
                codes::E_INVALIDARG,
                "a chain certificate is not a CA certificate",
            ));
        }
        ordered.push(idx);
        current = parents[idx].clone();
    }
    Ok(ordered)
}
