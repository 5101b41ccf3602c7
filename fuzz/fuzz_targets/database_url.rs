#![no_main]
//! `database.url` parsing (SQLite file or PostgreSQL host list): hostile text
//! never panics, a password never survives, and what parses prints back to
//! a URL that parses to the same thing.
use libfuzzer_sys::fuzz_target;
use lockbox_store::DatabaseUrl;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(url) = DatabaseUrl::parse(text) {
        let printed = url.to_string();
        assert_eq!(DatabaseUrl::parse(&printed).ok(), Some(url.clone()));
        if let DatabaseUrl::Postgres(pg) = &url {
            assert!(!pg.hosts.is_empty());
            for i in 0..pg.hosts.len() {
                let single = pg.single_host_url(i).unwrap_or_default();
                assert!(single.starts_with("postgres://"));
            }
        }
    }
});
