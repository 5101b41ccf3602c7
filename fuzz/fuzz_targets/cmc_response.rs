#![no_main]
//! CMC Full PKI Responses as `request accept` reads them: SignedData, then PKIResponse.
use der::Decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lockbox_codec::cmc::PkiResponse::from_der(data);
    if let Ok(sd) = lockbox_crypto::cms::verify_signed_data(data) {
        let _ = lockbox_codec::cmc::PkiResponse::from_der(&sd.econtent);
    }
});
