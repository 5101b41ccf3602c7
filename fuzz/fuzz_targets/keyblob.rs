#![no_main]
//! Microsoft PRIVATEKEYBLOB (RSA) parsing and conversion to PKCS#8; the RSA
//! public key a PKCS#8 claims (read before any import during archival).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lockbox_codec::keyblob::is_private_key_blob(data);
    if let Ok(blob) = lockbox_codec::keyblob::parse_private_key_blob(data) {
        if let Ok(pkcs8) = lockbox_codec::keyblob::blob_to_pkcs8(&blob) {
            let claimed = lockbox_codec::keyblob::pkcs8_rsa_public_key(&pkcs8);
            assert_eq!(
                claimed,
                lockbox_codec::keyblob::rsa_public_key_der(&blob.n, &blob.e).ok()
            );
        }
    }
    let _ = lockbox_codec::keyblob::pkcs8_rsa_public_key(data);
});
