#![no_main]
//! PEM armour, bare base64 and DER detection; certsrv attribute lines;
//! subject names typed on the command line (`--subject`).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lockbox_codec::pem::decode_input(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lockbox_codec::pem::decode_all(text, "CERTIFICATE");
        let _ = lockbox_codec::ms::parse_name_value_pairs(text);
        let _ = lockbox_codec::hexfmt::normalize_hex(text);
        let _ = lockbox_codec::names::parse_dn(text);
    }
});
