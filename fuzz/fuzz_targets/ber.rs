#![no_main]
//! BER to DER normalisation (indefinite lengths, constructed strings).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(der) = lockbox_codec::ber::ber_to_der(data) {
        // DER in, the same DER out.
        assert_eq!(lockbox_codec::ber::ber_to_der(&der).ok().as_deref(), Some(&der[..]));
    }
});
