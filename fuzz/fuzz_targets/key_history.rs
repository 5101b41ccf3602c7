#![no_main]
//! The key-history export format: the signed, enveloped file's outer layers
//! and the document inside the lock box.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lockbox_engine::export::parse_key_history(data);
    if let Ok(d) = lockbox_codec::pem::decode_input(data) {
        if let Ok(sd) = lockbox_crypto::cms::verify_signed_data(&d.der) {
            let _ = lockbox_crypto::cms::envelope_recipients(&sd.econtent);
        }
    }
});
