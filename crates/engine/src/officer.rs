//! The certificate manager's operations: pending requests, issue, deny, revoke, views.

use lockbox_codec::hexfmt::normalize_hex;
use lockbox_store::{Disposition, RequestRecord};

use crate::category::{AuditAction, AuditCategory};
use crate::core::Core;
use crate::enroll::{conflict, outcome};
use crate::inbound::decode_and_verify_submission;
use crate::period::now;
use crate::view::parse_restrictions;
use crate::{codes, Actor, EngineError, EngineResult, Op, Outcome};

/// Requests waiting for a certificate manager.
pub(crate) async fn pending(core: &Core, actor: &Actor) -> EngineResult<Vec<RequestRecord>> {
    view(core, actor, "Disposition=pending", 10_000).await
}

/// Issues a pending request (certificate manager, within its restrictions).
pub(crate) async fn issue(core: &Core, id: i64, actor: &Actor) -> EngineResult<Outcome> {
    let rec = core.request(id).await?;
    crate::authz::authorize(
        core,
        actor,
        Op::Officer {
            action: "issue",
            requester: &rec.requester,
            template: rec.template.as_deref(),
        },
    )
    .await?;
    if rec.disposition != Disposition::Pending {
        return Err(EngineError::Conflict(format!(
            "request {id} is {}, not pending",
            rec.disposition.as_str()
        )));
    }
    // Stored requests were checked at submission (a renewal's signer too).
    let inbound = decode_and_verify_submission(&rec.request_der)?;
    let tname = rec.template.clone().unwrap_or_default();
    let template = crate::templates::template(core, &tname).await?;
    let names = match rec.renewal_of {
        Some(old) => crate::enroll::renewal::pending_renewal_names(core, &rec, old).await?,
        None => crate::enroll::names::pending_names(core, &template, &inbound, &rec).await?,
    };
    let message = format!("Issued by {}", actor.name);
    // A serial number already in use is refused by the unique index: sign
    // again with a new one (see `enroll::submit_as`).
    let mut attempts = 0;
    let fields = loop {
        let fields = crate::enroll::build_leaf(core, &template, &inbound, &names)?;
        let audit = crate::audit::chain::success(
            core,
            actor,
            AuditCategory::Requests,
            AuditAction::CertificateIssued,
            &id.to_string(),
            &serde_json::json!({ "serial": fields.serial }).to_string(),
        )
        .await;
        match core
            .store
            .issue_pending(id, &fields, &message, now(), &audit)
            .await
        {
            Err(lockbox_store::StoreError::DuplicateSerial) if attempts < 3 => attempts += 1,
            other => {
                other.map_err(conflict)?;
                break fields;
            }
        }
    };
    crate::archival::kra_events::land_kra_certificate(core, actor, &fields.cert_der).await?;
    let _ = crate::audit::heads::maybe_sign_head(core).await;
    tracing::info!(request_id = id, officer = %actor.name, "pending request issued");
    let mut o = outcome(
        id,
        &Disposition::Issued,
        &message,
        rec.template,
        Some(&fields),
    );
    o.archived = rec.has_archived_key;
    Ok(o)
}

/// Denies a pending request (any archived key is deleted with it).
pub(crate) async fn deny(core: &Core, id: i64, actor: &Actor) -> EngineResult<Outcome> {
    let rec = core.request(id).await?;
    crate::authz::authorize(
        core,
        actor,
        Op::Officer {
            action: "deny",
            requester: &rec.requester,
            template: rec.template.as_deref(),
        },
    )
    .await?;
    let message = format!("Denied by {}", actor.name);
    let audit = crate::audit::chain::success(
        core,
        actor,
        AuditCategory::Requests,
        AuditAction::RequestDenied,
        &id.to_string(),
        "{}",
    )
    .await;
    core.store
        .deny_pending(id, &message, codes::E_ACCESSDENIED as i64, now(), &audit)
        .await
        .map_err(conflict)?;
    let _ = crate::audit::heads::maybe_sign_head(core).await;
    tracing::info!(request_id = id, officer = %actor.name, "pending request denied");
    Ok(outcome(
        id,
        &Disposition::Denied,
        &message,
        rec.template,
        None,
    ))
}

/// The certificate (DER) of an issued or revoked request (certificates are public).
pub(crate) async fn certificate(core: &Core, id: i64) -> EngineResult<Vec<u8>> {
    let rec = core.request(id).await?;
    rec.cert.map(|c| c.cert_der).ok_or_else(|| {
        EngineError::Conflict(format!(
            "request {id} has no certificate (it is {})",
            rec.disposition.as_str()
        ))
    })
}

/// The certificate with `serial` (hex, spaces allowed) and its row, once
/// `actor` may revoke (or release) it.
async fn revocable(
    core: &Core,
    serial: &str,
    actor: &Actor,
) -> EngineResult<(String, RequestRecord)> {
    let s = normalize_hex(serial).ok_or_else(|| {
        EngineError::bad_input(
            codes::E_INVALIDARG,
            format!("'{serial}' is not a hex serial number"),
        )
    })?;
    let rec =
        core.store.get_by_serial(&s).await?.ok_or_else(|| {
            EngineError::NotFound(format!("no certificate with serial number {s}"))
        })?;
    crate::authz::authorize(
        core,
        actor,
        Op::Officer {
            action: "revoke",
            requester: &rec.requester,
            template: rec.template.as_deref(),
        },
    )
    .await?;
    Ok((s, rec))
}

/// Revokes by serial number (hex, spaces allowed).
pub(crate) async fn revoke(
    core: &Core,
    serial: &str,
    reason: i32,
    actor: &Actor,
) -> EngineResult<RequestRecord> {
    let (s, rec) = revocable(core, serial, actor).await?;
    let audit = crate::audit::chain::success(core, actor, AuditCategory::Revocation, AuditAction::CertificateRevoked, &s, &serde_json::json!({ "reason": crate::crl::reason_name(reason), "request_id": rec.request_id }).to_string())
        .await;
    core.store
        .revoke(&s, reason, now(), &audit)
        .await
        .map_err(conflict)?;
    let _ = crate::audit::heads::maybe_sign_head(core).await;
    tracing::info!(serial = %s, reason, "certificate revoked");
    if let Some(c) = &rec.cert {
        if let Err(e) = crate::archival::kra::kra_revoked_check(core, &c.cert_der).await {
            tracing::warn!(error = %e, "KRA events after revocation not recorded");
        }
    }
    core.store
        .get_by_serial(&s)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("no certificate with serial number {s}")))
}

/// Releases a certificate on hold (reason certificateHold), by serial number.
pub(crate) async fn unrevoke(
    core: &Core,
    serial: &str,
    actor: &Actor,
) -> EngineResult<RequestRecord> {
    let (s, rec) = revocable(core, serial, actor).await?;
    let audit = crate::audit::chain::success(
        core,
        actor,
        AuditCategory::Revocation,
        AuditAction::CertificateUnrevoked,
        &s,
        &serde_json::json!({ "request_id": rec.request_id }).to_string(),
    )
    .await;
    core.store.unrevoke(&s, &audit).await.map_err(conflict)?;
    let _ = crate::audit::heads::maybe_sign_head(core).await;
    tracing::info!(serial = %s, "certificate released from hold");
    core.store
        .get_by_serial(&s)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("no certificate with serial number {s}")))
}

/// Rows matching a `--restrict` expression.
pub(crate) async fn view(
    core: &Core,
    actor: &Actor,
    restrict: &str,
    limit: i64,
) -> EngineResult<Vec<RequestRecord>> {
    crate::authz::authorize(core, actor, Op::ReadDatabase).await?;
    let mut r = parse_restrictions(restrict)?;
    let limit = limit.clamp(1, 1_000_000);
    // A restricted manager reads only the rows it may act on: page on by
    // request ID until `limit` visible rows or the end of the table.
    let mut out = Vec::new();
    let at = r.len();
    loop {
        let rows = core.store.query(&r, limit).await?;
        let (fetched, last) = (rows.len() as i64, rows.last().map(|x| x.request_id));
        out.extend(crate::authz::visible_rows(core, actor, rows).await?);
        match last {
            Some(last) if fetched == limit && (out.len() as i64) < limit => {
                r.truncate(at);
                r.push(lockbox_store::Restriction {
                    column: lockbox_store::Column::RequestId,
                    op: lockbox_store::Op::Gt,
                    value: lockbox_store::Value::Int(last),
                });
            }
            _ => break,
        }
    }
    out.truncate(limit as usize);
    Ok(out)
}
