//! The auditor's operations: reading and verifying the audit trail, choosing audited categories, events.

use lockbox_store::{AuditRecord, Change, EventRecord};

use crate::audit::{AuditReport, AUDIT_CATEGORIES, CATEGORIES};
use crate::category::{AuditAction, AuditCategory};
use crate::core::Core;
use crate::{Actor, EngineError, EngineResult, Op};

/// Audit records since a time (Auditor, or CA administrator without role separation).
pub(crate) async fn audit_list(
    core: &Core,
    actor: &Actor,
    since: Option<i64>,
    limit: i64,
) -> EngineResult<Vec<AuditRecord>> {
    crate::authz::authorize(core, actor, Op::ReadAudit).await?;
    let mut out = Vec::new();
    let mut from = 1;
    loop {
        let batch = core.store.audit_records(from, 10_000).await?;
        if batch.is_empty() {
            break;
        }
        from = batch.last().map(|r| r.seq + 1).unwrap_or(from);
        out.extend(
            batch
                .into_iter()
                .filter(|r| since.is_none_or(|s| r.entry.at >= s)),
        );
    }
    let skip = out.len().saturating_sub(limit.max(0) as usize);
    Ok(out.split_off(skip))
}

/// The latest `n` audit records, oldest first, and how many exist (one
/// indexed read for the count, one range read for the records).
pub(crate) async fn audit_latest(
    core: &Core,
    actor: &Actor,
    n: i64,
) -> EngineResult<(i64, Vec<AuditRecord>)> {
    crate::authz::authorize(core, actor, Op::ReadAudit).await?;
    let Some(last) = core.store.last_audit_record().await? else {
        return Ok((0, vec![]));
    };
    let n = n.clamp(1, 10_000);
    let from = (last.seq - n + 1).max(1);
    Ok((last.seq, core.store.audit_records(from, n).await?))
}

/// Sets the audited categories (Auditor only).
pub(crate) async fn set_audit_categories(
    core: &Core,
    actor: &Actor,
    categories: &[String],
) -> EngineResult<Vec<String>> {
    crate::authz::authorize(core, actor, Op::ConfigureAudit).await?;
    for c in categories {
        if !CATEGORIES.contains(&c.as_str()) {
            return Err(EngineError::bad_input(
                crate::codes::E_INVALIDARG,
                format!("unknown category '{c}' ({})", CATEGORIES.join(", ")),
            ));
        }
    }
    let value = categories.join(",");
    let audit = crate::audit::chain::audit_entry(
        core,
        actor,
        AuditCategory::Audit,
        AuditAction::SetAuditCategories,
        &value,
        "{}",
    );
    core.store
        .apply(
            &[Change::SetSetting {
                name: AUDIT_CATEGORIES.into(),
                value: value.clone(),
            }],
            &audit,
        )
        .await?;
    Ok(categories.to_vec())
}

/// The audited categories.
pub(crate) async fn audit_categories(core: &Core) -> Vec<String> {
    crate::audit::chain::categories(core).await
}

/// The latest CA events.
pub(crate) async fn events(
    core: &Core,
    actor: &Actor,
    limit: i64,
) -> EngineResult<Vec<EventRecord>> {
    crate::authz::authorize(core, actor, Op::ReadDatabase).await?;
    Ok(core.store.events(limit).await?)
}

/// Verifies the chain: every record's hash, its link to the previous one,
/// contiguous positions, and every signed head.
pub(crate) async fn audit_verify(core: &Core, actor: &Actor) -> EngineResult<AuditReport> {
    crate::authz::authorize(core, actor, Op::ReadAudit).await?;
    crate::audit::verify::verify(core).await
}
