//! Principals, groups, API tokens, certificate mappings, roles, template permissions,
//! manager restrictions and the credential version.

use super::SqliteStore;
use crate::model::*;
use crate::StoreResult;

impl SqliteStore {
    pub(super) async fn principal(&self, name: &str) -> StoreResult<Option<Principal>> {
        Ok(sqlx::query_as::<_, Principal>(
            "SELECT name, kind, upn, email, downlevel, password_hash, created_at FROM principals WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub(super) async fn principals(&self) -> StoreResult<Vec<Principal>> {
        Ok(sqlx::query_as::<_, Principal>(
            "SELECT name, kind, upn, email, downlevel, password_hash, created_at FROM principals ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub(super) async fn groups_of(&self, name: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT group_name FROM group_members WHERE member_name = $1 ORDER BY group_name",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?)
    }

    pub(super) async fn members(&self, group: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT member_name FROM group_members WHERE group_name = $1 ORDER BY member_name",
        )
        .bind(group)
        .fetch_all(&self.pool)
        .await?)
    }

    pub(super) async fn token(&self, id: &str) -> StoreResult<Option<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT principal, secret_hash FROM api_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub(super) async fn principal_for_certificate(
        &self,
        thumbprint: &str,
    ) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT principal FROM certificate_mappings WHERE thumbprint = $1")
                .bind(thumbprint)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub(super) async fn roles(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT principal, role FROM roles ORDER BY principal, role")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub(super) async fn permissions(&self, template: &str) -> StoreResult<Vec<Permission>> {
        let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT template, principal, allow, rights FROM template_permissions WHERE template = $1 ORDER BY principal",
        )
        .bind(template)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(template, principal, allow, rights)| Permission {
                template,
                principal,
                allow: allow != 0,
                rights: rights
                    .split(',')
                    .filter(|r| !r.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
            .collect())
    }

    pub(super) async fn restrictions(
        &self,
        manager: &str,
    ) -> StoreResult<(Vec<String>, Vec<String>)> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT kind, value FROM manager_restrictions WHERE manager = $1 ORDER BY kind, value",
        )
        .bind(manager)
        .fetch_all(&self.pool)
        .await?;
        let mut groups = Vec::new();
        let mut templates = Vec::new();
        for (kind, value) in rows {
            if kind == "group" {
                groups.push(value);
            } else {
                templates.push(value);
            }
        }
        Ok((groups, templates))
    }

    pub(super) async fn credential_version(&self) -> StoreResult<i64> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT value FROM counters WHERE name = 'credential_version'")
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.unwrap_or(0))
    }

    pub(super) async fn tokens(&self, principal: &str) -> StoreResult<Vec<TokenInfo>> {
        Ok(sqlx::query_as::<_, TokenInfo>(
            "SELECT id, principal, created_at FROM api_tokens WHERE principal = $1 ORDER BY created_at, id",
        )
        .bind(principal)
        .fetch_all(&self.pool)
        .await?)
    }

    pub(super) async fn certificate_mappings(
        &self,
        principal: &str,
    ) -> StoreResult<Vec<CertificateMapping>> {
        Ok(sqlx::query_as::<_, CertificateMapping>(
            "SELECT thumbprint, principal, serial FROM certificate_mappings WHERE principal = $1 ORDER BY thumbprint",
        )
        .bind(principal)
        .fetch_all(&self.pool)
        .await?)
    }
}
