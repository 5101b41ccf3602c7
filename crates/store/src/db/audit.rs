//! Audit log and heads: the chained append inside a write transaction, the head sealer hook, reads.

use super::{now, SqlStore, Tx};
use crate::model::*;
use crate::StoreResult;

/// Signs audit chain heads inside the transaction that appends the records
/// (supplied by the engine: the store holds no keys), so every committed
/// record is covered by a signed head and deleting the newest records shows.
pub trait HeadSealer: Send + Sync + std::fmt::Debug {
    /// The signature (hex) over the head `seq:hash`, or `None` when no key is
    /// available (the records are then committed unsealed).
    fn seal(&self, seq: i64, hash: &str) -> Option<String>;
    /// Called once the transaction holding `head` has committed (the engine
    /// copies the head outside the database).
    fn sealed(&self, head: &AuditHead);
}

impl SqlStore {
    /// Installs the head sealer (once; later calls are ignored).
    pub fn set_head_sealer(&self, sealer: std::sync::Arc<dyn HeadSealer>) {
        let _ = self.sealer.set(sealer);
    }

    /// Appends `audit` to the chain inside `tx`, commits, and hands the new
    /// signed head to the sealer: the one way every write transaction ends,
    /// so no committed head misses its copy outside the database.
    pub(super) async fn commit_with_audit(
        &self,
        mut tx: Tx,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let head = self.append_records(&mut tx, audit).await?;
        self.seal_and_commit(tx, head).await
    }

    /// Signs the chain head `head` (the last record this transaction
    /// appended, if any) in `tx`, commits, and hands the head to the sealer
    /// once it is durable.
    pub(super) async fn seal_and_commit(
        &self,
        mut tx: Tx,
        head: Option<(i64, String)>,
    ) -> StoreResult<()> {
        let sealed = match head {
            Some((seq, hash)) => self.seal_head(&mut tx, seq, hash).await?,
            None => None,
        };
        tx.commit().await?;
        self.after_commit(sealed);
        Ok(())
    }

    /// Hands a committed head to the sealer.
    pub(super) fn after_commit(&self, head: Option<AuditHead>) {
        if let (Some(h), Some(s)) = (head, self.sealer.get()) {
            s.sealed(&h);
        }
    }

    /// Appends audit records inside `tx`, chained to the current head;
    /// returns the new head's (sequence number, hash), None when `entries`
    /// is empty. The caller seals the head before it commits.
    pub(super) async fn append_records(
        &self,
        tx: &mut sqlx::AnyConnection,
        entries: &[AuditEntry],
    ) -> StoreResult<Option<(i64, String)>> {
        if entries.is_empty() {
            return Ok(None);
        }
        let head = self.chain_head(&mut *tx).await?;
        Ok(Some(self.append_after(tx, head, entries).await?))
    }

    /// The chain head (sequence number, hash) as `tx` sees it; the genesis
    /// hash at sequence 0 when the log is empty.
    pub(super) async fn chain_head(
        &self,
        tx: &mut sqlx::AnyConnection,
    ) -> StoreResult<(i64, String)> {
        let last: Option<(i64, String)> = sqlx::query_as(crate::sql::audit::CHAIN_HEAD)
            .fetch_optional(&mut *tx)
            .await?;
        Ok(last.unwrap_or((0, GENESIS_HASH.to_string())))
    }

    /// Appends `entries` after the head `(seq, prev)` inside `tx` (the caller
    /// holds the write lock, so the head cannot move); returns the new head.
    pub(super) async fn append_after(
        &self,
        tx: &mut sqlx::AnyConnection,
        (mut seq, mut prev): (i64, String),
        entries: &[AuditEntry],
    ) -> StoreResult<(i64, String)> {
        let mut rows = Vec::with_capacity(entries.len());
        for e in entries {
            seq += 1;
            let hash = (self.hasher)(&AuditRecord::chain_input(seq, e, &prev));
            rows.push((seq, e, std::mem::replace(&mut prev, hash.clone()), hash));
        }
        for chunk in rows.chunks(crate::sql::audit::RECORDS_PER_STATEMENT) {
            let sql = crate::sql::audit::append_records(chunk.len());
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (seq, e, prev_hash, hash) in chunk {
                q = q
                    .bind(*seq)
                    .bind(e.at)
                    .bind(&e.actor)
                    .bind(&e.category)
                    .bind(&e.action)
                    .bind(&e.target)
                    .bind(&e.outcome)
                    .bind(&e.details)
                    .bind(prev_hash)
                    .bind(hash);
            }
            q.execute(&mut *tx).await?;
        }
        Ok((seq, prev))
    }

    /// Signs the head (`seq`, `hash`) and records it inside `tx`, when a
    /// sealer is installed and has a key.
    pub(super) async fn seal_head(
        &self,
        tx: &mut Tx,
        seq: i64,
        hash: String,
    ) -> StoreResult<Option<AuditHead>> {
        let Some(signature) = self.sealer.get().and_then(|s| s.seal(seq, &hash)) else {
            return Ok(None);
        };
        let head = AuditHead {
            seq,
            hash,
            signature,
            at: now(),
        };
        sqlx::query(crate::sql::audit::INSERT_HEAD)
            .bind(head.seq)
            .bind(&head.hash)
            .bind(&head.signature)
            .bind(head.at)
            .execute(&mut **tx)
            .await?;
        Ok(Some(head))
    }

    pub(super) async fn append_audit(&self, audit: &[AuditEntry]) -> StoreResult<()> {
        let (_gate, tx) = self.begin_write().await?;
        self.commit_with_audit(tx, audit).await?;
        Ok(())
    }

    pub(super) async fn audit_records(
        &self,
        from: i64,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>> {
        Ok(
            sqlx::query_as::<_, AuditRecord>(crate::sql::audit::AUDIT_RECORDS)
                .bind(from)
                .bind(limit)
                .fetch_all(&self.pool())
                .await?,
        )
    }

    pub(super) async fn last_audit_record(&self) -> StoreResult<Option<AuditRecord>> {
        Ok(
            sqlx::query_as::<_, AuditRecord>(crate::sql::audit::LAST_AUDIT_RECORD)
                .fetch_optional(&self.pool())
                .await?,
        )
    }

    pub(super) async fn add_audit_head(&self, head: &AuditHead) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        sqlx::query(crate::sql::audit::INSERT_HEAD)
            .bind(head.seq)
            .bind(&head.hash)
            .bind(&head.signature)
            .bind(head.at)
            .execute(&self.pool())
            .await?;
        Ok(())
    }

    pub(super) async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>> {
        Ok(
            sqlx::query_as::<_, AuditHead>(crate::sql::audit::AUDIT_HEADS)
                .fetch_all(&self.pool())
                .await?,
        )
    }

    pub(super) async fn last_audit_head(&self) -> StoreResult<Option<AuditHead>> {
        Ok(
            sqlx::query_as::<_, AuditHead>(crate::sql::audit::LAST_AUDIT_HEAD)
                .fetch_optional(&self.pool())
                .await?,
        )
    }
}

#[cfg(test)]
mod audit_tests {
    use super::*;

    fn h(b: &[u8]) -> String {
        format!(
            "{:x}",
            b.iter()
                .fold(0u64, |h, x| h.wrapping_mul(131).wrapping_add(*x as u64))
        )
    }

    fn entry(action: &str) -> AuditEntry {
        AuditEntry {
            at: 1,
            actor: "a".into(),
            category: "config".into(),
            action: action.into(),
            target: "t".into(),
            outcome: "success".into(),
            details: "{}".into(),
        }
    }

    #[tokio::test]
    async fn audit_chain_links_and_config_changes_are_atomic() {
        let s = crate::db::tests::test_store(h).await;
        s.append_audit(&[entry("one"), entry("two")]).await.unwrap();
        // a failing change leaves neither the change nor its audit record
        let bad = s
            .apply(
                &[Change::RemoveKra {
                    thumbprint: "nope".into(),
                }],
                &[entry("three")],
            )
            .await;
        assert!(bad.is_err());
        let recs = s.audit_records(1, 100).await.unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].prev_hash, GENESIS_HASH);
        assert_eq!(recs[1].prev_hash, recs[0].hash);
        assert_eq!(
            recs[1].hash,
            h(&AuditRecord::chain_input(2, &recs[1].entry, &recs[0].hash))
        );
        s.apply(
            &[Change::SetSetting {
                name: "x".into(),
                value: "1".into(),
            }],
            &[entry("four")],
        )
        .await
        .unwrap();
        assert_eq!(s.setting("x").await.unwrap().as_deref(), Some("1"));
        assert_eq!(s.audit_records(1, 100).await.unwrap().len(), 3);
    }
}
