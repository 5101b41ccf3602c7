//! CA exchange keys: sealed keys by certificate serial, and the one
//! transaction that records a new exchange certificate unless another node
//! has just made one.

use super::SqlStore;
use crate::model::*;
use crate::StoreResult;

impl SqlStore {
    pub(super) async fn exchange_key(&self, serial: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(crate::sql::exchange::SEALED_KEY)
            .bind(serial)
            .fetch_optional(&self.pool())
            .await?)
    }

    pub(super) async fn exchange_key_serials(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(crate::sql::exchange::SERIALS)
            .fetch_all(&self.pool())
            .await?)
    }

    pub(super) async fn insert_exchange_certificate(
        &self,
        new: &NewRequest,
        sealed_key: &[u8],
        fresh_after: i64,
        ignore: &[String],
        audit: &[AuditEntry],
    ) -> StoreResult<Option<i64>> {
        let Some(cert) = new.cert.as_ref() else {
            return Err(crate::StoreError::Conflict(
                "an exchange certificate row needs its certificate".into(),
            ));
        };
        // Under the write lock (every node's): the check and the insert see
        // the same table, so of two nodes renewing at once one records.
        let (_gate, mut tx) = self.begin_write().await?;
        let fresh: Vec<String> = sqlx::query_scalar(crate::sql::exchange::FRESH_WITH_KEY)
            .bind(fresh_after)
            .bind(new.submitted_at)
            .fetch_all(&mut *tx)
            .await?;
        if fresh.iter().any(|s| !ignore.contains(s)) {
            return Ok(None);
        }
        super::changes::put_exchange_key(&mut tx, &cert.serial, sealed_key, new.submitted_at)
            .await?;
        self.bump_config_version(&mut tx).await?;
        let id = self.insert_request_and_commit(tx, new, audit).await?;
        Ok(Some(id))
    }
}
