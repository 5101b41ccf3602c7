//! Key recovery agent administration: adding and removing KRAs, the required count, expiry warnings.

use lockbox_codec::hexfmt::{normalize_hex, to_hex};
use lockbox_codec::oids;
use lockbox_codec::pem::decode_input;
use lockbox_crypto::digest::sha1;
use lockbox_store::Change;
use x509_cert::ext::pkix::KeyUsages;

use crate::archival::kra::KRA_REQUIRED;
use crate::archival::{has_eku, key_usage, KraStatus};
use crate::category::{AuditAction, AuditCategory};
use crate::certbuild::decode_certificate;
use crate::core::Core;
use crate::period::now;
use crate::{codes, Actor, EngineError, EngineResult, Op};

/// Adds a KRA certificate, given as PEM/DER or as the serial number of a
/// certificate this CA issued. Certificates of other CAs need their chain
/// (PEM, up to the root) and a CRL source (file path or http URL).
pub(crate) async fn kra_add(
    core: &Core,
    actor: &Actor,
    cert_or_serial: &[u8],
    chain_pem: Option<Vec<u8>>,
    crl_source: Option<String>,
) -> EngineResult<KraStatus> {
    crate::authz::authorize(core, actor, Op::Configure).await?;
    let der = match std::str::from_utf8(cert_or_serial)
        .ok()
        .and_then(normalize_hex)
        .filter(|_| cert_or_serial.len() <= 64)
    {
        Some(serial) => core
            .store
            .get_by_serial(&serial)
            .await?
            .and_then(|r| r.cert)
            .map(|c| c.cert_der)
            .ok_or_else(|| {
                EngineError::NotFound(format!("no certificate with serial number {serial}"))
            })?,
        None => decode_input(cert_or_serial)?.der,
    };
    let cert = decode_certificate(&der)?;
    if !has_eku(&cert, oids::MS_KP_KEY_RECOVERY_AGENT) {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "the certificate has no Key Recovery Agent EKU (1.3.6.1.4.1.311.21.6)",
        ));
    }
    let ku_ok = key_usage(&cert).is_some_and(|k| {
        k.0.contains(KeyUsages::KeyEncipherment) || k.0.contains(KeyUsages::KeyAgreement)
    });
    if !ku_ok {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "a KRA certificate needs keyUsage keyEncipherment (RSA) or keyAgreement (EC)",
        ));
    }
    let thumb = to_hex(&sha1(&der));
    let audit = crate::audit::chain::success(
        core,
        actor,
        AuditCategory::Config,
        AuditAction::KraAdded,
        &thumb,
        &serde_json::json!({ "subject": cert.tbs_certificate().subject().to_string() }).to_string(),
    )
    .await;
    core.store
        .apply(
            &[Change::AddKra {
                thumbprint: thumb.clone(),
                cert_der: der,
                chain_der: chain_pem,
                crl_source,
                at: now(),
            }],
            &audit,
        )
        .await?;
    tracing::info!(thumbprint = %thumb, "KRA certificate added");
    crate::archival::kra::validate_kras(core).await?;
    crate::archival::kra::kra_statuses(core)
        .await?
        .into_iter()
        .map(|(s, _)| s)
        .find(|k| k.thumbprint == thumb)
        .ok_or_else(|| EngineError::Config("KRA vanished".into()))
}

/// Removes a KRA certificate by thumbprint or serial number. Refused
/// (0x8007139F, listing them) when it is the last configured agent able to
/// open some archived keys, unless `force`.
pub(crate) async fn kra_remove(
    core: &Core,
    actor: &Actor,
    id: &str,
    force: bool,
) -> EngineResult<String> {
    crate::authz::authorize(core, actor, Op::Configure).await?;
    let norm = normalize_hex(id).ok_or_else(|| {
        EngineError::bad_input(
            codes::E_INVALIDARG,
            format!("'{id}' is not a thumbprint or serial"),
        )
    })?;
    for (k, _) in crate::archival::kra::kra_statuses(core).await? {
        if k.thumbprint == norm || k.serial == norm {
            let orphaned = keys_only_for_kra(core, &k.thumbprint).await?;
            if !orphaned.is_empty() && !force {
                return Err(EngineError::Conflict(format!(
                    "KRA certificate {} ({}) is the last configured agent able to open {} archived key(s): {}; \
                     without it they cannot be recovered (give --force to remove it anyway)",
                    k.thumbprint,
                    k.subject,
                    orphaned.len(),
                    orphaned.join(", ")
                )));
            }
            let required = crate::archival::kra::kra_required(core).await?;
            let left = core.store.kra_certificates().await?.len().saturating_sub(1);
            let mut changes = vec![Change::RemoveKra {
                thumbprint: k.thumbprint.clone(),
            }];
            if required > left {
                changes.push(Change::SetSetting {
                    name: KRA_REQUIRED.into(),
                    value: left.to_string(),
                });
            }
            let details = if orphaned.is_empty() {
                "{}".to_string()
            } else {
                serde_json::json!({ "forced": true, "keys_without_agent": orphaned }).to_string()
            };
            let audit = crate::audit::chain::success(
                core,
                actor,
                AuditCategory::Config,
                AuditAction::KraRemoved,
                &k.thumbprint,
                &details,
            )
            .await;
            core.store.apply(&changes, &audit).await?;
            crate::archival::kra::validate_kras(core).await?;
            return Ok(k.thumbprint);
        }
    }
    Err(EngineError::NotFound(format!(
        "no configured KRA certificate matches '{id}'"
    )))
}

/// The archived keys that no configured KRA other than `thumbprint` can
/// open, as "request N (serial S)" or "key ID K".
pub(crate) async fn keys_only_for_kra(core: &Core, thumbprint: &str) -> EngineResult<Vec<String>> {
    let others: Vec<String> = core
        .store
        .kra_certificates()
        .await?
        .into_iter()
        .map(|e| e.thumbprint)
        .filter(|t| t != thumbprint)
        .collect();
    Ok(core
        .store
        .keys_for_kra(thumbprint)
        .await?
        .into_iter()
        .filter(|k| {
            let hashes: Vec<&str> = k.kra_hashes.split(',').map(str::trim).collect();
            hashes.contains(&thumbprint) && !hashes.iter().any(|h| others.iter().any(|o| o == h))
        })
        .map(|k| match (k.request_id, k.serial, k.key_id) {
            (Some(id), Some(serial), _) => format!("request {id} (serial {serial})"),
            (Some(id), None, _) => format!("request {id}"),
            (None, _, Some(key_id)) => format!("key ID {key_id}"),
            _ => "an archived key".into(),
        })
        .collect())
}

/// Sets how many KRAs each key is encrypted to; cannot exceed the configured count.
pub(crate) async fn set_kra_required(core: &Core, actor: &Actor, n: usize) -> EngineResult<()> {
    crate::authz::authorize(core, actor, Op::Configure).await?;
    let configured = core.store.kra_certificates().await?.len();
    if n > configured {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            format!("cannot require {n} key recovery agents: only {configured} KRA certificate(s) are configured"),
        ));
    }
    let audit = crate::audit::chain::success(
        core,
        actor,
        AuditCategory::Config,
        AuditAction::KraCountRequired,
        &n.to_string(),
        "{}",
    )
    .await;
    core.store
        .apply(
            &[Change::SetSetting {
                name: KRA_REQUIRED.into(),
                value: n.to_string(),
            }],
            &audit,
        )
        .await?;
    crate::archival::kra::validate_kras(core).await?;
    Ok(())
}

/// Sets how many days before a KRA certificate expires the CA warns
/// (event 127; `kra_expiry_warning_days`, default 30).
pub(crate) async fn set_kra_expiry_warning_days(
    core: &Core,
    actor: &Actor,
    days: u32,
) -> EngineResult<()> {
    crate::authz::authorize(core, actor, Op::Configure).await?;
    let audit = crate::audit::chain::success(
        core,
        actor,
        AuditCategory::Config,
        AuditAction::SetKraExpiryWarningDays,
        &days.to_string(),
        "{}",
    )
    .await;
    core.store
        .apply(
            &[Change::SetSetting {
                name: "kra_expiry_warning_days".into(),
                value: days.to_string(),
            }],
            &audit,
        )
        .await?;
    crate::archival::kra::validate_kras(core).await?;
    Ok(())
}
