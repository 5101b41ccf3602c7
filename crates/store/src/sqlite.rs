//! SQLite backend (embedded default): WAL journal, `synchronous=FULL` so an
//! acknowledged commit survives power loss.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite};

use crate::migrations;
use crate::model::*;
use crate::{Store, StoreError, StoreResult};

/// The SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

const SELECT_COLUMNS: &str = "request_id, request_der, request_kind, requester, template, \
    request_subject, disposition, disposition_message, status_code, submitted_at, resolved_at, \
    cert_der, serial, subject, common_name, upn, email, key_id, thumbprint, not_before, not_after, \
    key_algorithm, key_length, revoked_at, revocation_reason, \
    (CASE WHEN archived_key IS NULL THEN 0 ELSE 1 END) AS has_archived_key";

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let store = SqliteStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens an in-memory database (tests).
    pub async fn open_in_memory() -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let store = SqliteStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        let current: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                .fetch_one(&self.pool)
                .await?;
        let latest = migrations::SQLITE.last().map(|m| m.0).unwrap_or(0);
        if current > latest {
            return Err(StoreError::Schema(format!(
                "database schema version {current} is newer than this build ({latest})"
            )));
        }
        for (version, sql) in migrations::SQLITE.iter().filter(|m| m.0 > current) {
            let mut tx = self.pool.begin().await?;
            sqlx::raw_sql(AssertSqlSafe(*sql))
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::Schema(format!("migration {version} failed: {e}")))?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(now())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn record_from_row(row: &SqliteRow) -> StoreResult<RequestRecord> {
    let disposition: String = row.try_get("disposition")?;
    let disposition = Disposition::parse(&disposition)
        .ok_or_else(|| StoreError::Integrity(format!("unknown disposition '{disposition}'")))?;
    let cert_der: Option<Vec<u8>> = row.try_get("cert_der")?;
    let common_name: Option<String> = row.try_get("common_name")?;
    let upn: Option<String> = row.try_get("upn")?;
    let email: Option<String> = row.try_get("email")?;
    let cert = match cert_der {
        Some(cert_der) => Some(CertFields {
            cert_der,
            serial: row
                .try_get::<Option<String>, _>("serial")?
                .unwrap_or_default(),
            subject: row
                .try_get::<Option<String>, _>("subject")?
                .unwrap_or_default(),
            common_name: common_name.clone(),
            upn: upn.clone(),
            email: email.clone(),
            key_id: row
                .try_get::<Option<String>, _>("key_id")?
                .unwrap_or_default(),
            thumbprint: row
                .try_get::<Option<String>, _>("thumbprint")?
                .unwrap_or_default(),
            not_before: row
                .try_get::<Option<i64>, _>("not_before")?
                .unwrap_or_default(),
            not_after: row
                .try_get::<Option<i64>, _>("not_after")?
                .unwrap_or_default(),
            key_algorithm: row
                .try_get::<Option<String>, _>("key_algorithm")?
                .unwrap_or_default(),
            key_length: row
                .try_get::<Option<i64>, _>("key_length")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(RequestRecord {
        request_id: row.try_get("request_id")?,
        disposition,
        disposition_message: row.try_get("disposition_message")?,
        status_code: row.try_get("status_code")?,
        requester: row.try_get("requester")?,
        template: row.try_get("template")?,
        request_kind: row.try_get("request_kind")?,
        request_subject: row.try_get("request_subject")?,
        submitted_at: row.try_get("submitted_at")?,
        resolved_at: row.try_get("resolved_at")?,
        request_der: row.try_get("request_der")?,
        common_name,
        upn,
        email,
        cert,
        revoked_at: row.try_get("revoked_at")?,
        revocation_reason: row.try_get("revocation_reason")?,
        has_archived_key: row.try_get::<i64, _>("has_archived_key")? != 0,
    })
}

type Query<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>;

fn bind_cert<'q>(q: Query<'q>, c: &'q CertFields) -> Query<'q> {
    q.bind(&c.cert_der)
        .bind(&c.serial)
        .bind(&c.subject)
        .bind(&c.common_name)
        .bind(&c.upn)
        .bind(&c.email)
        .bind(&c.key_id)
        .bind(&c.thumbprint)
        .bind(c.not_before)
        .bind(c.not_after)
        .bind(&c.key_algorithm)
        .bind(c.key_length)
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_request(&self, new: &NewRequest) -> StoreResult<i64> {
        let resolved_at = match new.disposition {
            Disposition::Pending => None,
            _ => Some(new.submitted_at),
        };
        let c = new.cert.as_ref();
        // Certificate identities override the request's once a certificate exists.
        let common_name = c.map_or(&new.request_common_name, |c| &c.common_name);
        let upn = c.map_or(&new.request_upn, |c| &c.upn);
        let email = c.map_or(&new.request_email, |c| &c.email);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO requests (request_der, request_kind, requester, template, request_subject, \
             disposition, disposition_message, status_code, submitted_at, resolved_at, \
             common_name, upn, email, archived_key, kra_hashes, cert_der, serial, subject, key_id, \
             thumbprint, not_before, not_after, key_algorithm, key_length) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
             $19, $20, $21, $22, $23, $24) RETURNING request_id",
        )
        .bind(&new.request_der)
        .bind(&new.request_kind)
        .bind(&new.requester)
        .bind(&new.template)
        .bind(&new.request_subject)
        .bind(new.disposition.as_str())
        .bind(&new.disposition_message)
        .bind(new.status_code)
        .bind(new.submitted_at)
        .bind(resolved_at)
        .bind(common_name)
        .bind(upn)
        .bind(email)
        .bind(&new.archived_key)
        .bind(&new.kra_hashes)
        .bind(c.map(|c| &c.cert_der))
        .bind(c.map(|c| &c.serial))
        .bind(c.map(|c| &c.subject))
        .bind(c.map(|c| &c.key_id))
        .bind(c.map(|c| &c.thumbprint))
        .bind(c.map(|c| c.not_before))
        .bind(c.map(|c| c.not_after))
        .bind(c.map(|c| &c.key_algorithm))
        .bind(c.map(|c| c.key_length))
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    async fn get_request(&self, id: i64) -> StoreResult<Option<RequestRecord>> {
        let sql = format!("SELECT {SELECT_COLUMNS} FROM requests WHERE request_id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn get_by_serial(&self, serial: &str) -> StoreResult<Option<RequestRecord>> {
        let sql = format!("SELECT {SELECT_COLUMNS} FROM requests WHERE serial = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn issue_pending(
        &self,
        id: i64,
        cert: &CertFields,
        message: &str,
        at: i64,
    ) -> StoreResult<()> {
        let q = sqlx::query(
            "UPDATE requests SET cert_der = $1, serial = $2, subject = $3, common_name = $4, upn = $5, \
             email = $6, key_id = $7, thumbprint = $8, not_before = $9, not_after = $10, \
             key_algorithm = $11, key_length = $12, disposition = 'issued', disposition_message = $13, \
             status_code = 0, resolved_at = $14 WHERE request_id = $15 AND disposition = 'pending'",
        );
        let done = bind_cert(q, cert)
            .bind(message)
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!("request {id} is not pending")));
        }
        Ok(())
    }

    async fn deny_pending(
        &self,
        id: i64,
        message: &str,
        status_code: i64,
        at: i64,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE requests SET disposition = 'denied', disposition_message = $1, status_code = $2, \
             resolved_at = $3, archived_key = NULL, kra_hashes = NULL \
             WHERE request_id = $4 AND disposition = 'pending'",
        )
        .bind(message)
        .bind(status_code)
        .bind(at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!("request {id} is not pending")));
        }
        Ok(())
    }

    async fn revoke(&self, serial: &str, reason: i32, at: i64) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE requests SET disposition = 'revoked', revoked_at = $1, revocation_reason = $2, \
             disposition_message = 'Revoked' WHERE serial = $3 AND disposition = 'issued'",
        )
        .bind(at)
        .bind(reason)
        .bind(serial)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let state: Option<String> =
            sqlx::query_scalar("SELECT disposition FROM requests WHERE serial = $1")
                .bind(serial)
                .fetch_optional(&self.pool)
                .await?;
        match state {
            None => Err(StoreError::NotFound(format!(
                "no certificate with serial number {serial}"
            ))),
            Some(s) => Err(StoreError::Conflict(format!(
                "certificate {serial} cannot be revoked: it is {s}"
            ))),
        }
    }

    async fn revoked(&self) -> StoreResult<Vec<RevokedEntry>> {
        let rows = sqlx::query(
            "SELECT serial, revoked_at, revocation_reason FROM requests \
             WHERE disposition = 'revoked' ORDER BY revoked_at, request_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RevokedEntry {
                    serial: r.try_get("serial")?,
                    revoked_at: r.try_get("revoked_at")?,
                    reason: r.try_get("revocation_reason")?,
                })
            })
            .collect()
    }

    async fn next_crl_number(&self) -> StoreResult<i64> {
        let n: i64 = sqlx::query_scalar(
            "UPDATE counters SET value = value + 1 WHERE name = 'crl_number' RETURNING value",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    async fn insert_crl(&self, crl: &CrlRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO crls (crl_number, this_update, next_update, der) VALUES ($1, $2, $3, $4)",
        )
        .bind(crl.crl_number)
        .bind(crl.this_update)
        .bind(crl.next_update)
        .bind(&crl.der)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn latest_crl(&self) -> StoreResult<Option<CrlRecord>> {
        let row = sqlx::query(
            "SELECT crl_number, this_update, next_update, der FROM crls ORDER BY crl_number DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(CrlRecord {
                crl_number: r.try_get("crl_number")?,
                this_update: r.try_get("this_update")?,
                next_update: r.try_get("next_update")?,
                der: r.try_get("der")?,
            })
        })
        .transpose()
    }

    async fn query(
        &self,
        restrictions: &[Restriction],
        limit: i64,
    ) -> StoreResult<Vec<RequestRecord>> {
        let mut sql = format!("SELECT {SELECT_COLUMNS} FROM requests");
        for (i, r) in restrictions.iter().enumerate() {
            sql.push_str(if i == 0 { " WHERE " } else { " AND " });
            // Column and operator come from closed enums; the value is bound.
            sql.push_str(&format!("{} {} ${}", r.column.sql(), r.op.sql(), i + 1));
        }
        sql.push_str(&format!(
            " ORDER BY request_id LIMIT ${}",
            restrictions.len() + 1
        ));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for r in restrictions {
            q = match &r.value {
                Value::Text(t) => q.bind(t.clone()),
                Value::Int(n) => q.bind(*n),
            };
        }
        let rows = q.bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn templates(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT name, definition FROM templates ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("definition")?)))
            .collect()
    }

    async fn put_template(&self, name: &str, definition_json: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO templates (name, definition) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET definition = excluded.definition",
        )
        .bind(name)
        .bind(definition_json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn ca_templates(&self) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM ca_templates ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn set_ca_template(&self, name: &str, enabled: bool) -> StoreResult<()> {
        if enabled {
            sqlx::query(
                "INSERT INTO ca_templates (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .execute(&self.pool)
            .await?;
        } else {
            sqlx::query("DELETE FROM ca_templates WHERE name = $1")
                .bind(name)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    async fn archived_key(&self, id: i64) -> StoreResult<Option<Vec<u8>>> {
        let v: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT archived_key FROM requests WHERE request_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.flatten())
    }

    async fn kra_hashes(&self, id: i64) -> StoreResult<Option<String>> {
        let v: Option<Option<String>> =
            sqlx::query_scalar("SELECT kra_hashes FROM requests WHERE request_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.flatten())
    }

    async fn kra_certificates(&self) -> StoreResult<Vec<KraEntry>> {
        let rows = sqlx::query("SELECT thumbprint, cert_der, added_at FROM kra_certificates ORDER BY added_at, thumbprint")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(KraEntry {
                    thumbprint: r.try_get("thumbprint")?,
                    cert_der: r.try_get("cert_der")?,
                    added_at: r.try_get("added_at")?,
                })
            })
            .collect()
    }

    async fn add_kra_certificate(
        &self,
        thumbprint: &str,
        cert_der: &[u8],
        at: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO kra_certificates (thumbprint, cert_der, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT (thumbprint) DO NOTHING",
        )
        .bind(thumbprint)
        .bind(cert_der)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_kra_certificate(&self, thumbprint: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM kra_certificates WHERE thumbprint = $1")
            .bind(thumbprint)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn integrity_check(&self) -> StoreResult<()> {
        let result: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&self.pool)
            .await?;
        if result != "ok" {
            return Err(StoreError::Integrity(result));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_req(disposition: Disposition, cert: Option<CertFields>) -> NewRequest {
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
        }
    }

    fn cert(serial: &str) -> CertFields {
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
        }
    }

    #[tokio::test]
    async fn lifecycle() {
        let s = SqliteStore::open_in_memory().await.unwrap();
        let a = s
            .insert_request(&new_req(Disposition::Issued, Some(cert("01"))))
            .await
            .unwrap();
        let b = s
            .insert_request(&new_req(Disposition::Pending, None))
            .await
            .unwrap();
        assert!(b > a);
        s.issue_pending(b, &cert("02"), "Issued", 1).await.unwrap();
        assert!(matches!(
            s.issue_pending(b, &cert("03"), "Issued", 1).await,
            Err(StoreError::Conflict(_))
        ));
        // Duplicate serial is refused by the unique index and changes nothing.
        let c = s
            .insert_request(&new_req(Disposition::Issued, Some(cert("01"))))
            .await;
        assert!(c.is_err());
        assert_eq!(s.query(&[], 100).await.unwrap().len(), 2);
        s.revoke("01", 1, 5).await.unwrap();
        assert!(matches!(
            s.revoke("01", 1, 5).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.revoke("ff", 1, 5).await,
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

    #[tokio::test]
    async fn denial_clears_archived_key() {
        let s = SqliteStore::open_in_memory().await.unwrap();
        let mut n = new_req(Disposition::Pending, None);
        n.archived_key = Some(vec![1, 2, 3]);
        let id = s.insert_request(&n).await.unwrap();
        assert!(s.get_request(id).await.unwrap().unwrap().has_archived_key);
        s.deny_pending(id, "Denied by officer", 0, 2).await.unwrap();
        let r = s.get_request(id).await.unwrap().unwrap();
        assert_eq!(r.disposition, Disposition::Denied);
        assert!(!r.has_archived_key);
    }
}
