//! The state every service shares: home, configuration, store, CA
//! certificate and key slot, archival and authentication state, directory.
//!
//! Services (`enroll`, `officer`, `archival`, ...) take a `&Core`; the [`Ca`]
//! facade owns one and delegates to them.
//!
//! [`Ca`]: crate::Ca

pub(crate) mod cache;
pub(crate) mod directory;
pub(crate) mod generations;
pub(crate) mod state;

use std::sync::{Arc, Mutex};

use lockbox_crypto::digest::sha256;
use lockbox_crypto::keytransport::KeyTransport;
use lockbox_crypto::symmetric::ContentCipher;
use lockbox_crypto::{KeyHandle, KeyProvider, PrivateKey};
use lockbox_store::{RequestRecord, Store};
use x509_cert::certificate::Certificate;

use self::directory::Directory;
use self::state::{ArchivalState, AuthState, ImportBatch};
use crate::config::{Config, Home};
use crate::{EngineError, EngineResult};

/// The shared state of one open CA.
pub(crate) struct Core {
    pub(crate) home: Home,
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn Store>,
    /// Where private keys come from (software today, a token tomorrow).
    pub(crate) keys: Arc<dyn KeyProvider>,
    /// Reads the CRLs of foreign KRA issuers.
    pub(crate) crls: Arc<dyn crate::crl_fetch::CrlFetcher>,
    pub(crate) key: Arc<Mutex<Option<Arc<dyn KeyHandle>>>>,
    /// Where the CA key is (a file in the home or a token).
    pub(crate) ca_key: Arc<crate::keysource::CaKeySource>,
    /// The `[pkcs11]` token, when the configuration has one.
    pub(crate) token: Option<Arc<lockbox_crypto::pkcs11::Token>>,
    pub(crate) cert: Option<(Vec<u8>, Certificate)>,
    /// Every CA certificate across renewals, the current one last.
    pub(crate) generations: generations::Generations,
    pub(crate) chain: Vec<Vec<u8>>,
    pub(crate) archival: ArchivalState,
    /// Configuration read under a database version ([`cache`]).
    pub(crate) cache: cache::ConfigCache,
    pub(crate) auth: AuthState,
    /// Held while a chain head is signed, so concurrent writers sign one head
    /// between them instead of one each.
    pub(crate) head_signing: tokio::sync::Mutex<()>,
    /// Raised when records may have committed without a signed head (the
    /// sealer had no key, or at open): only then does a writer look for a
    /// head that is due.
    pub(crate) unsealed: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) directory: Arc<dyn Directory>,
    pub(crate) import_batch: Mutex<Option<ImportBatch>>,
    /// The OCSP responder's signer.
    pub(crate) ocsp: crate::ocsp::OcspState,
    /// Held while a CRL is signed on demand or by the schedule, so that
    /// concurrent callers sign one between them.
    pub(crate) crl_signing: tokio::sync::Mutex<()>,
}

pub(crate) const KEY_FILE: &str = "keys/ca.key";

pub(crate) const CERT_FILE: &str = "certs/ca.pem";

pub(crate) const CHAIN_FILE: &str = "certs/chain.pem";

pub(crate) const DB_FILE: &str = "ca.db";

impl Core {
    /// The configuration.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The home directory.
    pub(crate) fn home(&self) -> &Home {
        &self.home
    }

    /// The store (for front ends that need raw access in tests and benchmarks).
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
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
    pub(crate) fn ca_certificate_der(&self) -> EngineResult<Vec<u8>> {
        Ok(self.ca_cert()?.0.clone())
    }

    /// Whether one of this CA's certificates, of any renewal, signed `cert`
    /// (name and signature).
    pub(crate) fn issued_by_this_ca(&self, cert: &Certificate) -> bool {
        self.generations
            .all
            .iter()
            .rev()
            .any(|g| crate::certs::verify_issued_by(cert, &g.cert).is_ok())
    }

    /// The cross-certificates between CA keys (DER), from renewals with a new key.
    pub(crate) fn cross_certificates(&self) -> EngineResult<Vec<Vec<u8>>> {
        self.config
            .ca
            .cross_certificates
            .iter()
            .map(|f| {
                Ok(lockbox_codec::pem::decode_input(&self.home.read(f)?)
                    .map_err(|e| EngineError::Config(format!("{f}: {e}")))?
                    .der)
            })
            .collect()
    }

    /// [`Core::chain_der`] and the cross-certificates between CA keys: what
    /// objects the CA signs carry, so that they verify against any of its
    /// certificates.
    pub(crate) fn chain_and_cross(&self) -> EngineResult<Vec<Vec<u8>>> {
        let mut out = self.chain_der()?;
        out.extend(self.cross_certificates()?);
        Ok(out)
    }

    /// The CA certificate followed by its parents up to the root (DER).
    pub(crate) fn chain_der(&self) -> EngineResult<Vec<Vec<u8>>> {
        let mut out = vec![self.ca_certificate_der()?];
        out.extend(self.chain.iter().cloned());
        Ok(out)
    }

    /// The signing key of CA key index `k`: the current key, or an earlier
    /// one (which signs only CRLs and OCSP answers for what it issued).
    pub(crate) fn signing_key_for(&self, k: u32) -> EngineResult<Arc<dyn KeyHandle>> {
        if k == self.config.ca.key_index {
            return self.signing_key();
        }
        self.generations.earlier_key(k)
    }

    /// The signing key, loaded (and decrypted) on first use.
    pub(crate) fn signing_key(&self) -> EngineResult<Arc<dyn KeyHandle>> {
        let mut slot = self
            .key
            .lock()
            .map_err(|_| EngineError::Config("key lock poisoned".into()))?;
        if let Some(k) = slot.as_ref() {
            return Ok(k.clone());
        }
        let key: Arc<dyn KeyHandle> = self.load_ca_key()?;
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

    /// Loads the CA key from its file or finds it on its token.
    fn load_ca_key(&self) -> EngineResult<Arc<dyn PrivateKey>> {
        self.ca_key.load()
    }

    /// The database's configuration version, which the caches compare: the
    /// one the running request read ([`cache::with_version`]), else read now.
    pub(crate) async fn config_version(&self) -> EngineResult<i64> {
        if let Some(v) = cache::request_version() {
            return Ok(v);
        }
        Ok(self.store.config_version().await?)
    }

    /// Checks an administrator token (constant-time comparison of SHA-256 digests).
    pub(crate) fn verify_admin_token(&self, token: &str) -> bool {
        let expected = match hex::decode(&self.config.server.admin_token_sha256) {
            Ok(e) => e,
            Err(_) => return false,
        };
        let got = sha256(token.as_bytes());
        aws_lc_rs::constant_time::verify_slices_are_equal(&got, &expected).is_ok()
    }

    /// The CA key read from its file, without checking it against the
    /// certificate (a subordinate CA installing its first certificate).
    pub(crate) fn signing_key_unchecked(&self) -> EngineResult<Arc<dyn KeyHandle>> {
        Ok(self.load_ca_key()?)
    }

    /// One request row (callers authorize reading first).
    pub(crate) async fn request(&self, id: i64) -> EngineResult<RequestRecord> {
        self.store
            .get_request(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no request with ID {id}")))
    }

    pub(crate) fn content_cipher(&self) -> EngineResult<ContentCipher> {
        ContentCipher::parse(&self.config.archival.content_cipher)
            .map_err(|e| EngineError::Config(e.to_string()))
    }

    pub(crate) fn key_transport(&self) -> EngineResult<KeyTransport> {
        KeyTransport::parse(&self.config.archival.key_transport)
            .map_err(|e| EngineError::Config(e.to_string()))
    }
}
