#![no_main]
//! The OCSP request parser (`/ocsp` reads it from anyone on the network).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = lockbox_codec::ocsp::parse_request(data) {
        assert!(!r.cert_ids.is_empty() && r.cert_ids.len() <= lockbox_codec::ocsp::MAX_REQUESTS);
        if let Some(n) = &r.nonce {
            assert!(!n.is_empty() && n.len() <= lockbox_codec::ocsp::MAX_NONCE_LEN);
        }
    }
});
