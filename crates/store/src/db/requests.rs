//! Request rows: insert, lookups, disposition changes, revocation and the restricted search.

use sqlx::{AssertSqlSafe, Row};

use super::rows::{bind_cert, bind_new_request, record_from_row, ImportMeta};
use super::{SqlStore, Tx};
use crate::model::*;
use crate::sql::requests::{insert_request_sql, query_sql};
use crate::{StoreError, StoreResult};

/// Marks `old` as superseded by its issued renewal `id`, in the caller's
/// transaction; a certificate already renewed makes the whole change fail
/// (two renewals of one certificate racing: one wins).
async fn supersede(tx: &mut sqlx::AnyConnection, id: i64, old: i64) -> StoreResult<()> {
    let done = sqlx::query(crate::sql::requests::SUPERSEDE)
        .bind(id)
        .bind(old)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict(format!(
            "request {old} was already renewed"
        )));
    }
    Ok(())
}

impl SqlStore {
    /// Inserts `new` inside `tx`, names its ID in the audit records'
    /// `{request_id}` targets, appends them and commits.
    pub(super) async fn insert_request_and_commit(
        &self,
        mut tx: Tx,
        new: &NewRequest,
        audit: &[AuditEntry],
    ) -> StoreResult<i64> {
        let (id, audit) = self.insert_row(&mut tx, new, audit).await?;
        self.commit_with_audit(tx, &audit).await?;
        Ok(id)
    }

    /// Inserts `new` inside `tx`; returns its request ID and `audit` with
    /// the ID named in the `{request_id}` targets.
    pub(super) async fn insert_row(
        &self,
        tx: &mut sqlx::AnyConnection,
        new: &NewRequest,
        audit: &[AuditEntry],
    ) -> StoreResult<(i64, Vec<AuditEntry>)> {
        let id: i64 = bind_new_request(
            sqlx::query(concat!(insert_request_sql!(), " RETURNING request_id")),
            new,
            ImportMeta::default(),
        )
        .fetch_one(&mut *tx)
        .await?
        .try_get("request_id")?;
        if let (Some(old), Disposition::Issued) = (new.renewal_of, new.disposition) {
            supersede(&mut *tx, id, old).await?;
        }
        let audit = audit
            .iter()
            .cloned()
            .map(|mut e| {
                e.target = e.target.replace("{request_id}", &id.to_string());
                e
            })
            .collect();
        Ok((id, audit))
    }

    pub(super) async fn insert_requests_bulk(&self, news: &[NewRequest]) -> StoreResult<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        for new in news {
            bind_new_request(
                sqlx::query(insert_request_sql!()),
                new,
                ImportMeta::default(),
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn get_request(&self, id: i64) -> StoreResult<Option<RequestRecord>> {
        let row = sqlx::query(crate::sql::requests::GET_REQUEST)
            .bind(id)
            .fetch_optional(&self.pool())
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    pub(super) async fn get_by_serial(&self, serial: &str) -> StoreResult<Option<RequestRecord>> {
        let row = sqlx::query(crate::sql::requests::GET_BY_SERIAL)
            .bind(serial)
            .fetch_optional(&self.pool())
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    pub(super) async fn issue_pending(
        &self,
        id: i64,
        cert: &CertFields,
        message: &str,
        at: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        let q = sqlx::query(crate::sql::requests::ISSUE_PENDING);
        let done = bind_cert(q, cert)
            .bind(message)
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 1 {
            let old: Option<i64> = sqlx::query_scalar(crate::sql::requests::RENEWAL_OF)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            if let Some(old) = old {
                supersede(&mut tx, id, old).await?;
            }
        }
        self.commit_if_was_pending(tx, done.rows_affected(), id, audit)
            .await
    }

    pub(super) async fn deny_pending(
        &self,
        id: i64,
        message: &str,
        status_code: i64,
        at: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        let done = sqlx::query(crate::sql::requests::DENY_PENDING)
            .bind(message)
            .bind(status_code)
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.commit_if_was_pending(tx, done.rows_affected(), id, audit)
            .await
    }

    /// Commits a change to pending request `id` with its audit records if
    /// it touched the one row (`rows`), else a conflict: the request is no
    /// longer pending (the transaction is rolled back).
    async fn commit_if_was_pending(
        &self,
        tx: Tx,
        rows: u64,
        id: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        if rows != 1 {
            return Err(StoreError::Conflict(format!("request {id} is not pending")));
        }
        self.commit_with_audit(tx, audit).await?;
        Ok(())
    }

    pub(super) async fn revoke(
        &self,
        serial: &str,
        reason: i32,
        at: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        let done = sqlx::query(crate::sql::requests::REVOKE)
            .bind(at)
            .bind(reason)
            .bind(serial)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 1 {
            // A revoked KRA certificate stops being used at once.
            self.bump_config_version(&mut tx).await?;
            self.commit_with_audit(tx, audit).await?;
            return Ok(());
        }
        drop(tx);
        Err(self
            .why_not(serial, |s| {
                format!("certificate {serial} cannot be revoked: it is {s}")
            })
            .await?)
    }

    /// Why a revocation or release of `serial` changed nothing: no such
    /// certificate, or a conflict described by `conflict` from its state.
    async fn why_not(
        &self,
        serial: &str,
        conflict: impl FnOnce(&str) -> String,
    ) -> StoreResult<StoreError> {
        let state: Option<String> = sqlx::query_scalar(crate::sql::requests::DISPOSITION_BY_SERIAL)
            .bind(serial)
            .fetch_optional(&self.pool())
            .await?;
        Ok(match state {
            None => StoreError::NotFound(format!("no certificate with serial number {serial}")),
            Some(s) => StoreError::Conflict(conflict(&s)),
        })
    }

    pub(super) async fn unrevoke(&self, serial: &str, audit: &[AuditEntry]) -> StoreResult<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        let done = sqlx::query(crate::sql::requests::UNREVOKE)
            .bind(serial)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 1 {
            // A released KRA certificate is usable again at once.
            self.bump_config_version(&mut tx).await?;
            self.commit_with_audit(tx, audit).await?;
            return Ok(());
        }
        drop(tx);
        Err(self
            .why_not(serial, |s| {
                format!(
                    "certificate {serial} is not on hold (it is {s}); only a certificate revoked \
                     with reason certificateHold can be released"
                )
            })
            .await?)
    }

    pub(super) async fn revoked(&self) -> StoreResult<Vec<RevokedEntry>> {
        Ok(
            sqlx::query_as::<_, RevokedEntry>(crate::sql::requests::REVOKED)
                .fetch_all(&self.pool())
                .await?,
        )
    }

    pub(super) async fn query(
        &self,
        restrictions: &[Restriction],
        limit: i64,
    ) -> StoreResult<Vec<RequestRecord>> {
        let mut q = sqlx::query(AssertSqlSafe(query_sql(restrictions)));
        for r in restrictions {
            q = match &r.value {
                Value::Text(t) => q.bind(t.clone()),
                Value::Int(n) => q.bind(*n),
            };
        }
        let rows = q.bind(limit).fetch_all(&self.pool()).await?;
        rows.iter().map(record_from_row).collect()
    }

    pub(super) async fn archived_key(&self, id: i64) -> StoreResult<Option<Vec<u8>>> {
        let v: Option<Option<Vec<u8>>> = sqlx::query_scalar(crate::sql::requests::ARCHIVED_KEY)
            .bind(id)
            .fetch_optional(&self.pool())
            .await?;
        Ok(v.flatten())
    }

    pub(super) async fn kra_hashes(&self, id: i64) -> StoreResult<Option<String>> {
        let v: Option<Option<String>> = sqlx::query_scalar(crate::sql::requests::KRA_HASHES)
            .bind(id)
            .fetch_optional(&self.pool())
            .await?;
        Ok(v.flatten())
    }

    pub(super) async fn keys_for_kra(
        &self,
        thumbprint: &str,
    ) -> StoreResult<Vec<ArchivedKeyAgents>> {
        // kra_hashes is a comma-separated list of fixed-length hex thumbprints.
        let pattern = format!("%{}%", thumbprint.replace(['%', '_'], ""));
        let mut out = Vec::new();
        for r in sqlx::query(crate::sql::requests::ROWS_FOR_KRA)
            .bind(&pattern)
            .fetch_all(&self.pool())
            .await?
        {
            out.push(ArchivedKeyAgents {
                request_id: Some(r.try_get("request_id")?),
                serial: r.try_get("serial")?,
                key_id: None,
                kra_hashes: r.try_get("kra_hashes")?,
            });
        }
        for r in sqlx::query(crate::sql::requests::UNMATCHED_FOR_KRA)
            .bind(&pattern)
            .fetch_all(&self.pool())
            .await?
        {
            out.push(ArchivedKeyAgents {
                request_id: None,
                serial: None,
                key_id: Some(r.try_get("key_id")?),
                kra_hashes: r.try_get("kra_hashes")?,
            });
        }
        Ok(out)
    }

    pub(super) async fn find_by_owner_name(
        &self,
        name: &str,
        limit: i64,
    ) -> StoreResult<Vec<RequestRecord>> {
        let rows = sqlx::query(crate::sql::requests::FIND_BY_OWNER_NAME)
            .bind(name)
            .bind(limit)
            .fetch_all(&self.pool())
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    pub(super) async fn get_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> StoreResult<Option<RequestRecord>> {
        let row = sqlx::query(crate::sql::requests::GET_BY_THUMBPRINT)
            .bind(thumbprint)
            .fetch_optional(&self.pool())
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    pub(super) async fn unmatched_key_exists(&self, key_id: &str) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(crate::sql::requests::UNMATCHED_KEY_EXISTS)
            .bind(key_id)
            .fetch_one(&self.pool())
            .await?;
        Ok(n > 0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::db::tests::test_hash;
    use crate::Store;

    pub(crate) fn new_req(disposition: Disposition, cert: Option<CertFields>) -> NewRequest {
        NewRequest {
            request_der: vec![0x30, 0x00],
            request_kind: "pkcs10".into(),
            requester: "alice".into(),
            template: Some("User".into()),
            request_subject: "CN=Alice".into(),
            request_common_name: Some("Alice".into()),
            request_upn: None,
            request_email: None,
            disposition,
            disposition_message: "x".into(),
            status_code: 0,
            submitted_at: 1_700_000_000,
            cert,
            archived_key: None,
            kra_hashes: None,
            renewal_of: None,
        }
    }

    pub(crate) fn cert(serial: &str) -> CertFields {
        CertFields {
            cert_der: vec![0x30, 0x00],
            serial: serial.into(),
            subject: "CN=Alice".into(),
            common_name: Some("Alice".into()),
            upn: Some("alice@contoso.com".into()),
            email: None,
            key_id: "aa".into(),
            thumbprint: "bb".into(),
            not_before: 1_700_000_000,
            not_after: 1_800_000_000,
            key_algorithm: "rsa".into(),
            key_length: 2048,
            issuer_key_id: None,
        }
    }

    #[tokio::test]
    async fn lifecycle() {
        let s = crate::db::tests::test_store(test_hash).await;
        let a = s
            .insert_request(&new_req(Disposition::Issued, Some(cert("01"))), &[])
            .await
            .unwrap();
        let b = s
            .insert_request(&new_req(Disposition::Pending, None), &[])
            .await
            .unwrap();
        assert!(b > a);
        s.issue_pending(b, &cert("02"), "Issued", 1, &[])
            .await
            .unwrap();
        assert!(matches!(
            s.issue_pending(b, &cert("03"), "Issued", 1, &[]).await,
            Err(StoreError::Conflict(_))
        ));
        // Duplicate serial is refused by the unique index and changes nothing.
        let c = s
            .insert_request(&new_req(Disposition::Issued, Some(cert("01"))), &[])
            .await;
        assert!(c.is_err());
        assert_eq!(s.query(&[], 100).await.unwrap().len(), 2);
        s.revoke("01", 1, 5, &[]).await.unwrap();
        assert!(matches!(
            s.revoke("01", 1, 5, &[]).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.revoke("ff", 1, 5, &[]).await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(s.revoked().await.unwrap().len(), 1);
        assert_eq!(s.next_crl_number().await.unwrap(), 1);
        assert_eq!(s.next_crl_number().await.unwrap(), 2);
        let r = s
            .query(
                &[Restriction {
                    column: Column::Disposition,
                    op: Op::Eq,
                    value: Value::Text("issued".into()),
                }],
                10,
            )
            .await
            .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].request_id, b);
        s.integrity_check().await.unwrap();
    }

    /// The plan of `query` for `restrictions` (EXPLAIN QUERY PLAN details).
    async fn plan(s: &SqlStore, restrictions: &[Restriction]) -> String {
        let sql = format!("EXPLAIN QUERY PLAN {}", query_sql(restrictions));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for r in restrictions {
            q = match &r.value {
                Value::Text(t) => q.bind(t.clone()),
                Value::Int(n) => q.bind(*n),
            };
        }
        let rows = q.bind(10i64).fetch_all(&s.pool()).await.unwrap();
        rows.iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[tokio::test]
    async fn hot_lookups_use_selective_indexes() {
        let s = SqlStore::open_in_memory(test_hash).await.unwrap();
        let eq = |column, value: &str| Restriction {
            column,
            op: Op::Eq,
            value: Value::Text(value.into()),
        };
        // The exchange-certificate lookup made by every archival must not walk
        // every issued row through `requests_disposition`.
        let p = plan(
            &s,
            &[
                eq(Column::Template, "CAExchange"),
                eq(Column::Disposition, "issued"),
            ],
        )
        .await;
        assert!(p.contains("requests_template_disposition"), "{p}");
        // Recovery candidate searches.
        for column in [
            Column::CommonName,
            Column::Upn,
            Column::Email,
            Column::Requester,
        ] {
            let p = plan(
                &s,
                &[
                    eq(column, "x"),
                    Restriction {
                        column: Column::ArchivedKey,
                        op: Op::Eq,
                        value: Value::Int(1),
                    },
                ],
            )
            .await;
            assert!(p.starts_with("SEARCH requests USING INDEX"), "{p}");
            // case-insensitive recovery searches use the NOCASE indexes
            let p = plan(
                &s,
                &[
                    Restriction {
                        column,
                        op: Op::EqNoCase,
                        value: Value::Text("x".into()),
                    },
                    Restriction {
                        column: Column::ArchivedKey,
                        op: Op::Eq,
                        value: Value::Int(1),
                    },
                ],
            )
            .await;
            assert!(
                p.starts_with("SEARCH requests USING INDEX") && p.contains("_nocase"),
                "{p}"
            );
        }
        // imported owners' names
        let rows = sqlx::query(
            "EXPLAIN QUERY PLAN SELECT request_id FROM key_owner_names WHERE name = 'x'",
        )
        .fetch_all(&s.pool())
        .await
        .unwrap();
        let p: String = rows
            .iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect();
        assert!(
            p.contains("USING COVERING INDEX key_owner_names_name"),
            "{p}"
        );
    }

    #[tokio::test]
    async fn statistics_steer_mixed_lookups_to_the_selective_index() {
        let s = SqlStore::open_in_memory(test_hash).await.unwrap();
        for i in 0..400 {
            let mut c = cert(&format!("{i:04x}"));
            c.common_name = Some(format!("User {i}"));
            c.thumbprint = format!("{i:040x}");
            s.insert_request(&new_req(Disposition::Issued, Some(c)), &[])
                .await
                .unwrap();
        }
        s.optimize().await.unwrap();
        let p = plan(
            &s,
            &[
                Restriction {
                    column: Column::CommonName,
                    op: Op::Eq,
                    value: Value::Text("User 7".into()),
                },
                Restriction {
                    column: Column::Disposition,
                    op: Op::Eq,
                    value: Value::Text("issued".into()),
                },
            ],
        )
        .await;
        assert!(!p.contains("requests_disposition"), "{p}");
    }

    /// A second certificate with a serial already recorded is refused as
    /// `DuplicateSerial` (the engine signs again) and writes nothing, on
    /// either backend (the unique index names differ).
    #[tokio::test]
    async fn a_duplicate_serial_is_refused_and_writes_nothing() {
        let s = crate::db::tests::test_store(test_hash).await;
        s.insert_request(&new_req(Disposition::Issued, Some(cert("0a"))), &[])
            .await
            .unwrap();
        let before = s.row_counts().await.unwrap();
        let audit = AuditEntry {
            at: 1,
            actor: "a".into(),
            category: "requests".into(),
            action: "issue".into(),
            target: "t".into(),
            outcome: "success".into(),
            details: "{}".into(),
        };
        let e = s
            .insert_request(&new_req(Disposition::Issued, Some(cert("0a"))), &[audit])
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::DuplicateSerial), "{e}");
        assert_eq!(s.row_counts().await.unwrap(), before);
        let p = s
            .insert_request(&new_req(Disposition::Pending, None), &[])
            .await
            .unwrap();
        assert!(matches!(
            s.issue_pending(p, &cert("0a"), "Issued", 2, &[]).await,
            Err(StoreError::DuplicateSerial)
        ));
    }

    #[tokio::test]
    async fn denial_clears_archived_key() {
        let s = crate::db::tests::test_store(test_hash).await;
        let mut n = new_req(Disposition::Pending, None);
        n.archived_key = Some(vec![1, 2, 3]);
        let id = s.insert_request(&n, &[]).await.unwrap();
        assert!(s.get_request(id).await.unwrap().unwrap().has_archived_key);
        s.deny_pending(id, "Denied by officer", 0, 2, &[])
            .await
            .unwrap();
        let r = s.get_request(id).await.unwrap().unwrap();
        assert_eq!(r.disposition, Disposition::Denied);
        assert!(!r.has_archived_key);
    }
}
