#![no_main]
//! PKCS#7-wrapped PKCS#10 renewal requests (SignedData over id-data) and the
//! PKCS#10 parser they feed, with its renewal certificate attribute.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lockbox_codec::cmc::signed_content_type(data);
    if let Ok(p7) = lockbox_codec::cmc::parse_pkcs7_request(data) {
        let _ = lockbox_codec::request::parse_pkcs10(&p7.cert_req_der);
    }
});
