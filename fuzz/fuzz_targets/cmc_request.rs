#![no_main]
//! CMC Full PKI Requests (ContentInfo / SignedData / PKIData).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lockbox_codec::cmc::looks_like_content_info(data);
    let _ = lockbox_codec::cmc::parse_cmc_request(data);
});
