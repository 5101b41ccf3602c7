//! The [`Store`] trait for [`SqlStore`]: each method forwards to the file of
//! its concern; the few that differ by backend ask the dialect.

use std::path::Path;

use async_trait::async_trait;

use super::connect::create_private_file;
use super::SqlStore;
use crate::dialect::{self, Backend};
use crate::model::*;
use crate::{Store, StoreError, StoreResult};

#[async_trait]
impl Store for SqlStore {
    async fn insert_request(&self, new: &NewRequest, audit: &[AuditEntry]) -> StoreResult<i64> {
        SqlStore::insert_request(self, new, audit).await
    }

    async fn insert_requests_bulk(&self, news: &[NewRequest]) -> StoreResult<()> {
        SqlStore::insert_requests_bulk(self, news).await
    }

    async fn get_request(&self, id: i64) -> StoreResult<Option<RequestRecord>> {
        SqlStore::get_request(self, id).await
    }

    async fn get_by_serial(&self, serial: &str) -> StoreResult<Option<RequestRecord>> {
        SqlStore::get_by_serial(self, serial).await
    }

    async fn issue_pending(
        &self,
        id: i64,
        cert: &CertFields,
        message: &str,
        at: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        SqlStore::issue_pending(self, id, cert, message, at, audit).await
    }

    async fn deny_pending(
        &self,
        id: i64,
        message: &str,
        status_code: i64,
        at: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        SqlStore::deny_pending(self, id, message, status_code, at, audit).await
    }

    async fn revoke(
        &self,
        serial: &str,
        reason: i32,
        at: i64,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        SqlStore::revoke(self, serial, reason, at, audit).await
    }

    async fn unrevoke(&self, serial: &str, audit: &[AuditEntry]) -> StoreResult<()> {
        SqlStore::unrevoke(self, serial, audit).await
    }

    async fn revoked(&self) -> StoreResult<Vec<RevokedEntry>> {
        SqlStore::revoked(self).await
    }

    async fn next_crl_number(&self) -> StoreResult<i64> {
        SqlStore::next_crl_number(self).await
    }

    async fn next_crl(&self) -> StoreResult<(i64, Vec<RevokedEntry>)> {
        SqlStore::next_crl(self).await
    }

    async fn insert_crl(&self, crl: &CrlRecord) -> StoreResult<()> {
        SqlStore::insert_crl(self, crl).await
    }

    async fn latest_crl(&self, key_index: i64) -> StoreResult<Option<CrlRecord>> {
        SqlStore::latest_crl(self, key_index).await
    }

    async fn latest_delta_crl(&self, key_index: i64) -> StoreResult<Option<CrlRecord>> {
        SqlStore::latest_delta_crl(self, key_index).await
    }

    async fn query(
        &self,
        restrictions: &[Restriction],
        limit: i64,
    ) -> StoreResult<Vec<RequestRecord>> {
        SqlStore::query(self, restrictions, limit).await
    }

    async fn templates(&self) -> StoreResult<Vec<(String, String)>> {
        SqlStore::templates(self).await
    }

    async fn ca_templates(&self) -> StoreResult<Vec<String>> {
        SqlStore::ca_templates(self).await
    }

    async fn archived_key(&self, id: i64) -> StoreResult<Option<Vec<u8>>> {
        SqlStore::archived_key(self, id).await
    }

    async fn kra_hashes(&self, id: i64) -> StoreResult<Option<String>> {
        SqlStore::kra_hashes(self, id).await
    }

    async fn keys_for_kra(&self, thumbprint: &str) -> StoreResult<Vec<ArchivedKeyAgents>> {
        SqlStore::keys_for_kra(self, thumbprint).await
    }

    async fn kra_certificates(&self) -> StoreResult<Vec<KraEntry>> {
        SqlStore::kra_certificates(self).await
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        SqlStore::setting(self, name).await
    }

    async fn apply(&self, changes: &[Change], audit: &[AuditEntry]) -> StoreResult<()> {
        SqlStore::apply(self, changes, audit).await
    }

    async fn find_by_owner_name(&self, name: &str, limit: i64) -> StoreResult<Vec<RequestRecord>> {
        SqlStore::find_by_owner_name(self, name, limit).await
    }

    async fn append_audit(&self, audit: &[AuditEntry]) -> StoreResult<()> {
        SqlStore::append_audit(self, audit).await
    }

    async fn audit_records(&self, from: i64, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        SqlStore::audit_records(self, from, limit).await
    }

    async fn last_audit_record(&self) -> StoreResult<Option<AuditRecord>> {
        SqlStore::last_audit_record(self).await
    }

    async fn add_audit_head(&self, head: &AuditHead) -> StoreResult<()> {
        SqlStore::add_audit_head(self, head).await
    }

    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>> {
        SqlStore::audit_heads(self).await
    }

    async fn last_audit_head(&self) -> StoreResult<Option<AuditHead>> {
        SqlStore::last_audit_head(self).await
    }

    async fn add_event(
        &self,
        at: i64,
        event_id: i64,
        level: &str,
        message: &str,
    ) -> StoreResult<()> {
        SqlStore::add_event(self, at, event_id, level, message).await
    }

    async fn events(&self, limit: i64) -> StoreResult<Vec<EventRecord>> {
        SqlStore::events(self, limit).await
    }

    async fn get_by_thumbprint(&self, thumbprint: &str) -> StoreResult<Option<RequestRecord>> {
        SqlStore::get_by_thumbprint(self, thumbprint).await
    }

    async fn unmatched_key_exists(&self, key_id: &str) -> StoreResult<bool> {
        SqlStore::unmatched_key_exists(self, key_id).await
    }

    async fn principal(&self, name: &str) -> StoreResult<Option<Principal>> {
        SqlStore::principal(self, name).await
    }

    async fn principals(&self) -> StoreResult<Vec<Principal>> {
        SqlStore::principals(self).await
    }

    async fn groups_of(&self, name: &str) -> StoreResult<Vec<String>> {
        SqlStore::groups_of(self, name).await
    }

    async fn members(&self, group: &str) -> StoreResult<Vec<String>> {
        SqlStore::members(self, group).await
    }

    async fn token(&self, id: &str) -> StoreResult<Option<(String, String)>> {
        SqlStore::token(self, id).await
    }

    async fn principal_for_certificate(&self, thumbprint: &str) -> StoreResult<Option<String>> {
        SqlStore::principal_for_certificate(self, thumbprint).await
    }

    async fn roles(&self) -> StoreResult<Vec<(String, String)>> {
        SqlStore::roles(self).await
    }

    async fn permissions(&self, template: &str) -> StoreResult<Vec<Permission>> {
        SqlStore::permissions(self, template).await
    }

    async fn restrictions(&self, manager: &str) -> StoreResult<(Vec<String>, Vec<String>)> {
        SqlStore::restrictions(self, manager).await
    }

    async fn config_version(&self) -> StoreResult<i64> {
        SqlStore::config_version(self).await
    }

    async fn credential_version(&self) -> StoreResult<i64> {
        SqlStore::credential_version(self).await
    }

    async fn tokens(&self, principal: &str) -> StoreResult<Vec<TokenInfo>> {
        SqlStore::tokens(self, principal).await
    }

    async fn certificate_mappings(&self, principal: &str) -> StoreResult<Vec<CertificateMapping>> {
        SqlStore::certificate_mappings(self, principal).await
    }

    async fn integrity_check(&self) -> StoreResult<()> {
        match self.backend {
            Backend::Sqlite => {
                let result: String = sqlx::query_scalar(dialect::sqlite::INTEGRITY_CHECK)
                    .fetch_one(&self.pool())
                    .await?;
                if result != "ok" {
                    return Err(StoreError::Integrity(result));
                }
            }
            Backend::Postgres => {
                // PostgreSQL checks pages itself (checksums, WAL); what it
                // cannot know are Lockbox's own invariants across rows.
                let findings: i64 = sqlx::query_scalar(dialect::postgres::INVARIANT_FINDINGS)
                    .fetch_one(&self.pool())
                    .await?;
                if findings != 0 {
                    return Err(StoreError::Integrity(format!(
                        "{findings} rows break an invariant (issued rows without serial, archived keys without agents, or gaps in the audit sequence)"
                    )));
                }
            }
        }
        Ok(())
    }

    async fn status(&self) -> StoreResult<DatabaseStatus> {
        let schema_version: i64 = sqlx::query_scalar(crate::sql::schema::SCHEMA_VERSION)
            .fetch_one(&self.pool())
            .await?;
        let (requests, archived_keys, unmatched_keys, audit_records, audit_heads): (
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(crate::sql::schema::STATUS_COUNTS)
            .fetch_one(&self.pool())
            .await?;
        Ok(DatabaseStatus {
            backend: self.backend.as_str().into(),
            schema_version,
            requests,
            archived_keys,
            unmatched_keys,
            audit_records,
            audit_heads,
        })
    }

    async fn exchange_key(&self, serial: &str) -> StoreResult<Option<Vec<u8>>> {
        SqlStore::exchange_key(self, serial).await
    }

    async fn exchange_key_serials(&self) -> StoreResult<Vec<String>> {
        SqlStore::exchange_key_serials(self).await
    }

    async fn insert_exchange_certificate(
        &self,
        new: &NewRequest,
        sealed_key: &[u8],
        fresh_after: i64,
        ignore: &[String],
        audit: &[AuditEntry],
    ) -> StoreResult<Option<i64>> {
        SqlStore::insert_exchange_certificate(self, new, sealed_key, fresh_after, ignore, audit)
            .await
    }

    async fn close(&self) {
        SqlStore::close(self).await
    }

    fn backend(&self) -> Backend {
        SqlStore::backend(self)
    }

    async fn snapshot(&self, dest: &Path) -> StoreResult<()> {
        if dest.exists() {
            return Err(StoreError::Integrity(format!(
                "snapshot target {} already exists",
                dest.display()
            )));
        }
        match self.backend {
            Backend::Sqlite => {
                let target = dest
                    .to_str()
                    .ok_or_else(|| StoreError::Integrity("snapshot path is not UTF-8".into()))?;
                // VACUUM INTO accepts an empty file: create it 0600 so the copy
                // is never readable by others.
                create_private_file(dest)?;
                sqlx::query(dialect::sqlite::VACUUM_INTO)
                    .bind(target)
                    .execute(&self.pool())
                    .await?;
            }
            Backend::Postgres => {
                // The snapshot of a PostgreSQL CA is an SQLite file of the
                // same schema (0600), so a backup has one format whatever
                // the backend: every table read in one serializable snapshot.
                let copy = SqlStore::open(dest, self.hasher).await?;
                let copied = self.copy_into(&copy).await;
                copy.close().await;
                if let Err(e) = copied {
                    let _ = std::fs::remove_file(dest);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}
