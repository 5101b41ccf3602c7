//! Who may do what: roles, role separation, template permissions and
//! certificate-manager restrictions. [`Ca::authorize`] is the one function
//! that decides every operation, local or remote; refusals are audited.

pub use crate::actor::{Actor, Op, Role, ADMINISTRATORS, AUTHENTICATED_USERS};

use std::collections::HashMap;

use lockbox_store::RequestRecord;

use crate::category::{AuditAction, AuditCategory};
use crate::codes::{
    CERTSRV_E_RESTRICTEDOFFICER, CERTSRV_E_ROLECONFLICT, CERTSRV_E_TEMPLATE_DENIED,
};
use crate::core::Core;
use crate::template::Template;
use crate::{EngineError, EngineResult};

/// Setting: role separation on/off.
pub const ROLE_SEPARATION: &str = "role_separation";

fn denied(code: u32, msg: String) -> EngineError {
    EngineError::Denied { code, message: msg }
}

/// (restricted principal, groups, templates).
type RestrictionSet = (String, Vec<String>, Vec<String>);

fn restrictions_allow(
    actor: &Actor,
    sets: &[RestrictionSet],
    requester: &str,
    requester_groups: &[String],
    template: Option<&str>,
) -> EngineResult<()> {
    for (who, groups, templates) in sets {
        let via = if who.eq_ignore_ascii_case(&actor.name) {
            String::new()
        } else {
            format!(" (restriction on its group '{who}')")
        };
        if !templates.is_empty()
            && !template.is_some_and(|t| templates.iter().any(|x| x.eq_ignore_ascii_case(t)))
        {
            return Err(denied(
                CERTSRV_E_RESTRICTEDOFFICER,
                format!(
                    "{} may not manage certificates of template '{}'{via}",
                    actor.name,
                    template.unwrap_or("(none)")
                ),
            ));
        }
        if !groups.is_empty()
            && !requester_groups
                .iter()
                .any(|g| groups.iter().any(|x| x.eq_ignore_ascii_case(g)))
        {
            return Err(denied(
                CERTSRV_E_RESTRICTEDOFFICER,
                format!("{} may not manage certificates of requester '{requester}' (outside its groups){via}", actor.name),
            ));
        }
    }
    Ok(())
}

/// Whether role separation is on (cached while the configuration version holds).
pub(crate) async fn role_separation(core: &Core) -> EngineResult<bool> {
    let on = crate::core::cache::cached(core, &core.cache.role_separation, || async {
        let stored = core.store.setting(ROLE_SEPARATION).await?;
        Ok((stored.is_some_and(|v| v == "true"), i64::MAX))
    })
    .await?;
    Ok(*on)
}

/// Decides `op` for `actor`; a refusal is written to the audit trail and returned.
pub(crate) async fn authorize(core: &Core, actor: &Actor, op: Op<'_>) -> EngineResult<()> {
    match decide(core, actor, op).await {
        Ok(()) => Ok(()),
        Err(e) => {
            crate::audit::chain::audit_refusal(
                core,
                actor,
                op.category(),
                AuditAction::Operation(op.name()),
                "",
                &e,
            )
            .await?;
            Err(e)
        }
    }
}

/// Whether `op` would be allowed, without auditing (for filtering listings).
pub(crate) async fn would_allow(core: &Core, actor: &Actor, op: Op<'_>) -> bool {
    decide(core, actor, op).await.is_ok()
}

pub(crate) async fn decide(core: &Core, actor: &Actor, op: Op<'_>) -> EngineResult<()> {
    if actor.local_admin {
        return Ok(());
    }
    let separation = role_separation(core).await?;
    if separation && actor.roles.len() > 1 {
        return Err(denied(
            CERTSRV_E_ROLECONFLICT,
            format!(
                "{} holds several roles ({}) while role separation is enforced; every operation is refused",
                actor.name,
                actor.roles.iter().map(|r| r.name()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let admin = actor.has(Role::CaAdministrator);
    // As in AD CS, CA administrators are also certificate managers unless roles are separated.
    let manager = actor.has(Role::CertificateManager) || (admin && !separation);
    let need = |ok: bool, what: &str| -> EngineResult<()> {
        if ok {
            Ok(())
        } else {
            Err(EngineError::Forbidden(format!(
                "{} may not {}: {what} required",
                actor.name,
                op.name()
            )))
        }
    };
    match op {
        Op::Configure | Op::Security => need(admin, "the CAAdministrator role"),
        Op::EditTemplate(t) => need(
            admin || template_allows(core, actor, t, "Write").await?,
            "CAAdministrator or Write permission",
        ),
        Op::Enroll(t) => {
            if actor.is_anonymous() {
                let why = if t.archive_private_key {
                    Some("it archives private keys")
                } else if t.allows_client_auth() {
                    Some("its certificates authenticate clients")
                } else if !t.enrollee_supplies_subject {
                    Some("its names are built from the requester's principal record")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(denied(
                        CERTSRV_E_TEMPLATE_DENIED,
                        format!("Anonymous callers may not enroll for certificate template '{}': {why}.", t.name),
                    ));
                }
            }
            if template_allows(core, actor, t, "Enroll").await? {
                Ok(())
            } else {
                Err(denied(
                    CERTSRV_E_TEMPLATE_DENIED,
                    format!(
                        "The permissions on certificate template '{}' do not allow {} to enroll.",
                        t.name, actor.name
                    ),
                ))
            }
        }
        Op::EnrollOnBehalfOf { template, .. } => {
            if !actor.has(Role::EnrollmentAgent) {
                return Err(denied(
                    CERTSRV_E_TEMPLATE_DENIED,
                    format!(
                        "{} may not enroll on behalf of another principal: the EnrollmentAgent role is required",
                        actor.name
                    ),
                ));
            }
            if template_allows(core, actor, template, "Enroll").await? {
                Ok(())
            } else {
                Err(denied(
                    CERTSRV_E_TEMPLATE_DENIED,
                    format!(
                        "The permissions on certificate template '{}' do not allow {} to enroll.",
                        template.name, actor.name
                    ),
                ))
            }
        }
        Op::Officer {
            requester,
            template,
            ..
        }
        | Op::RetrieveKey {
            requester,
            template,
        } => {
            need(manager, "the CertificateManager role")?;
            check_restrictions(core, actor, requester, template).await
        }
        Op::SearchKeys => need(manager, "the CertificateManager role"),
        Op::ReadDatabase => need(
            admin || manager || actor.has(Role::Auditor),
            "CAAdministrator, CertificateManager or Auditor",
        ),
        Op::PublishCrl => need(admin || manager, "CAAdministrator or CertificateManager"),
        Op::Backup => need(
            actor.has(Role::BackupOperator) || (admin && !separation),
            "the BackupOperator role",
        ),
        Op::ReadAudit => need(
            actor.has(Role::Auditor) || (admin && !separation),
            "the Auditor role",
        ),
        Op::ConfigureAudit => need(actor.has(Role::Auditor), "the Auditor role"),
    }
}

/// Template ACL: the template's own enroll lists plus stored entries; deny wins.
pub(crate) async fn template_allows(
    core: &Core,
    actor: &Actor,
    t: &Template,
    right: &str,
) -> EngineResult<bool> {
    let names: Vec<&str> = std::iter::once(actor.name.as_str())
        .chain(actor.groups.iter().map(String::as_str))
        .collect();
    let matches = |who: &str| names.iter().any(|n| n.eq_ignore_ascii_case(who));
    let version = core.config_version().await?;
    let entries = match core.cache.permissions(&t.name, version) {
        Some(p) => p,
        None => {
            let p = std::sync::Arc::new(core.store.permissions(&t.name).await?);
            core.cache.put_permissions(&t.name, version, p.clone());
            p
        }
    };
    if entries.iter().any(|p| {
        !p.allow && matches(&p.principal) && p.rights.iter().any(|r| r.eq_ignore_ascii_case(right))
    }) {
        return Ok(false);
    }
    if entries.iter().any(|p| {
        p.allow && matches(&p.principal) && p.rights.iter().any(|r| r.eq_ignore_ascii_case(right))
    }) {
        return Ok(true);
    }
    let builtin = match right {
        "Enroll" | "Read" => t
            .enroll
            .iter()
            .chain(t.autoenroll.iter())
            .any(|w| matches(w)),
        "Autoenroll" => t.autoenroll.iter().any(|w| matches(w)),
        _ => false,
    };
    Ok(builtin)
}

/// The restrictions that apply to `actor`: its own and those of every
/// group it belongs to (a restriction on a group restricts its members,
/// whether they hold CertificateManager through it or directly). Each
/// entry: (restricted principal, groups, templates).
pub(crate) async fn restriction_sets(
    core: &Core,
    actor: &Actor,
) -> EngineResult<Vec<RestrictionSet>> {
    let mut out = Vec::new();
    for who in std::iter::once(&actor.name).chain(actor.groups.iter()) {
        let (groups, templates) = core.store.restrictions(who).await?;
        if !groups.is_empty() || !templates.is_empty() {
            out.push((who.clone(), groups, templates));
        }
    }
    Ok(out)
}

/// Certificate-manager restrictions by requester group and template:
/// every restriction that applies to the manager must allow the row.
pub(crate) async fn check_restrictions(
    core: &Core,
    actor: &Actor,
    requester: &str,
    template: Option<&str>,
) -> EngineResult<()> {
    let sets = restriction_sets(core, actor).await?;
    if sets.is_empty() {
        return Ok(());
    }
    let subject = crate::core::directory::actor_for(core, requester).await?;
    restrictions_allow(actor, &sets, requester, &subject.groups, template)
}

/// The rows of `rows` the actor may read: all of them, except for a
/// restricted certificate manager (not also a CA administrator or an
/// auditor), who reads only the rows it may act on.
pub(crate) async fn visible_rows(
    core: &Core,
    actor: &Actor,
    rows: Vec<RequestRecord>,
) -> EngineResult<Vec<RequestRecord>> {
    if actor.local_admin || actor.has(Role::CaAdministrator) || actor.has(Role::Auditor) {
        return Ok(rows);
    }
    let sets = restriction_sets(core, actor).await?;
    if sets.is_empty() {
        return Ok(rows);
    }
    let mut groups_of: HashMap<String, Vec<String>> = HashMap::new();
    let mut out = Vec::new();
    for r in rows {
        let key = r.requester.to_ascii_lowercase();
        if !groups_of.contains_key(&key) {
            let g = crate::core::directory::actor_for(core, &r.requester)
                .await?
                .groups;
            groups_of.insert(key.clone(), g);
        }
        let groups = groups_of.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        if restrictions_allow(actor, &sets, &r.requester, groups, r.template.as_deref()).is_ok() {
            out.push(r);
        }
    }
    Ok(out)
}

/// Whether the actor may act on the row as a certificate manager (issue,
/// deny, revoke), without auditing: for showing or hiding buttons.
pub(crate) async fn may_manage(core: &Core, actor: &Actor, r: &RequestRecord) -> bool {
    would_allow(
        core,
        actor,
        Op::Officer {
            action: "issue",
            requester: &r.requester,
            template: r.template.as_deref(),
        },
    )
    .await
}

/// One request row for a reader of the CA database; a restricted manager
/// gets 0x80094009 for a row outside its restrictions (audited).
pub(crate) async fn read_request(
    core: &Core,
    actor: &Actor,
    id: i64,
) -> EngineResult<RequestRecord> {
    authorize(core, actor, Op::ReadDatabase).await?;
    let r = core.request(id).await?;
    if visible_rows(core, actor, vec![r.clone()]).await?.is_empty() {
        let e = denied(
            CERTSRV_E_RESTRICTEDOFFICER,
            format!(
                "{} may not read request {id} (outside its restrictions)",
                actor.name
            ),
        );
        crate::audit::chain::audit_refusal(
            core,
            actor,
            AuditCategory::Requests,
            AuditAction::ReadDatabase,
            &id.to_string(),
            &e,
        )
        .await?;
        return Err(e);
    }
    Ok(r)
}
