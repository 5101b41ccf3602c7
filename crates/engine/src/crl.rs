//! CRL construction (RFC 5280 section 5) and revocation reasons.

use der::asn1::BitString;
use der::Decode;
use der::Encode;
use lockbox_crypto::KeyHandle;
use lockbox_store::{CrlRecord, RevokedEntry};
use serde::Serialize;
use spki::SubjectPublicKeyInfoOwned;
use std::collections::BTreeMap;
use x509_cert::certificate::Version;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};

use x509_cert::ext::pkix::crl::{BaseCrlNumber, CrlNumber};
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
        REMOVE_FROM_CRL => CrlReason::RemoveFromCRL,
        _ => CrlReason::Unspecified,
    }
}

/// removeFromCRL: in a delta CRL, a certificate on hold in the base CRL
/// that has been released since.
pub const REMOVE_FROM_CRL: i32 = 8;

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
    /// Revoked entries (reason [`REMOVE_FROM_CRL`] only in a delta).
    pub revoked: &'a [RevokedEntry],
    /// For a delta CRL, the number of the base CRL it completes (the Delta
    /// CRL Indicator).
    pub delta_base: Option<i64>,
    /// Delta CRL URLs for the Freshest CRL extension (base CRLs only).
    pub delta_urls: &'a [String],
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
    let mut crl_extensions = vec![
        aki(spec.issuer_spki)?,
        extension(
            const_oid::db::rfc5280::ID_CE_CRL_NUMBER,
            false,
            &CrlNumber(number),
        )?,
    ];
    match spec.delta_base {
        Some(base) => crl_extensions.push(extension(
            const_oid::db::rfc5280::ID_CE_DELTA_CRL_INDICATOR,
            true,
            &BaseCrlNumber(der::asn1::Uint::new(&base.to_be_bytes()).map_err(enc)?),
        )?),
        None => crl_extensions.extend(crate::certbuild::freshest_crl(spec.delta_urls)?),
    }
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
        crl_extensions: Some(crl_extensions),
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
    /// For a delta CRL, the base CRL's number.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delta_base: Option<i64>,
    /// The CA key that signed it (0: the first; renewals with a new key count up).
    #[serde(default)]
    pub key_index: u32,
    /// DER (not serialised).
    #[serde(skip, default)]
    pub der: Vec<u8>,
}

/// Signs and stores a new base CRL, or a delta CRL when `delta`, for CA
/// key `key_index` (default: the current key) (CA administrator or
/// certificate manager).
pub(crate) async fn publish_crl(
    core: &Core,
    actor: &Actor,
    delta: bool,
    key_index: Option<u32>,
) -> EngineResult<CrlInfo> {
    crate::authz::authorize(core, actor, Op::PublishCrl).await?;
    let k = checked_key_index(core, key_index)?;
    let info = if delta {
        sign_and_store_delta(core, k).await?
    } else {
        sign_and_store_crl(core, k).await?
    };
    let audit = crate::audit::chain::success(
        core,
        actor,
        AuditCategory::Revocation,
        AuditAction::CrlPublished,
        &info.number.to_string(),
        &serde_json::json!({ "delta_base": info.delta_base, "key_index": k }).to_string(),
    )
    .await;
    core.store.append_audit(&audit).await?;
    Ok(info)
}

/// `key_index`, or the current key's, when the CA has such a key.
pub(crate) fn checked_key_index(core: &Core, key_index: Option<u32>) -> EngineResult<u32> {
    let k = key_index.unwrap_or(core.config.ca.key_index);
    if core.generations.for_key(k).is_none() {
        return Err(EngineError::NotFound(format!(
            "this CA has no key with index {k}"
        )));
    }
    Ok(k)
}

/// `url` with the CRL name suffix of key `k` (AD CS `%8`): `ca.crl` ->
/// `ca(1).crl`, `ca+.crl` -> `ca(1)+.crl`; unchanged for the first key.
pub fn key_suffixed(url: &str, k: u32) -> String {
    if k == 0 {
        return url.to_string();
    }
    let name_at = url.rfind('/').map_or(0, |i| i + 1);
    let (dir, name) = url.split_at(name_at);
    let (stem, ext) = match name.rfind('.') {
        Some(i) => name.split_at(i),
        None => (name, ""),
    };
    let (stem, plus) = match stem.strip_suffix('+') {
        Some(s) => (s, "+"),
        None => (stem, ""),
    };
    format!("{dir}{stem}({k}){plus}{ext}")
}

/// Reads a CRL file name as served under `/crl/`: `ca.crl`, `ca+.crl`,
/// `ca(K).crl`, `ca(K)+.crl` -> (key index, delta).
pub fn parse_crl_name(name: &str) -> Option<(u32, bool)> {
    let stem = name.strip_suffix(".crl")?;
    let (stem, delta) = match stem.strip_suffix('+') {
        Some(s) => (s, true),
        None => (stem, false),
    };
    if stem == "ca" {
        return Some((0, delta));
    }
    let k = stem.strip_prefix("ca(")?.strip_suffix(')')?;
    if k.is_empty() || k.len() > 4 || !k.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((k.parse().ok()?, delta))
}

/// thisUpdate and nextUpdate of a CRL made now: the interval plus the overlap.
fn validity(core: &Core, delta: bool) -> EngineResult<(i64, i64)> {
    let this_update = now();
    let crl = &core.config.crl;
    let interval = if delta {
        crl.delta_period.unwrap_or(crate::period::Period::Days(1))
    } else {
        crl.period.unwrap_or(core.config.issuance.crl_validity)
    };
    Ok((
        this_update,
        interval.add_to(this_update)? + crl.overlap_seconds(),
    ))
}

/// The revocations a CRL of key `k` lists: certificates that key signed
/// (rows from before the issuing key was recorded are the first key's);
/// certificates other CAs issued (imports) are on no CRL of this CA.
fn in_scope(core: &Core, k: u32, revoked: Vec<RevokedEntry>) -> Vec<RevokedEntry> {
    revoked
        .into_iter()
        .filter(|e| match &e.issuer_key_id {
            Some(id) => core.generations.key_index_of(id) == Some(k),
            None => k == 0,
        })
        .collect()
}

/// Signs a CRL over `revoked` with CA key `k` and stores it.
async fn sign_and_store(
    core: &Core,
    k: u32,
    number: i64,
    revoked: &[RevokedEntry],
    delta_base: Option<i64>,
) -> EngineResult<CrlInfo> {
    let key = core.signing_key_for(k)?;
    let generation = core
        .generations
        .for_key(k)
        .ok_or_else(|| EngineError::NotFound(format!("this CA has no key with index {k}")))?;
    let ca = &generation.cert;
    let (this_update, next_update) = validity(core, delta_base.is_some())?;
    let delta_urls: Vec<String> = core
        .config
        .issuance
        .delta_cdp_urls
        .iter()
        .map(|u| key_suffixed(u, k))
        .collect();
    let der = sign_crl(
        key.as_ref(),
        CrlSpec {
            issuer: ca.tbs_certificate().subject().clone(),
            issuer_spki: ca.tbs_certificate().subject_public_key_info(),
            this_update,
            next_update,
            number,
            revoked,
            delta_base,
            delta_urls: &delta_urls,
        },
    )?;
    core.store
        .insert_crl(&CrlRecord {
            crl_number: number,
            this_update,
            next_update,
            der: der.clone(),
            delta_base,
            key_index: i64::from(k),
        })
        .await?;
    let what = match delta_base {
        Some(base) => format!("delta CRL {number} (base {base})"),
        None => format!("CRL {number}"),
    };
    let _ = crate::audit::chain::event(
        core,
        1002,
        "info",
        &format!(
            "{what} of CA key {k} published with {} entries",
            revoked.len()
        ),
    )
    .await;
    Ok(CrlInfo {
        number,
        this_update,
        next_update,
        entries: revoked.len(),
        delta_base,
        key_index: k,
        der,
    })
}

/// Signs and stores a new base CRL of key `k` listing every certificate it
/// signed that is revoked.
pub(crate) async fn sign_and_store_crl(core: &Core, k: u32) -> EngineResult<CrlInfo> {
    // Number and revocations from one snapshot under the write lock: across
    // nodes, a higher number never lists fewer revocations.
    let (number, revoked) = core.store.next_crl().await?;
    sign_and_store(core, k, number, &in_scope(core, k, revoked), None).await
}

/// Signs and stores a delta CRL of key `k` over its latest base CRL (making
/// a base first when there is none): what changed since that base was signed.
pub(crate) async fn sign_and_store_delta(core: &Core, k: u32) -> EngineResult<CrlInfo> {
    let key_index = i64::from(k);
    let base = match core.store.latest_crl(key_index).await? {
        Some(b) => b,
        None => {
            sign_and_store_crl(core, k).await?;
            core.store
                .latest_crl(key_index)
                .await?
                .ok_or_else(|| EngineError::Config("no base CRL after publishing one".into()))?
        }
    };
    let (number, revoked) = core.store.next_crl().await?;
    let changes = delta_entries(&listed(&base.der)?, &in_scope(core, k, revoked), now());
    sign_and_store(core, k, number, &changes, Some(base.crl_number)).await
}

/// Serial -> reason of the entries a stored CRL lists.
fn listed(der: &[u8]) -> EngineResult<BTreeMap<String, i32>> {
    let crl = <CertificateList as Decode>::from_der(der)
        .map_err(|e| EngineError::Config(format!("stored CRL does not decode: {e}")))?;
    let mut out = BTreeMap::new();
    for entry in crl.tbs_cert_list.revoked_certificates.iter().flatten() {
        let reason = entry
            .crl_entry_extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_CRL_REASONS)
            .and_then(|e| CrlReason::from_der(e.extn_value.as_bytes()).ok())
            .map_or(0, |r| r as i32);
        out.insert(
            lockbox_codec::hexfmt::to_hex(entry.serial_number.as_bytes()),
            reason,
        );
    }
    Ok(out)
}

/// What a delta CRL over a base listing `base` lists now (RFC 5280 5.2.4):
/// revocations the base does not list or lists with another reason (a hold
/// made permanent), and removeFromCRL for certificates the base lists that
/// are no longer revoked (released from hold).
fn delta_entries(
    base: &BTreeMap<String, i32>,
    revoked: &[RevokedEntry],
    at: i64,
) -> Vec<RevokedEntry> {
    let mut out: Vec<RevokedEntry> = revoked
        .iter()
        .filter(|r| base.get(&r.serial) != Some(&r.reason))
        .cloned()
        .collect();
    let now_revoked: std::collections::BTreeSet<&str> =
        revoked.iter().map(|r| r.serial.as_str()).collect();
    out.extend(
        base.keys()
            .filter(|s| !now_revoked.contains(s.as_str()))
            .map(|s| RevokedEntry {
                serial: s.clone(),
                revoked_at: at,
                reason: REMOVE_FROM_CRL,
                issuer_key_id: None,
            }),
    );
    out
}

/// Serial -> reason of the current revocations.
fn as_map(revoked: &[RevokedEntry]) -> BTreeMap<String, i32> {
    revoked
        .iter()
        .map(|r| (r.serial.clone(), r.reason))
        .collect()
}

/// Seconds before nextUpdate at which a stored CRL is no longer served:
/// an hour, or a quarter of its validity when that is shorter.
fn refresh_margin(c: &CrlRecord) -> i64 {
    3600.min((c.next_update - c.this_update) / 4)
}

/// Whether relying parties can find delta CRLs: the schedule makes them and
/// certificates name where they are. Only then may the served base lag
/// behind the revocations (the delta carries them).
fn deltas_published(core: &Core) -> bool {
    core.config.crl.delta_period.is_some() && !core.config.issuance.delta_cdp_urls.is_empty()
}

/// The current revocations in the scope of key `k`.
async fn revoked_for(core: &Core, k: u32) -> EngineResult<Vec<RevokedEntry>> {
    Ok(in_scope(core, k, core.store.revoked().await?))
}

/// The latest base CRL of key `k` if it may still be served.
async fn servable_base(core: &Core, k: u32) -> EngineResult<Option<CrlRecord>> {
    let Some(latest) = core.store.latest_crl(i64::from(k)).await? else {
        return Ok(None);
    };
    let fresh = latest.next_update > now() + refresh_margin(&latest);
    let complete = deltas_published(core)
        || listed(&latest.der).ok() == Some(as_map(&revoked_for(core, k).await?));
    Ok((fresh && complete).then_some(latest))
}

/// The current base CRL of key `k`. Unless delta CRLs are published
/// (`crl.delta_period` and `issuance.delta_cdp_urls`), it is the latest one
/// if still valid and complete (it lists the current revocations exactly),
/// else a new one. With delta CRLs, the latest base is served until it is
/// due and changes go to the delta CRL. One caller signs at a time; the
/// others then find its CRL.
pub(crate) async fn current_crl(core: &Core, k: u32) -> EngineResult<Vec<u8>> {
    let k = checked_key_index(core, Some(k))?;
    if let Some(c) = servable_base(core, k).await? {
        return Ok(c.der);
    }
    let _one = core.crl_signing.lock().await;
    if let Some(c) = servable_base(core, k).await? {
        return Ok(c.der);
    }
    Ok(sign_and_store_crl(core, k).await?.der)
}

/// The latest delta CRL of key `k` if it completes that key's latest base,
/// is still valid and lists exactly what changed since that base.
async fn servable_delta(core: &Core, k: u32) -> EngineResult<Option<CrlRecord>> {
    let (Some(base), Some(delta)) = (
        core.store.latest_crl(i64::from(k)).await?,
        core.store.latest_delta_crl(i64::from(k)).await?,
    ) else {
        return Ok(None);
    };
    let fresh = delta.next_update > now() + refresh_margin(&delta);
    let want = as_map(&delta_entries(
        &listed(&base.der)?,
        &revoked_for(core, k).await?,
        0,
    ));
    let complete = listed(&delta.der).ok() == Some(want);
    Ok((delta.delta_base == Some(base.crl_number) && fresh && complete).then_some(delta))
}

/// The current delta CRL of key `k` ([`servable_delta`], else a new one;
/// one signer at a time).
pub(crate) async fn current_delta_crl(core: &Core, k: u32) -> EngineResult<Vec<u8>> {
    let k = checked_key_index(core, Some(k))?;
    if let Some(c) = servable_delta(core, k).await? {
        return Ok(c.der);
    }
    let _one = core.crl_signing.lock().await;
    if let Some(c) = servable_delta(core, k).await? {
        return Ok(c.der);
    }
    Ok(sign_and_store_delta(core, k).await?.der)
}

/// The CA keys that still sign CRLs: the current one, and each earlier
/// key whose newest certificate has not expired (nothing it issued
/// outlives that certificate).
fn live_keys(core: &Core) -> Vec<u32> {
    let t = now();
    core.generations
        .key_indices()
        .into_iter()
        .filter(|k| {
            *k == core.config.ca.key_index
                || core.generations.for_key(*k).is_some_and(|g| {
                    crate::period::unix_of(&g.cert.tbs_certificate().validity().not_after) > t
                })
        })
        .collect()
}

/// Publishes what the `[crl]` schedule says is due, for every live CA key:
/// a base CRL once its interval has passed since the latest, a delta CRL
/// (with `crl.delta_period`) once its interval has passed or a newer base
/// exists. Returns what was published. `serve` calls it every minute.
pub(crate) async fn publish_due(core: &Core) -> EngineResult<Vec<CrlInfo>> {
    let _one = core.crl_signing.lock().await;
    let mut out = Vec::new();
    let mut failed = None;
    // One key that fails (an earlier key file gone, its token object
    // removed) does not stop the others' CRLs.
    for k in live_keys(core) {
        match publish_due_for(core, k).await {
            Ok(published) => out.extend(published),
            Err(e) => {
                tracing::warn!(key_index = k, error = %e, "scheduled CRL of a CA key not published");
                failed = Some(e);
            }
        }
    }
    match (out.is_empty(), failed) {
        (true, Some(e)) => Err(e),
        _ => Ok(out),
    }
}

async fn publish_due_for(core: &Core, k: u32) -> EngineResult<Vec<CrlInfo>> {
    let mut out = Vec::new();
    let crl = &core.config.crl;
    let t = now();
    let base = core.store.latest_crl(i64::from(k)).await?;
    let base_due = base.as_ref().is_none_or(|b| {
        t >= b.this_update + crl.base_interval(&core.config.issuance)
            || b.next_update <= t + refresh_margin(b)
    });
    let base_number = if base_due {
        let info = sign_and_store_crl(core, k).await?;
        let n = info.number;
        out.push(info);
        Some(n)
    } else {
        base.map(|b| b.crl_number)
    };
    if let Some(period) = crl.delta_period {
        let delta = core.store.latest_delta_crl(i64::from(k)).await?;
        let delta_due = delta.as_ref().is_none_or(|d| {
            d.delta_base != base_number || t >= d.this_update + period.approx_seconds()
        });
        if delta_due {
            out.push(sign_and_store_delta(core, k).await?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crl_names_carry_the_key_index() {
        assert_eq!(
            key_suffixed("http://x/crl/ca.crl", 0),
            "http://x/crl/ca.crl"
        );
        assert_eq!(
            key_suffixed("http://x/crl/ca.crl", 1),
            "http://x/crl/ca(1).crl"
        );
        assert_eq!(
            key_suffixed("http://x/crl/ca+.crl", 2),
            "http://x/crl/ca(2)+.crl"
        );
        assert_eq!(key_suffixed("ldap:///CN=x", 1), "ldap:///CN=x(1)");
        assert_eq!(parse_crl_name("ca.crl"), Some((0, false)));
        assert_eq!(parse_crl_name("ca+.crl"), Some((0, true)));
        assert_eq!(parse_crl_name("ca(3)+.crl"), Some((3, true)));
        assert_eq!(parse_crl_name("ca(12).crl"), Some((12, false)));
        for bad in [
            "ca().crl",
            "ca(x).crl",
            "ca(99999).crl",
            "other.crl",
            "ca.crl2",
            "ca(1)",
        ] {
            assert_eq!(parse_crl_name(bad), None, "{bad}");
        }
    }

    fn entry(serial: &str, reason: i32) -> RevokedEntry {
        RevokedEntry {
            serial: serial.into(),
            revoked_at: 10,
            issuer_key_id: None,
            reason,
        }
    }

    #[test]
    fn a_delta_lists_new_revocations_changed_reasons_and_releases() {
        let base: BTreeMap<String, i32> = [("01".into(), 1), ("02".into(), 6), ("03".into(), 6)]
            .into_iter()
            .collect();
        // 01 unchanged, 02 released, 03 made permanent, 04 new.
        let now = [entry("01", 1), entry("03", 1), entry("04", 0)];
        let d = delta_entries(&base, &now, 99);
        let got: Vec<(&str, i32)> = d.iter().map(|e| (e.serial.as_str(), e.reason)).collect();
        assert_eq!(got, vec![("03", 1), ("04", 0), ("02", REMOVE_FROM_CRL)]);
        assert_eq!(d[2].revoked_at, 99);
        assert!(
            delta_entries(&base, &[entry("01", 1), entry("02", 6), entry("03", 6)], 0).is_empty()
        );
    }
}
