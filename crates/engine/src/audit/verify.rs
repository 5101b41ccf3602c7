//! Verification of the audit chain: record hashes, links, positions, signed heads and the head file.

use std::collections::HashMap;

use lockbox_crypto::verify::verify_signature;
use lockbox_store::{AuditHead, AuditRecord, GENESIS_HASH};

use crate::audit::heads::read_head_file;
use crate::audit::{chain_hash, AuditProblem, AuditReport, HEADS_FILE};
use crate::core::Core;
use crate::{EngineError, EngineResult};

/// The records as read: how many, the last position, each position's hash.
struct Records {
    count: i64,
    last_seq: i64,
    by_seq: HashMap<i64, String>,
}

/// Verifies the chain: every record's hash, its link to the previous one,
/// contiguous positions, and every signed head.
pub(crate) async fn verify(core: &Core) -> EngineResult<AuditReport> {
    let mut problems = Vec::new();
    let records = walk_records(core, &mut problems).await?;
    let heads = core.store.audit_heads().await?;
    let (_, ca) = core.ca_cert()?;
    let key_alg = core.signing_key()?.signature_algorithm();
    // Heads signed before a renewal with a new key were signed by an earlier
    // CA key: every generation's key is tried, with the algorithms CA keys sign with.
    let mut keys: Vec<&spki::SubjectPublicKeyInfoOwned> =
        vec![ca.tbs_certificate().subject_public_key_info()];
    keys.extend(
        core.generations
            .all
            .iter()
            .map(|g| g.cert.tbs_certificate().subject_public_key_info()),
    );
    let mut algs = vec![key_alg, ca.signature_algorithm().clone()];
    algs.extend(
        [
            lockbox_codec::oids::SHA256_WITH_RSA,
            lockbox_codec::oids::SHA384_WITH_RSA,
            lockbox_codec::oids::ECDSA_WITH_SHA256,
            lockbox_codec::oids::ECDSA_WITH_SHA384,
        ]
        .into_iter()
        .map(|oid| spki::AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        }),
    );
    let signed_ok = |h: &AuditHead| {
        let sig = hex::decode(&h.signature).unwrap_or_default();
        let msg = format!("{}:{}", h.seq, h.hash);
        keys.iter().any(|spki| {
            algs.iter()
                .any(|alg| verify_signature(spki, alg, msg.as_bytes(), &sig).is_ok())
        })
    };
    check_database_heads(&heads, &records, &signed_ok, &mut problems);
    let external = check_head_file(core, &heads, &records, &signed_ok, &mut problems)?;
    Ok(AuditReport {
        records: records.count,
        signed_heads: heads.len(),
        external_heads: external,
        problems,
    })
}

/// Reads every record in position order, checking positions, links and hashes.
async fn walk_records(core: &Core, problems: &mut Vec<AuditProblem>) -> EngineResult<Records> {
    let mut expected_seq = 1;
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut by_seq: HashMap<i64, String> = HashMap::new();
    let mut from = 1;
    let mut count = 0;
    loop {
        let batch = core.store.audit_records(from, 10_000).await?;
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
    Ok(Records {
        count,
        last_seq: expected_seq - 1,
        by_seq,
    })
}

/// Each signed head in the database: its signature and the record it names.
fn check_database_heads(
    heads: &[AuditHead],
    records: &Records,
    signed_ok: &dyn Fn(&AuditHead) -> bool,
    problems: &mut Vec<AuditProblem>,
) {
    for h in heads {
        if !signed_ok(h) {
            problems.push(AuditProblem {
                position: h.seq,
                problem: "signed head has a bad signature".into(),
            });
        }
        match records.by_seq.get(&h.seq) {
            Some(hash) if hash == &h.hash => {}
            Some(_) => problems.push(AuditProblem {
                position: h.seq,
                problem: "record differs from the signed head: modified".into(),
            }),
            None => problems.push(AuditProblem {
                position: h.seq,
                problem: "a signed head names a record that is gone: records were deleted".into(),
            }),
        }
    }
}

/// The copy of every signed head outside the database: a database-only
/// attacker can delete records and heads, or rewrite records and recompute
/// the chain, but cannot change this file or sign new heads. Returns how
/// many heads the file holds.
fn check_head_file(
    core: &Core,
    heads: &[AuditHead],
    records: &Records,
    signed_ok: &dyn Fn(&AuditHead) -> bool,
    problems: &mut Vec<AuditProblem>,
) -> EngineResult<usize> {
    let last_seq = records.last_seq;
    let db_heads: HashMap<i64, &AuditHead> = heads.iter().map(|h| (h.seq, h)).collect();
    let mut covered = heads.last().map_or(0, |h| h.seq);
    let file = read_head_file(&core.home).map_err(EngineError::io(format!(
        "reading {}",
        core.home.path(HEADS_FILE).display()
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
        match records.by_seq.get(&h.seq) {
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
    report_gaps(last_seq, covered, truncated_to, &missing_heads, problems);
    Ok(external)
}

/// What the head file shows is missing: a truncated tail, heads deleted from
/// the database, records no signed head covers.
fn report_gaps(
    last_seq: i64,
    covered: i64,
    truncated_to: Option<i64>,
    missing_heads: &[i64],
    problems: &mut Vec<AuditProblem>,
) {
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
}
