#![no_main]
//! `view --restrict` / `/api/v1/view?restrict=` expressions.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lockbox_engine::view::parse_restrictions(text);
        let _ = lockbox_engine::view::parse_columns(Some(text));
    }
});
