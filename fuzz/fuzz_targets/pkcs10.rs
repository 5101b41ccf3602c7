#![no_main]
//! PKCS#10 requests (and the signed-part extraction used for verification).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lockbox_codec::request::parse_pkcs10(data);
    let _ = lockbox_codec::request::signed_part(data);
});
