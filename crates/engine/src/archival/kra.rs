//! KRA status and choice: validity of each configured KRA and the round-robin choice for a new archive.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use der::{Decode, Encode};
use lockbox_codec::hexfmt::to_hex;
use lockbox_codec::oids;
use lockbox_codec::pem::decode_input;
use lockbox_crypto::digest::sha1;
use lockbox_crypto::keyinfo::public_key_facts;
use lockbox_crypto::verify::verify_signature;
use lockbox_store::KraEntry;
use x509_cert::certificate::Certificate;

use crate::archival::{has_eku, KraStatus};
use crate::certbuild::decode_certificate;
use crate::certs::verify_issued_by;
use crate::codes::CERTSRV_E_NO_VALID_KRA;
use crate::core::cache::{cached, earliest_not_after, KraSet};
use crate::core::Core;
use crate::period::{now, unix_of};
use crate::{codes, Actor, EngineError, EngineResult, Op};

/// Setting holding the number of KRAs each key is encrypted to.
pub const KRA_REQUIRED: &str = "kra_required";

/// Some(true) revoked, Some(false) not revoked, None when the CRL is unusable
/// (undecodable, not signed by the issuer, past its nextUpdate, or a delta
/// CRL, which lists only changes and so cannot say "not revoked").
pub(crate) fn crl_status(bytes: &[u8], cert: &Certificate, issuer: &Certificate) -> Option<bool> {
    let der = decode_input(bytes).ok()?.der;
    let crl: x509_cert::crl::CertificateList =
        x509_cert::crl::CertificateList::from_der(&der).ok()?;
    let tbs = crl.tbs_cert_list.to_der().ok()?;
    verify_signature(
        issuer.tbs_certificate().subject_public_key_info(),
        &crl.signature_algorithm,
        &tbs,
        crl.signature.raw_bytes(),
    )
    .ok()?;
    if &crl.tbs_cert_list.issuer != issuer.tbs_certificate().subject() {
        return None;
    }
    let is_delta = crl
        .tbs_cert_list
        .crl_extensions
        .iter()
        .flatten()
        .any(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_DELTA_CRL_INDICATOR);
    if is_delta {
        return None;
    }
    if crl
        .tbs_cert_list
        .next_update
        .as_ref()
        .is_some_and(|n| unix_of(n) < now())
    {
        return None;
    }
    let serial = cert.tbs_certificate().serial_number();
    Some(
        crl.tbs_cert_list
            .revoked_certificates
            .unwrap_or_default()
            .iter()
            .any(|r| &r.serial_number == serial),
    )
}

/// Status of one configured KRA certificate: chain, EKU, dates, revocation.
pub(crate) async fn kra_status(
    core: &Core,
    e: &KraEntry,
    revoked_serials: &[String],
) -> (Option<Certificate>, String) {
    let cert = match decode_certificate(&e.cert_der) {
        Ok(c) => c,
        Err(_) => return (None, "cannot be loaded".into()),
    };
    let tbs = cert.tbs_certificate();
    let t = now();
    let status = if !has_eku(&cert, oids::MS_KP_KEY_RECOVERY_AGENT) {
        "not a KRA certificate".to_string()
    } else if public_key_facts(tbs.subject_public_key_info())
        .map(|f| !matches!(f.algorithm_name().as_str(), "rsa" | "p256" | "p384"))
        .unwrap_or(true)
    {
        "unsupported key (RSA, P-256 or P-384)".into()
    } else if unix_of(&tbs.validity().not_after) <= t || unix_of(&tbs.validity().not_before) > t {
        "expired".into()
    } else {
        // Issued by this CA, under its current key or an earlier one.
        match core.ca_cert() {
            Ok(_) if core.issued_by_this_ca(&cert) => {
                if revoked_serials.contains(&to_hex(tbs.serial_number().as_bytes())) {
                    "revoked".into()
                } else {
                    "valid".into()
                }
            }
            _ => foreign_kra_status(core, &cert, e).await,
        }
    };
    (Some(cert), status)
}

/// A KRA certificate from another CA: its chain must verify to the root given
/// with it, and its issuer's CRL (file or http URL) must be current and not list it.
pub(crate) async fn foreign_kra_status(core: &Core, cert: &Certificate, e: &KraEntry) -> String {
    let Some(chain_der) = &e.chain_der else {
        return "untrusted issuer (no chain configured)".into();
    };
    let chain: Vec<Certificate> =
        lockbox_codec::pem::decode_all(&String::from_utf8_lossy(chain_der), "CERTIFICATE")
            .unwrap_or_default()
            .iter()
            .filter_map(|d| decode_certificate(d).ok())
            .collect();
    let Some(issuer) = chain.iter().find(|c| verify_issued_by(cert, c).is_ok()) else {
        return "untrusted issuer (chain does not verify)".into();
    };
    let mut current = issuer.clone();
    for _ in 0..8 {
        if current.tbs_certificate().issuer() == current.tbs_certificate().subject() {
            if verify_issued_by(&current, &current).is_err() {
                return "untrusted issuer (chain does not verify)".into();
            }
            break;
        }
        match chain.iter().find(|c| verify_issued_by(&current, c).is_ok()) {
            Some(next) => current = next.clone(),
            None => return "untrusted issuer (chain does not reach a root)".into(),
        }
    }
    let Some(source) = &e.crl_source else {
        return "revocation unknown (CRL unavailable)".into();
    };
    let crl_bytes = match core.crls.fetch(source).await {
        Some(b) => b,
        None => return "revocation unknown (CRL unavailable)".into(),
    };
    match crl_status(&crl_bytes, cert, issuer) {
        Some(true) => "revoked".into(),
        Some(false) => "valid".into(),
        None => "revocation unknown (CRL unavailable)".into(),
    }
}

pub(crate) async fn kra_statuses(
    core: &Core,
) -> EngineResult<Vec<(KraStatus, Option<Certificate>)>> {
    let revoked: Vec<String> = core
        .store
        .revoked()
        .await?
        .into_iter()
        .map(|r| r.serial)
        .collect();
    let mut out = Vec::new();
    for e in core.store.kra_certificates().await? {
        let (cert, status) = kra_status(core, &e, &revoked).await;
        let (subject, issuer, serial, not_after) = match &cert {
            Some(c) => {
                let t = c.tbs_certificate();
                (
                    t.subject().to_string(),
                    t.issuer().to_string(),
                    to_hex(t.serial_number().as_bytes()),
                    unix_of(&t.validity().not_after),
                )
            }
            None => (String::new(), String::new(), String::new(), 0),
        };
        out.push((
            KraStatus {
                thumbprint: e.thumbprint,
                subject,
                issuer,
                serial,
                not_after,
                status,
            },
            cert,
        ));
    }
    Ok(out)
}

/// The configured KRA certificates with their status.
pub(crate) async fn kra_list(core: &Core, actor: &Actor) -> EngineResult<Vec<KraStatus>> {
    crate::authz::authorize(core, actor, Op::ReadDatabase).await?;
    Ok(kra_statuses(core)
        .await?
        .into_iter()
        .map(|(s, _)| s)
        .collect())
}

/// Validates the KRA configuration and records the seed's events: 84/85
/// per unusable certificate, 82 when fewer than configured verify, 98 when
/// fewer than required (archival stops), 127 when a certificate expires soon.
/// Runs when the service starts and whenever the KRA configuration changes.
pub(crate) async fn validate_kras(core: &Core) -> EngineResult<(usize, usize)> {
    let statuses = match kra_statuses(core).await {
        Ok(s) => s,
        Err(e) => {
            crate::audit::chain::event(
                core,
                83,
                "error",
                &format!("Error loading KRA certificates: {e}"),
            )
            .await?;
            return Err(e);
        }
    };
    let counts = crate::archival::kra_events::log_kra_events(core, &statuses).await?;
    crate::archival::kra_events::remember_kra_states(core, &statuses).await?;
    Ok(counts)
}

/// After a revocation: if the certificate is a configured KRA, log what changed.
pub(crate) async fn kra_revoked_check(core: &Core, cert_der: &[u8]) -> EngineResult<()> {
    let thumb = to_hex(&sha1(cert_der));
    if core
        .store
        .kra_certificates()
        .await?
        .iter()
        .any(|k| k.thumbprint == thumb)
    {
        let statuses = kra_statuses(core).await?;
        crate::archival::kra_events::report_kra_changes(core, &statuses).await?;
    }
    Ok(())
}

/// How many KRAs each archived key is encrypted to (0 = archival off).
pub(crate) async fn kra_required(core: &Core) -> EngineResult<usize> {
    Ok(core
        .store
        .setting(KRA_REQUIRED)
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// The valid KRA certificates and the number required, or the AD CS refusal.
pub(crate) async fn valid_kras_for_batch(core: &Core) -> EngineResult<(Vec<Certificate>, usize)> {
    let set = valid_kra_set(core).await?;
    Ok((set.valid.clone(), set.required))
}

/// The valid KRAs, from the cache while the configuration version holds
/// and none of them has expired (a usable set only: a refusal is checked
/// again on the next request).
pub(crate) async fn valid_kra_set(core: &Core) -> EngineResult<Arc<KraSet>> {
    cached(core, &core.cache.kras, || load_valid_kras(core)).await
}

/// Reads and checks the configured KRAs (events for changed states); the
/// set with the time it stays good until.
async fn load_valid_kras(core: &Core) -> EngineResult<(KraSet, i64)> {
    let required = kra_required(core).await?;
    let entries = core.store.kra_certificates().await?;
    if required == 0 || entries.is_empty() {
        return Err(EngineError::denied(
            codes::CERTSRV_E_KEY_ARCHIVAL_NOT_CONFIGURED,
            "Cannot archive private key. The certification authority is not configured for key archival.",
        ));
    }
    let statuses = kra_statuses(core).await?;
    // A KRA that became unusable since the events were last logged (revoked
    // through `lockbox revoke`, expired) is reported now, once.
    if let Err(e) = crate::archival::kra_events::report_kra_changes(core, &statuses).await {
        tracing::warn!(error = %e, "KRA events not recorded");
    }
    let valid: Vec<Certificate> = statuses
        .into_iter()
        .filter_map(|(s, c)| if s.status == "valid" { c } else { None })
        .collect();
    if valid.len() < required {
        return Err(EngineError::denied(
            CERTSRV_E_NO_VALID_KRA,
            format!(
                "Cannot archive private key. No valid key recovery agent is defined for this certification authority ({} of {} required KRA certificates are valid).",
                valid.len(),
                required
            ),
        ));
    }
    let until = earliest_not_after(&valid);
    Ok((KraSet { valid, required }, until))
}

/// N of the valid KRAs, round robin from the process's position.
pub(crate) fn round_robin(core: &Core, valid: &[Certificate], required: usize) -> Vec<Certificate> {
    let start = core
        .archival
        .next_kra
        .fetch_add(required, Ordering::Relaxed);
    (0..required)
        .map(|i| valid[(start + i) % valid.len()].clone())
        .collect()
}

/// N KRA certificates chosen round robin among the valid ones.
pub(crate) async fn choose_kras(core: &Core) -> EngineResult<Vec<Certificate>> {
    let set = valid_kra_set(core).await?;
    Ok(round_robin(core, &set.valid, set.required))
}
