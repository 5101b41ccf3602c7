//! Principals, groups, API tokens, certificate mappings, roles, template permissions,
//! manager restrictions and the credential version.

use super::SqlStore;
use crate::model::*;
use crate::StoreResult;

impl SqlStore {
    pub(super) async fn principal(&self, name: &str) -> StoreResult<Option<Principal>> {
        Ok(
            sqlx::query_as::<_, Principal>(crate::sql::directory::PRINCIPAL)
                .bind(name)
                .fetch_optional(&self.pool())
                .await?,
        )
    }

    pub(super) async fn principals(&self) -> StoreResult<Vec<Principal>> {
        Ok(
            sqlx::query_as::<_, Principal>(crate::sql::directory::PRINCIPALS)
                .fetch_all(&self.pool())
                .await?,
        )
    }

    pub(super) async fn groups_of(&self, name: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(crate::sql::directory::GROUPS_OF)
            .bind(name)
            .fetch_all(&self.pool())
            .await?)
    }

    pub(super) async fn members(&self, group: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(crate::sql::directory::MEMBERS)
            .bind(group)
            .fetch_all(&self.pool())
            .await?)
    }

    pub(super) async fn token(&self, id: &str) -> StoreResult<Option<(String, String)>> {
        Ok(sqlx::query_as(crate::sql::directory::TOKEN)
            .bind(id)
            .fetch_optional(&self.pool())
            .await?)
    }

    pub(super) async fn principal_for_certificate(
        &self,
        thumbprint: &str,
    ) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar(crate::sql::directory::PRINCIPAL_FOR_CERTIFICATE)
                .bind(thumbprint)
                .fetch_optional(&self.pool())
                .await?,
        )
    }

    pub(super) async fn roles(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as(crate::sql::directory::ROLES)
            .fetch_all(&self.pool())
            .await?)
    }

    pub(super) async fn permissions(&self, template: &str) -> StoreResult<Vec<Permission>> {
        let rows: Vec<(String, String, i64, String)> =
            sqlx::query_as(crate::sql::directory::PERMISSIONS)
                .bind(template)
                .fetch_all(&self.pool())
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
        let rows: Vec<(String, String)> = sqlx::query_as(crate::sql::directory::RESTRICTIONS)
            .bind(manager)
            .fetch_all(&self.pool())
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
        let v: Option<i64> = sqlx::query_scalar(crate::sql::directory::CREDENTIAL_VERSION)
            .fetch_optional(&self.pool())
            .await?;
        Ok(v.unwrap_or(0))
    }

    pub(super) async fn tokens(&self, principal: &str) -> StoreResult<Vec<TokenInfo>> {
        Ok(
            sqlx::query_as::<_, TokenInfo>(crate::sql::directory::TOKENS)
                .bind(principal)
                .fetch_all(&self.pool())
                .await?,
        )
    }

    pub(super) async fn certificate_mappings(
        &self,
        principal: &str,
    ) -> StoreResult<Vec<CertificateMapping>> {
        Ok(
            sqlx::query_as::<_, CertificateMapping>(crate::sql::directory::CERTIFICATE_MAPPINGS)
                .bind(principal)
                .fetch_all(&self.pool())
                .await?,
        )
    }
}
