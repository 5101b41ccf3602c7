//! CA-wide tables: CRLs and their numbers, templates, CA templates, KRA certificates,
//! settings and the event log.

use super::SqliteStore;
use crate::model::*;
use crate::StoreResult;

impl SqliteStore {
    pub(super) async fn next_crl_number(&self) -> StoreResult<i64> {
        let n: i64 = sqlx::query_scalar(
            "UPDATE counters SET value = value + 1 WHERE name = 'crl_number' RETURNING value",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    pub(super) async fn insert_crl(&self, crl: &CrlRecord) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
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

    pub(super) async fn latest_crl(&self) -> StoreResult<Option<CrlRecord>> {
        Ok(sqlx::query_as::<_, CrlRecord>(
            "SELECT crl_number, this_update, next_update, der FROM crls ORDER BY crl_number DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    pub(super) async fn templates(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT name, definition FROM templates ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub(super) async fn ca_templates(&self) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM ca_templates ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub(super) async fn kra_certificates(&self) -> StoreResult<Vec<KraEntry>> {
        Ok(sqlx::query_as::<_, KraEntry>("SELECT thumbprint, cert_der, added_at, chain_der, crl_source FROM kra_certificates ORDER BY added_at, thumbprint")
            .fetch_all(&self.pool)
            .await?)
    }

    pub(super) async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub(super) async fn add_event(
        &self,
        at: i64,
        event_id: i64,
        level: &str,
        message: &str,
    ) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        sqlx::query("INSERT INTO events (at, event_id, level, message) VALUES ($1, $2, $3, $4)")
            .bind(at)
            .bind(event_id)
            .bind(level)
            .bind(message)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn events(&self, limit: i64) -> StoreResult<Vec<EventRecord>> {
        Ok(sqlx::query_as::<_, EventRecord>(
            "SELECT id, at, event_id, level, message FROM events ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
