//! Configuration cached per process: templates, the valid KRA certificates
//! and the usable exchange certificates, each kept with the database's
//! configuration version it was read under and a time it stays good until.
//!
//! Every write that changes what is cached bumps the version in the same
//! transaction (`Store::config_version`: templates, settings, KRAs,
//! revocations, exchange certificates), from this process, the CLI on the
//! same home or another node; a reader compares one counter instead of
//! re-reading and re-verifying everything. Time-dependent state (a KRA or
//! exchange certificate that expires, a foreign KRA's CRL) is bounded by
//! the entry's `until`, at most [`MAX_AGE`] seconds away.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use lockbox_store::Permission;
use x509_cert::certificate::Certificate;

use crate::core::Core;
use crate::period::{now, unix_of};
use crate::template::Template;
use crate::EngineResult;

/// Seconds a cached entry is used at most, even when the version holds.
pub(crate) const MAX_AGE: i64 = 60;

/// One cached value, the version it was read under and its expiry.
pub(crate) struct Slot<T> {
    inner: Mutex<Option<(i64, i64, Arc<T>)>>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            inner: Mutex::new(None),
        }
    }
}

impl<T> Slot<T> {
    /// The value when it was read under `version` and `now` is before its expiry.
    pub(crate) fn get(&self, version: i64, now: i64) -> Option<Arc<T>> {
        let inner = self.inner.lock().ok()?;
        match inner.as_ref() {
            Some((v, until, value)) if *v == version && now < *until => Some(value.clone()),
            _ => None,
        }
    }

    /// Keeps `value`, read under `version`, until `until` (capped at
    /// `now` + [`MAX_AGE`]).
    pub(crate) fn put(&self, version: i64, now: i64, until: i64, value: Arc<T>) {
        if let Ok(mut inner) = self.inner.lock() {
            *inner = Some((version, until.min(now + MAX_AGE), value));
        }
    }
}

/// The value of `slot` under the current configuration version, else what
/// `load` reads (the value and the time it stays good until), kept in `slot`.
pub(crate) async fn cached<T, F, Fut>(core: &Core, slot: &Slot<T>, load: F) -> EngineResult<Arc<T>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = EngineResult<(T, i64)>>,
{
    let version = core.config_version().await?;
    let t = now();
    if let Some(value) = slot.get(version, t) {
        return Ok(value);
    }
    let (value, until) = load().await?;
    let value = Arc::new(value);
    slot.put(version, t, until, value.clone());
    Ok(value)
}

/// The earliest notAfter of `certs` (never, when there are none): a cached
/// set of certificates is good until the first of them expires.
pub(crate) fn earliest_not_after<'a>(certs: impl IntoIterator<Item = &'a Certificate>) -> i64 {
    certs
        .into_iter()
        .map(|c| unix_of(&c.tbs_certificate().validity().not_after))
        .min()
        .unwrap_or(i64::MAX)
}

tokio::task_local! {
    /// The configuration version one request reads everything under.
    static REQUEST_VERSION: i64;
}

/// Runs `f` (one request) with `version` as the configuration version every
/// cached read inside it compares: one counter read per request, and one
/// consistent view of the configuration for the whole request.
pub(crate) async fn with_version<F: Future>(version: i64, f: F) -> F::Output {
    REQUEST_VERSION.scope(version, f).await
}

/// The version of the request running on this task, if [`with_version`] set one.
pub(crate) fn request_version() -> Option<i64> {
    REQUEST_VERSION.try_with(|v| *v).ok()
}

/// The templates and the names of those this CA issues.
pub(crate) struct TemplateSet {
    /// Every template.
    pub(crate) all: Vec<Template>,
    /// Names of the templates the CA issues.
    pub(crate) enabled: Vec<String>,
}

/// The KRA certificates archival may use now and how many each key needs.
pub(crate) struct KraSet {
    /// Valid KRA certificates.
    pub(crate) valid: Vec<Certificate>,
    /// KRAs each archived key is encrypted to.
    pub(crate) required: usize,
}

/// Everything cached for one open CA.
#[derive(Default)]
pub(crate) struct ConfigCache {
    /// Templates and the CA's template list.
    pub(crate) templates: Slot<TemplateSet>,
    /// The valid KRAs (only a usable set is cached; refusals are re-checked).
    pub(crate) kras: Slot<KraSet>,
    /// Usable exchange certificates (DER, newest first) with their decoded form.
    pub(crate) exchange: Slot<Vec<(Vec<u8>, Certificate)>>,
    /// Whether role separation is on.
    pub(crate) role_separation: Slot<bool>,
    /// The audited categories.
    pub(crate) audit_categories: Slot<Vec<String>>,
    /// Stored permission entries by template (its exact name).
    pub(crate) permissions: Mutex<HashMap<String, VersionedPermissions>>,
}

/// A template's permission entries, the version they were read under and
/// when (kept at most [`MAX_AGE`] seconds, as every other entry).
type VersionedPermissions = (i64, std::time::Instant, Arc<Vec<Permission>>);

/// Templates whose permissions are remembered at most (a bound on memory).
const PERMISSION_ENTRIES: usize = 1024;

impl ConfigCache {
    /// The permission entries of `template` read under `version`.
    pub(crate) fn permissions(&self, template: &str, version: i64) -> Option<Arc<Vec<Permission>>> {
        let map = self.permissions.lock().ok()?;
        match map.get(template) {
            Some((v, at, p)) if *v == version && at.elapsed().as_secs() < MAX_AGE as u64 => {
                Some(p.clone())
            }
            _ => None,
        }
    }

    /// Remembers the permission entries of `template` read under `version`.
    pub(crate) fn put_permissions(&self, template: &str, version: i64, p: Arc<Vec<Permission>>) {
        if let Ok(mut map) = self.permissions.lock() {
            if map.len() >= PERMISSION_ENTRIES {
                map.retain(|_, (v, _, _)| *v == version);
            }
            if map.len() < PERMISSION_ENTRIES {
                map.insert(
                    template.to_string(),
                    (version, std::time::Instant::now(), p),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_serves_only_its_version_and_only_until_it_expires() {
        let s: Slot<u32> = Slot::default();
        assert!(s.get(1, 100).is_none());
        s.put(1, 100, 130, Arc::new(7));
        assert_eq!(s.get(1, 129).as_deref(), Some(&7));
        assert!(s.get(1, 130).is_none(), "expired");
        assert!(s.get(2, 100).is_none(), "another version");
        s.put(2, 100, i64::MAX, Arc::new(8));
        assert_eq!(s.get(2, 100 + MAX_AGE - 1).as_deref(), Some(&8));
        assert!(s.get(2, 100 + MAX_AGE).is_none(), "capped at MAX_AGE");
    }
}
