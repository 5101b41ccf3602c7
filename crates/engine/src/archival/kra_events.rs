//! KRA state changes: remembering the last states, logging events, landing KRA certificates issued here.

use lockbox_codec::hexfmt::to_hex;
use lockbox_codec::oids;
use lockbox_crypto::digest::sha1;
use lockbox_store::Change;
use x509_cert::certificate::Certificate;

use crate::archival::{has_eku, KraStatus};
use crate::category::{AuditAction, AuditCategory};
use crate::certbuild::decode_certificate;
use crate::core::Core;
use crate::period::now;
use crate::{Actor, EngineResult};

/// Setting holding the KRA states the events were last logged for.
pub(crate) const KRA_LOGGED_STATES: &str = "kra_logged_states";

/// What the KRA events were last logged for: every certificate's status
/// and the number required.
pub(crate) async fn kra_states_fingerprint(
    core: &Core,
    statuses: &[(KraStatus, Option<Certificate>)],
) -> EngineResult<String> {
    let mut parts: Vec<String> = statuses
        .iter()
        .map(|(k, _)| format!("{}={}", k.thumbprint, k.status))
        .collect();
    parts.sort();
    parts.push(format!(
        "required={}",
        crate::archival::kra::kra_required(core).await?
    ));
    Ok(parts.join(";"))
}

pub(crate) async fn remember_kra_states(
    core: &Core,
    statuses: &[(KraStatus, Option<Certificate>)],
) -> EngineResult<()> {
    let fp = kra_states_fingerprint(core, statuses).await?;
    if core.store.setting(KRA_LOGGED_STATES).await?.as_deref() != Some(fp.as_str()) {
        core.store
            .apply(
                &[Change::SetSetting {
                    name: KRA_LOGGED_STATES.into(),
                    value: fp,
                }],
                &[],
            )
            .await?;
    }
    Ok(())
}

/// Logs the KRA events (84 naming each unusable agent and why, 82, 98, 127)
/// when the agents' states differ from those last logged: a KRA revoked
/// with `lockbox revoke`, or expired, is reported when the CA first finds
/// it (at revocation or at the next archival), once, not for every request.
pub(crate) async fn report_kra_changes(
    core: &Core,
    statuses: &[(KraStatus, Option<Certificate>)],
) -> EngineResult<()> {
    let fp = kra_states_fingerprint(core, statuses).await?;
    if core.store.setting(KRA_LOGGED_STATES).await?.as_deref() == Some(fp.as_str()) {
        return Ok(());
    }
    log_kra_events(core, statuses).await?;
    remember_kra_states(core, statuses).await
}

/// Records the events for the given KRA states; returns (valid, total).
pub(crate) async fn log_kra_events(
    core: &Core,
    statuses: &[(KraStatus, Option<Certificate>)],
) -> EngineResult<(usize, usize)> {
    let total = statuses.len();
    let mut valid = 0;
    let warn_days: i64 = core
        .store
        .setting("kra_expiry_warning_days")
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    for (k, _) in statuses {
        match k.status.as_str() {
            "valid" => {
                valid += 1;
                if k.not_after - now() < warn_days * 86_400 {
                    crate::audit::chain::event(
                        core,
                        127,
                        "warning",
                        &format!(
                            "KRA certificate {} ({}) expires on {}",
                            k.thumbprint,
                            k.subject,
                            crate::period::rfc3339(k.not_after)
                        ),
                    )
                    .await?;
                }
            }
            "cannot be loaded" => {
                crate::audit::chain::event(
                    core,
                    85,
                    "error",
                    &format!("KRA certificate {} could not be loaded", k.thumbprint),
                )
                .await?
            }
            reason => {
                crate::audit::chain::event(
                    core,
                    84,
                    "error",
                    &format!(
                        "KRA certificate {} ({}) is not usable: {reason}",
                        k.thumbprint, k.subject
                    ),
                )
                .await?
            }
        }
    }
    if valid < total {
        crate::audit::chain::event(
            core,
            82,
            "warning",
            &format!("Only {valid} of {total} KRA certificates were verified"),
        )
        .await?;
    }
    let required = crate::archival::kra::kra_required(core).await?;
    if required > 0 && valid < required {
        crate::audit::chain::event(core, 98, "error", &format!("Errors validating KRA certificates: {valid} valid, {required} required; key archival is stopped")).await?;
    }
    Ok((valid, total))
}

/// Issued Key Recovery Agent certificates land in the CA's KRA store (the
/// administrator still chooses how many are required).
pub(crate) async fn land_kra_certificate(
    core: &Core,
    actor: &Actor,
    cert_der: &[u8],
) -> EngineResult<()> {
    let cert = decode_certificate(cert_der)?;
    if !has_eku(&cert, oids::MS_KP_KEY_RECOVERY_AGENT) {
        return Ok(());
    }
    let thumb = to_hex(&sha1(cert_der));
    let audit = crate::audit::chain::success(
        core,
        actor,
        AuditCategory::Config,
        AuditAction::KraCertificateIssued,
        &thumb,
        "{}",
    )
    .await;
    core.store
        .apply(
            &[Change::AddKra {
                thumbprint: thumb,
                cert_der: cert_der.to_vec(),
                chain_der: None,
                crl_source: None,
                at: now(),
            }],
            &audit,
        )
        .await?;
    crate::archival::kra::validate_kras(core).await?;
    Ok(())
}
