#![no_main]
//! CMS EnvelopedData (archived keys, recovery blobs, lock boxes) and SignedData.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lockbox_crypto::cms::decode_envelope(data);
    let _ = lockbox_crypto::cms::envelope_recipients(data);
    let _ = lockbox_crypto::cms::verify_signed_data(data);
});
