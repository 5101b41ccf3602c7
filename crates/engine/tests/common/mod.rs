//! Fixtures shared by the engine's end-to-end tests: CA init options, the
//! local administrator, submit options, requests, issued KRAs, archival
//! requests and direct SQL on a CA database.
#![allow(dead_code)] // each test binary uses a part of it

use std::path::Path;
use std::str::FromStr;

use der::asn1::Ia5String;
use lockbox_client::{
    build_archival_request, check_exchange_certificate, ArchivalOptions, KeyPayload,
};
use lockbox_codec::oids;
use lockbox_crypto::keytransport::KeyTransport;
use lockbox_crypto::symmetric::ContentCipher;
use lockbox_crypto::{KeySpec, SoftwareKey};
use lockbox_engine::certbuild::{extension, sign_request};
use lockbox_engine::period::Period;
use lockbox_engine::{Actor, Ca, InitOptions, Outcome, SubmitOptions};
use x509_cert::ext::pkix::name::{GeneralName, OtherName};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::Name;

/// The local administrator the tests act as.
pub fn admin() -> Actor {
    Actor::local_admin("CONTOSO\\admin")
}

/// Options for a root CA named `name` in `home`: valid five years, no
/// explicit subject, no passphrase, no CDP or AIA URLs.
pub fn init_options(home: &Path, name: &str, key: KeySpec) -> InitOptions {
    InitOptions {
        home: home.to_path_buf(),
        name: name.into(),
        subject: None,
        key,
        validity: Period::Years(5),
        subordinate: false,
        passphrase: None,
        passphrase_file: None,
        cdp_urls: vec![],
        aia_urls: vec![],
        ocsp_urls: vec![],
        delta_cdp_urls: vec![],
        database: None,
        token: None,
    }
}

/// Creates a P-256 CA of [`init_options`] in `home` and opens it.
pub async fn new_ca(home: &Path, name: &str) -> Ca {
    Ca::init(init_options(home, name, KeySpec::P256))
        .await
        .unwrap();
    Ca::open(home).await.unwrap()
}

/// Submit options for `template` (or the request's own) by `requester`,
/// with no attributes, no actor and no enrollee on whose behalf.
pub fn submit_options(template: Option<&str>, requester: &str) -> SubmitOptions {
    SubmitOptions {
        template: template.map(str::to_string),
        requester: requester.into(),
        attributes: vec![],
        actor: None,
        on_behalf_of: None,
        renewing: None,
    }
}

/// A PKCS#10 request for `CN=<cn>` with a new P-256 key.
pub fn csr(cn: &str) -> Vec<u8> {
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    sign_request(&key, Name::from_str(&format!("CN={cn}")).unwrap(), vec![]).unwrap()
}

/// Enables the KeyRecoveryAgent template, requests a KRA certificate for
/// `CN=<cn>` (new RSA-2048 key) as `requester` and issues it as the
/// administrator; returns the key and the issue outcome.
pub async fn issue_kra(ca: &Ca, cn: &str, requester: &str) -> (SoftwareKey, Outcome) {
    let a = admin();
    ca.set_ca_template(&a, "KeyRecoveryAgent", true)
        .await
        .unwrap();
    let key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let csr = sign_request(&key, Name::from_str(&format!("CN={cn}")).unwrap(), vec![]).unwrap();
    let p = ca
        .submit(&csr, &submit_options(Some("KeyRecoveryAgent"), requester))
        .await
        .unwrap();
    let issued = ca.issue(p.request_id, &a).await.unwrap();
    (key, issued)
}

/// An ExchangeUser archival request (CMC, AES-256-CBC, RSA PKCS#1 v1.5,
/// PKCS#8) for `csr`, to the CA's current exchange certificate.
pub async fn exchange_user_request(ca: &Ca, key: &SoftwareKey, csr: &[u8]) -> Vec<u8> {
    let xchg = check_exchange_certificate(
        &ca.current_exchange_certificate().await.unwrap(),
        &ca.ca_certificate_der().unwrap(),
    )
    .unwrap();
    let o = ArchivalOptions {
        template: Some("ExchangeUser".into()),
        cipher: ContentCipher::Aes256Cbc,
        transport: KeyTransport::RsaPkcs1v15,
        payload: KeyPayload::Pkcs8,
    };
    build_archival_request(key, csr, &xchg, &o).unwrap()
}

/// SAN entries naming a UPN (Microsoft otherName) and an e-mail address.
pub fn upn_and_email(upn: &str, email: &str) -> Vec<GeneralName> {
    vec![
        GeneralName::OtherName(OtherName {
            type_id: oids::MS_UPN,
            value: der::asn1::Any::encode_from(&der::asn1::Utf8StringRef::new(upn).unwrap())
                .unwrap(),
        }),
        GeneralName::Rfc822Name(Ia5String::new(email).unwrap()),
    ]
}

/// Archives a key for `cn` (UPN and e-mail in the SAN), requested by `requester`.
pub async fn archive(ca: &Ca, cn: &str, upn: &str, email: &str, requester: &str) -> Outcome {
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let san = SubjectAltName(upn_and_email(upn, email));
    let ext = extension(oids::CE_SUBJECT_ALT_NAME, false, &san).unwrap();
    let csr = sign_request(
        &key,
        Name::from_str(&format!("CN={cn}")).unwrap(),
        vec![ext],
    )
    .unwrap();
    let req = exchange_user_request(ca, &key, &csr).await;
    ca.submit(&req, &submit_options(None, requester))
        .await
        .unwrap()
}

/// The URL of the CA database of `home` for a direct connection: its
/// PostgreSQL URL, or its SQLite file.
pub fn database_url(home: &Path) -> String {
    let config = std::fs::read_to_string(home.join("lockbox.toml")).unwrap();
    let url = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("url = "))
        .map(|u| u.trim_matches('"').to_string())
        .unwrap();
    if url.starts_with("postgres") {
        url
    } else {
        format!("sqlite:{}", home.join("ca.db").display())
    }
}

/// Copies a CA home (tampering tests work on copies). On PostgreSQL the copy
/// gets a database of its own, a copy of the original's, and its
/// configuration names it.
pub async fn copy_home(from: &Path, to: &Path) {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            let dest = to.join(p.file_name().unwrap());
            if p.is_dir() {
                copy_dir(&p, &dest);
            } else {
                std::fs::copy(&p, &dest).unwrap();
            }
        }
    }
    copy_dir(from, to);
    let url = database_url(from);
    if url.starts_with("postgres") {
        let server = lockbox_store::test_server().unwrap();
        let fresh = lockbox_store::create_fresh_database(&server).await.unwrap();
        let (src, dst) = (open_store(&url).await, open_store(&fresh).await);
        src.copy_into(&dst).await.unwrap();
        let config = std::fs::read_to_string(to.join("lockbox.toml")).unwrap();
        std::fs::write(to.join("lockbox.toml"), config.replace(&url, &fresh)).unwrap();
    }
}

/// A store on `url` as [`database_url`] gives it: `sqlite:FILE` or PostgreSQL.
pub async fn open_store(url: &str) -> lockbox_store::SqlStore {
    use lockbox_store::{DatabaseUrl, SqlStore};
    match url.strip_prefix("sqlite:") {
        Some(path) => SqlStore::open(Path::new(path), lockbox_engine::chain_hash)
            .await
            .unwrap(),
        None => {
            let DatabaseUrl::Postgres(pg) = DatabaseUrl::parse(url).unwrap() else {
                panic!("not postgres")
            };
            SqlStore::connect_postgres(&pg, lockbox_engine::chain_hash)
                .await
                .unwrap()
        }
    }
}

/// A blob literal in the test backend's SQL.
pub fn blob_literal(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if on_postgres() {
        format!("decode('{hex}', 'hex')")
    } else {
        format!("x'{hex}'")
    }
}

/// Whether the tests run on PostgreSQL (`LOCKBOX_TEST_DATABASE` set).
pub fn on_postgres() -> bool {
    lockbox_store::test_server().is_some()
}

/// Runs SQL statements straight on the CA database of `home` (tampering
/// tests), on either backend.
pub async fn sql<S: AsRef<str>>(home: &Path, statements: &[S]) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&database_url(home))
        .await
        .unwrap();
    for s in statements {
        sqlx::query(sqlx::AssertSqlSafe(s.as_ref().to_string()))
            .execute(&mut c)
            .await
            .unwrap();
    }
}
