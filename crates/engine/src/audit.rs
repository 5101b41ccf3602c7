//! The tamper-evident audit trail (hash chain with CA-signed heads) and the CA
//! event log.

use std::collections::HashMap;

use lockbox_codec::hexfmt::to_hex;
use lockbox_crypto::digest::sha256;
use lockbox_crypto::verify::verify_signature;
use lockbox_store::{AuditEntry, AuditHead, AuditRecord, Change, EventRecord, GENESIS_HASH};
use serde::Serialize;

use crate::authz::{Actor, Op};
use crate::ca::Ca;
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
        let heads = self.store.audit_heads().await?;
        let (_, ca) = self.ca_cert()?;
        for h in &heads {
            let sig = hex::decode(&h.signature).unwrap_or_default();
            let ok = verify_signature(
                ca.tbs_certificate().subject_public_key_info(),
                ca.signature_algorithm(),
                format!("{}:{}", h.seq, h.hash).as_bytes(),
                &sig,
            );
            let ca_alg_ok = ok.is_ok()
                || verify_signature(
                    ca.tbs_certificate().subject_public_key_info(),
                    &self.signing_key()?.signature_algorithm(),
                    format!("{}:{}", h.seq, h.hash).as_bytes(),
                    &sig,
                )
                .is_ok();
            if !ca_alg_ok {
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
        Ok(AuditReport {
            records: count,
            signed_heads: heads.len(),
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
