#![no_main]
//! Encrypted messages given to `getkey --message`: DER, PEM or a MIME smime.p7m part.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(der) = lockbox_engine::recovery::message_der(data) {
        let _ = lockbox_crypto::cms::envelope_recipients(&der);
    }
});
