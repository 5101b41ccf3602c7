//! Mutable state held by the core: archival caches, login throttling, the import batch.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lockbox_crypto::random::random_bytes;
use lockbox_crypto::PrivateKey;
use lockbox_store::Change;
use x509_cert::certificate::Certificate;

use crate::EngineResult;

/// Per-process archival state.
pub struct ArchivalState {
    /// Round-robin position among the valid KRAs (random start).
    pub(crate) next_kra: AtomicUsize,
    /// Loaded exchange keys by certificate serial.
    pub(crate) exchange_keys: Mutex<HashMap<String, Arc<dyn PrivateKey>>>,
    /// The home's exchange wrapping key, once loaded.
    pub(crate) wrap_key: Mutex<Option<Arc<dyn PrivateKey>>>,
    /// Serialises exchange certificate creation.
    pub(crate) creating: tokio::sync::Mutex<()>,
}

impl ArchivalState {
    pub(crate) fn new() -> EngineResult<Self> {
        let r = random_bytes(4)?;
        Ok(ArchivalState {
            next_kra: AtomicUsize::new(u32::from_be_bytes([r[0], r[1], r[2], r[3]]) as usize),
            exchange_keys: Mutex::new(HashMap::new()),
            wrap_key: Mutex::new(None),
            creating: tokio::sync::Mutex::new(()),
        })
    }
}

/// Changes and audit records queued by a batch import, and the KRAs it uses.
#[derive(Default)]
pub struct ImportBatch {
    pub(crate) changes: Vec<Change>,
    pub(crate) audit: Vec<lockbox_store::AuditEntry>,
    pub(crate) kras: Option<(Vec<Certificate>, usize)>,
    pub(crate) foreign: Option<bool>,
}

/// (Principal, source) pairs, and sources, tracked at most per table
/// (bounded memory under a spray).
pub(crate) const THROTTLE_ENTRIES: usize = 4096;

/// Verified tokens remembered at most.
pub(crate) const CACHE_ENTRIES: usize = 10_000;

/// How long a verified token is remembered (and only while the credential version holds).
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(300);

/// Argon2 verifications running at once (each takes ~19 MiB and tens of ms).
pub(crate) const ARGON2_SLOTS: usize = 4;

/// A resolved actor, the credential version it was read under and when.
pub(crate) type CachedActor = (i64, Instant, crate::Actor);

/// A throttling key (principal, or the name as sent) and the source group it
/// was sent from.
pub(crate) type Pair = (String, Option<IpAddr>);

/// Per-process authentication state: verified tokens (valid only while the
/// database's credential version is unchanged, so a revocation made by any
/// process takes effect on the next request), failed-login counters, and the
/// slots Argon2 verifications run in (on the blocking pool, never on the
/// request threads).
pub struct AuthState {
    pub(crate) cache: Mutex<HashMap<String, (String, i64, Instant)>>,
    /// Resolved actors by the exact name asked for: (credential version, when, actor).
    pub(crate) actors: Mutex<HashMap<String, CachedActor>>,
    pub(crate) by_pair: Mutex<HashMap<Pair, (Instant, u32)>>,
    pub(crate) by_source: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    pub(crate) argon2: tokio::sync::Semaphore,
}

impl Default for AuthState {
    fn default() -> Self {
        AuthState {
            cache: Mutex::default(),
            actors: Mutex::default(),
            by_pair: Mutex::default(),
            by_source: Mutex::default(),
            argon2: tokio::sync::Semaphore::new(ARGON2_SLOTS),
        }
    }
}
