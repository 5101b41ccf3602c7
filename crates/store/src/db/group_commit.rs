//! Group commit of new requests: the inserts that queue while one write is
//! in progress share the next write transaction, one signed audit head and
//! one durable commit.
//!
//! Every caller queues its row and its audit records, then waits for the
//! write gate. Whoever gets the gate takes everything queued by then (its
//! own row, unless an earlier batch already committed it) and commits it as
//! one batch; each caller is answered only after the commit holding its row
//! is durable, or with the error that kept it out. When the database
//! refuses a row of the batch (a serial number already in use), the batch
//! is written again with each row and its audit records in their own
//! savepoint, so the refused row is rolled back alone and the others still
//! commit. The batch runs in a task of its own: a
//! caller that goes away (a client that hangs up) cannot cancel the commit
//! of the rows it carries for others.

use std::sync::Mutex;

use sqlx::Acquire;
use tokio::sync::oneshot;

use super::{SqlStore, Tx, WriteGate};
use crate::model::{AuditEntry, NewRequest};
use crate::{StoreError, StoreResult};

/// Rows committed in one transaction at most; the rest wait for the next.
const MAX_BATCH: usize = 256;

/// One queued insert and where its answer goes.
struct Job {
    new: NewRequest,
    audit: Vec<AuditEntry>,
    reply: oneshot::Sender<StoreResult<i64>>,
}

/// Inserts waiting for the next batch.
#[derive(Default)]
pub(super) struct CommitQueue {
    jobs: Mutex<Vec<Job>>,
}

impl std::fmt::Debug for CommitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitQueue").finish_non_exhaustive()
    }
}

impl CommitQueue {
    fn push(&self, job: Job) {
        if let Ok(mut q) = self.jobs.lock() {
            q.push(job);
        }
    }

    /// Up to [`MAX_BATCH`] jobs, oldest first; jobs whose caller has gone
    /// are dropped unwritten (nobody waits for their answer).
    fn take(&self) -> Vec<Job> {
        let Ok(mut q) = self.jobs.lock() else {
            return Vec::new();
        };
        q.retain(|j| !j.reply.is_closed());
        let n = q.len().min(MAX_BATCH);
        q.drain(..n).collect()
    }
}

impl SqlStore {
    /// Records a new request and its audit records through the group commit.
    pub(super) async fn insert_request(
        &self,
        new: &NewRequest,
        audit: &[AuditEntry],
    ) -> StoreResult<i64> {
        let (reply, answer) = oneshot::channel();
        self.queue.push(Job {
            new: new.clone(),
            audit: audit.to_vec(),
            reply,
        });
        let gate = self.lock_write_gate().await;
        let jobs = self.queue.take();
        if jobs.is_empty() {
            // An earlier batch committed this row already.
            drop(gate);
        } else {
            let store = self.clone();
            tokio::spawn(async move { store.commit_batch(gate, jobs).await });
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the write batch holding this request ended without an answer".into(),
            ))
        })
    }

    /// Writes `jobs` in one transaction under `gate` and answers each caller.
    /// The rows go in one after another on one chain head read once. When
    /// the unique index refuses a serial number (in practice never), nothing
    /// of the batch was written: it is written again with each row in its
    /// own savepoint, so only the refused row is left out. Any other failure
    /// (the database unreachable, a statement refused for another reason,
    /// the commit itself, whose outcome may be unknown) fails every caller
    /// of the batch and nothing is written a second time: after such an
    /// error the transaction may already be over (PostgreSQL aborts it,
    /// SQLite rolls it back on a full disk), so going on could acknowledge
    /// rows that were never written.
    async fn commit_batch(&self, gate: WriteGate, jobs: Vec<Job>) {
        let started = std::time::Instant::now();
        match self.write_all(&jobs).await {
            Ok(ids) => {
                drop(gate);
                tracing::debug!(
                    rows = ids.len(),
                    micros = started.elapsed().as_micros() as u64,
                    "group commit"
                );
                for (job, id) in jobs.into_iter().zip(ids) {
                    let _ = job.reply.send(Ok(id));
                }
            }
            Err(BatchError::Refused(StoreError::DuplicateSerial)) => {
                self.commit_one_by_one(gate, jobs).await
            }
            Err(BatchError::Refused(e) | BatchError::Commit(e)) => answer_all(jobs, &e),
        }
    }

    /// Every job in one transaction, committed; their request IDs in order.
    async fn write_all(&self, jobs: &[Job]) -> Result<Vec<i64>, BatchError> {
        let mut tx = self.begin_locked().await.map_err(BatchError::Refused)?;
        let mut ids = Vec::with_capacity(jobs.len());
        let written = async {
            // The rows, then every row's audit records in job order, on
            // the chain head read once (multi-row statements).
            let mut audit = Vec::new();
            for job in jobs {
                let (id, records) = self.insert_row(&mut tx, &job.new, &job.audit).await?;
                audit.extend(records);
                ids.push(id);
            }
            if audit.is_empty() {
                return Ok(None);
            }
            let head = self.chain_head(&mut tx).await?;
            let (seq, hash) = self.append_after(&mut tx, head, &audit).await?;
            self.seal_head(&mut tx, seq, hash).await
        }
        .await;
        let sealed = written.map_err(BatchError::Refused)?;
        tx.commit()
            .await
            .map_err(|e| BatchError::Commit(e.into()))?;
        self.after_commit(sealed);
        Ok(ids)
    }

    /// The slow path after a duplicate serial number: each job in its own
    /// savepoint of one transaction; a job refused as a duplicate is rolled
    /// back alone, any other error fails them all.
    async fn commit_one_by_one(&self, gate: WriteGate, jobs: Vec<Job>) {
        let mut tx = match self.begin_locked().await {
            Ok(tx) => tx,
            Err(e) => return answer_all(jobs, &e),
        };
        let mut written: Vec<(Job, i64)> = Vec::with_capacity(jobs.len());
        let mut head: Option<(i64, String)> = None;
        let mut jobs = jobs.into_iter();
        while let Some(job) = jobs.next() {
            match self.write_one(&mut tx, &job).await {
                Ok((id, job_head)) => {
                    head = job_head.or(head);
                    written.push((job, id));
                }
                // Rolled back to its savepoint: the others go on.
                Err(StoreError::DuplicateSerial) => {
                    let _ = job.reply.send(Err(StoreError::DuplicateSerial));
                }
                // The transaction may be over: nobody is acknowledged.
                Err(e) => {
                    let rest = written.into_iter().map(|(j, _)| j);
                    return answer_all(rest.chain([job]).chain(jobs).collect(), &e);
                }
            }
        }
        let committed = self.seal_and_commit(tx, head).await;
        drop(gate);
        match committed {
            Ok(()) => {
                for (job, id) in written {
                    let _ = job.reply.send(Ok(id));
                }
            }
            Err(e) => answer_all(written.into_iter().map(|(j, _)| j).collect(), &e),
        }
    }

    /// One row and its audit records in a savepoint of `tx`: rolled back
    /// alone when the database refuses either. Returns the request ID and
    /// the chain head after its records.
    async fn write_one(&self, tx: &mut Tx, job: &Job) -> StoreResult<(i64, Option<(i64, String)>)> {
        let mut savepoint = tx.begin().await?;
        let written = async {
            let (id, audit) = self
                .insert_row(&mut savepoint, &job.new, &job.audit)
                .await?;
            let head = self.append_records(&mut savepoint, &audit).await?;
            Ok::<_, StoreError>((id, head))
        }
        .await;
        match written {
            Ok(w) => {
                savepoint.commit().await?;
                Ok(w)
            }
            Err(e) => {
                savepoint.rollback().await?;
                Err(e)
            }
        }
    }
}

/// Why a batch did not commit.
enum BatchError {
    /// A statement before the commit failed: nothing was written.
    Refused(StoreError),
    /// The commit failed: its outcome may be unknown.
    Commit(StoreError),
}

/// Answers every job with (a copy of) the error that stopped the batch.
fn answer_all(jobs: Vec<Job>, e: &StoreError) {
    for job in jobs {
        let _ = job.reply.send(Err(copy_error(e)));
    }
}

/// The same error for another caller (driver errors are not `Clone`).
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Database(d) => StoreError::Database(sqlx::Error::Protocol(d.to_string())),
        StoreError::Unavailable(s) => StoreError::Unavailable(s.clone()),
        StoreError::Conflict(s) => StoreError::Conflict(s.clone()),
        StoreError::NotFound(s) => StoreError::NotFound(s.clone()),
        StoreError::DuplicateSerial => StoreError::DuplicateSerial,
        StoreError::Schema(s) => StoreError::Schema(s.clone()),
        StoreError::Integrity(s) => StoreError::Integrity(s.clone()),
    }
}

#[cfg(test)]
mod tests {
    use crate::db::requests::tests::{cert, new_req};
    use crate::db::tests::{test_hash, test_store};
    use crate::model::*;
    use crate::Store;

    fn issued(serial: &str) -> NewRequest {
        new_req(Disposition::Issued, Some(cert(serial)))
    }

    fn audit(n: usize) -> AuditEntry {
        AuditEntry {
            at: 1,
            actor: "alice".into(),
            category: "requests".into(),
            action: format!("insert {n}"),
            target: "{request_id}".into(),
            outcome: "success".into(),
            details: String::new(),
        }
    }

    /// Counts the heads it signs.
    #[derive(Debug, Default)]
    struct CountingSealer(std::sync::atomic::AtomicUsize);

    impl crate::HeadSealer for CountingSealer {
        fn seal(&self, seq: i64, hash: &str) -> Option<String> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Some(format!("sig-{seq}-{hash}"))
        }
        fn sealed(&self, _head: &AuditHead) {}
    }

    /// Forty inserts queued while the write gate is held, one of them with
    /// a serial number already used, become one batch: one signed head,
    /// every other row committed with its own audit record naming its ID,
    /// the refused row answered DuplicateSerial and leaving no record, and
    /// the audit chain without a gap.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_inserts_commit_as_one_batch_and_a_refused_row_alone_is_rolled_back() {
        let s = test_store(test_hash).await;
        let sealer = std::sync::Arc::new(CountingSealer::default());
        s.set_head_sealer(sealer.clone());
        s.insert_request(&issued("aa"), &[audit(0)]).await.unwrap();
        assert_eq!(sealer.0.load(std::sync::atomic::Ordering::SeqCst), 1);

        let gate = s.lock_write_gate().await;
        let mut tasks = Vec::new();
        for i in 1..=40usize {
            let s = s.clone();
            let serial = if i == 20 {
                "aa".to_string()
            } else {
                format!("{i:02x}ff")
            };
            tasks.push(tokio::spawn(async move {
                (i, s.insert_request(&issued(&serial), &[audit(i)]).await)
            }));
        }
        while s.queue.jobs.lock().unwrap().len() < 40 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        drop(gate);
        let mut ids = Vec::new();
        for t in tasks {
            let (i, r) = t.await.unwrap();
            if i == 20 {
                assert!(
                    matches!(r, Err(crate::StoreError::DuplicateSerial)),
                    "{r:?}"
                );
            } else {
                ids.push((i, r.unwrap()));
            }
        }
        assert_eq!(ids.len(), 39);
        assert_eq!(
            sealer.0.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "one head for the batch"
        );
        let records = s.audit_records(0, 1000).await.unwrap();
        assert_eq!(records.len(), 40);
        for (n, r) in records.iter().enumerate() {
            assert_eq!(r.seq, n as i64 + 1, "no gap in the chain");
        }
        assert_eq!(s.last_audit_head().await.unwrap().unwrap().seq, 40);
        assert!(!records.iter().any(|r| r.entry.action == "insert 20"));
        for (i, id) in ids {
            let r = records
                .iter()
                .find(|r| r.entry.action == format!("insert {i}"))
                .unwrap();
            assert_eq!(r.entry.target, id.to_string());
            assert!(Store::get_request(&s, id).await.unwrap().is_some());
        }
    }

    /// A caller that gives up before its batch is taken leaves no row.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_insert_is_not_written() {
        let s = test_store(test_hash).await;
        let gate = s.lock_write_gate().await;
        let s2 = s.clone();
        let abandoned =
            tokio::spawn(async move { s2.insert_request(&issued("0b"), &[audit(1)]).await });
        while s.queue.jobs.lock().unwrap().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        abandoned.abort();
        let _ = abandoned.await;
        drop(gate);
        let id = s.insert_request(&issued("0c"), &[audit(2)]).await.unwrap();
        assert!(Store::get_by_serial(&s, "0b").await.unwrap().is_none());
        let kept = Store::get_request(&s, id).await.unwrap().unwrap();
        assert_eq!(kept.cert.unwrap().serial, "0c");
        assert_eq!(s.audit_records(0, 10).await.unwrap().len(), 1);
    }
}
