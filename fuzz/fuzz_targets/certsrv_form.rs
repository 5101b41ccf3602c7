#![no_main]
//! The certsrv enrollment form body (POST /certsrv/certfnsh.asp) and the
//! request text it carries (PEM armour with or without line breaks, base64).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(form) = lockbox_codec::certsrv::parse_enroll_form(data) {
        let _ = lockbox_codec::pem::decode_input(form.cert_request.as_bytes());
        for (name, value) in &form.attributes {
            let _ = lockbox_codec::ms::parse_name_value_pairs(&format!("{name}:{value}"));
        }
    }
});
