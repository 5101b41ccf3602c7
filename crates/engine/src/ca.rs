//! The certification authority: set-up, enrollment policy, issuance,
//! revocation, CRLs and queries. Every protocol front end calls these methods.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use der::{Decode, Encode};
use lockbox_codec::hexfmt::{normalize_hex, to_hex};
use lockbox_codec::names::{common_name, dn_string, email, parse_alt_names, AltNames};
use lockbox_codec::oids;
use lockbox_codec::pem::{decode_all, decode_input, encode_pem};
use lockbox_crypto::digest::{sha1, sha256};
use lockbox_crypto::keyinfo::{key_identifier, public_key_facts, KeyKind};
use lockbox_crypto::pkcs8enc::{decrypt_pkcs8, encrypt_pkcs8};
use lockbox_crypto::random::{random_bytes, serial_number};
use lockbox_crypto::verify::verify_signature;
use lockbox_crypto::{KeyHandle, KeySpec, SoftwareKey};
use lockbox_store::{
    CertFields, CrlRecord, Disposition, NewRequest, RequestRecord, SqliteStore, Store, StoreError,
};
use serde::Serialize;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::name::Name;
use zeroize::Zeroizing;

use crate::authz::{Actor, Op};
use crate::certbuild::{
    aki, ca_extensions, decode_certificate, distribution_extensions, sign_certificate,
    sign_request, ski, template_extensions, CertSpec,
};
use crate::config::{
    passphrase, CaSection, CaState, Config, DatabaseSection, Home, IssuanceSection, ServerSection,
};
use crate::crl::{sign_crl, CrlSpec};
use crate::error::{codes, EngineError, EngineResult, ErrorKind};
use crate::inbound::{decode_and_verify, Inbound};
use crate::period::{now, unix_of, Period};
use crate::template::{builtins, validate_name, Template, DEFAULT_CA_TEMPLATES, TEMPLATE_ARC};
use crate::view::parse_restrictions;
use lockbox_store::Change;

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

/// Options of a submission.
#[derive(Clone, Debug, Default)]
pub struct SubmitOptions {
    /// Template named by the caller (overrides the request).
    pub template: Option<String>,
    /// Requester name recorded in the row.
    pub requester: String,
    /// Extra request attributes (`CertificateTemplate:NAME`, ...).
    pub attributes: Vec<(String, String)>,
    /// The authenticated caller; `None` means the local administrator (CLI on the CA home).
    pub actor: Option<Actor>,
    /// Submit for this principal (name, UPN or `DOMAIN\\name`): it becomes the
    /// requester and the names come from its record. Only the local
    /// administrator and holders of the EnrollmentAgent role may.
    pub on_behalf_of: Option<String>,
}

/// The result of a submission or an officer action.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Outcome {
    /// Request ID.
    pub request_id: i64,
    /// `issued`, `pending`, `denied` or `revoked`.
    pub disposition: Disposition,
    /// Status code (0 on success).
    pub status_code: u32,
    /// Disposition message.
    pub message: String,
    /// Template.
    pub template: Option<String>,
    /// Serial number of the issued certificate.
    pub serial: Option<String>,
    /// Issued certificate (PEM).
    pub certificate_pem: Option<String>,
    /// Whether a private key was archived with this request.
    #[serde(default)]
    pub archived: bool,
    /// The client's encrypted-key hash (hex), echoed in CMC responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_key_hash: Option<String>,
    /// Body part id of the PKCS#10 inside a CMC request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_part_id: Option<u32>,
    /// CMC Full PKI Response (base64 DER), for CMC requests over the JSON API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmc_response: Option<String>,
}

/// A published CRL.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct CrlInfo {
    /// CRL number.
    pub number: i64,
    /// thisUpdate.
    pub this_update: i64,
    /// nextUpdate.
    pub next_update: i64,
    /// Revoked entries listed.
    pub entries: usize,
    /// DER (not serialised).
    #[serde(skip, default)]
    pub der: Vec<u8>,
}

/// The CA.
pub struct Ca {
    pub(crate) home: Home,
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn Store>,
    key: Arc<Mutex<Option<Arc<dyn KeyHandle>>>>,
    pub(crate) cert: Option<(Vec<u8>, Certificate)>,
    chain: Vec<Vec<u8>>,
    pub(crate) archival: crate::archival::ArchivalState,
    pub(crate) auth: crate::principals::AuthState,
    /// Held while a chain head is signed, so concurrent writers sign one head
    /// between them instead of one each.
    pub(crate) head_signing: tokio::sync::Mutex<()>,
    pub(crate) directory: Arc<dyn crate::principals::Directory>,
    pub(crate) import_batch: Mutex<Option<crate::import::ImportBatch>>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("home", &self.home.root())
            .field("name", &self.config.ca.name)
            .finish()
    }
}

const KEY_FILE: &str = "keys/ca.key";
const CERT_FILE: &str = "certs/ca.pem";
const CHAIN_FILE: &str = "certs/chain.pem";
const DB_FILE: &str = "ca.db";

pub(crate) fn key_pem(key: &SoftwareKey, pass: Option<&[u8]>) -> EngineResult<Zeroizing<String>> {
    Ok(Zeroizing::new(match pass {
        Some(p) => encode_pem("ENCRYPTED PRIVATE KEY", &encrypt_pkcs8(key.pkcs8_der(), p)?),
        None => encode_pem("PRIVATE KEY", key.pkcs8_der()),
    }))
}

/// Loads a PEM or DER PKCS#8 private key, decrypting with `pass` when it is encrypted.
pub fn load_private_key(bytes: &[u8], pass: Option<&[u8]>) -> EngineResult<SoftwareKey> {
    let d = decode_input(bytes).map_err(|e| EngineError::Config(format!("key file: {e}")))?;
    if d.label.as_deref() == Some("ENCRYPTED PRIVATE KEY") {
        let pass = pass.ok_or_else(|| {
            EngineError::Config(
                "the CA key is passphrase-protected: set LOCKBOX_CA_PASSPHRASE or LOCKBOX_CA_PASSPHRASE_FILE".into(),
            )
        })?;
        let plain = decrypt_pkcs8(&d.der, pass)?;
        return Ok(SoftwareKey::from_pkcs8_der(&plain)?);
    }
    let der = Zeroizing::new(d.der);
    Ok(SoftwareKey::from_pkcs8_der(&der)?)
}

fn subject_name(dn: &str) -> EngineResult<Name> {
    lockbox_codec::names::parse_dn(dn)
        .map_err(|e| EngineError::bad_input(codes::E_INVALIDARG, format!("invalid DN '{dn}': {e}")))
}

/// The searchable columns of a certificate.
pub fn cert_fields(der: &[u8]) -> EngineResult<CertFields> {
    let cert = decode_certificate(der)?;
    let tbs = cert.tbs_certificate();
    let exts = tbs.extensions().map(|e| e.as_slice()).unwrap_or(&[]);
    let alt = match exts.iter().find(|e| e.extn_id == oids::CE_SUBJECT_ALT_NAME) {
        Some(e) => parse_alt_names(e.extn_value.as_bytes())?,
        None => AltNames::default(),
    };
    let key_id = exts
        .iter()
        .find(|e| e.extn_id == oids::CE_SUBJECT_KEY_IDENTIFIER)
        .and_then(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).ok())
        .map(|s| to_hex(s.0.as_bytes()))
        .unwrap_or_else(|| to_hex(&key_identifier(tbs.subject_public_key_info())));
    let facts = public_key_facts(tbs.subject_public_key_info())?;
    Ok(CertFields {
        cert_der: der.to_vec(),
        serial: to_hex(tbs.serial_number().as_bytes()),
        subject: dn_string(tbs.subject()),
        common_name: common_name(tbs.subject()),
        upn: alt.upns.first().cloned(),
        email: email(tbs.subject(), &alt),
        key_id,
        thumbprint: to_hex(&sha1(der)),
        not_before: unix_of(&tbs.validity().not_before),
        not_after: unix_of(&tbs.validity().not_after),
        key_algorithm: facts.algorithm_name(),
        key_length: facts.bits as i64,
    })
}

/// Verifies that `cert` was signed by `issuer`.
pub fn verify_issued_by(cert: &Certificate, issuer: &Certificate) -> EngineResult<()> {
    if cert.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
        return Err(EngineError::bad_input(
            codes::NTE_BAD_SIGNATURE,
            format!(
                "certificate issuer '{}' is not '{}'",
                cert.tbs_certificate().issuer(),
                issuer.tbs_certificate().subject()
            ),
        ));
    }
    let tbs = cert
        .tbs_certificate()
        .to_der()
        .map_err(|e| EngineError::bad_input(codes::CRYPT_E_ASN1_BADTAG, e.to_string()))?;
    verify_signature(
        issuer.tbs_certificate().subject_public_key_info(),
        cert.signature_algorithm(),
        &tbs,
        cert.signature().raw_bytes(),
    )
    .map_err(|_| {
        EngineError::bad_input(
            codes::NTE_BAD_SIGNATURE,
            "certificate signature does not verify with its issuer's key",
        )
    })
}

fn is_ca_cert(cert: &Certificate) -> bool {
    cert.tbs_certificate()
        .extensions()
        .map(|e| e.as_slice())
        .unwrap_or(&[])
        .iter()
        .find(|e| e.extn_id == oids::CE_BASIC_CONSTRAINTS)
        .and_then(|e| {
            x509_cert::ext::pkix::BasicConstraints::from_der(e.extn_value.as_bytes()).ok()
        })
        .is_some_and(|b| b.ca)
}

/// The SQLite file the configuration names (relative paths are inside the home).
pub(crate) fn database_path(home: &Home, config: &Config) -> EngineResult<PathBuf> {
    let url = &config.database.url;
    let file = url.strip_prefix("sqlite:").ok_or_else(|| {
        EngineError::Config(format!("unsupported database URL '{url}' (sqlite:FILE)"))
    })?;
    let file = file.trim_start_matches("//");
    Ok(if Path::new(file).is_absolute() {
        PathBuf::from(file)
    } else {
        home.path(file)
    })
}

/// Group- or world-accessible entries of a CA home (see
/// [`Home::permission_findings`]), the configured database and its `-wal` and
/// `-shm` files included; `lockbox serve` warns about each at start.
pub fn permission_findings(home: &Home, config: &Config) -> Vec<String> {
    home.permission_findings(database_path(home, config).ok().as_deref())
}

/// Opens the database with a head sealer sharing `key` (the CA key slot), so
/// every transaction that appends audit records also signs the chain head.
async fn open_store(
    home: &Home,
    config: &Config,
    key: Arc<Mutex<Option<Arc<dyn KeyHandle>>>>,
) -> EngineResult<Arc<dyn Store>> {
    let path = database_path(home, config)?;
    let store = SqliteStore::open(&path, crate::audit::chain_hash).await?;
    store.set_head_sealer(Arc::new(crate::audit::HeadSeal {
        key,
        home: home.clone(),
        key_file: config.ca.key_file.clone(),
        passphrase_file: config.ca.passphrase_file.clone(),
        warned: Default::default(),
    }));
    Ok(Arc::new(store))
}

fn find_template<'a>(all: &'a [Template], name: &str) -> Option<&'a Template> {
    all.iter().find(|t| t.name.eq_ignore_ascii_case(name))
}

impl Ca {
    /// Creates a new CA in an empty (or new) home directory.
    pub async fn init(opts: InitOptions) -> EngineResult<InitOutcome> {
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

        let key = SoftwareKey::generate(opts.key)?;
        let pem = key_pem(&key, opts.passphrase.as_deref().map(|p| p.as_slice()))?;
        home.write_atomic(KEY_FILE, pem.as_bytes(), true)?;

        let (ca_cert_pem, csr_pem, state) = if opts.subordinate {
            let csr = sign_request(&key, subject.clone(), vec![])?;
            (
                None,
                Some(encode_pem("CERTIFICATE REQUEST", &csr)),
                CaState::AwaitingCertificate,
            )
        } else {
            let nb = now() - 600;
            let na = opts.validity.add_to(nb)?;
            let cert = sign_certificate(
                &key,
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
            (Some(pem), None, CaState::Active)
        };

        let token_bytes = random_bytes(32)?;
        let admin_token = format!("lbx_{}", to_hex(&token_bytes));
        let config = Config {
            ca: CaSection {
                name: opts.name.clone(),
                subject: subject_dn.clone(),
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
        };
        let init_key: Arc<dyn KeyHandle> = Arc::new(key);
        let store = open_store(&home, &config, Arc::new(Mutex::new(Some(init_key)))).await?;
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
        let audit = vec![lockbox_store::AuditEntry {
            at: now(),
            actor: "lockbox init".into(),
            category: "config".into(),
            action: "CA created".into(),
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

    /// Opens an existing CA.
    pub async fn open(root: &Path) -> EngineResult<Ca> {
        let home = Home::new(root);
        let config = home.load_config()?;
        let key = Arc::new(Mutex::new(None));
        let store = open_store(&home, &config, key.clone()).await?;
        let directory: Arc<dyn crate::principals::Directory> =
            Arc::new(crate::principals::StoreDirectory(store.clone()));
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
        Ok(Ca {
            home,
            config,
            store,
            key,
            cert,
            chain,
            archival: crate::archival::ArchivalState::new()?,
            auth: Default::default(),
            head_signing: Default::default(),
            directory,
            import_batch: Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The home directory.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The store (for front ends that need raw access in tests and benchmarks).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn ca_cert(&self) -> EngineResult<&(Vec<u8>, Certificate)> {
        self.cert.as_ref().ok_or_else(|| {
            EngineError::Config(
                "this subordinate CA has no certificate yet: submit certs/ca.req to the parent CA, then run 'lockbox ca install'".into(),
            )
        })
    }

    /// DER of the CA certificate.
    pub fn ca_certificate_der(&self) -> EngineResult<Vec<u8>> {
        Ok(self.ca_cert()?.0.clone())
    }

    /// The CA certificate followed by its parents up to the root (DER).
    pub fn chain_der(&self) -> EngineResult<Vec<Vec<u8>>> {
        let mut out = vec![self.ca_certificate_der()?];
        out.extend(self.chain.iter().cloned());
        Ok(out)
    }

    /// The signing key, loaded (and decrypted) on first use.
    pub fn signing_key(&self) -> EngineResult<Arc<dyn KeyHandle>> {
        let mut slot = self
            .key
            .lock()
            .map_err(|_| EngineError::Config("key lock poisoned".into()))?;
        if let Some(k) = slot.as_ref() {
            return Ok(k.clone());
        }
        let bytes = Zeroizing::new(self.home.read(&self.config.ca.key_file)?);
        let pass = passphrase(&self.home, self.config.ca.passphrase_file.as_deref())?;
        let key: Arc<dyn KeyHandle> = Arc::new(load_private_key(
            &bytes,
            pass.as_deref().map(|p| p.as_slice()),
        )?);
        if let Some((_, cert)) = &self.cert {
            if cert.tbs_certificate().subject_public_key_info() != key.public_key_info() {
                return Err(EngineError::Config(
                    "the CA key does not match the CA certificate".into(),
                ));
            }
        }
        *slot = Some(key.clone());
        Ok(key)
    }

    /// Checks an administrator token (constant-time comparison of SHA-256 digests).
    pub fn verify_admin_token(&self, token: &str) -> bool {
        let expected = match hex::decode(&self.config.server.admin_token_sha256) {
            Ok(e) => e,
            Err(_) => return false,
        };
        let got = sha256(token.as_bytes());
        aws_lc_rs::constant_time::verify_slices_are_equal(&got, &expected).is_ok()
    }

    /// Installs the parent-signed certificate of a subordinate CA.
    ///
    /// Checks: it is a CA certificate, its public key is this CA's key, and it
    /// chains through `chain` (issuer first) to a self-signed root.
    pub async fn install_certificate(
        &mut self,
        cert_bytes: &[u8],
        chain_bytes: Option<&[u8]>,
    ) -> EngineResult<String> {
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
        let leaf = decode_certificate(&leaf_der)?;
        if !is_ca_cert(&leaf) {
            return Err(EngineError::bad_input(
                codes::E_INVALIDARG,
                "the certificate is not a CA certificate (basicConstraints cA is not set)",
            ));
        }
        let key = self.signing_key_unchecked()?;
        if leaf.tbs_certificate().subject_public_key_info() != key.public_key_info() {
            return Err(EngineError::bad_input(
                codes::E_INVALIDARG,
                "the certificate's public key does not match this CA's key",
            ));
        }
        let parents: Vec<Certificate> = chain
            .iter()
            .map(|d| decode_certificate(d))
            .collect::<EngineResult<_>>()?;
        // Order the chain from the issuer upward and verify every link.
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
        let chain_pem: String = ordered
            .iter()
            .map(|i| encode_pem("CERTIFICATE", &chain[*i]))
            .collect();
        self.home.write_atomic(
            &self.config.ca.cert_file,
            encode_pem("CERTIFICATE", &leaf_der).as_bytes(),
            false,
        )?;
        self.home
            .write_atomic(&self.config.ca.chain_file, chain_pem.as_bytes(), false)?;
        self.config.ca.state = CaState::Active;
        self.home.save_config(&self.config)?;
        self.chain = ordered.iter().map(|i| chain[*i].clone()).collect();
        self.cert = Some((leaf_der, leaf.clone()));
        Ok(dn_string(leaf.tbs_certificate().subject()))
    }

    fn signing_key_unchecked(&self) -> EngineResult<Arc<dyn KeyHandle>> {
        let bytes = Zeroizing::new(self.home.read(&self.config.ca.key_file)?);
        let pass = passphrase(&self.home, self.config.ca.passphrase_file.as_deref())?;
        Ok(Arc::new(load_private_key(
            &bytes,
            pass.as_deref().map(|p| p.as_slice()),
        )?))
    }

    // ----- templates -------------------------------------------------------

    /// All templates.
    pub async fn templates(&self) -> EngineResult<Vec<Template>> {
        self.store
            .templates()
            .await?
            .into_iter()
            .map(|(name, json)| {
                let corrupt = |e: serde_json::Error| {
                    EngineError::Config(format!("template '{name}' is corrupt: {e}"))
                };
                let value: serde_json::Value = serde_json::from_str(&json).map_err(corrupt)?;
                let stored_before_flag = value.get("enrollee_supplies_subject").is_none();
                let mut t: Template = serde_json::from_value(value).map_err(corrupt)?;
                if stored_before_flag {
                    t.enrollee_supplies_subject = t.legacy_enrollee_supplies_subject();
                }
                Ok(t)
            })
            .collect()
    }

    /// One template by name.
    pub async fn template(&self, name: &str) -> EngineResult<Template> {
        let all = self.templates().await?;
        find_template(&all, name)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("no template named '{name}'")))
    }

    async fn save_template(&self, actor: &Actor, t: &Template, action: &str) -> EngineResult<()> {
        let json = serde_json::to_string(t).map_err(|e| EngineError::Config(e.to_string()))?;
        let audit = self
            .audited(self.audit_entry(actor, "config", action, &t.name, &json))
            .await;
        self.store
            .apply(
                &[Change::PutTemplate {
                    name: t.name.clone(),
                    json,
                }],
                &audit,
            )
            .await?;
        let _ = self.maybe_sign_head().await;
        Ok(())
    }

    /// Duplicates a template under a new name (editable, version 2+).
    pub async fn duplicate_template(
        &self,
        actor: &Actor,
        name: &str,
        new_name: &str,
    ) -> EngineResult<Template> {
        self.authorize(actor, Op::Configure).await?;
        validate_name(new_name)?;
        let all = self.templates().await?;
        let src = find_template(&all, name)
            .ok_or_else(|| EngineError::NotFound(format!("no template named '{name}'")))?;
        if find_template(&all, new_name).is_some() {
            return Err(EngineError::Conflict(format!(
                "a template named '{new_name}' already exists"
            )));
        }
        // Two random 24-bit arcs: unique enough, and within the OID size limit.
        let r = random_bytes(6)?;
        let oid = format!(
            "{TEMPLATE_ARC}.{}.{}",
            (u32::from_be_bytes([0, r[0], r[1], r[2]]) | 1),
            (u32::from_be_bytes([0, r[3], r[4], r[5]]) | 1)
        );
        let t = src.duplicate(new_name, oid)?;
        self.save_template(actor, &t, &format!("duplicate template {name}"))
            .await?;
        Ok(t)
    }

    /// Sets one property of an editable template.
    pub async fn set_template(
        &self,
        actor: &Actor,
        name: &str,
        key: &str,
        value: &str,
    ) -> EngineResult<Template> {
        let mut t = self.template(name).await?;
        self.authorize(actor, Op::EditTemplate(&t)).await?;
        if key.trim().to_ascii_lowercase().replace('-', "_") == "superseded_templates" {
            // Names must be templates of this CA (before the "not supported yet" refusal).
            let all = self.templates().await?;
            for n in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if find_template(&all, n).is_none() {
                    return Err(EngineError::bad_input(
                        codes::E_INVALIDARG,
                        format!("superseded_templates: no template named '{n}'"),
                    ));
                }
            }
        }
        t.set(key, value)?;
        self.save_template(actor, &t, &format!("set {key}={value}"))
            .await?;
        Ok(t)
    }

    /// Templates this CA issues.
    pub async fn ca_templates(&self) -> EngineResult<Vec<String>> {
        Ok(self.store.ca_templates().await?)
    }

    /// Adds a template to (or removes it from) the CA's issue list.
    pub async fn set_ca_template(
        &self,
        actor: &Actor,
        name: &str,
        enabled: bool,
    ) -> EngineResult<String> {
        self.authorize(actor, Op::Configure).await?;
        let t = self.template(name).await?;
        if t.internal && enabled {
            return Err(EngineError::Conflict(format!(
                "template '{}' is internal to the CA",
                t.name
            )));
        }
        let action = if enabled {
            "add CA template"
        } else {
            "remove CA template"
        };
        let audit = self
            .audited(self.audit_entry(actor, "config", action, &t.name, "{}"))
            .await;
        self.store
            .apply(
                &[Change::SetCaTemplate {
                    name: t.name.clone(),
                    enabled,
                }],
                &audit,
            )
            .await?;
        Ok(t.name)
    }

    // ----- enrollment ------------------------------------------------------

    /// Submits a PKCS#10 or CMC request (PEM, base64 or DER).
    ///
    /// Input that cannot be decoded or authenticated, and requests the policy
    /// refuses, return an error and change nothing. Accepted requests are
    /// recorded in one transaction, issued or pending.
    pub async fn submit(&self, input: &[u8], opts: &SubmitOptions) -> EngineResult<Outcome> {
        let actor = opts
            .actor
            .clone()
            .unwrap_or_else(|| Actor::local_admin(&opts.requester));
        match self.submit_as(&actor, input, opts).await {
            Ok(o) => Ok(o),
            Err(e) => {
                if matches!(e.kind(), ErrorKind::Denied | ErrorKind::Forbidden)
                    && !matches!(
                        e.code(),
                        codes::CERTSRV_E_TEMPLATE_DENIED | codes::CERTSRV_E_ROLECONFLICT
                    )
                {
                    self.audit_refusal(&actor, "requests", "submit request", "", &e)
                        .await?;
                }
                Err(e)
            }
        }
    }

    async fn submit_as(
        &self,
        actor: &Actor,
        input: &[u8],
        opts: &SubmitOptions,
    ) -> EngineResult<Outcome> {
        let inbound = decode_and_verify(input)?;
        let template = self.resolve_template(&inbound, opts).await?;
        let (requester, names, agent) = self
            .enrollee_names(actor, &inbound, &template, opts)
            .await?;
        self.check_key_policy(&inbound, &template)?;
        self.check_duplicate_enrollment(&template, &requester)
            .await?;
        self.refuse_ca_name(&names)?;
        let alt_names = names.alt_names()?;
        // Archive before anything is recorded or issued: decrypt, check, re-envelope.
        let archived = self.archive_if_required(&inbound, &template).await?;
        let mut new = NewRequest {
            request_der: archived
                .as_ref()
                .map_or_else(|| inbound.der.clone(), |a| a.stripped_request.clone()),
            request_kind: inbound.kind.as_str().into(),
            requester: requester.clone(),
            template: Some(template.name.clone()),
            request_subject: dn_string(&names.subject),
            request_common_name: common_name(&names.subject),
            request_upn: alt_names.upns.first().cloned(),
            request_email: email(&names.subject, &alt_names),
            disposition: Disposition::Pending,
            disposition_message: "Taken Under Submission".into(),
            status_code: 0,
            submitted_at: now(),
            cert: None,
            archived_key: archived.as_ref().map(|a| a.envelope.clone()),
            kra_hashes: archived.as_ref().map(|a| a.kra_hashes.clone()),
        };
        if !template.requires_approval {
            let fields = self.build_leaf(&template, &inbound, &names)?;
            new.disposition = Disposition::Issued;
            new.disposition_message = "Issued".into();
            new.cert = Some(fields);
        }
        let mut audit = self.audit_entry(
            actor,
            "requests",
            if new.disposition == Disposition::Issued { "certificate issued" } else { "request pended" },
            "{request_id}",
            &serde_json::json!({ "template": template.name, "requester": requester, "names": names.source, "on_behalf_of": agent.then_some(&requester), "serial": new.cert.as_ref().map(|c| c.serial.clone()) }).to_string(),
        );
        if let Some(a) = &archived {
            audit.extend(self.audit_entry(
                actor,
                "keys",
                "key archived",
                "{request_id}",
                &serde_json::json!({ "kra": a.kra_hashes }).to_string(),
            ));
        }
        let audit = self.audited(audit).await;
        let id = self.store.insert_request(&new, &audit).await?;
        if let Some(c) = &new.cert {
            self.land_kra_certificate(actor, &c.cert_der).await?;
        }
        let _ = self.maybe_sign_head().await;
        tracing::info!(request_id = id, template = %template.name, disposition = new.disposition.as_str(), archived = archived.is_some(), "request recorded");
        let mut o = outcome(
            id,
            &new.disposition,
            &new.disposition_message,
            Some(template.name.clone()),
            new.cert.as_ref(),
        );
        o.archived = archived.is_some();
        o.encrypted_key_hash = archived.map(|a| to_hex(&a.client_hash));
        o.body_part_id = inbound.cmc.as_ref().map(|c| c.body_part_id);
        Ok(o)
    }

    async fn resolve_template(
        &self,
        inbound: &Inbound,
        opts: &SubmitOptions,
    ) -> EngineResult<Template> {
        let from_attrs = opts
            .attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("CertificateTemplate"))
            .map(|(_, v)| v.clone());
        let from_cmc = inbound.cmc.as_ref().and_then(|c| {
            c.reg_info
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("CertificateTemplate"))
                .map(|(_, v)| v.clone())
        });
        let name = opts
            .template
            .clone()
            .filter(|t| !t.is_empty())
            .or(from_attrs)
            .or_else(|| inbound.pkcs10.template_name.clone())
            .or(from_cmc);
        let all = self.templates().await?;
        let enabled = self.store.ca_templates().await?;
        let template = match (&name, &inbound.pkcs10.template_ext) {
            (Some(n), _) => find_template(&all, n).cloned(),
            (None, Some(ext)) => all
                .iter()
                .find(|t| t.oid == ext.template_id.to_string())
                .cloned(),
            (None, None) => {
                return Err(EngineError::denied(
                    codes::CERTSRV_E_NO_CERT_TYPE,
                    "The request contains no certificate template information.",
                ))
            }
        };
        let label = name.clone().unwrap_or_else(|| {
            inbound
                .pkcs10
                .template_ext
                .as_ref()
                .map(|e| e.template_id.to_string())
                .unwrap_or_default()
        });
        match template {
            Some(t) if !t.internal && enabled.iter().any(|e| e.eq_ignore_ascii_case(&t.name)) => {
                Ok(t)
            }
            _ => Err(EngineError::denied(
                codes::CERTSRV_E_UNSUPPORTED_CERT_TYPE,
                format!(
                    "The request names a certificate template that is not supported by this CA: '{label}'."
                ),
            )),
        }
    }

    /// `do_not_reenroll_if_duplicate`: a requester holding a valid certificate
    /// of the template (issued, not revoked, not expired) may not enroll again
    /// until that certificate is within the template's `renewal_overlap` of
    /// its expiry.
    async fn check_duplicate_enrollment(&self, t: &Template, requester: &str) -> EngineResult<()> {
        if !t.do_not_reenroll_if_duplicate {
            return Ok(());
        }
        let renew_from = now() + t.renewal_overlap.approx_seconds();
        use lockbox_store::{Column, Op as Cmp, Restriction, Value};
        let term = |column, op, value| Restriction { column, op, value };
        let held = self
            .store
            .query(
                &[
                    term(Column::Requester, Cmp::Eq, Value::Text(requester.into())),
                    term(Column::Template, Cmp::Eq, Value::Text(t.name.clone())),
                    term(
                        Column::Disposition,
                        Cmp::Eq,
                        Value::Text(Disposition::Issued.as_str().into()),
                    ),
                    term(Column::NotAfter, Cmp::Gt, Value::Int(renew_from)),
                ],
                1000,
            )
            .await?
            .into_iter()
            .filter(|r| r.disposition == Disposition::Issued && r.revoked_at.is_none())
            .find_map(|r| r.cert);
        match held {
            Some(c) => Err(EngineError::denied(
                codes::E_ALREADY_EXISTS,
                format!(
                    "Template '{}' does not re-enroll a requester that already holds a valid certificate of it (serial {}, valid until {}); renewal opens {} before expiry.",
                    t.name,
                    c.serial,
                    crate::period::rfc3339(c.not_after),
                    t.renewal_overlap
                ),
            )),
            None => Ok(()),
        }
    }

    fn check_key_policy(&self, inbound: &Inbound, t: &Template) -> EngineResult<()> {
        let facts = public_key_facts(&inbound.pkcs10.cert_req.info.public_key).map_err(|e| {
            EngineError::denied(
                codes::NTE_BAD_ALGID,
                format!("The request's public key is not usable: {e}"),
            )
        })?;
        let alg = facts.algorithm_name();
        if !t.key_algorithms.iter().any(|a| a == &alg) {
            return Err(EngineError::denied(
                codes::NTE_BAD_ALGID,
                format!(
                    "Key algorithm '{alg}' is not allowed by template '{}' (allowed: {}).",
                    t.name,
                    t.key_algorithms.join(", ")
                ),
            ));
        }
        if facts.kind == KeyKind::Rsa && facts.bits < t.min_key_size {
            return Err(EngineError::denied(
                codes::CERTSRV_E_KEY_LENGTH,
                format!(
                    "The public key does not meet the minimum size required by template '{}': {} bits, at least {} required.",
                    t.name, facts.bits, t.min_key_size
                ),
            ));
        }
        Ok(())
    }

    /// Who the request is for and the names its certificate gets (see
    /// [`SubmitOptions::on_behalf_of`] and `Template::enrollee_supplies_subject`).
    /// Returns the requester, the names and whether an agent submitted it.
    async fn enrollee_names(
        &self,
        actor: &Actor,
        inbound: &Inbound,
        template: &Template,
        opts: &SubmitOptions,
    ) -> EngineResult<(String, LeafNames, bool)> {
        let on_behalf_of = opts
            .on_behalf_of
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if let Some(subject) = on_behalf_of {
            let target = self.actor_for(subject).await?;
            self.authorize(
                actor,
                Op::EnrollOnBehalfOf {
                    template,
                    subject: &target.name,
                },
            )
            .await?;
            let record = self
                .directory
                .principal(&target.name)
                .await?
                .filter(|p| p.kind != "group")
                .ok_or_else(|| EngineError::NotFound(format!("no principal named '{subject}'")))?;
            if !actor.local_admin {
                // The certificate is the subject's: the template must allow it too.
                self.authorize(&target, Op::Enroll(template)).await?;
            }
            let names = if template.enrollee_supplies_subject {
                LeafNames::from_request(
                    inbound,
                    &record.name,
                    "the request (template: enrollee supplies subject)",
                )?
            } else {
                LeafNames::from_record(
                    &record.name,
                    record.upn.as_deref(),
                    record.email.as_deref(),
                )?
            };
            return Ok((record.name, names, true));
        }
        self.authorize(actor, Op::Enroll(template)).await?;
        let names = if actor.local_admin {
            LeafNames::from_request(
                inbound,
                &opts.requester,
                "the request (local administrator as operator)",
            )?
        } else if template.enrollee_supplies_subject {
            LeafNames::from_request(
                inbound,
                &opts.requester,
                "the request (template: enrollee supplies subject)",
            )?
        } else {
            let record = self
                .directory
                .principal(&actor.name)
                .await?
                .filter(|p| p.kind != "group");
            LeafNames::from_record(
                &actor.name,
                record.as_ref().and_then(|p| p.upn.as_deref()),
                record.as_ref().and_then(|p| p.email.as_deref()),
            )?
        };
        Ok((opts.requester.clone(), names, false))
    }

    /// The names of a pending request's certificate, decided again at issue
    /// time: the record-built names when they are what was recorded at
    /// submission, else the request's own when those were recorded (the
    /// operator's), else the requester's current record.
    async fn pending_names(
        &self,
        template: &Template,
        inbound: &Inbound,
        rec: &RequestRecord,
    ) -> EngineResult<LeafNames> {
        let from_request = || {
            LeafNames::from_request(
                inbound,
                &rec.requester,
                "the request (template: enrollee supplies subject)",
            )
        };
        if template.enrollee_supplies_subject {
            return from_request();
        }
        let recorded = |n: &LeafNames| -> EngineResult<bool> {
            let alt = n.alt_names()?;
            let same = |a: Option<&String>, b: Option<&String>| match (a, b) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (None, None) => true,
                _ => false,
            };
            Ok(dn_string(&n.subject) == rec.request_subject
                && same(alt.upns.first(), rec.upn.as_ref())
                && same(email(&n.subject, &alt).as_ref(), rec.email.as_ref()))
        };
        let record = self
            .directory
            .principal(&rec.requester)
            .await?
            .filter(|p| p.kind != "group");
        let from_record = record
            .as_ref()
            .map(|p| LeafNames::from_record(&p.name, p.upn.as_deref(), p.email.as_deref()))
            .transpose()?;
        if let Some(n) = from_record.as_ref() {
            if recorded(n)? {
                return from_record.ok_or_else(|| EngineError::Config("unreachable".into()));
            }
        }
        let n = LeafNames::from_request(inbound, &rec.requester, "the request")?;
        if recorded(&n)? {
            return Ok(n);
        }
        from_record.ok_or_else(|| {
            EngineError::Conflict(format!(
                "request {} was made by '{}', who no longer has a principal record: its certificate names cannot be built (deny it)",
                rec.request_id, rec.requester
            ))
        })
    }

    /// No issued certificate carries the CA's own subject: verifiers that
    /// accept a renewed CA certificate by its name (recovery blobs, key-history
    /// exports, CMC responses) must never meet an enrollee's certificate
    /// under that name.
    fn refuse_ca_name(&self, names: &LeafNames) -> EngineResult<()> {
        let Ok((_, ca)) = self.ca_cert() else {
            return Ok(());
        };
        if &names.subject == ca.tbs_certificate().subject() {
            return Err(EngineError::denied(
                codes::CERTSRV_E_BAD_REQUESTSUBJECT,
                "The requested subject is the CA's own name; only the CA's certificates carry it.",
            ));
        }
        Ok(())
    }

    fn build_leaf(
        &self,
        template: &Template,
        inbound: &Inbound,
        names: &LeafNames,
    ) -> EngineResult<CertFields> {
        self.refuse_ca_name(names)?;
        let key = self.signing_key()?;
        let (_, ca) = self.ca_cert()?;
        let info = &inbound.pkcs10.cert_req.info;
        let spki: &SubjectPublicKeyInfoOwned = &info.public_key;
        let ec = public_key_facts(spki)?.kind == KeyKind::Ec;
        let issued_at = now();
        let not_before = issued_at - self.config.issuance.backdate_seconds.max(0);
        let ca_not_after = unix_of(&ca.tbs_certificate().validity().not_after);
        let not_after = template.validity.add_to(issued_at)?.min(ca_not_after);
        if not_after <= issued_at {
            return Err(EngineError::Config(
                "the CA certificate has expired; renew the CA".into(),
            ));
        }
        let mut exts = template_extensions(template, ec)?;
        exts.push(ski(spki)?);
        exts.push(aki(ca.tbs_certificate().subject_public_key_info())?);
        exts.extend(distribution_extensions(
            &self.config.issuance.cdp_urls,
            &self.config.issuance.aia_urls,
        )?);
        if let Some(san) = &names.san {
            exts.push(san.clone());
        }
        let cert = sign_certificate(
            key.as_ref(),
            CertSpec {
                issuer: ca.tbs_certificate().subject().clone(),
                subject: names.subject.clone(),
                spki: spki.clone(),
                serial: serial_number(self.config.issuance.serial_bytes.clamp(8, 20))?,
                not_before,
                not_after,
                extensions: exts,
            },
        )?;
        let der = cert
            .to_der()
            .map_err(|e| EngineError::Config(e.to_string()))?;
        cert_fields(&der)
    }

    /// Requests waiting for a certificate manager.
    pub async fn pending(&self, actor: &Actor) -> EngineResult<Vec<RequestRecord>> {
        self.view(actor, "Disposition=pending", 10_000).await
    }

    /// Issues a pending request (certificate manager, within its restrictions).
    pub async fn issue(&self, id: i64, actor: &Actor) -> EngineResult<Outcome> {
        let rec = self.request(id).await?;
        self.authorize(
            actor,
            Op::Officer {
                action: "issue",
                requester: &rec.requester,
                template: rec.template.as_deref(),
            },
        )
        .await?;
        if rec.disposition != Disposition::Pending {
            return Err(EngineError::Conflict(format!(
                "request {id} is {}, not pending",
                rec.disposition.as_str()
            )));
        }
        let inbound = decode_and_verify(&rec.request_der)?;
        let tname = rec.template.clone().unwrap_or_default();
        let template = self.template(&tname).await?;
        let names = self.pending_names(&template, &inbound, &rec).await?;
        let fields = self.build_leaf(&template, &inbound, &names)?;
        let message = format!("Issued by {}", actor.name);
        let audit = self
            .audited(self.audit_entry(
                actor,
                "requests",
                "certificate issued",
                &id.to_string(),
                &serde_json::json!({ "serial": fields.serial }).to_string(),
            ))
            .await;
        self.store
            .issue_pending(id, &fields, &message, now(), &audit)
            .await
            .map_err(conflict)?;
        self.land_kra_certificate(actor, &fields.cert_der).await?;
        let _ = self.maybe_sign_head().await;
        tracing::info!(request_id = id, officer = %actor.name, "pending request issued");
        let mut o = outcome(
            id,
            &Disposition::Issued,
            &message,
            rec.template,
            Some(&fields),
        );
        o.archived = rec.has_archived_key;
        Ok(o)
    }

    /// Denies a pending request (any archived key is deleted with it).
    pub async fn deny(&self, id: i64, actor: &Actor) -> EngineResult<Outcome> {
        let rec = self.request(id).await?;
        self.authorize(
            actor,
            Op::Officer {
                action: "deny",
                requester: &rec.requester,
                template: rec.template.as_deref(),
            },
        )
        .await?;
        let message = format!("Denied by {}", actor.name);
        let audit = self
            .audited(self.audit_entry(actor, "requests", "request denied", &id.to_string(), "{}"))
            .await;
        self.store
            .deny_pending(id, &message, codes::E_ACCESSDENIED as i64, now(), &audit)
            .await
            .map_err(conflict)?;
        let _ = self.maybe_sign_head().await;
        tracing::info!(request_id = id, officer = %actor.name, "pending request denied");
        Ok(outcome(
            id,
            &Disposition::Denied,
            &message,
            rec.template,
            None,
        ))
    }

    /// One request row (callers authorize reading first).
    pub async fn request(&self, id: i64) -> EngineResult<RequestRecord> {
        self.store
            .get_request(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no request with ID {id}")))
    }

    /// The certificate (DER) of an issued or revoked request (certificates are public).
    pub async fn certificate(&self, id: i64) -> EngineResult<Vec<u8>> {
        let rec = self.request(id).await?;
        rec.cert.map(|c| c.cert_der).ok_or_else(|| {
            EngineError::Conflict(format!(
                "request {id} has no certificate (it is {})",
                rec.disposition.as_str()
            ))
        })
    }

    /// Revokes by serial number (hex, spaces allowed).
    pub async fn revoke(
        &self,
        serial: &str,
        reason: i32,
        actor: &Actor,
    ) -> EngineResult<RequestRecord> {
        let s = normalize_hex(serial).ok_or_else(|| {
            EngineError::bad_input(
                codes::E_INVALIDARG,
                format!("'{serial}' is not a hex serial number"),
            )
        })?;
        let rec = self.store.get_by_serial(&s).await?.ok_or_else(|| {
            EngineError::NotFound(format!("no certificate with serial number {s}"))
        })?;
        self.authorize(
            actor,
            Op::Officer {
                action: "revoke",
                requester: &rec.requester,
                template: rec.template.as_deref(),
            },
        )
        .await?;
        let audit = self
            .audited(self.audit_entry(actor, "revocation", "certificate revoked", &s, &serde_json::json!({ "reason": crate::crl::reason_name(reason), "request_id": rec.request_id }).to_string()))
            .await;
        self.store
            .revoke(&s, reason, now(), &audit)
            .await
            .map_err(conflict)?;
        let _ = self.maybe_sign_head().await;
        tracing::info!(serial = %s, reason, "certificate revoked");
        if let Some(c) = &rec.cert {
            if let Err(e) = self.kra_revoked_check(&c.cert_der).await {
                tracing::warn!(error = %e, "KRA events after revocation not recorded");
            }
        }
        self.store
            .get_by_serial(&s)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no certificate with serial number {s}")))
    }

    /// Signs and stores a new CRL (CA administrator or certificate manager).
    pub async fn publish_crl(&self, actor: &Actor) -> EngineResult<CrlInfo> {
        self.authorize(actor, Op::PublishCrl).await?;
        let info = self.sign_and_store_crl().await?;
        let audit = self
            .audited(self.audit_entry(
                actor,
                "revocation",
                "CRL published",
                &info.number.to_string(),
                "{}",
            ))
            .await;
        self.store.append_audit(&audit).await?;
        Ok(info)
    }

    async fn sign_and_store_crl(&self) -> EngineResult<CrlInfo> {
        let key = self.signing_key()?;
        let (_, ca) = self.ca_cert()?;
        let revoked = self.store.revoked().await?;
        let number = self.store.next_crl_number().await?;
        let this_update = now();
        let next_update = self.config.issuance.crl_validity.add_to(this_update)?;
        let der = sign_crl(
            key.as_ref(),
            CrlSpec {
                issuer: ca.tbs_certificate().subject().clone(),
                issuer_spki: ca.tbs_certificate().subject_public_key_info(),
                this_update,
                next_update,
                number,
                revoked: &revoked,
            },
        )?;
        self.store
            .insert_crl(&CrlRecord {
                crl_number: number,
                this_update,
                next_update,
                der: der.clone(),
            })
            .await?;
        let _ = self
            .event(
                1002,
                "info",
                &format!("CRL {number} published with {} entries", revoked.len()),
            )
            .await;
        Ok(CrlInfo {
            number,
            this_update,
            next_update,
            entries: revoked.len(),
            der,
        })
    }

    /// The current CRL: the latest one if still valid and complete, else a new one.
    pub async fn current_crl(&self) -> EngineResult<Vec<u8>> {
        if let Some(latest) = self.store.latest_crl().await? {
            let revoked = self.store.revoked().await?;
            let fresh = latest.next_update > now() + 3600;
            let complete = revoked.iter().all(|r| r.revoked_at <= latest.this_update);
            if fresh && complete {
                return Ok(latest.der);
            }
        }
        Ok(self.sign_and_store_crl().await?.der)
    }

    /// Rows matching a `--restrict` expression.
    pub async fn view(
        &self,
        actor: &Actor,
        restrict: &str,
        limit: i64,
    ) -> EngineResult<Vec<RequestRecord>> {
        self.authorize(actor, Op::ReadDatabase).await?;
        let mut r = parse_restrictions(restrict)?;
        let limit = limit.clamp(1, 1_000_000);
        // A restricted manager reads only the rows it may act on: page on by
        // request ID until `limit` visible rows or the end of the table.
        let mut out = Vec::new();
        let at = r.len();
        loop {
            let rows = self.store.query(&r, limit).await?;
            let (fetched, last) = (rows.len() as i64, rows.last().map(|x| x.request_id));
            out.extend(self.visible_rows(actor, rows).await?);
            match last {
                Some(last) if fetched == limit && (out.len() as i64) < limit => {
                    r.truncate(at);
                    r.push(lockbox_store::Restriction {
                        column: lockbox_store::Column::RequestId,
                        op: lockbox_store::Op::Gt,
                        value: lockbox_store::Value::Int(last),
                    });
                }
                _ => break,
            }
        }
        out.truncate(limit as usize);
        Ok(out)
    }

    /// Issues (or reuses) the TLS server certificate for `lockbox serve`.
    /// Returns (certificate chain PEM, private key PEM).
    pub async fn server_tls_identity(
        &self,
        hosts: &[String],
    ) -> EngineResult<(String, Zeroizing<String>)> {
        let cert_rel = "tls/server.pem";
        let key_rel = "tls/server.key";
        if let (Ok(c), Ok(k)) = (self.home.read(cert_rel), self.home.read(key_rel)) {
            let still_good = decode_input(&c)
                .ok()
                .and_then(|d| cert_fields(&d.der).ok())
                .is_some_and(|f| f.not_after > now() + 7 * 86_400);
            let marker = self.home.read("tls/hosts").unwrap_or_default();
            if still_good && marker == hosts.join(",").as_bytes() {
                return Ok((
                    String::from_utf8_lossy(&c).into_owned(),
                    Zeroizing::new(String::from_utf8_lossy(&k).into_owned()),
                ));
            }
        }
        let (_, ca) = self.ca_cert()?;
        let signer = self.signing_key()?;
        let tls_key = SoftwareKey::generate(KeySpec::P256)?;
        let cn = hosts.first().cloned().unwrap_or_else(|| "localhost".into());
        let subject = subject_name(&format!("CN={cn}"))?;
        let csr = sign_request(&tls_key, subject.clone(), vec![])?;
        let mut template = builtins()
            .into_iter()
            .find(|t| t.name == "WebServer")
            .ok_or_else(|| EngineError::Config("WebServer template missing".into()))?;
        template.validity = Period::Days(90);
        let mut exts = template_extensions(&template, true)?;
        exts.push(ski(tls_key.public_key_info())?);
        exts.push(aki(ca.tbs_certificate().subject_public_key_info())?);
        exts.push(crate::certbuild::extension(
            oids::CE_SUBJECT_ALT_NAME,
            false,
            &server_alt_names(hosts)?,
        )?);
        let issued_at = now();
        let cert = sign_certificate(
            signer.as_ref(),
            CertSpec {
                issuer: ca.tbs_certificate().subject().clone(),
                subject,
                spki: tls_key.public_key_info().clone(),
                serial: serial_number(16)?,
                not_before: issued_at - 600,
                not_after: template
                    .validity
                    .add_to(issued_at)?
                    .min(unix_of(&ca.tbs_certificate().validity().not_after)),
                extensions: exts,
            },
        )?;
        let der = cert
            .to_der()
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let fields = cert_fields(&der)?;
        // The service's own certificate is audited like any issuance.
        let audit = self
            .audited(vec![lockbox_store::AuditEntry {
                at: issued_at,
                actor: "lockbox serve".into(),
                category: "requests".into(),
                action: "TLS server certificate issued".into(),
                target: "{request_id}".into(),
                outcome: "success".into(),
                details: serde_json::json!({
                    "template": "WebServer",
                    "serial": fields.serial,
                    "hosts": hosts,
                    "not_after": fields.not_after,
                })
                .to_string(),
            }])
            .await;
        self.store
            .insert_request(
                &NewRequest {
                    request_der: csr,
                    request_kind: "pkcs10".into(),
                    requester: "lockbox serve".into(),
                    template: Some("WebServer".into()),
                    request_subject: fields.subject.clone(),
                    request_common_name: fields.common_name.clone(),
                    request_upn: None,
                    request_email: None,
                    disposition: Disposition::Issued,
                    disposition_message: "Issued (HTTPS service certificate)".into(),
                    status_code: 0,
                    submitted_at: issued_at,
                    cert: Some(fields),
                    archived_key: None,
                    kra_hashes: None,
                },
                &audit,
            )
            .await?;
        let _ = self.maybe_sign_head().await;
        let mut chain_pem = encode_pem("CERTIFICATE", &der);
        for c in self.chain_der()? {
            chain_pem.push_str(&encode_pem("CERTIFICATE", &c));
        }
        let key_pem = key_pem(&tls_key, None)?;
        self.home.write_atomic(key_rel, key_pem.as_bytes(), true)?;
        self.home
            .write_atomic(cert_rel, chain_pem.as_bytes(), false)?;
        self.home
            .write_atomic("tls/hosts", hosts.join(",").as_bytes(), false)?;
        Ok((chain_pem, key_pem))
    }
}

fn server_alt_names(hosts: &[String]) -> EngineResult<x509_cert::ext::pkix::SubjectAltName> {
    use x509_cert::ext::pkix::name::GeneralName;
    let mut names = Vec::new();
    for h in hosts {
        if let Ok(ip) = h.parse::<std::net::IpAddr>() {
            let bytes = match ip {
                std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            names.push(GeneralName::IpAddress(
                der::asn1::OctetString::new(bytes)
                    .map_err(|e| EngineError::Config(e.to_string()))?,
            ));
        } else {
            names.push(GeneralName::DnsName(der::asn1::Ia5String::new(h).map_err(
                |_| EngineError::Config(format!("host '{h}' is not ASCII")),
            )?));
        }
    }
    Ok(x509_cert::ext::pkix::SubjectAltName(names))
}

/// The names an issued certificate carries and where they came from.
pub(crate) struct LeafNames {
    /// Subject DN.
    pub(crate) subject: Name,
    /// subjectAltName extension, if any.
    pub(crate) san: Option<x509_cert::ext::Extension>,
    /// Where the names come from (for the audit record).
    pub(crate) source: String,
}

/// Upper bound of a common name (RFC 5280 ub-common-name).
const UB_COMMON_NAME: usize = 64;

impl LeafNames {
    /// The request's own names. An empty subject without SAN gets `CN=<requester>`
    /// (Windows leaves it for the CA to fill in); an `emailAddress` in the
    /// subject is also written to the SAN as rfc822Name (RFC 5280 4.2.1.6).
    fn from_request(inbound: &Inbound, requester: &str, source: &str) -> EngineResult<LeafNames> {
        use x509_cert::ext::pkix::name::GeneralName;
        use x509_cert::ext::pkix::SubjectAltName;
        let info = &inbound.pkcs10.cert_req.info;
        let requested = inbound.pkcs10.extension(&oids::CE_SUBJECT_ALT_NAME);
        let subject = if info.subject.as_ref().is_empty() && requested.is_none() {
            requester_subject(requester).ok_or_else(|| {
                EngineError::denied(
                    codes::CERTSRV_E_BAD_REQUESTSUBJECT,
                    "The request has an empty subject and no subject alternative name, and the requester is anonymous.",
                )
            })?
        } else {
            info.subject.clone()
        };
        let subject_emails = lockbox_codec::names::name_attr(&subject, &oids::PKCS9_EMAIL_ADDRESS);
        let mut san = requested.cloned();
        let listed = match &san {
            Some(e) => parse_alt_names(e.extn_value.as_bytes())?.emails,
            None => vec![],
        };
        let missing: Vec<&String> = subject_emails
            .iter()
            .filter(|m| !listed.iter().any(|l| l.eq_ignore_ascii_case(m)))
            .collect();
        if !missing.is_empty() {
            let mut names = match &san {
                Some(e) => {
                    SubjectAltName::from_der(e.extn_value.as_bytes())
                        .map_err(|e| {
                            EngineError::bad_input(
                                codes::CRYPT_E_ASN1_BADTAG,
                                format!("subjectAltName: {e}"),
                            )
                        })?
                        .0
                }
                None => vec![],
            };
            for m in missing {
                names.push(GeneralName::Rfc822Name(rfc822(m)?));
            }
            san = Some(crate::certbuild::extension(
                oids::CE_SUBJECT_ALT_NAME,
                false,
                &SubjectAltName(names),
            )?);
        }
        if let Some(e) = san.as_mut() {
            e.critical = subject.as_ref().is_empty();
        }
        Ok(LeafNames {
            subject,
            san,
            source: source.into(),
        })
    }

    /// Names built from a principal record: CN from the principal name, e-mail
    /// as SAN rfc822Name, UPN as SAN otherName; nothing from the request.
    fn from_record(name: &str, upn: Option<&str>, mail: Option<&str>) -> EngineResult<LeafNames> {
        use der::asn1::{Any, Utf8StringRef};
        use x509_cert::attr::AttributeTypeAndValue;
        use x509_cert::ext::pkix::name::{GeneralName, OtherName};
        use x509_cert::ext::pkix::SubjectAltName;
        use x509_cert::name::{RdnSequence, RelativeDistinguishedName};
        let bad = |what: &str| {
            EngineError::denied(
                codes::CERTSRV_E_BAD_REQUESTSUBJECT,
                format!(
                    "The subject cannot be built from the principal record of '{name}': {what}."
                ),
            )
        };
        if name.trim().is_empty() || name.chars().count() > UB_COMMON_NAME {
            return Err(bad("the name is empty or longer than 64 characters"));
        }
        let cn = AttributeTypeAndValue {
            oid: oids::AT_COMMON_NAME,
            value: Any::encode_from(
                &Utf8StringRef::new(name).map_err(|_| bad("the name is not UTF-8"))?,
            )
            .map_err(|_| bad("encoding"))?,
        };
        let rdn = RelativeDistinguishedName::try_from(vec![cn]).map_err(|_| bad("encoding"))?;
        let mut seq = RdnSequence::default();
        seq.push(rdn);
        let subject = Name::from_der(&seq.to_der().map_err(|_| bad("encoding"))?)
            .map_err(|_| bad("encoding"))?;
        let mut alt = Vec::new();
        if let Some(m) = mail.map(str::trim).filter(|m| !m.is_empty()) {
            alt.push(GeneralName::Rfc822Name(rfc822(m)?));
        }
        if let Some(u) = upn.map(str::trim).filter(|u| !u.is_empty()) {
            alt.push(GeneralName::OtherName(OtherName {
                type_id: oids::MS_UPN,
                value: Any::encode_from(
                    &Utf8StringRef::new(u).map_err(|_| bad("the UPN is not UTF-8"))?,
                )
                .map_err(|_| bad("encoding"))?,
            }));
        }
        let san = if alt.is_empty() {
            None
        } else {
            Some(crate::certbuild::extension(
                oids::CE_SUBJECT_ALT_NAME,
                false,
                &SubjectAltName(alt),
            )?)
        };
        Ok(LeafNames {
            subject,
            san,
            source: format!("the principal record of {name}"),
        })
    }

    /// The identities in the SAN.
    fn alt_names(&self) -> EngineResult<AltNames> {
        Ok(match &self.san {
            Some(e) => parse_alt_names(e.extn_value.as_bytes())?,
            None => AltNames::default(),
        })
    }
}

fn rfc822(mail: &str) -> EngineResult<der::asn1::Ia5String> {
    der::asn1::Ia5String::new(mail).map_err(|_| {
        EngineError::denied(
            codes::CERTSRV_E_BAD_REQUESTSUBJECT,
            format!("The e-mail address '{}' is not ASCII.", mail.escape_debug()),
        )
    })
}

/// `CN=<user>` for a requester `DOMAIN\\user` or `user@domain`; None for anonymous callers.
fn requester_subject(requester: &str) -> Option<Name> {
    let name = requester.rsplit('\\').next().unwrap_or(requester);
    let name = name.split('@').next().unwrap_or(name).trim();
    if name.is_empty() || requester == "anonymous" {
        return None;
    }
    Name::from_str(&format!(
        "CN={}",
        name.replace(['\\', ',', '+', '"', '<', '>', ';', '='], "_")
    ))
    .ok()
}

fn conflict(e: StoreError) -> EngineError {
    match e {
        StoreError::Conflict(m) => EngineError::Conflict(m),
        StoreError::NotFound(m) => EngineError::NotFound(m),
        other => EngineError::Store(other),
    }
}

fn outcome(
    id: i64,
    d: &Disposition,
    message: &str,
    template: Option<String>,
    cert: Option<&CertFields>,
) -> Outcome {
    Outcome {
        request_id: id,
        disposition: *d,
        status_code: 0,
        message: message.to_string(),
        template,
        serial: cert.map(|c| c.serial.clone()),
        certificate_pem: cert.map(|c| encode_pem("CERTIFICATE", &c.cert_der)),
        archived: false,
        encrypted_key_hash: None,
        body_part_id: None,
        cmc_response: None,
    }
}
