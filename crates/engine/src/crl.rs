//! CRL construction (RFC 5280 section 5) and revocation reasons.

use der::asn1::BitString;
use der::Decode;
use der::Encode;
use lockbox_crypto::KeyHandle;
use lockbox_store::{CrlRecord, RevokedEntry};
use serde::Serialize;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::Version;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::CrlNumber;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use crate::category::{AuditAction, AuditCategory};
use crate::certbuild::{aki, extension};
use crate::core::Core;
use crate::period::{now, x509_time};
use crate::{codes, Actor, EngineError, EngineResult, Op};

/// RFC 5280 reason names and codes.
pub const REASONS: &[(&str, i32)] = &[
    ("unspecified", 0),
    ("keyCompromise", 1),
    ("cACompromise", 2),
    ("affiliationChanged", 3),
    ("superseded", 4),
    ("cessationOfOperation", 5),
    ("certificateHold", 6),
    ("privilegeWithdrawn", 9),
    ("aACompromise", 10),
];

/// Parses a reason name (case-insensitive) or number.
pub fn parse_reason(s: &str) -> EngineResult<i32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        if REASONS.iter().any(|(_, c)| *c == n) {
            return Ok(n);
        }
    }
    REASONS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(t))
        .map(|(_, c)| *c)
        .ok_or_else(|| {
            EngineError::bad_input(
                codes::E_INVALIDARG,
                format!(
                    "unknown revocation reason '{s}' (one of {})",
                    REASONS.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
                ),
            )
        })
}

/// Name of a reason code.
pub fn reason_name(code: i32) -> &'static str {
    REASONS
        .iter()
        .find(|(_, c)| *c == code)
        .map(|r| r.0)
        .unwrap_or("unspecified")
}

pub(crate) fn crl_reason(code: i32) -> CrlReason {
    match code {
        1 => CrlReason::KeyCompromise,
        2 => CrlReason::CaCompromise,
        3 => CrlReason::AffiliationChanged,
        4 => CrlReason::Superseded,
        5 => CrlReason::CessationOfOperation,
        6 => CrlReason::CertificateHold,
        9 => CrlReason::PrivilegeWithdrawn,
        10 => CrlReason::AaCompromise,
        _ => CrlReason::Unspecified,
    }
}

/// Inputs of a CRL.
pub struct CrlSpec<'a> {
    /// Issuer DN (the CA subject).
    pub issuer: Name,
    /// Issuer public key (for the AKI).
    pub issuer_spki: &'a SubjectPublicKeyInfoOwned,
    /// thisUpdate.
    pub this_update: i64,
    /// nextUpdate.
    pub next_update: i64,
    /// CRL number.
    pub number: i64,
    /// Revoked entries.
    pub revoked: &'a [RevokedEntry],
}

/// Builds and signs a v2 CRL; returns DER.
pub fn sign_crl(signer: &dyn KeyHandle, spec: CrlSpec<'_>) -> EngineResult<Vec<u8>> {
    let enc = |e: der::Error| EngineError::Config(format!("encoding CRL: {e}"));
    let mut entries: Vec<RevokedCert> = Vec::with_capacity(spec.revoked.len());
    for r in spec.revoked {
        let serial_bytes = hex::decode(&r.serial)
            .map_err(|_| EngineError::Config(format!("stored serial '{}' is not hex", r.serial)))?;
        let crl_entry_extensions = if r.reason == 0 {
            None // RFC 5280 5.3.1: unspecified SHOULD be absent
        } else {
            Some(vec![extension(
                const_oid::db::rfc5280::ID_CE_CRL_REASONS,
                false,
                &crl_reason(r.reason),
            )?])
        };
        entries.push(RevokedCert {
            serial_number: SerialNumber::new(&serial_bytes).map_err(enc)?,
            revocation_date: x509_time(r.revoked_at)?,
            crl_entry_extensions,
        });
    }
    let number = der::asn1::Uint::new(&spec.number.to_be_bytes()).map_err(enc)?;
    let tbs = TbsCertList {
        version: Version::V2,
        signature: signer.signature_algorithm(),
        issuer: spec.issuer,
        this_update: x509_time(spec.this_update)?,
        next_update: Some(x509_time(spec.next_update)?),
        revoked_certificates: if entries.is_empty() {
            None
        } else {
            Some(entries)
        },
        crl_extensions: Some(vec![
            aki(spec.issuer_spki)?,
            extension(
                const_oid::db::rfc5280::ID_CE_CRL_NUMBER,
                false,
                &CrlNumber(number),
            )?,
        ]),
    };
    let tbs_der = tbs.to_der().map_err(enc)?;
    let sig = signer.sign(&tbs_der)?;
    let crl = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: signer.signature_algorithm(),
        signature: BitString::from_bytes(&sig).map_err(enc)?,
    };
    crl.to_der().map_err(enc)
}

/// A published CRL.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct CrlInfo {
    /// CRL number.
    pub number: i64,
    /// thisUpdate.
    pub this_update: i64,
    /// nextUpdate.
    pub next_update: i64,
    /// Revoked entries listed.
    pub entries: usize,
    /// DER (not serialised).
    #[serde(skip, default)]
    pub der: Vec<u8>,
}

/// Signs and stores a new CRL (CA administrator or certificate manager).
pub(crate) async fn publish_crl(core: &Core, actor: &Actor) -> EngineResult<CrlInfo> {
    crate::authz::authorize(core, actor, Op::PublishCrl).await?;
    let info = sign_and_store_crl(core).await?;
    let audit = crate::audit::chain::success(
        core,
        actor,
        AuditCategory::Revocation,
        AuditAction::CrlPublished,
        &info.number.to_string(),
        "{}",
    )
    .await;
    core.store.append_audit(&audit).await?;
    Ok(info)
}

pub(crate) async fn sign_and_store_crl(core: &Core) -> EngineResult<CrlInfo> {
    let key = core.signing_key()?;
    let (_, ca) = core.ca_cert()?;
    // Number and revocations from one snapshot under the write lock: across
    // nodes, a higher number never lists fewer revocations.
    let (number, revoked) = core.store.next_crl().await?;
    let this_update = now();
    let next_update = core.config.issuance.crl_validity.add_to(this_update)?;
    let der = sign_crl(
        key.as_ref(),
        CrlSpec {
            issuer: ca.tbs_certificate().subject().clone(),
            issuer_spki: ca.tbs_certificate().subject_public_key_info(),
            this_update,
            next_update,
            number,
            revoked: &revoked,
        },
    )?;
    core.store
        .insert_crl(&CrlRecord {
            crl_number: number,
            this_update,
            next_update,
            der: der.clone(),
        })
        .await?;
    let _ = crate::audit::chain::event(
        core,
        1002,
        "info",
        &format!("CRL {number} published with {} entries", revoked.len()),
    )
    .await;
    Ok(CrlInfo {
        number,
        this_update,
        next_update,
        entries: revoked.len(),
        der,
    })
}

/// The current CRL: the latest one if still valid and complete, else a new one.
/// Complete means it lists as many certificates as are revoked now (entries
/// are only ever added), not a comparison of clocks, which differ by node.
pub(crate) async fn current_crl(core: &Core) -> EngineResult<Vec<u8>> {
    if let Some(latest) = core.store.latest_crl().await? {
        let revoked = core.store.revoked().await?;
        let fresh = latest.next_update > now() + 3600;
        let listed = <CertificateList as Decode>::from_der(&latest.der)
            .ok()
            .map(|c| {
                c.tbs_cert_list
                    .revoked_certificates
                    .as_ref()
                    .map_or(0, |r| r.len())
            });
        let complete = listed == Some(revoked.len());
        if fresh && complete {
            return Ok(latest.der);
        }
    }
    Ok(sign_and_store_crl(core).await?.der)
}
