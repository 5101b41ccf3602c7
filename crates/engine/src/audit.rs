//! The tamper-evident audit trail (hash chain with CA-signed heads) and the CA
//! event log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use lockbox_codec::hexfmt::to_hex;
use lockbox_crypto::digest::sha256;
use lockbox_crypto::verify::verify_signature;
use lockbox_crypto::KeyHandle;
use lockbox_store::{
    AuditEntry, AuditHead, AuditRecord, Change, EventRecord, HeadSealer, GENESIS_HASH,
};
use serde::Serialize;

use crate::authz::{Actor, Op};
use crate::ca::Ca;
use crate::config::Home;
use crate::error::{EngineError, EngineResult};
use crate::period::now;

/// Audit categories (AD CS audit filter): backup, config, security, requests, revocation, keys, audit, service.
pub const CATEGORIES: &[&str] = &[
    "backup",
    "config",
    "security",
    "requests",
    "revocation",
    "keys",
    "audit",
    "service",
];
/// Setting holding the audited categories.
pub const AUDIT_CATEGORIES: &str = "audit_categories";
/// A signed head is added at least every this many records.
pub const HEAD_INTERVAL: i64 = 64;

/// The file in the home that keeps every signed chain head outside the
/// database (append-only, fsynced, mode 0600): one line `seq hash signature at`.
pub const HEADS_FILE: &str = "audit-heads.log";

/// Signs the chain head inside every store transaction that appends audit
/// records, and copies each committed head to [`HEADS_FILE`].
pub(crate) struct HeadSeal {
    /// The CA key slot, shared with [`Ca`] (loaded on first use).
    pub(crate) key: Arc<Mutex<Option<Arc<dyn KeyHandle>>>>,
    pub(crate) home: Home,
    pub(crate) key_file: String,
    pub(crate) passphrase_file: Option<String>,
    pub(crate) warned: AtomicBool,
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
        let bytes = zeroize::Zeroizing::new(self.home.read(&self.key_file)?);
        let pass = crate::config::passphrase(&self.home, self.passphrase_file.as_deref())?;
        let key: Arc<dyn KeyHandle> = Arc::new(crate::ca::load_private_key(
            &bytes,
            pass.as_deref().map(|p| p.as_slice()),
        )?);
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
fn read_head_file(home: &Home) -> std::io::Result<Option<Vec<Result<AuditHead, usize>>>> {
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

/// The chain hash (hex SHA-256), handed to the store.
pub fn chain_hash(data: &[u8]) -> String {
    to_hex(&sha256(data))
}

/// One finding of `audit verify`.
#[derive(Clone, Debug, Serialize)]
pub struct AuditProblem {
    /// Position in the chain.
    pub position: i64,
    /// What is wrong.
    pub problem: String,
}

/// The result of `audit verify`.
#[derive(Clone, Debug, Serialize)]
pub struct AuditReport {
    /// Records checked.
    pub records: i64,
    /// Signed heads checked.
    pub signed_heads: usize,
    /// Signed heads read from the head file outside the database.
    pub external_heads: usize,
    /// Findings (empty: the chain is intact).
    pub problems: Vec<AuditProblem>,
}

impl Ca {
    async fn categories(&self) -> Vec<String> {
        match self.store.setting(AUDIT_CATEGORIES).await {
            Ok(Some(v)) => v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            _ => CATEGORIES.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// An audit entry for a successful action (empty if its category is not audited).
    pub(crate) fn audit_entry(
        &self,
        actor: &Actor,
        category: &str,
        action: &str,
        target: &str,
        details: &str,
    ) -> Vec<AuditEntry> {
        vec![AuditEntry {
            at: now(),
            actor: actor.audit_name(),
            category: category.into(),
            action: action.into(),
            target: target.into(),
            outcome: "success".into(),
            details: details.into(),
        }]
    }

    /// Filters entries by the audited categories (refusals are always kept).
    pub(crate) async fn audited(&self, entries: Vec<AuditEntry>) -> Vec<AuditEntry> {
        let cats = self.categories().await;
        entries
            .into_iter()
            .filter(|e| e.outcome != "success" || cats.iter().any(|c| c == &e.category))
            .collect()
    }

    /// Records a refused operation.
    pub(crate) async fn audit_refusal(
        &self,
        actor: &Actor,
        category: &str,
        action: &str,
        target: &str,
        err: &EngineError,
    ) -> EngineResult<()> {
        let details = serde_json::json!({ "code": format!("0x{:08x}", err.code()), "reason": err.to_string() }).to_string();
        self.store
            .append_audit(&[AuditEntry {
                at: now(),
                actor: actor.audit_name(),
                category: category.into(),
                action: action.into(),
                target: target.into(),
                outcome: "refused".into(),
                details,
            }])
            .await?;
        Ok(())
    }

    /// Signs the chain head when enough records accumulated since the last signed head.
    ///
    /// Called after every audited write, so it costs two indexed reads when no
    /// head is due. Signers are serialised and re-check under the lock: without
    /// that, every caller that saw a head due signed one of its own, the heads
    /// kept lagging, and under load each write re-read the whole audit log.
    pub(crate) async fn maybe_sign_head(&self) -> EngineResult<()> {
        if self.head_due().await?.is_none() {
            return Ok(());
        }
        let _signing = self.head_signing.lock().await;
        if let Some(last) = self.head_due().await? {
            self.sign_head_of(last).await?;
        }
        Ok(())
    }

    /// The newest audit record, when it is at least [`HEAD_INTERVAL`] records
    /// past the last signed head.
    async fn head_due(&self) -> EngineResult<Option<AuditRecord>> {
        let last_signed = self.store.last_audit_head().await?.map_or(0, |h| h.seq);
        Ok(self
            .store
            .last_audit_record()
            .await?
            .filter(|last| last.seq >= last_signed + HEAD_INTERVAL))
    }

    /// Signs the current chain head with the CA key.
    pub async fn sign_audit_head(&self) -> EngineResult<Option<AuditHead>> {
        let _signing = self.head_signing.lock().await;
        let Some(last) = self.store.last_audit_record().await? else {
            return Ok(None);
        };
        Ok(Some(self.sign_head_of(last).await?))
    }

    /// Signs and stores a head naming `last` (the caller holds `head_signing`).
    async fn sign_head_of(&self, last: AuditRecord) -> EngineResult<AuditHead> {
        let key = self.signing_key()?;
        let sig = key.sign(format!("{}:{}", last.seq, last.hash).as_bytes())?;
        let head = AuditHead {
            seq: last.seq,
            hash: last.hash,
            signature: to_hex(&sig),
            at: now(),
        };
        self.store.add_audit_head(&head).await?;
        if let Err(e) = append_head_file(&self.home, &head) {
            tracing::warn!(error = %e, "audit chain head not copied to the head file");
        }
        Ok(head)
    }

    /// Audit records since a time (Auditor, or CA administrator without role separation).
    pub async fn audit_list(
        &self,
        actor: &Actor,
        since: Option<i64>,
        limit: i64,
    ) -> EngineResult<Vec<AuditRecord>> {
        self.authorize(actor, Op::ReadAudit).await?;
        let mut out = Vec::new();
        let mut from = 1;
        loop {
            let batch = self.store.audit_records(from, 10_000).await?;
            if batch.is_empty() {
                break;
            }
            from = batch.last().map(|r| r.seq + 1).unwrap_or(from);
            out.extend(
                batch
                    .into_iter()
                    .filter(|r| since.is_none_or(|s| r.entry.at >= s)),
            );
        }
        let skip = out.len().saturating_sub(limit.max(0) as usize);
        Ok(out.split_off(skip))
    }

    /// The latest `n` audit records, oldest first, and how many exist (one
    /// indexed read for the count, one range read for the records).
    pub async fn audit_latest(
        &self,
        actor: &Actor,
        n: i64,
    ) -> EngineResult<(i64, Vec<AuditRecord>)> {
        self.authorize(actor, Op::ReadAudit).await?;
        let Some(last) = self.store.last_audit_record().await? else {
            return Ok((0, vec![]));
        };
        let n = n.clamp(1, 10_000);
        let from = (last.seq - n + 1).max(1);
        Ok((last.seq, self.store.audit_records(from, n).await?))
    }

    /// Verifies the chain: every record's hash, its link to the previous one,
    /// contiguous positions, and every signed head.
    pub async fn audit_verify(&self, actor: &Actor) -> EngineResult<AuditReport> {
        self.authorize(actor, Op::ReadAudit).await?;
        let mut problems = Vec::new();
        let mut expected_seq = 1;
        let mut prev_hash = GENESIS_HASH.to_string();
        let mut by_seq: HashMap<i64, String> = HashMap::new();
        let mut from = 1;
        let mut count = 0;
        loop {
            let batch = self.store.audit_records(from, 10_000).await?;
            if batch.is_empty() {
                break;
            }
            from = batch.last().map(|r| r.seq + 1).unwrap_or(from);
            for r in batch {
                count += 1;
                if r.seq != expected_seq {
                    problems.push(AuditProblem {
                        position: expected_seq,
                        problem: format!(
                            "record {expected_seq} is missing (next present is {}): deleted",
                            r.seq
                        ),
                    });
                }
                if r.prev_hash != prev_hash {
                    problems.push(AuditProblem {
                        position: r.seq,
                        problem: "does not link to the record before it: a record was deleted, inserted or reordered here".into(),
                    });
                }
                if chain_hash(&AuditRecord::chain_input(r.seq, &r.entry, &r.prev_hash)) != r.hash {
                    problems.push(AuditProblem {
                        position: r.seq,
                        problem: "content does not match its hash: modified".into(),
                    });
                }
                prev_hash = r.hash.clone();
                by_seq.insert(r.seq, r.hash);
                expected_seq = r.seq + 1;
            }
        }
        let last_seq = expected_seq - 1;
        let heads = self.store.audit_heads().await?;
        let (_, ca) = self.ca_cert()?;
        let key_alg = self.signing_key()?.signature_algorithm();
        let signed_ok = |h: &AuditHead| {
            let sig = hex::decode(&h.signature).unwrap_or_default();
            let msg = format!("{}:{}", h.seq, h.hash);
            let spki = ca.tbs_certificate().subject_public_key_info();
            verify_signature(spki, ca.signature_algorithm(), msg.as_bytes(), &sig).is_ok()
                || verify_signature(spki, &key_alg, msg.as_bytes(), &sig).is_ok()
        };
        for h in &heads {
            if !signed_ok(h) {
                problems.push(AuditProblem {
                    position: h.seq,
                    problem: "signed head has a bad signature".into(),
                });
            }
            match by_seq.get(&h.seq) {
                Some(hash) if hash == &h.hash => {}
                Some(_) => problems.push(AuditProblem {
                    position: h.seq,
                    problem: "record differs from the signed head: modified".into(),
                }),
                None => problems.push(AuditProblem {
                    position: h.seq,
                    problem: "a signed head names a record that is gone: records were deleted"
                        .into(),
                }),
            }
        }
        // The copy of every signed head outside the database: a database-only
        // attacker can delete records and heads, or rewrite records and
        // recompute the chain, but cannot change this file or sign new heads.
        let db_heads: HashMap<i64, &AuditHead> = heads.iter().map(|h| (h.seq, h)).collect();
        let mut covered = heads.last().map_or(0, |h| h.seq);
        let file = read_head_file(&self.home).map_err(EngineError::io(format!(
            "reading {}",
            self.home.path(HEADS_FILE).display()
        )))?;
        if file.as_ref().is_none_or(|f| f.is_empty()) && !heads.is_empty() {
            problems.push(AuditProblem {
                position: 0,
                problem: format!(
                    "{HEADS_FILE} is missing or empty: the signed heads kept outside the database are gone, so a rollback of the database cannot be ruled out"
                ),
            });
        }
        let mut external = 0;
        let mut missing_heads: Vec<i64> = Vec::new();
        let mut truncated_to: Option<i64> = None;
        for line in file.unwrap_or_default() {
            let h = match line {
                Ok(h) => h,
                Err(n) => {
                    problems.push(AuditProblem {
                        position: 0,
                        problem: format!("{HEADS_FILE} line {n} is damaged"),
                    });
                    continue;
                }
            };
            external += 1;
            let same = db_heads
                .get(&h.seq)
                .is_some_and(|d| d.hash == h.hash && d.signature == h.signature);
            if !same && !signed_ok(&h) {
                problems.push(AuditProblem {
                    position: h.seq,
                    problem: format!("the head in {HEADS_FILE} has a bad signature"),
                });
                continue;
            }
            covered = covered.max(h.seq);
            match by_seq.get(&h.seq) {
                Some(hash) if hash == &h.hash => {}
                Some(_) => problems.push(AuditProblem {
                    position: h.seq,
                    problem: format!(
                        "record differs from the signed head kept in {HEADS_FILE}: rewritten (the chain was recomputed)"
                    ),
                }),
                None if h.seq > last_seq => {
                    truncated_to = Some(truncated_to.map_or(h.seq, |t: i64| t.max(h.seq)));
                }
                None => problems.push(AuditProblem {
                    position: h.seq,
                    problem: format!(
                        "the signed head kept in {HEADS_FILE} names a record that is gone: deleted"
                    ),
                }),
            }
            if !db_heads.contains_key(&h.seq) {
                missing_heads.push(h.seq);
            }
        }
        if let Some(t) = truncated_to {
            problems.push(AuditProblem {
                position: last_seq + 1,
                problem: format!(
                    "truncated tail: records {}..{t} were deleted (the database ends at {last_seq}; {HEADS_FILE} holds a signed head at {t})",
                    last_seq + 1
                ),
            });
        }
        if let Some(first) = missing_heads.first() {
            problems.push(AuditProblem {
                position: *first,
                problem: format!(
                    "{} signed head(s) kept in {HEADS_FILE} are missing from the database (first at {first}): deleted",
                    missing_heads.len()
                ),
            });
        }
        if last_seq > covered {
            problems.push(AuditProblem {
                position: covered + 1,
                problem: format!(
                    "records {}..{last_seq} are not covered by a signed head: appended outside the CA, or written without the CA key",
                    covered + 1
                ),
            });
        }
        Ok(AuditReport {
            records: count,
            signed_heads: heads.len(),
            external_heads: external,
            problems,
        })
    }

    /// Sets the audited categories (Auditor only).
    pub async fn set_audit_categories(
        &self,
        actor: &Actor,
        categories: &[String],
    ) -> EngineResult<Vec<String>> {
        self.authorize(actor, Op::ConfigureAudit).await?;
        for c in categories {
            if !CATEGORIES.contains(&c.as_str()) {
                return Err(EngineError::bad_input(
                    crate::codes::E_INVALIDARG,
                    format!("unknown category '{c}' ({})", CATEGORIES.join(", ")),
                ));
            }
        }
        let value = categories.join(",");
        let audit = self.audit_entry(actor, "audit", "set audit categories", &value, "{}");
        self.store
            .apply(
                &[Change::SetSetting {
                    name: AUDIT_CATEGORIES.into(),
                    value: value.clone(),
                }],
                &audit,
            )
            .await?;
        Ok(categories.to_vec())
    }

    /// The audited categories.
    pub async fn audit_categories(&self) -> Vec<String> {
        self.categories().await
    }

    /// Records a CA event (also through tracing).
    pub async fn event(&self, event_id: i64, level: &str, message: &str) -> EngineResult<()> {
        match level {
            "error" => tracing::error!(event_id, "{message}"),
            "warning" => tracing::warn!(event_id, "{message}"),
            _ => tracing::info!(event_id, "{message}"),
        }
        self.store
            .add_event(now(), event_id, level, message)
            .await?;
        Ok(())
    }

    /// The latest CA events.
    pub async fn events(&self, actor: &Actor, limit: i64) -> EngineResult<Vec<EventRecord>> {
        self.authorize(actor, Op::ReadDatabase).await?;
        Ok(self.store.events(limit).await?)
    }
}
