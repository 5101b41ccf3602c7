#![no_main]
//! PKCS#12 files (importkms, recoverkey --kra, mergepfx).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lockbox_crypto::pkcs12::read_pfx(data, "password");
});
