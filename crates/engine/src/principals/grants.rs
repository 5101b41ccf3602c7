//! Group membership, certificate mappings, roles, template permissions and enrollment-agent restrictions.

use lockbox_codec::hexfmt::to_hex;
use lockbox_store::{Change, Permission};

use crate::authz::{ADMINISTRATORS, AUTHENTICATED_USERS};
use crate::category::{AuditAction, AuditCategory};
use crate::core::Core;
use crate::principals::bad;
use crate::{Actor, EngineError, EngineResult, Op, Role};

/// Adds `member` (a user or group) to `group`.
pub(crate) async fn add_member(
    core: &Core,
    actor: &Actor,
    group: &str,
    member: &str,
) -> EngineResult<()> {
    crate::authz::authorize(core, actor, Op::Security).await?;
    let g = core
        .store
        .principal(group)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("no group named '{group}'")))?;
    if g.kind != "group" {
        return Err(bad(format!("'{group}' is not a group")));
    }
    let (group, member) = (
        g.name,
        crate::principals::admin::existing(core, member).await?.name,
    );
    let (group, member) = (group.as_str(), member.as_str());
    let audit = crate::audit::chain::audit_entry(
        core,
        actor,
        AuditCategory::Security,
        AuditAction::AddGroupMember,
        group,
        &serde_json::json!({ "member": member }).to_string(),
    );
    core.store
        .apply(
            &[Change::AddMember {
                group: group.into(),
                member: member.into(),
            }],
            &audit,
        )
        .await?;
    Ok(())
}

/// Maps a client certificate (PEM/DER) to a principal for TLS client authentication.
pub(crate) async fn map_certificate(
    core: &Core,
    actor: &Actor,
    name: &str,
    cert: &[u8],
) -> EngineResult<String> {
    crate::authz::authorize(core, actor, Op::Security).await?;
    let name = crate::principals::admin::existing(core, name).await?.name;
    let name = name.as_str();
    let der = lockbox_codec::pem::decode_input(cert)?.der;
    let parsed = crate::certbuild::decode_certificate(&der)?;
    let serial = to_hex(parsed.tbs_certificate().serial_number().as_bytes());
    let thumb = to_hex(&lockbox_crypto::digest::sha1(&der));
    let audit = crate::audit::chain::audit_entry(
        core,
        actor,
        AuditCategory::Security,
        AuditAction::MapCertificate,
        name,
        &serde_json::json!({ "thumbprint": thumb, "serial": serial }).to_string(),
    );
    core.store
        .apply(
            &[Change::MapCertificate {
                thumbprint: thumb.clone(),
                principal: name.into(),
                serial: Some(serial),
            }],
            &audit,
        )
        .await?;
    Ok(thumb)
}

/// Grants or revokes a role.
pub(crate) async fn set_role(
    core: &Core,
    actor: &Actor,
    principal: &str,
    role: Role,
    grant: bool,
) -> EngineResult<()> {
    crate::authz::authorize(core, actor, Op::Security).await?;
    let canonical = match core.store.principal(principal).await? {
        Some(p) => p.name,
        None if grant && !principal.eq_ignore_ascii_case("admin") => {
            return Err(EngineError::NotFound(format!(
                "no principal named '{principal}'"
            )))
        }
        None => principal.to_string(),
    };
    let principal = canonical.as_str();
    let change = if grant {
        Change::GrantRole {
            principal: principal.into(),
            role: role.name().into(),
        }
    } else {
        Change::RevokeRole {
            principal: principal.into(),
            role: role.name().into(),
        }
    };
    let action = if grant {
        AuditAction::GrantRole
    } else {
        AuditAction::RevokeRole
    };
    let audit = crate::audit::chain::audit_entry(
        core,
        actor,
        AuditCategory::Security,
        action,
        principal,
        &serde_json::json!({ "role": role.name() }).to_string(),
    );
    core.store.apply(&[change], &audit).await?;
    Ok(())
}

/// Every role grant.
pub(crate) async fn role_grants(core: &Core, actor: &Actor) -> EngineResult<Vec<(String, String)>> {
    crate::authz::authorize(core, actor, Op::Security).await?;
    Ok(core.store.roles().await?)
}

/// Sets a template permission entry (`allow` or deny) for a principal or group.
pub(crate) async fn set_template_permission(
    core: &Core,
    actor: &Actor,
    template: &str,
    who: &str,
    rights: &[String],
    allow: bool,
) -> EngineResult<Permission> {
    crate::authz::authorize(core, actor, Op::Security).await?;
    let t = crate::templates::template(core, template).await?;
    let mut norm = Vec::new();
    for r in rights {
        let r = ["Read", "Enroll", "Autoenroll", "Write"]
            .into_iter()
            .find(|x| x.eq_ignore_ascii_case(r.trim()))
            .ok_or_else(|| {
                bad(format!(
                    "unknown right '{r}' (Read, Enroll, Autoenroll, Write)"
                ))
            })?;
        norm.push(r.to_string());
    }
    let who = match core.store.principal(who).await? {
        Some(p) => p.name,
        None => [AUTHENTICATED_USERS, ADMINISTRATORS]
            .into_iter()
            .find(|b| b.eq_ignore_ascii_case(who))
            .map_or_else(|| who.to_string(), str::to_string),
    };
    let p = Permission {
        template: t.name.clone(),
        principal: who,
        allow,
        rights: norm,
    };
    let audit = crate::audit::chain::audit_entry(
        core,
        actor,
        AuditCategory::Security,
        if allow {
            AuditAction::PermitTemplate
        } else {
            AuditAction::DenyTemplatePermission
        },
        &t.name,
        &serde_json::to_string(&p).unwrap_or_default(),
    );
    core.store
        .apply(&[Change::SetPermission(p.clone())], &audit)
        .await?;
    Ok(p)
}

/// Permission entries of a template (stored ones; the template's own enroll lists apply too).
pub(crate) async fn template_permissions(
    core: &Core,
    template: &str,
) -> EngineResult<Vec<Permission>> {
    Ok(core.store.permissions(template).await?)
}

/// Replaces a certificate manager's restrictions (empty lists: unrestricted).
pub(crate) async fn set_restrictions(
    core: &Core,
    actor: &Actor,
    manager: &str,
    groups: Vec<String>,
    templates: Vec<String>,
) -> EngineResult<()> {
    crate::authz::authorize(core, actor, Op::Security).await?;
    // Restrictions that name nobody would never apply (fail open): the
    // manager must be an existing principal or group (a UPN or DOMAIN\name
    // resolves to it), the groups existing groups, the templates existing
    // templates; names are stored in their canonical form.
    let manager = crate::core::directory::find_principal(core, manager)
        .await?
        .ok_or_else(|| {
            EngineError::NotFound(format!(
                "no principal or group named '{manager}': restrictions must name an existing principal or group"
            ))
        })?
        .name;
    let manager = manager.as_str();
    let mut canonical_groups = Vec::new();
    for g in &groups {
        let found = match core.store.principal(g.trim()).await? {
            Some(p) if p.kind == "group" => p.name,
            Some(p) => return Err(bad(format!("'{}' is a user, not a group", p.name))),
            None => [AUTHENTICATED_USERS, ADMINISTRATORS]
                .into_iter()
                .find(|b| b.eq_ignore_ascii_case(g.trim()))
                .map(str::to_string)
                .ok_or_else(|| EngineError::NotFound(format!("no group named '{g}'")))?,
        };
        if !canonical_groups.contains(&found) {
            canonical_groups.push(found);
        }
    }
    let mut canonical_templates = Vec::new();
    for t in &templates {
        let name = crate::templates::template(core, t.trim()).await?.name;
        if !canonical_templates.contains(&name) {
            canonical_templates.push(name);
        }
    }
    let (groups, templates) = (canonical_groups, canonical_templates);
    let details = serde_json::json!({ "groups": groups, "templates": templates }).to_string();
    let audit = crate::audit::chain::audit_entry(
        core,
        actor,
        AuditCategory::Security,
        AuditAction::SetManagerRestrictions,
        manager,
        &details,
    );
    core.store
        .apply(
            &[Change::SetRestrictions {
                manager: manager.into(),
                groups,
                templates,
            }],
            &audit,
        )
        .await?;
    Ok(())
}

/// A manager's own restrictions (groups, templates); those of the groups
/// it belongs to apply as well (see `Ca::authorize`).
pub(crate) async fn restrictions(
    core: &Core,
    manager: &str,
) -> EngineResult<(Vec<String>, Vec<String>)> {
    let name = match crate::core::directory::find_principal(core, manager).await? {
        Some(p) => p.name,
        None => manager.to_string(),
    };
    Ok(core.store.restrictions(&name).await?)
}

/// Turns role separation on or off.
pub(crate) async fn set_role_separation(core: &Core, actor: &Actor, on: bool) -> EngineResult<()> {
    crate::authz::authorize(core, actor, Op::Security).await?;
    let audit = crate::audit::chain::audit_entry(
        core,
        actor,
        AuditCategory::Security,
        AuditAction::SetRoleSeparation,
        &on.to_string(),
        "{}",
    );
    core.store
        .apply(
            &[Change::SetSetting {
                name: crate::authz::ROLE_SEPARATION.into(),
                value: on.to_string(),
            }],
            &audit,
        )
        .await?;
    Ok(())
}
