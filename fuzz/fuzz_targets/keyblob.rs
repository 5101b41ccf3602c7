#![no_main]
//! Microsoft PRIVATEKEYBLOB (RSA) parsing and conversion to PKCS#8.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lockbox_codec::keyblob::is_private_key_blob(data);
    if let Ok(blob) = lockbox_codec::keyblob::parse_private_key_blob(data) {
        let _ = lockbox_codec::keyblob::blob_to_pkcs8(&blob);
    }
});
