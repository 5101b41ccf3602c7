//! Signed chain heads: the sealer the store calls, periodic head signing, the head file outside the database.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use lockbox_codec::hexfmt::to_hex;
use lockbox_crypto::KeyHandle;
use lockbox_store::{AuditHead, AuditRecord, HeadSealer};

use crate::audit::{HEADS_FILE, HEAD_INTERVAL};
use crate::config::Home;
use crate::core::Core;
use crate::period::now;
use crate::{EngineError, EngineResult};

/// Signs the chain head inside every store transaction that appends audit
/// records, and copies each committed head to [`HEADS_FILE`].
pub(crate) struct HeadSeal {
    /// The CA key slot, shared with [`Ca`] (loaded on first use).
    pub(crate) key: Arc<Mutex<Option<Arc<dyn KeyHandle>>>>,
    /// Where the key is loaded from (file or token).
    pub(crate) source: Arc<crate::keysource::CaKeySource>,
    pub(crate) home: Home,
    pub(crate) warned: AtomicBool,
    /// Raised when a head could not be signed ([`maybe_sign_head`] then
    /// signs one later).
    pub(crate) unsealed: Arc<AtomicBool>,
}

impl std::fmt::Debug for HeadSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadSeal")
            .field("home", &self.home.root())
            .finish()
    }
}

impl HeadSeal {
    fn key(&self) -> EngineResult<Arc<dyn KeyHandle>> {
        let mut slot = self
            .key
            .lock()
            .map_err(|_| EngineError::Config("key lock poisoned".into()))?;
        if let Some(k) = slot.as_ref() {
            return Ok(k.clone());
        }
        let key: Arc<dyn KeyHandle> = self.source.load()?;
        *slot = Some(key.clone());
        Ok(key)
    }

    fn warn_once(&self, what: &str, e: &dyn std::fmt::Display) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %e, "audit chain head not {what}");
        }
    }
}

impl HeadSealer for HeadSeal {
    fn seal(&self, seq: i64, hash: &str) -> Option<String> {
        let signed = self
            .key()
            .and_then(|k| Ok(k.sign(format!("{seq}:{hash}").as_bytes())?));
        match signed {
            Ok(sig) => Some(to_hex(&sig)),
            Err(e) => {
                self.unsealed.store(true, Ordering::SeqCst);
                self.warn_once("signed", &e);
                None
            }
        }
    }

    fn sealed(&self, head: &AuditHead) {
        if let Err(e) = append_head_file(&self.home, head) {
            self.warn_once("copied to the head file", &e);
        }
    }
}

/// Appends a signed head to [`HEADS_FILE`] and flushes it to disk.
pub(crate) fn append_head_file(home: &Home, head: &AuditHead) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(home.path(HEADS_FILE))?;
    f.write_all(
        format!(
            "{} {} {} {}\n",
            head.seq, head.hash, head.signature, head.at
        )
        .as_bytes(),
    )?;
    f.sync_data()
}

/// The heads in [`HEADS_FILE`] (`None` when there is no file); a line that
/// does not parse is returned as its line number.
pub(crate) fn read_head_file(
    home: &Home,
) -> std::io::Result<Option<Vec<Result<AuditHead, usize>>>> {
    let text = match std::fs::read_to_string(home.path(HEADS_FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                let f: Vec<&str> = l.split_whitespace().collect();
                match (
                    f.first().map(|v| v.parse::<i64>()),
                    f.get(3).map(|v| v.parse::<i64>()),
                ) {
                    (Some(Ok(seq)), Some(Ok(at))) if f.len() == 4 => Ok(AuditHead {
                        seq,
                        hash: f[1].to_string(),
                        signature: f[2].to_string(),
                        at,
                    }),
                    _ => Err(i + 1),
                }
            })
            .collect(),
    ))
}

/// Signs the chain head when enough records accumulated since the last signed head.
///
/// Called after every audited write. Every write transaction signs its own
/// head while the CA key is at hand, so this looks (two indexed reads) only
/// when [`Core::unsealed`] is raised: at open, and after a seal failed.
/// Signers are serialised and re-check under the lock: without that, every
/// caller that saw a head due signed one of its own, the heads kept
/// lagging, and under load each write re-read the whole audit log.
pub(crate) async fn maybe_sign_head(core: &Core) -> EngineResult<()> {
    if !core.unsealed.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    let signed = async {
        if head_due(core).await?.is_none() {
            return Ok(());
        }
        let _signing = core.head_signing.lock().await;
        if let Some(last) = head_due(core).await? {
            sign_head_of(core, last).await?;
        }
        Ok(())
    }
    .await;
    if signed.is_err() {
        core.unsealed.store(true, Ordering::SeqCst);
    }
    signed
}

/// The newest audit record, when it is at least [`HEAD_INTERVAL`] records
/// past the last signed head.
pub(crate) async fn head_due(core: &Core) -> EngineResult<Option<AuditRecord>> {
    let last_signed = core.store.last_audit_head().await?.map_or(0, |h| h.seq);
    Ok(core
        .store
        .last_audit_record()
        .await?
        .filter(|last| last.seq >= last_signed + HEAD_INTERVAL))
}

/// Signs the current chain head with the CA key.
pub(crate) async fn sign_audit_head(core: &Core) -> EngineResult<Option<AuditHead>> {
    let _signing = core.head_signing.lock().await;
    let Some(last) = core.store.last_audit_record().await? else {
        return Ok(None);
    };
    Ok(Some(sign_head_of(core, last).await?))
}

/// Signs and stores a head naming `last` (the caller holds `head_signing`).
pub(crate) async fn sign_head_of(core: &Core, last: AuditRecord) -> EngineResult<AuditHead> {
    let key = core.signing_key()?;
    let sig = key.sign(format!("{}:{}", last.seq, last.hash).as_bytes())?;
    let head = AuditHead {
        seq: last.seq,
        hash: last.hash,
        signature: to_hex(&sig),
        at: now(),
    };
    core.store.add_audit_head(&head).await?;
    if let Err(e) = append_head_file(&core.home, &head) {
        tracing::warn!(error = %e, "audit chain head not copied to the head file");
    }
    Ok(head)
}
