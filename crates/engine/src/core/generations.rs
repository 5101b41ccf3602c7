//! The CA's certificates across renewals ("generations") and their keys.
//!
//! Renewal index N is the N-th CA certificate (`certnew.cer?Renewal=N`);
//! key index K is the K-th CA key (a renewal with a new key counts up). The
//! current generation signs everything new; each earlier key keeps signing
//! the CRLs (and OCSP answers) for the certificates it issued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lockbox_codec::hexfmt::to_hex;
use lockbox_codec::pem::decode_input;
use lockbox_crypto::keyinfo::key_identifier;
use lockbox_crypto::KeyHandle;
use x509_cert::certificate::Certificate;

use crate::certbuild::decode_certificate;
use crate::config::{Config, Home};
use crate::keysource::CaKeySource;
use crate::{EngineError, EngineResult};

/// One CA certificate.
pub(crate) struct Generation {
    /// Its renewal index.
    pub(crate) renewal: u32,
    /// The index of its key.
    pub(crate) key_index: u32,
    /// DER.
    pub(crate) der: Vec<u8>,
    /// Decoded.
    pub(crate) cert: Certificate,
    /// Key identifier of its public key (lowercase hex): the AKI of what it signs.
    pub(crate) key_id: String,
}

/// Every CA certificate, oldest first (the current one last), and the
/// sources of the earlier keys.
#[derive(Default)]
pub(crate) struct Generations {
    pub(crate) all: Vec<Generation>,
    sources: HashMap<u32, Arc<CaKeySource>>,
    loaded: Mutex<HashMap<u32, Arc<dyn KeyHandle>>>,
}

fn generation(renewal: u32, key_index: u32, der: Vec<u8>) -> EngineResult<Generation> {
    let cert = decode_certificate(&der)?;
    let key_id = to_hex(&key_identifier(
        cert.tbs_certificate().subject_public_key_info(),
    ));
    Ok(Generation {
        renewal,
        key_index,
        der,
        cert,
        key_id,
    })
}

impl Generations {
    /// The earlier generations of `config` and the current certificate.
    pub(crate) fn load(
        home: &Home,
        config: &Config,
        current: Option<&(Vec<u8>, Certificate)>,
        keys: Arc<dyn lockbox_crypto::KeyProvider>,
        token: Option<&Arc<lockbox_crypto::pkcs11::Token>>,
    ) -> EngineResult<Generations> {
        let mut all = Vec::new();
        let mut sources = HashMap::new();
        for g in &config.ca.history {
            let der = decode_input(&home.read(&g.cert_file)?)
                .map_err(|e| EngineError::Config(format!("{}: {e}", g.cert_file)))?
                .der;
            all.push(generation(g.renewal, g.key_index, der)?);
            if g.key_index != config.ca.key_index {
                sources.insert(
                    g.key_index,
                    Arc::new(CaKeySource::for_generation(
                        home,
                        config,
                        keys.clone(),
                        token,
                        g,
                    )?),
                );
            }
        }
        if let Some((der, _)) = current {
            all.push(generation(
                config.ca.renewal,
                config.ca.key_index,
                der.clone(),
            )?);
        }
        Ok(Generations {
            all,
            sources,
            loaded: Mutex::new(HashMap::new()),
        })
    }

    /// The certificate of renewal index `n`.
    pub(crate) fn by_renewal(&self, n: u32) -> Option<&Generation> {
        self.all.iter().find(|g| g.renewal == n)
    }

    /// The newest certificate of key `k` (the issuer of its CRLs).
    pub(crate) fn for_key(&self, k: u32) -> Option<&Generation> {
        self.all.iter().rev().find(|g| g.key_index == k)
    }

    /// The key index whose key identifier is `key_id` (an AKI, lowercase hex).
    pub(crate) fn key_index_of(&self, key_id: &str) -> Option<u32> {
        self.all
            .iter()
            .find(|g| g.key_id == key_id)
            .map(|g| g.key_index)
    }

    /// Every key index, oldest first.
    pub(crate) fn key_indices(&self) -> Vec<u32> {
        let mut out: Vec<u32> = self.all.iter().map(|g| g.key_index).collect();
        out.dedup();
        out
    }

    /// An earlier key (not the current one), loaded on first use.
    pub(crate) fn earlier_key(&self, k: u32) -> EngineResult<Arc<dyn KeyHandle>> {
        if let Some(key) = self.loaded.lock().ok().and_then(|m| m.get(&k).cloned()) {
            return Ok(key);
        }
        let source = self
            .sources
            .get(&k)
            .ok_or_else(|| EngineError::Config(format!("no CA key with index {k}")))?;
        let key: Arc<dyn KeyHandle> = source.load()?;
        let cert = self
            .for_key(k)
            .ok_or_else(|| EngineError::Config(format!("no CA certificate for key {k}")))?;
        if cert.cert.tbs_certificate().subject_public_key_info() != key.public_key_info() {
            return Err(EngineError::Config(format!(
                "CA key {k} does not match its certificate"
            )));
        }
        if let Ok(mut m) = self.loaded.lock() {
            m.insert(k, key.clone());
        }
        Ok(key)
    }
}
