#![no_main]
//! Constant-time PKCS#1 v1.5 unpadding of a raw RSA result (the exchange key
//! on a token decrypts with raw RSA; this parses what it returns).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = lockbox_crypto::keytransport::pkcs1_v15_unpad(data) {
        // A message is only ever the tail after 00 02, eight or more
        // non-zero padding bytes and a zero separator.
        let sep = data.len() - m.len() - 1;
        assert!(data.len() >= 11 && data[0] == 0 && data[1] == 2);
        assert!(sep >= 10 && data[sep] == 0);
        assert!(data[2..sep].iter().all(|b| *b != 0));
        assert_eq!(&data[sep + 1..], &m[..]);
    }
});
