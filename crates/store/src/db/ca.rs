//! CA-wide tables: CRLs and their numbers, templates, CA templates, KRA certificates,
//! settings and the event log.

use super::SqlStore;
use crate::model::*;
use crate::StoreResult;

impl SqlStore {
    pub(super) async fn next_crl_number(&self) -> StoreResult<i64> {
        let n: i64 = sqlx::query_scalar(crate::sql::ca::NEXT_CRL_NUMBER)
            .fetch_one(&self.pool())
            .await?;
        Ok(n)
    }

    pub(super) async fn next_crl(&self) -> StoreResult<(i64, Vec<RevokedEntry>)> {
        let (_gate, mut tx) = self.begin_write().await?;
        let n: i64 = sqlx::query_scalar(crate::sql::ca::NEXT_CRL_NUMBER)
            .fetch_one(&mut *tx)
            .await?;
        let revoked = sqlx::query_as::<_, RevokedEntry>(crate::sql::requests::REVOKED)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((n, revoked))
    }

    pub(super) async fn insert_crl(&self, crl: &CrlRecord) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        sqlx::query(crate::sql::ca::INSERT_CRL)
            .bind(crl.crl_number)
            .bind(crl.this_update)
            .bind(crl.next_update)
            .bind(&crl.der)
            .bind(crl.delta_base)
            .bind(crl.key_index)
            .execute(&self.pool())
            .await?;
        Ok(())
    }

    pub(super) async fn latest_crl(&self, key_index: i64) -> StoreResult<Option<CrlRecord>> {
        Ok(sqlx::query_as::<_, CrlRecord>(crate::sql::ca::LATEST_CRL)
            .bind(key_index)
            .fetch_optional(&self.pool())
            .await?)
    }

    pub(super) async fn latest_delta_crl(&self, key_index: i64) -> StoreResult<Option<CrlRecord>> {
        Ok(
            sqlx::query_as::<_, CrlRecord>(crate::sql::ca::LATEST_DELTA_CRL)
                .bind(key_index)
                .fetch_optional(&self.pool())
                .await?,
        )
    }

    pub(super) async fn templates(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as(crate::sql::ca::TEMPLATES)
            .fetch_all(&self.pool())
            .await?)
    }

    pub(super) async fn ca_templates(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(crate::sql::ca::CA_TEMPLATES)
            .fetch_all(&self.pool())
            .await?)
    }

    pub(super) async fn kra_certificates(&self) -> StoreResult<Vec<KraEntry>> {
        Ok(
            sqlx::query_as::<_, KraEntry>(crate::sql::ca::KRA_CERTIFICATES)
                .fetch_all(&self.pool())
                .await?,
        )
    }

    pub(super) async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(crate::sql::ca::SETTING)
            .bind(name)
            .fetch_optional(&self.pool())
            .await?)
    }

    pub(super) async fn add_event(
        &self,
        at: i64,
        event_id: i64,
        level: &str,
        message: &str,
    ) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        sqlx::query(crate::sql::ca::ADD_EVENT)
            .bind(at)
            .bind(event_id)
            .bind(level)
            .bind(message)
            .execute(&self.pool())
            .await?;
        Ok(())
    }

    pub(super) async fn events(&self, limit: i64) -> StoreResult<Vec<EventRecord>> {
        Ok(sqlx::query_as::<_, EventRecord>(crate::sql::ca::EVENTS)
            .bind(limit)
            .fetch_all(&self.pool())
            .await?)
    }
}
