//! The CA home directory: configuration file, key and certificate files.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{EngineError, EngineResult};
use crate::period::Period;

/// Name of the configuration file inside the home directory.
pub const CONFIG_FILE: &str = "lockbox.toml";
/// Environment variable holding the CA key passphrase.
pub const PASSPHRASE_ENV: &str = "LOCKBOX_CA_PASSPHRASE";
/// Environment variable naming a file holding the CA key passphrase.
pub const PASSPHRASE_FILE_ENV: &str = "LOCKBOX_CA_PASSPHRASE_FILE";

/// Whether the CA has a usable certificate yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaState {
    /// Signing certificate installed.
    Active,
    /// Subordinate CA waiting for its parent-signed certificate.
    AwaitingCertificate,
}

/// `[ca]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaSection {
    /// CA common name.
    pub name: String,
    /// Full subject DN of the CA certificate.
    pub subject: String,
    /// Key algorithm.
    pub key: String,
    /// CA certificate validity (root) or requested validity (subordinate).
    pub validity: Period,
    /// Root or subordinate.
    pub subordinate: bool,
    /// Lifecycle state.
    pub state: CaState,
    /// Key file, relative to the home.
    pub key_file: String,
    /// Whether the key file is passphrase-protected.
    pub key_encrypted: bool,
    /// Optional file holding the key passphrase (else `LOCKBOX_CA_PASSPHRASE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_file: Option<String>,
    /// The `CKA_LABEL` of the CA key on the `[pkcs11]` token; set when the
    /// key is on a token (then `key_file` is not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_label: Option<String>,
    /// The `CKA_ID` (hex) of the CA key on the token, which names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// CA certificate file (PEM), relative to the home.
    pub cert_file: String,
    /// Parent chain (PEM, issuer first up to the root), relative to the home; empty for a root.
    pub chain_file: String,
    /// Renewals of the CA certificate so far: the current certificate's
    /// renewal index (`nRenewals`).
    #[serde(default)]
    pub renewal: u32,
    /// Index of the current CA key: renewals with a new key count up (the
    /// suffix `(N)` of the CRLs it signs).
    #[serde(default)]
    pub key_index: u32,
    /// Earlier CA certificates, oldest first, with where their keys are
    /// (an earlier key keeps signing the CRLs of the certificates it issued).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<CaGeneration>,
    /// Cross-certificate files made by renewals with a new key (each key
    /// certifies the other), relative to the home.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cross_certificates: Vec<String>,
    /// A subordinate CA's renewal waiting for its parent's certificate
    /// (`ca renew --csr-out`, then `ca install`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_renewal: Option<PendingRenewal>,
}

/// A subordinate CA's renewal request sent to its parent (`[ca.pending_renewal]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingRenewal {
    /// The key the parent is asked to certify: its index and where it is.
    pub key_index: u32,
    /// Key type.
    pub key: String,
    /// Key file, relative to the home (empty when on the token).
    #[serde(default)]
    pub key_file: String,
    /// `CKA_LABEL` on the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_label: Option<String>,
    /// `CKA_ID` (hex) on the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// An earlier CA certificate (`[[ca.history]]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaGeneration {
    /// Its renewal index.
    pub renewal: u32,
    /// The index of its key.
    pub key_index: u32,
    /// The certificate file (PEM), relative to the home.
    pub cert_file: String,
    /// The key file, relative to the home (empty when the key is on the token).
    #[serde(default)]
    pub key_file: String,
    /// The key's `CKA_LABEL` on the `[pkcs11]` token, when it is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_label: Option<String>,
    /// The key's `CKA_ID` (hex) on the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// `[issuance]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IssuanceSection {
    /// Serial number length in bytes (at most 20).
    pub serial_bytes: usize,
    /// Back-dating of notBefore, in seconds, for clock skew.
    pub backdate_seconds: i64,
    /// CRL distribution point URLs written into issued certificates.
    #[serde(default)]
    pub cdp_urls: Vec<String>,
    /// Authority information access (caIssuers) URLs written into issued certificates.
    #[serde(default)]
    pub aia_urls: Vec<String>,
    /// CRL validity (nextUpdate - thisUpdate) when `[crl]` sets no period.
    pub crl_validity: Period,
    /// OCSP responder URLs written into issued certificates (AIA id-ad-ocsp).
    #[serde(default)]
    pub ocsp_urls: Vec<String>,
    /// Delta CRL URLs: the Freshest CRL extension of issued certificates and
    /// base CRLs.
    #[serde(default)]
    pub delta_cdp_urls: Vec<String>,
}

/// `[crl]` section: when `lockbox serve` publishes CRLs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CrlSection {
    /// Base CRL publication interval (default: `issuance.crl_validity`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Added to nextUpdate beyond the interval, so that relying parties
    /// holding a CRL still have a valid one while the next is fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap: Option<Period>,
    /// Delta CRL publication interval; unset: `serve` publishes no delta
    /// CRLs on its own (`lockbox crl publish --delta` still makes one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta_period: Option<Period>,
}

impl CrlSection {
    /// Seconds between base CRLs.
    pub fn base_interval(&self, issuance: &IssuanceSection) -> i64 {
        self.period
            .unwrap_or(issuance.crl_validity)
            .approx_seconds()
    }

    /// Seconds of overlap added to nextUpdate.
    pub fn overlap_seconds(&self) -> i64 {
        self.overlap.map_or(0, |p| p.approx_seconds())
    }
}

/// `[ocsp]` section: the responder in `lockbox serve` (at `/ocsp`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct OcspSection {
    /// Whether `serve` answers OCSP requests (default: when certificates
    /// name an OCSP URL, `issuance.ocsp_urls`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Validity of the OCSP signing certificate the CA issues to itself;
    /// a new one is issued once two thirds of it have passed.
    pub signing_validity: Period,
    /// How long a response stays valid (nextUpdate - thisUpdate, and the
    /// HTTP cache lifetime).
    pub response_validity: Period,
}

impl Default for OcspSection {
    fn default() -> Self {
        OcspSection {
            enabled: None,
            signing_validity: Period::Weeks(2),
            response_validity: Period::Hours(1),
        }
    }
}

/// `[server]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerSection {
    /// Default listen address.
    pub listen: String,
    /// SHA-256 (hex) of the administrator API token.
    pub admin_token_sha256: String,
    /// Accept enrollment requests without a token (requester recorded as `anonymous`).
    pub allow_anonymous_enrollment: bool,
    /// Connection limits and timeouts (`[server.limits]`).
    #[serde(default)]
    pub limits: ServerLimits,
}

/// `[server.limits]`: how long `lockbox serve` waits for a slow or idle
/// client, and how many connections it serves at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerLimits {
    /// Seconds allowed for the TLS handshake.
    pub handshake_timeout_secs: u64,
    /// Seconds allowed to receive a request's headers (HTTP/1.1), counted from
    /// the end of the previous request: a keep-alive connection that sends no
    /// new request within this time is closed too.
    pub header_timeout_secs: u64,
    /// Seconds allowed to receive a request body, from the request's arrival.
    pub body_timeout_secs: u64,
    /// Seconds a connection may stay without a request in progress before it
    /// is closed (HTTP/1.1 and HTTP/2).
    pub idle_timeout_secs: u64,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Connections served at once from one source address (IPv6 grouped by
    /// /64); a further connection from that source is closed at once.
    pub max_connections_per_address: usize,
    /// Seconds a request may stay in progress without its response making
    /// write progress (counted from the request's arrival, then from the last
    /// chunk of the response the client accepted) before the connection is closed.
    pub response_timeout_secs: u64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            handshake_timeout_secs: 10,
            header_timeout_secs: 20,
            body_timeout_secs: 60,
            idle_timeout_secs: 60,
            max_connections: 256,
            max_connections_per_address: 32,
            response_timeout_secs: 120,
        }
    }
}

/// The lock file `lockbox serve` holds in its home ([`Home::lock_service`]).
pub const SERVICE_LOCK: &str = "serve.lock";

/// `[database]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DatabaseSection {
    /// `sqlite:FILE` relative to the home (PostgreSQL comes later).
    pub url: String,
}

/// The CA configuration file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    /// CA identity and keys.
    pub ca: CaSection,
    /// Issuance settings.
    pub issuance: IssuanceSection,
    /// HTTP service.
    pub server: ServerSection,
    /// Database.
    pub database: DatabaseSection,
    /// Key archival.
    #[serde(default)]
    pub archival: ArchivalSection,
    /// The PKCS#11 token holding CA keys, when one is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs11: Option<Pkcs11Section>,
    /// CRL publication schedule.
    #[serde(default)]
    pub crl: CrlSection,
    /// The OCSP responder.
    #[serde(default)]
    pub ocsp: OcspSection,
}

/// Environment variable holding the PKCS#11 token's user PIN (when
/// `pkcs11.pin_file` is not set).
pub const PKCS11_PIN_ENV: &str = "LOCKBOX_PKCS11_PIN";

/// `[pkcs11]` section: the token holding the CA's keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pkcs11Section {
    /// Path of the PKCS#11 module (shared library).
    pub module: String,
    /// The token's label.
    pub token_label: String,
    /// File holding the user PIN (absolute, or relative to the home; mode
    /// 0600); else `LOCKBOX_PKCS11_PIN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_file: Option<String>,
    /// Most sessions open at once (0: one per core).
    #[serde(default)]
    pub max_sessions: usize,
    /// The token's serial number, recorded at `init`: another token with
    /// the same label is not used (and never sees the PIN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_serial: Option<String>,
}

/// `[archival]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ArchivalSection {
    /// Content encryption of archived keys: aes256 (default), aes192, aes128, 3des.
    pub content_cipher: String,
    /// Key transport to KRAs: pkcs1 (default, Windows-compatible), oaep, oaep-sha256.
    pub key_transport: String,
    /// CA exchange key algorithm (RSA: it receives transported keys).
    pub exchange_key: String,
    /// CA exchange certificate validity.
    pub exchange_validity: Period,
    /// Overlap: a new exchange certificate is made this long before the current one expires.
    pub exchange_overlap: Period,
    /// Whether exchange keys are generated on the `[pkcs11]` token (and
    /// removed from it once their certificate has expired).
    pub exchange_on_token: bool,
}

impl Default for ArchivalSection {
    fn default() -> Self {
        ArchivalSection {
            content_cipher: "aes256".into(),
            key_transport: "pkcs1".into(),
            exchange_key: "rsa2048".into(),
            exchange_validity: Period::Days(7),
            exchange_overlap: Period::Days(1),
            exchange_on_token: false,
        }
    }
}

/// The CA home directory.
#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Wraps a directory path.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Home { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside the home.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Whether a CA already lives here.
    pub fn exists(&self) -> bool {
        self.path(CONFIG_FILE).exists()
    }

    /// Reads the configuration.
    pub fn load_config(&self) -> EngineResult<Config> {
        let path = self.path(CONFIG_FILE);
        let text = fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                EngineError::Config(format!(
                    "no CA at {} (run 'lockbox init --home {} --name ...' first)",
                    self.root.display(),
                    self.root.display()
                ))
            } else {
                EngineError::Io {
                    context: format!("reading {}", path.display()),
                    source: e,
                }
            }
        })?;
        toml::from_str(&text).map_err(|e| EngineError::Config(format!("{}: {e}", path.display())))
    }

    /// Takes the home's service lock (`serve.lock`, an exclusive advisory
    /// file lock held while the returned file is open): `lockbox serve`
    /// holds it for its lifetime, and `db migrate` needs it free, so a
    /// database is never moved under a running service. Fails when another
    /// process holds it.
    pub fn lock_service(&self) -> EngineResult<fs::File> {
        let path = self.path(SERVICE_LOCK);
        let mut opts = fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let f = opts
            .open(&path)
            .map_err(EngineError::io(format!("opening {}", path.display())))?;
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(fs::TryLockError::WouldBlock) => Err(EngineError::Conflict(format!(
                "a `lockbox serve` is running on {} (it holds {SERVICE_LOCK})",
                self.root.display()
            ))),
            Err(fs::TryLockError::Error(e)) => {
                Err(EngineError::io(format!("locking {}", path.display()))(e))
            }
        }
    }

    /// Writes the configuration atomically (mode 0600: it holds the admin token hash).
    pub fn save_config(&self, config: &Config) -> EngineResult<()> {
        let text =
            toml::to_string_pretty(config).map_err(|e| EngineError::Config(e.to_string()))?;
        self.write_atomic(CONFIG_FILE, text.as_bytes(), true)
    }

    /// Writes a file atomically (temp file + fsync + rename); `secret` files get mode 0600.
    pub fn write_atomic(&self, rel: &str, data: &[u8], secret: bool) -> EngineResult<()> {
        let path = self.path(rel);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        create_private_dir(&dir)?;
        let tmp = dir.join(format!(
            ".{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
        ));
        {
            // A stale temporary file would keep its old (possibly looser) mode.
            let _ = fs::remove_file(&tmp);
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(if secret { 0o600 } else { 0o644 });
            }
            let mut f = opts
                .open(&tmp)
                .map_err(EngineError::io(format!("writing {}", tmp.display())))?;
            f.write_all(data)
                .map_err(EngineError::io(format!("writing {}", tmp.display())))?;
            f.sync_all()
                .map_err(EngineError::io(format!("syncing {}", tmp.display())))?;
        }
        fs::rename(&tmp, &path)
            .map_err(EngineError::io(format!("renaming to {}", path.display())))?;
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Reads a file inside the home.
    pub fn read(&self, rel: &str) -> EngineResult<Vec<u8>> {
        let path = self.path(rel);
        fs::read(&path).map_err(EngineError::io(format!("reading {}", path.display())))
    }

    /// Group- or world-accessible entries in the home: the home itself, its
    /// `keys/` and `tls/` directories, and every file holding keys, hashes,
    /// envelopes or tokens (configuration, admin token, keys, the database and
    /// its `-wal`/`-shm`). `database` is the SQLite file the configuration
    /// names (it may live outside the home). Each finding names the path and
    /// its mode; empty when everything is private to the owner.
    pub fn permission_findings(&self, database: Option<&Path>) -> Vec<String> {
        let mut paths = vec![self.root.clone()];
        for sub in ["keys", "tls"] {
            let dir = self.path(sub);
            if dir.is_dir() {
                paths.push(dir.clone());
                if let Ok(rd) = fs::read_dir(&dir) {
                    let mut files: Vec<PathBuf> = rd
                        .filter_map(|e| e.ok())
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                        .map(|e| e.path())
                        // certificates are public; the key files are not
                        .filter(|p| sub == "keys" || p.extension().is_some_and(|x| x == "key"))
                        .collect();
                    files.sort();
                    paths.extend(files);
                }
            }
        }
        paths.push(self.path(CONFIG_FILE));
        paths.push(self.path("admin.token"));
        if let Some(db) = database {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut p = db.as_os_str().to_owned();
                p.push(suffix);
                paths.push(PathBuf::from(p));
            }
        }
        let mut out = Vec::new();
        for p in paths {
            if let Some(mode) = loose_mode(&p) {
                out.push(format!(
                    "{} is accessible to other users (mode {:04o}; expected {})",
                    p.display(),
                    mode,
                    if p.is_dir() { "0700" } else { "0600" }
                ));
            }
        }
        out
    }
}

/// The permission bits of `p` when group or others have any access; None when
/// private to the owner or absent.
#[cfg(unix)]
fn loose_mode(p: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(p).ok()?.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn loose_mode(_p: &Path) -> Option<u32> {
    None
}

/// Creates `dir` (and missing parents) with mode 0700 from the start: a CA
/// home, its key directories and backup directories are private to the
/// owner. Parents that already exist are left as they are.
pub fn create_private_dir(dir: &Path) -> EngineResult<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .map_err(EngineError::io(format!("creating {}", parent.display())))?;
    }
    let mut b = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    match b.create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        r => r.map_err(EngineError::io(format!("creating {}", dir.display()))),
    }
}

/// Makes an existing directory private to its owner (mode 0700): used where a
/// CA home or backup goes into a directory the operator created beforehand.
pub fn make_dir_private(dir: &Path) -> EngineResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir)
            .map_err(EngineError::io(format!("reading {}", dir.display())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(EngineError::io(format!("restricting {}", dir.display())))?;
        }
    }
    Ok(())
}

/// Finds the CA key passphrase: the configured file, `LOCKBOX_CA_PASSPHRASE_FILE`,
/// or `LOCKBOX_CA_PASSPHRASE`. Trailing newlines in files are ignored.
pub fn passphrase(
    home: &Home,
    configured_file: Option<&str>,
) -> EngineResult<Option<Zeroizing<Vec<u8>>>> {
    let file = configured_file
        .map(|f| {
            let p = Path::new(f);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                home.path(f)
            }
        })
        .or_else(|| std::env::var_os(PASSPHRASE_FILE_ENV).map(PathBuf::from));
    if let Some(path) = file {
        let mut data = Zeroizing::new(fs::read(&path).map_err(EngineError::io(format!(
            "reading passphrase file {}",
            path.display()
        )))?);
        while data.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            data.pop();
        }
        if data.is_empty() {
            return Err(EngineError::Config(format!(
                "passphrase file {} is empty",
                path.display()
            )));
        }
        return Ok(Some(data));
    }
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        if !p.is_empty() {
            return Ok(Some(Zeroizing::new(p.into_bytes())));
        }
    }
    Ok(None)
}
