//! Template administration: the effective templates, duplicating and editing them, the templates the CA issues.

use lockbox_crypto::random::random_bytes;
use lockbox_store::Change;

use std::sync::Arc;

use crate::category::{AuditAction, AuditCategory};
use crate::core::cache::{cached, TemplateSet};
use crate::core::Core;
use crate::template::{validate_name, Template, TEMPLATE_ARC};
use crate::{codes, Actor, EngineError, EngineResult, Op};

pub(crate) fn find_template<'a>(all: &'a [Template], name: &str) -> Option<&'a Template> {
    all.iter().find(|t| t.name.eq_ignore_ascii_case(name))
}

/// All templates.
pub(crate) async fn templates(core: &Core) -> EngineResult<Vec<Template>> {
    Ok(template_set(core).await?.all.clone())
}

/// The templates and the CA's template list, from the cache while the
/// configuration version holds.
pub(crate) async fn template_set(core: &Core) -> EngineResult<Arc<TemplateSet>> {
    cached(core, &core.cache.templates, || async {
        let set = TemplateSet {
            all: load_templates(core).await?,
            enabled: core.store.ca_templates().await?,
        };
        Ok((set, i64::MAX))
    })
    .await
}

/// Reads and parses every template from the database.
async fn load_templates(core: &Core) -> EngineResult<Vec<Template>> {
    core.store
        .templates()
        .await?
        .into_iter()
        .map(|(name, json)| {
            let corrupt = |e: serde_json::Error| {
                EngineError::Config(format!("template '{name}' is corrupt: {e}"))
            };
            let value: serde_json::Value = serde_json::from_str(&json).map_err(corrupt)?;
            let stored_before_flag = value.get("enrollee_supplies_subject").is_none();
            let mut t: Template = serde_json::from_value(value).map_err(corrupt)?;
            if stored_before_flag {
                t.enrollee_supplies_subject = t.legacy_enrollee_supplies_subject();
            }
            Ok(t)
        })
        .collect()
}

/// One template by name.
pub(crate) async fn template(core: &Core, name: &str) -> EngineResult<Template> {
    let all = templates(core).await?;
    find_template(&all, name)
        .cloned()
        .ok_or_else(|| EngineError::NotFound(format!("no template named '{name}'")))
}

pub(crate) async fn save_template(
    core: &Core,
    actor: &Actor,
    t: &Template,
    action: AuditAction,
) -> EngineResult<()> {
    let json = serde_json::to_string(t).map_err(|e| EngineError::Config(e.to_string()))?;
    let audit =
        crate::audit::chain::success(core, actor, AuditCategory::Config, action, &t.name, &json)
            .await;
    core.store
        .apply(
            &[Change::PutTemplate {
                name: t.name.clone(),
                json,
            }],
            &audit,
        )
        .await?;
    let _ = crate::audit::heads::maybe_sign_head(core).await;
    Ok(())
}

/// Duplicates a template under a new name (editable, version 2+).
pub(crate) async fn duplicate_template(
    core: &Core,
    actor: &Actor,
    name: &str,
    new_name: &str,
) -> EngineResult<Template> {
    crate::authz::authorize(core, actor, Op::Configure).await?;
    validate_name(new_name)?;
    let all = templates(core).await?;
    let src = find_template(&all, name)
        .ok_or_else(|| EngineError::NotFound(format!("no template named '{name}'")))?;
    if find_template(&all, new_name).is_some() {
        return Err(EngineError::Conflict(format!(
            "a template named '{new_name}' already exists"
        )));
    }
    // Two random 24-bit arcs: unique enough, and within the OID size limit.
    let r = random_bytes(6)?;
    let oid = format!(
        "{TEMPLATE_ARC}.{}.{}",
        (u32::from_be_bytes([0, r[0], r[1], r[2]]) | 1),
        (u32::from_be_bytes([0, r[3], r[4], r[5]]) | 1)
    );
    let t = src.duplicate(new_name, oid)?;
    save_template(
        core,
        actor,
        &t,
        AuditAction::DuplicateTemplate(name.to_string()),
    )
    .await?;
    Ok(t)
}

/// Sets one property of an editable template.
pub(crate) async fn set_template(
    core: &Core,
    actor: &Actor,
    name: &str,
    key: &str,
    value: &str,
) -> EngineResult<Template> {
    let mut t = template(core, name).await?;
    crate::authz::authorize(core, actor, Op::EditTemplate(&t)).await?;
    if key.trim().to_ascii_lowercase().replace('-', "_") == "superseded_templates" {
        // Names must be templates of this CA (before the "not supported yet" refusal).
        let all = templates(core).await?;
        for n in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if find_template(&all, n).is_none() {
                return Err(EngineError::bad_input(
                    codes::E_INVALIDARG,
                    format!("superseded_templates: no template named '{n}'"),
                ));
            }
        }
    }
    t.set(key, value)?;
    save_template(
        core,
        actor,
        &t,
        AuditAction::SetTemplate {
            key: key.to_string(),
            value: value.to_string(),
        },
    )
    .await?;
    Ok(t)
}

/// Templates this CA issues.
pub(crate) async fn ca_templates(core: &Core) -> EngineResult<Vec<String>> {
    Ok(template_set(core).await?.enabled.clone())
}

/// Adds a template to (or removes it from) the CA's issue list.
pub(crate) async fn set_ca_template(
    core: &Core,
    actor: &Actor,
    name: &str,
    enabled: bool,
) -> EngineResult<String> {
    crate::authz::authorize(core, actor, Op::Configure).await?;
    let t = template(core, name).await?;
    if t.internal && enabled {
        return Err(EngineError::Conflict(format!(
            "template '{}' is internal to the CA",
            t.name
        )));
    }
    let action = if enabled {
        AuditAction::AddCaTemplate
    } else {
        AuditAction::RemoveCaTemplate
    };
    let audit =
        crate::audit::chain::success(core, actor, AuditCategory::Config, action, &t.name, "{}")
            .await;
    core.store
        .apply(
            &[Change::SetCaTemplate {
                name: t.name.clone(),
                enabled,
            }],
            &audit,
        )
        .await?;
    Ok(t.name)
}
