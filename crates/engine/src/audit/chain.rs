//! Audit entries: building them, filtering by audited category, recording refusals and events.

use lockbox_store::AuditEntry;

use crate::audit::{AUDIT_CATEGORIES, CATEGORIES};
use crate::category::{AuditAction, AuditCategory};
use crate::core::Core;
use crate::period::now;
use crate::{Actor, EngineError, EngineResult};

/// The audited categories (the `audit_categories` setting, default all),
/// from the cache while the configuration version holds.
/// A database that cannot be read audits every category (nothing cached).
pub(crate) async fn categories(core: &Core) -> Vec<String> {
    let read = crate::core::cache::cached(core, &core.cache.audit_categories, || async {
        let stored = core.store.setting(AUDIT_CATEGORIES).await?;
        Ok((parse_categories(stored.as_deref()), i64::MAX))
    })
    .await;
    match read {
        Ok(c) => c.as_ref().clone(),
        Err(_) => parse_categories(None),
    }
}

/// The categories a stored `audit_categories` value names (all when unset).
fn parse_categories(stored: Option<&str>) -> Vec<String> {
    match stored {
        Some(v) => v
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        _ => CATEGORIES.iter().map(|s| s.to_string()).collect(),
    }
}

/// An audit entry for a successful action (empty if its category is not audited).
pub(crate) fn audit_entry(
    _core: &Core,
    actor: &Actor,
    category: AuditCategory,
    action: AuditAction,
    target: &str,
    details: &str,
) -> Vec<AuditEntry> {
    vec![AuditEntry {
        at: now(),
        actor: actor.audit_name(),
        category: category.as_str().into(),
        action: action.as_str().into(),
        target: target.into(),
        outcome: "success".into(),
        details: details.into(),
    }]
}

/// The entry for a successful action, kept only when its category is audited.
pub(crate) async fn success(
    core: &Core,
    actor: &Actor,
    category: AuditCategory,
    action: AuditAction,
    target: &str,
    details: &str,
) -> Vec<AuditEntry> {
    audited(
        core,
        audit_entry(core, actor, category, action, target, details),
    )
    .await
}

/// Filters entries by the audited categories (refusals are always kept).
pub(crate) async fn audited(core: &Core, entries: Vec<AuditEntry>) -> Vec<AuditEntry> {
    let cats = categories(core).await;
    entries
        .into_iter()
        .filter(|e| e.outcome != "success" || cats.iter().any(|c| c == &e.category))
        .collect()
}

/// Records a refused operation.
pub(crate) async fn audit_refusal(
    core: &Core,
    actor: &Actor,
    category: AuditCategory,
    action: AuditAction,
    target: &str,
    err: &EngineError,
) -> EngineResult<()> {
    let details =
        serde_json::json!({ "code": format!("0x{:08x}", err.code()), "reason": err.to_string() })
            .to_string();
    core.store
        .append_audit(&[AuditEntry {
            at: now(),
            actor: actor.audit_name(),
            category: category.as_str().into(),
            action: action.as_str().into(),
            target: target.into(),
            outcome: "refused".into(),
            details,
        }])
        .await?;
    Ok(())
}

/// Records a CA event (also through tracing).
pub(crate) async fn event(
    core: &Core,
    event_id: i64,
    level: &str,
    message: &str,
) -> EngineResult<()> {
    match level {
        "error" => tracing::error!(event_id, "{message}"),
        "warning" => tracing::warn!(event_id, "{message}"),
        _ => tracing::info!(event_id, "{message}"),
    }
    core.store
        .add_event(now(), event_id, level, message)
        .await?;
    Ok(())
}
