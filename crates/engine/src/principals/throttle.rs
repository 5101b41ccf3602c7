//! Login throttling: failure counts per name and source.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::core::state::THROTTLE_ENTRIES;
use crate::principals::LOGIN_WINDOW;

/// The source failed logins are counted for: an IPv4 address (also when it
/// arrives IPv4-mapped on a dual-stack socket), or the /64 an IPv6 address
/// belongs to (one host or site usually holds a whole /64). `None`: a caller
/// without a peer address (only in-process; `serve` always knows it).
pub(crate) fn source_group(source: Option<IpAddr>) -> Option<IpAddr> {
    source.map(|ip| match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from_bits(
            v6.to_bits() & !u128::from(u64::MAX),
        )),
    })
}

/// Whether `key` has `limit` failures or more in the current window.
pub(crate) fn over_limit<K: Hash + Eq>(
    map: &Mutex<HashMap<K, (Instant, u32)>>,
    key: &K,
    limit: u32,
) -> bool {
    map.lock().ok().is_some_and(|m| {
        m.get(key)
            .is_some_and(|(start, n)| start.elapsed() < LOGIN_WINDOW && *n >= limit)
    })
}

/// Counts one failure for `key`; returns the count in the current window.
pub(crate) fn count_failure<K: Hash + Eq + Clone>(
    map: &Mutex<HashMap<K, (Instant, u32)>>,
    key: K,
) -> u32 {
    let Ok(mut m) = map.lock() else {
        return 0;
    };
    if m.len() >= THROTTLE_ENTRIES && !m.contains_key(&key) {
        m.retain(|_, (start, _)| start.elapsed() < LOGIN_WINDOW);
        if m.len() >= THROTTLE_ENTRIES {
            // Still full: forget the oldest window.
            let oldest = m
                .iter()
                .min_by_key(|(_, (start, _))| *start)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                m.remove(&k);
            }
        }
    }
    let e = m.entry(key).or_insert((Instant::now(), 0));
    if e.0.elapsed() >= LOGIN_WINDOW {
        *e = (Instant::now(), 0);
    }
    e.1 = e.1.saturating_add(1);
    e.1
}
