//! Principal administration: adding and removing principals, tokens and certificate mappings.

use lockbox_codec::hexfmt::{normalize_hex, to_hex};
use lockbox_crypto::password::hash_secret;
use lockbox_crypto::random::random_bytes;
use lockbox_store::{CertificateMapping, Change, Principal, TokenInfo};
use zeroize::Zeroizing;

use crate::authz::{ADMINISTRATORS, AUTHENTICATED_USERS};
use crate::category::{AuditAction, AuditCategory};
use crate::core::Core;
use crate::period::now;
use crate::principals::{bad, valid_name, NewPrincipal};
use crate::{Actor, EngineError, EngineResult, Op};

/// A principal by name (case-insensitive), or not found.
pub(crate) async fn existing(core: &Core, name: &str) -> EngineResult<Principal> {
    core.store
        .principal(name)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("no principal named '{name}'")))
}

/// Adds a user (or group, `group = true`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn add_principal(
    core: &Core,
    actor: &Actor,
    name: &str,
    group: bool,
    upn: Option<String>,
    email: Option<String>,
    downlevel: Option<String>,
    password: Option<Zeroizing<String>>,
    with_token: bool,
) -> EngineResult<NewPrincipal> {
    crate::authz::authorize(core, actor, Op::Security).await?;
    valid_name(name)?;
    if name.eq_ignore_ascii_case(AUTHENTICATED_USERS) || name.eq_ignore_ascii_case(ADMINISTRATORS) {
        return Err(bad(format!("'{name}' is a built-in group")));
    }
    // Names are case-insensitive, like Windows accounts: `MGR` beside `mgr` is refused.
    if let Some(p) = core.store.principal(name).await? {
        return Err(EngineError::Conflict(format!(
            "a principal named '{}' already exists (principal names are case-insensitive)",
            p.name
        )));
    }
    let password_hash = match &password {
        Some(p) if p.len() < 8 => return Err(bad("passwords must have at least 8 characters")),
        Some(p) => Some(hash_secret(p.as_bytes())?),
        None => None,
    };
    let principal = Principal {
        name: name.to_string(),
        kind: if group { "group" } else { "user" }.into(),
        upn,
        email,
        downlevel,
        password_hash,
        created_at: now(),
    };
    let mut changes = vec![Change::AddPrincipal(principal.clone())];
    let token = if with_token && !group {
        let id = to_hex(&random_bytes(6)?);
        let secret = to_hex(&random_bytes(24)?);
        changes.push(Change::AddToken {
            id: id.clone(),
            principal: name.into(),
            secret_hash: hash_secret(secret.as_bytes())?,
            at: now(),
        });
        Some(format!("lbt_{id}_{secret}"))
    } else {
        None
    };
    let audit = crate::audit::chain::audit_entry(
        core,
        actor,
        AuditCategory::Security,
        if group {
            AuditAction::AddGroup
        } else {
            AuditAction::AddPrincipal
        },
        name,
        "{}",
    );
    core.store.apply(&changes, &audit).await?;
    Ok(NewPrincipal { principal, token })
}

/// Issues another API token for a user.
pub(crate) async fn add_token(core: &Core, actor: &Actor, name: &str) -> EngineResult<String> {
    crate::authz::authorize(core, actor, Op::Security).await?;
    let p = existing(core, name).await?;
    if p.kind == "group" {
        return Err(bad(format!(
            "'{}' is a group; tokens are for users",
            p.name
        )));
    }
    let id = to_hex(&random_bytes(6)?);
    let secret = to_hex(&random_bytes(24)?);
    let audit = crate::audit::chain::audit_entry(
        core,
        actor,
        AuditCategory::Security,
        AuditAction::AddToken,
        &p.name,
        &serde_json::json!({ "token_id": id }).to_string(),
    );
    core.store
        .apply(
            &[Change::AddToken {
                id: id.clone(),
                principal: p.name,
                secret_hash: hash_secret(secret.as_bytes())?,
                at: now(),
            }],
            &audit,
        )
        .await?;
    Ok(format!("lbt_{id}_{secret}"))
}

/// Removes a principal and everything attached to it (tokens, certificate
/// mappings, roles, memberships): every process stops accepting its
/// credentials at the next request.
pub(crate) async fn remove_principal(core: &Core, actor: &Actor, name: &str) -> EngineResult<()> {
    crate::authz::authorize(core, actor, Op::Security).await?;
    let name = existing(core, name).await?.name;
    let audit = crate::audit::chain::audit_entry(
        core,
        actor,
        AuditCategory::Security,
        AuditAction::RemovePrincipal,
        &name,
        "{}",
    );
    core.store
        .apply(&[Change::RemovePrincipal { name }], &audit)
        .await?;
    Ok(())
}

/// A user's API tokens (IDs and creation dates; secrets are never kept).
pub(crate) async fn tokens(core: &Core, actor: &Actor, name: &str) -> EngineResult<Vec<TokenInfo>> {
    crate::authz::authorize(core, actor, Op::Security).await?;
    let p = existing(core, name).await?;
    Ok(core.store.tokens(&p.name).await?)
}

/// Revokes one API token of a user: refused at the next request of every process.
pub(crate) async fn revoke_token(
    core: &Core,
    actor: &Actor,
    name: &str,
    id: &str,
) -> EngineResult<()> {
    crate::authz::authorize(core, actor, Op::Security).await?;
    let p = existing(core, name).await?;
    let id = id.trim().trim_start_matches("lbt_").to_ascii_lowercase();
    let audit = crate::audit::chain::audit_entry(
        core,
        actor,
        AuditCategory::Security,
        AuditAction::RevokeToken,
        &p.name,
        &serde_json::json!({ "token_id": id }).to_string(),
    );
    core.store
        .apply(
            &[Change::RevokeToken {
                principal: p.name,
                id,
            }],
            &audit,
        )
        .await?;
    Ok(())
}

/// A principal's client-certificate mappings.
pub(crate) async fn certificate_mappings(
    core: &Core,
    actor: &Actor,
    name: &str,
) -> EngineResult<Vec<CertificateMapping>> {
    crate::authz::authorize(core, actor, Op::Security).await?;
    let p = existing(core, name).await?;
    Ok(core.store.certificate_mappings(&p.name).await?)
}

/// Removes the mapping of the client certificate with serial number
/// `serial` (hex, any separators; or its SHA-1 thumbprint) from a principal.
/// Returns the thumbprint removed.
pub(crate) async fn unmap_certificate(
    core: &Core,
    actor: &Actor,
    name: &str,
    serial: &str,
) -> EngineResult<String> {
    crate::authz::authorize(core, actor, Op::Security).await?;
    let p = existing(core, name).await?;
    let wanted = normalize_hex(serial)
        .ok_or_else(|| bad(format!("'{serial}' is not a hex serial number")))?;
    let mut thumbs = Vec::new();
    for m in core.store.certificate_mappings(&p.name).await? {
        let serial = match &m.serial {
            Some(s) => Some(s.clone()),
            None => core
                .store
                .get_by_thumbprint(&m.thumbprint)
                .await?
                .and_then(|r| r.cert.map(|c| c.serial)),
        };
        let same_serial = serial
            .as_deref()
            .is_some_and(|s| s.trim_start_matches("00") == wanted.trim_start_matches("00"));
        if same_serial || m.thumbprint == wanted {
            thumbs.push(m.thumbprint);
        }
    }
    let thumbprint = match thumbs.len() {
        0 => {
            return Err(EngineError::NotFound(format!(
                "no certificate with serial number {wanted} is mapped to '{}'",
                p.name
            )))
        }
        1 => thumbs.remove(0),
        _ => {
            return Err(bad(format!(
                "several certificates mapped to '{}' have serial number {wanted} (certificates of different issuers); give the thumbprint instead: {}",
                p.name,
                thumbs.join(", ")
            )))
        }
    };
    let audit = crate::audit::chain::audit_entry(
        core,
        actor,
        AuditCategory::Security,
        AuditAction::UnmapCertificate,
        &p.name,
        &serde_json::json!({ "serial": wanted, "thumbprint": thumbprint }).to_string(),
    );
    core.store
        .apply(
            &[Change::UnmapCertificate {
                principal: p.name,
                thumbprint: thumbprint.clone(),
            }],
            &audit,
        )
        .await?;
    Ok(thumbprint)
}

/// Every principal.
pub(crate) async fn principals(core: &Core, actor: &Actor) -> EngineResult<Vec<Principal>> {
    crate::authz::authorize(core, actor, Op::Security).await?;
    Ok(core.store.principals().await?)
}
