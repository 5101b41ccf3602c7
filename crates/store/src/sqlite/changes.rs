//! The change set of [`crate::Store::apply`]: every `Change` written in one transaction with its audit records.

use super::rows::{bind_new_request, insert_request_sql, ImportMeta};
use super::SqliteStore;
use crate::model::*;
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

impl SqliteStore {
    pub(super) async fn apply(&self, changes: &[Change], audit: &[AuditEntry]) -> StoreResult<()> {
        let (_gate, mut tx) = self.begin_write().await?;
        if changes.iter().any(changes_credentials) {
            sqlx::query(
                "INSERT INTO counters (name, value) VALUES ('credential_version', 1) \
                 ON CONFLICT (name) DO UPDATE SET value = value + 1",
            )
            .execute(&mut *tx)
            .await?;
        }
        for c in changes {
            match c {
                Change::PutTemplate { name, json } => {
                    sqlx::query(
                        "INSERT INTO templates (name, definition) VALUES ($1, $2) \
                         ON CONFLICT (name) DO UPDATE SET definition = excluded.definition",
                    )
                    .bind(name)
                    .bind(json)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::SetCaTemplate {
                    name,
                    enabled: true,
                } => {
                    sqlx::query(
                        "INSERT INTO ca_templates (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::SetCaTemplate {
                    name,
                    enabled: false,
                } => {
                    sqlx::query("DELETE FROM ca_templates WHERE name = $1")
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::AddKra {
                    thumbprint,
                    cert_der,
                    chain_der,
                    crl_source,
                    at,
                } => {
                    sqlx::query(
                        "INSERT INTO kra_certificates (thumbprint, cert_der, added_at, chain_der, crl_source) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (thumbprint) DO UPDATE SET \
                         chain_der = excluded.chain_der, crl_source = excluded.crl_source",
                    )
                    .bind(thumbprint)
                    .bind(cert_der)
                    .bind(at)
                    .bind(chain_der)
                    .bind(crl_source)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::RemoveKra { thumbprint } => {
                    let done = sqlx::query("DELETE FROM kra_certificates WHERE thumbprint = $1")
                        .bind(thumbprint)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(format!(
                            "no KRA certificate {thumbprint}"
                        )));
                    }
                }
                Change::SetSetting { name, value } => {
                    sqlx::query(
                        "INSERT INTO settings (name, value) VALUES ($1, $2) \
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    )
                    .bind(name)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::AddPrincipal(p) => {
                    let done = sqlx::query(
                        "INSERT INTO principals (name, kind, upn, email, downlevel, password_hash, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
                    )
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
                }
                Change::RemovePrincipal { name } => {
                    let done = sqlx::query("DELETE FROM principals WHERE name = $1")
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
                }
                Change::AddMember { group, member } => {
                    sqlx::query(
                        "INSERT INTO group_members (group_name, member_name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    )
                    .bind(group)
                    .bind(member)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::AttachArchivedKey {
                    request_id,
                    archived_key,
                    kra_hashes,
                    owner,
                    source,
                } => {
                    let done = sqlx::query(
                        "UPDATE requests SET archived_key = $1, kra_hashes = $2, owner = COALESCE($3, owner), \
                         import_source = COALESCE($4, import_source) WHERE request_id = $5 AND archived_key IS NULL",
                    )
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
                }
                Change::InsertImported {
                    request,
                    foreign,
                    owner,
                    source,
                } => {
                    bind_new_request(
                        sqlx::query(insert_request_sql!()),
                        request,
                        ImportMeta {
                            foreign: *foreign,
                            owner: owner.as_deref(),
                            source: source.as_deref(),
                        },
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                Change::SetOwnerNames { thumbprint, names } => {
                    for name in names {
                        sqlx::query(
                            "INSERT INTO key_owner_names (request_id, name) \
                             SELECT request_id, $2 FROM requests WHERE thumbprint = $1 \
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(thumbprint)
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                Change::ClearArchivedKey { request_id } => {
                    sqlx::query("UPDATE requests SET archived_key = NULL, kra_hashes = NULL WHERE request_id = $1")
                        .bind(request_id)
                        .execute(&mut *tx)
                        .await?;
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
                    sqlx::query(
                        "INSERT INTO unmatched_keys (key_id, archived_key, kra_hashes, owner, import_source, imported_by, imported_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key_id) DO NOTHING",
                    )
                    .bind(key_id)
                    .bind(archived_key)
                    .bind(kra_hashes)
                    .bind(owner)
                    .bind(source)
                    .bind(imported_by)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::AddToken {
                    id,
                    principal,
                    secret_hash,
                    at,
                } => {
                    sqlx::query("INSERT INTO api_tokens (id, principal, secret_hash, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(id)
                        .bind(principal)
                        .bind(secret_hash)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::MapCertificate {
                    thumbprint,
                    principal,
                    serial,
                } => {
                    sqlx::query(
                        "INSERT INTO certificate_mappings (thumbprint, principal, serial) VALUES ($1, $2, $3) \
                         ON CONFLICT (thumbprint) DO UPDATE SET principal = excluded.principal, serial = excluded.serial",
                    )
                    .bind(thumbprint)
                    .bind(principal)
                    .bind(serial)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::RevokeToken { principal, id } => {
                    let done =
                        sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND principal = $2")
                            .bind(id)
                            .bind(principal)
                            .execute(&mut *tx)
                            .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(format!(
                            "'{principal}' has no API token with ID '{id}'"
                        )));
                    }
                }
                Change::UnmapCertificate {
                    principal,
                    thumbprint,
                } => {
                    let done = sqlx::query(
                        "DELETE FROM certificate_mappings WHERE thumbprint = $1 AND principal = $2",
                    )
                    .bind(thumbprint)
                    .bind(principal)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(format!(
                            "no certificate {thumbprint} is mapped to '{principal}'"
                        )));
                    }
                }
                Change::GrantRole { principal, role } => {
                    sqlx::query("INSERT INTO roles (principal, role) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(principal)
                        .bind(role)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::RevokeRole { principal, role } => {
                    sqlx::query("DELETE FROM roles WHERE principal = $1 AND role = $2")
                        .bind(principal)
                        .bind(role)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::SetPermission(p) => {
                    sqlx::query("DELETE FROM template_permissions WHERE template = $1 AND principal = $2 AND allow = $3")
                        .bind(&p.template)
                        .bind(&p.principal)
                        .bind(i64::from(p.allow))
                        .execute(&mut *tx)
                        .await?;
                    if !p.rights.is_empty() {
                        sqlx::query("INSERT INTO template_permissions (template, principal, allow, rights) VALUES ($1, $2, $3, $4)")
                            .bind(&p.template)
                            .bind(&p.principal)
                            .bind(i64::from(p.allow))
                            .bind(p.rights.join(","))
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                Change::SetRestrictions {
                    manager,
                    groups,
                    templates,
                } => {
                    sqlx::query("DELETE FROM manager_restrictions WHERE manager = $1")
                        .bind(manager)
                        .execute(&mut *tx)
                        .await?;
                    for (kind, values) in [("group", groups), ("template", templates)] {
                        for v in values {
                            sqlx::query("INSERT INTO manager_restrictions (manager, kind, value) VALUES ($1, $2, $3)")
                                .bind(manager)
                                .bind(kind)
                                .bind(v)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
            }
        }
        let head = self.append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        self.after_commit(head);
        Ok(())
    }
}
