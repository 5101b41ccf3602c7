//! The change set of [`crate::Store::apply`]: every `Change` written in one
//! transaction with its audit records, one function per `Change` variant.

use sqlx::AnyConnection;

use super::rows::{bind_new_request, ImportMeta};
use super::SqlStore;
use crate::model::*;
use crate::sql::requests::insert_request_sql;
use crate::{StoreError, StoreResult};

/// Whether a change touches principals or credentials (bumps `credential_version`).
fn changes_credentials(c: &Change) -> bool {
    matches!(
        c,
        Change::AddPrincipal(_)
            | Change::RemovePrincipal { .. }
            | Change::AddMember { .. }
            | Change::AddToken { .. }
            | Change::RevokeToken { .. }
            | Change::MapCertificate { .. }
            | Change::UnmapCertificate { .. }
            | Change::GrantRole { .. }
            | Change::RevokeRole { .. }
            | Change::SetPermission(_)
            | Change::SetRestrictions { .. }
    )
}

impl SqlStore {
    /// Bumps `config_version` inside `tx`: engines holding cached
    /// configuration (any process, any node) reload it on their next read.
    pub(super) async fn bump_config_version(&self, tx: &mut AnyConnection) -> StoreResult<()> {
        sqlx::query(crate::sql::changes::BUMP_CONFIG_VERSION)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// The configuration version (0 before the first change).
    pub(super) async fn config_version(&self) -> StoreResult<i64> {
        let v: Option<i64> = sqlx::query_scalar(crate::sql::changes::CONFIG_VERSION)
            .fetch_optional(&self.pool())
            .await?;
        Ok(v.unwrap_or(0))
    }

    pub(super) async fn apply(&self, changes: &[Change], audit: &[AuditEntry]) -> StoreResult<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        self.bump_config_version(&mut tx).await?;
        if changes.iter().any(changes_credentials) {
            sqlx::query(crate::sql::changes::BUMP_CREDENTIAL_VERSION)
                .execute(&mut *tx)
                .await?;
        }
        for c in changes {
            apply_one(&mut tx, c).await?;
        }
        self.commit_with_audit(tx, audit).await?;
        Ok(())
    }
}

/// Writes one change inside the transaction (dispatch only).
async fn apply_one(tx: &mut AnyConnection, c: &Change) -> StoreResult<()> {
    match c {
        Change::PutTemplate { name, json } => put_template(tx, name, json).await,
        Change::SetCaTemplate { name, enabled } => set_ca_template(tx, name, *enabled).await,
        Change::AddKra {
            thumbprint,
            cert_der,
            chain_der,
            crl_source,
            at,
        } => {
            add_kra(
                tx,
                thumbprint,
                cert_der,
                chain_der.as_deref(),
                crl_source.as_deref(),
                *at,
            )
            .await
        }
        Change::RemoveKra { thumbprint } => remove_kra(tx, thumbprint).await,
        Change::SetSetting { name, value } => set_setting(tx, name, value).await,
        Change::AddPrincipal(p) => add_principal(tx, p).await,
        Change::RemovePrincipal { name } => remove_principal(tx, name).await,
        Change::AddMember { group, member } => add_member(tx, group, member).await,
        Change::AttachArchivedKey {
            request_id,
            archived_key,
            kra_hashes,
            owner,
            source,
        } => {
            attach_archived_key(
                tx,
                *request_id,
                archived_key,
                kra_hashes,
                owner.as_deref(),
                source.as_deref(),
            )
            .await
        }
        Change::InsertImported {
            request,
            foreign,
            owner,
            source,
        } => insert_imported(tx, request, *foreign, owner.as_deref(), source.as_deref()).await,
        Change::SetOwnerNames { thumbprint, names } => set_owner_names(tx, thumbprint, names).await,
        Change::ClearArchivedKey { request_id } => clear_archived_key(tx, *request_id).await,
        Change::PutExchangeKey {
            serial,
            sealed_key,
            at,
        } => put_exchange_key(tx, serial, sealed_key, *at).await,
        Change::ClearExchangeKeys => {
            sqlx::query(crate::sql::exchange::CLEAR)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        Change::InsertUnmatchedKey {
            key_id,
            archived_key,
            kra_hashes,
            owner,
            source,
            imported_by,
            at,
        } => {
            let key = UnmatchedKey {
                key_id,
                archived_key,
                kra_hashes,
                owner: owner.as_deref(),
                source: source.as_deref(),
                imported_by,
                at: *at,
            };
            insert_unmatched_key(tx, key).await
        }
        Change::AddToken {
            id,
            principal,
            secret_hash,
            at,
        } => add_token(tx, id, principal, secret_hash, *at).await,
        Change::MapCertificate {
            thumbprint,
            principal,
            serial,
        } => map_certificate(tx, thumbprint, principal, serial.as_deref()).await,
        Change::RevokeToken { principal, id } => revoke_token(tx, principal, id).await,
        Change::UnmapCertificate {
            principal,
            thumbprint,
        } => unmap_certificate(tx, principal, thumbprint).await,
        Change::GrantRole { principal, role } => grant_role(tx, principal, role).await,
        Change::RevokeRole { principal, role } => revoke_role(tx, principal, role).await,
        Change::SetPermission(p) => set_permission(tx, p).await,
        Change::SetRestrictions {
            manager,
            groups,
            templates,
        } => set_restrictions(tx, manager, groups, templates).await,
    }
}

/// The fields of `Change::InsertUnmatchedKey`, borrowed.
struct UnmatchedKey<'a> {
    key_id: &'a str,
    archived_key: &'a [u8],
    kra_hashes: &'a str,
    owner: Option<&'a str>,
    source: Option<&'a str>,
    imported_by: &'a str,
    at: i64,
}

/// `Change::PutTemplate`: inserts or replaces a template definition.
async fn put_template(tx: &mut AnyConnection, name: &str, json: &str) -> StoreResult<()> {
    sqlx::query(crate::sql::changes::PUT_TEMPLATE)
        .bind(name)
        .bind(json)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `Change::SetCaTemplate`: offers the template for issuance (`enabled`) or stops offering it.
async fn set_ca_template(tx: &mut AnyConnection, name: &str, enabled: bool) -> StoreResult<()> {
    if enabled {
        sqlx::query(crate::sql::changes::SET_CA_TEMPLATE_INSERT)
            .bind(name)
            .execute(&mut *tx)
            .await?;
    } else {
        sqlx::query(crate::sql::changes::SET_CA_TEMPLATE_DELETE)
            .bind(name)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// `Change::AddKra`: adds a KRA certificate, or refreshes its chain and CRL source.
async fn add_kra(
    tx: &mut AnyConnection,
    thumbprint: &str,
    cert_der: &[u8],
    chain_der: Option<&[u8]>,
    crl_source: Option<&str>,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(crate::sql::changes::ADD_KRA)
        .bind(thumbprint)
        .bind(cert_der)
        .bind(at)
        .bind(chain_der)
        .bind(crl_source)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `Change::RemoveKra`: removes a KRA certificate (not found when absent).
async fn remove_kra(tx: &mut AnyConnection, thumbprint: &str) -> StoreResult<()> {
    let done = sqlx::query(crate::sql::changes::REMOVE_KRA)
        .bind(thumbprint)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!(
            "no KRA certificate {thumbprint}"
        )));
    }
    Ok(())
}

/// `Change::SetSetting`: inserts or replaces a setting.
async fn set_setting(tx: &mut AnyConnection, name: &str, value: &str) -> StoreResult<()> {
    sqlx::query(crate::sql::changes::SET_SETTING)
        .bind(name)
        .bind(value)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `Change::AddPrincipal`: adds a principal (conflict when the name exists).
async fn add_principal(tx: &mut AnyConnection, p: &Principal) -> StoreResult<()> {
    let done = sqlx::query(crate::sql::changes::ADD_PRINCIPAL)
        .bind(&p.name)
        .bind(&p.kind)
        .bind(&p.upn)
        .bind(&p.email)
        .bind(&p.downlevel)
        .bind(&p.password_hash)
        .bind(p.created_at)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!(
            "a principal named '{}' already exists",
            p.name
        )));
    }
    Ok(())
}

/// `Change::RemovePrincipal`: removes a principal and everything granted to it.
async fn remove_principal(tx: &mut AnyConnection, name: &str) -> StoreResult<()> {
    let done = sqlx::query(crate::sql::changes::REMOVE_PRINCIPAL)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("no principal named '{name}'")));
    }
    for sql in [
        "DELETE FROM api_tokens WHERE principal = $1",
        "DELETE FROM roles WHERE principal = $1",
        "DELETE FROM group_members WHERE member_name = $1 OR group_name = $1",
        "DELETE FROM certificate_mappings WHERE principal = $1",
        "DELETE FROM template_permissions WHERE principal = $1",
        "DELETE FROM manager_restrictions WHERE manager = $1",
    ] {
        sqlx::query(sql).bind(name).execute(&mut *tx).await?;
    }
    Ok(())
}

/// `Change::AddMember`: adds a member to a group.
async fn add_member(tx: &mut AnyConnection, group: &str, member: &str) -> StoreResult<()> {
    sqlx::query(crate::sql::changes::ADD_MEMBER)
        .bind(group)
        .bind(member)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `Change::AttachArchivedKey`: attaches an archived key to a request that holds none.
async fn attach_archived_key(
    tx: &mut AnyConnection,
    request_id: i64,
    archived_key: &[u8],
    kra_hashes: &str,
    owner: Option<&str>,
    source: Option<&str>,
) -> StoreResult<()> {
    let done = sqlx::query(crate::sql::changes::ATTACH_ARCHIVED_KEY)
        .bind(archived_key)
        .bind(kra_hashes)
        .bind(owner)
        .bind(source)
        .bind(request_id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict(format!(
            "request {request_id} already holds an archived key"
        )));
    }
    Ok(())
}

/// `Change::InsertImported`: inserts an imported request row.
async fn insert_imported(
    tx: &mut AnyConnection,
    request: &NewRequest,
    foreign: bool,
    owner: Option<&str>,
    source: Option<&str>,
) -> StoreResult<()> {
    bind_new_request(
        sqlx::query(insert_request_sql!()),
        request,
        ImportMeta {
            foreign,
            owner,
            source,
        },
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// `Change::SetOwnerNames`: records the names a key owner is found by.
async fn set_owner_names(
    tx: &mut AnyConnection,
    thumbprint: &str,
    names: &[String],
) -> StoreResult<()> {
    for name in names {
        sqlx::query(crate::sql::changes::SET_OWNER_NAMES)
            .bind(thumbprint)
            .bind(name)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// `Change::PutExchangeKey`: stores a sealed exchange key.
pub(super) async fn put_exchange_key(
    tx: &mut AnyConnection,
    serial: &str,
    sealed_key: &[u8],
    at: i64,
) -> StoreResult<()> {
    sqlx::query(crate::sql::exchange::PUT)
        .bind(serial)
        .bind(sealed_key)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `Change::ClearArchivedKey`: drops a request's archived key.
async fn clear_archived_key(tx: &mut AnyConnection, request_id: i64) -> StoreResult<()> {
    sqlx::query(crate::sql::changes::CLEAR_ARCHIVED_KEY)
        .bind(request_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `Change::InsertUnmatchedKey`: stores an imported key that matches no request.
async fn insert_unmatched_key(tx: &mut AnyConnection, key: UnmatchedKey<'_>) -> StoreResult<()> {
    sqlx::query(crate::sql::changes::INSERT_UNMATCHED_KEY)
        .bind(key.key_id)
        .bind(key.archived_key)
        .bind(key.kra_hashes)
        .bind(key.owner)
        .bind(key.source)
        .bind(key.imported_by)
        .bind(key.at)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `Change::AddToken`: adds an API token.
async fn add_token(
    tx: &mut AnyConnection,
    id: &str,
    principal: &str,
    secret_hash: &str,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(crate::sql::changes::ADD_TOKEN)
        .bind(id)
        .bind(principal)
        .bind(secret_hash)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `Change::MapCertificate`: maps a client certificate to a principal (or moves the mapping).
async fn map_certificate(
    tx: &mut AnyConnection,
    thumbprint: &str,
    principal: &str,
    serial: Option<&str>,
) -> StoreResult<()> {
    sqlx::query(crate::sql::changes::MAP_CERTIFICATE)
        .bind(thumbprint)
        .bind(principal)
        .bind(serial)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `Change::RevokeToken`: removes an API token of a principal (not found when absent).
async fn revoke_token(tx: &mut AnyConnection, principal: &str, id: &str) -> StoreResult<()> {
    let done = sqlx::query(crate::sql::changes::REVOKE_TOKEN)
        .bind(id)
        .bind(principal)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!(
            "'{principal}' has no API token with ID '{id}'"
        )));
    }
    Ok(())
}

/// `Change::UnmapCertificate`: removes a certificate mapping of a principal (not found when absent).
async fn unmap_certificate(
    tx: &mut AnyConnection,
    principal: &str,
    thumbprint: &str,
) -> StoreResult<()> {
    let done = sqlx::query(crate::sql::changes::UNMAP_CERTIFICATE)
        .bind(thumbprint)
        .bind(principal)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!(
            "no certificate {thumbprint} is mapped to '{principal}'"
        )));
    }
    Ok(())
}

/// `Change::GrantRole`: grants a role.
async fn grant_role(tx: &mut AnyConnection, principal: &str, role: &str) -> StoreResult<()> {
    sqlx::query(crate::sql::changes::GRANT_ROLE)
        .bind(principal)
        .bind(role)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `Change::RevokeRole`: revokes a role.
async fn revoke_role(tx: &mut AnyConnection, principal: &str, role: &str) -> StoreResult<()> {
    sqlx::query(crate::sql::changes::REVOKE_ROLE)
        .bind(principal)
        .bind(role)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `Change::SetPermission`: replaces the allow or deny rights of a principal on a template.
async fn set_permission(tx: &mut AnyConnection, p: &Permission) -> StoreResult<()> {
    sqlx::query(crate::sql::changes::SET_PERMISSION_DELETE)
        .bind(&p.template)
        .bind(&p.principal)
        .bind(i64::from(p.allow))
        .execute(&mut *tx)
        .await?;
    if !p.rights.is_empty() {
        sqlx::query(crate::sql::changes::SET_PERMISSION_INSERT)
            .bind(&p.template)
            .bind(&p.principal)
            .bind(i64::from(p.allow))
            .bind(p.rights.join(","))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// `Change::SetRestrictions`: replaces the groups and templates a manager is restricted to.
async fn set_restrictions(
    tx: &mut AnyConnection,
    manager: &str,
    groups: &[String],
    templates: &[String],
) -> StoreResult<()> {
    sqlx::query(crate::sql::changes::SET_RESTRICTIONS_DELETE)
        .bind(manager)
        .execute(&mut *tx)
        .await?;
    for (kind, values) in [("group", groups), ("template", templates)] {
        for v in values {
            sqlx::query(crate::sql::changes::SET_RESTRICTIONS_INSERT)
                .bind(manager)
                .bind(kind)
                .bind(v)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::db::requests::tests::{cert, new_req};
    use crate::db::tests::{test_hash, test_store};
    use crate::model::*;

    /// Every configuration write and a revocation move the configuration
    /// version (what engine caches check); a new request does not.
    #[tokio::test]
    async fn config_version_moves_with_configuration_writes_only() {
        let s = test_store(test_hash).await;
        let v0 = s.config_version().await.unwrap();
        s.apply(
            &[Change::SetSetting {
                name: "kra_required".into(),
                value: "1".into(),
            }],
            &[],
        )
        .await
        .unwrap();
        let v1 = s.config_version().await.unwrap();
        assert!(v1 > v0);
        s.insert_request(&new_req(Disposition::Issued, Some(cert("01"))), &[])
            .await
            .unwrap();
        assert_eq!(
            s.config_version().await.unwrap(),
            v1,
            "a new request is not configuration"
        );
        s.revoke("01", 1, 5, &[]).await.unwrap();
        let v2 = s.config_version().await.unwrap();
        assert!(v2 > v1, "a revocation can make a KRA unusable");
        assert!(s.revoke("01", 1, 5, &[]).await.is_err());
        assert_eq!(
            s.config_version().await.unwrap(),
            v2,
            "a refused revocation changes nothing"
        );
    }
}
