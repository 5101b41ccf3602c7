//! Issue 15: templates, KRAs and exchange certificates are cached per
//! process and reloaded when the database's configuration version moves.
//! A change made by another process on the same CA (the CLI, another node)
//! takes effect on this process's next request: here a second `Ca` opened on
//! the same home stands for that process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::str::FromStr;

use common::{admin, archive, exchange_user_request, issue_kra, new_ca, submit_options};
use lockbox_crypto::{KeySpec, SoftwareKey};
use lockbox_engine::certbuild::sign_request;
use lockbox_engine::{codes, Ca, Disposition};
use x509_cert::name::Name;

/// An ExchangeUser archival request for `cn`, to `ca`'s exchange certificate.
async fn archival_request(ca: &Ca, cn: &str) -> Vec<u8> {
    let key = SoftwareKey::generate(KeySpec::P256).unwrap();
    let csr = sign_request(&key, Name::from_str(&format!("CN={cn}")).unwrap(), vec![]).unwrap();
    exchange_user_request(ca, &key, &csr).await
}

#[tokio::test]
async fn another_processs_configuration_change_reaches_the_next_request() {
    let d = tempfile::tempdir().unwrap();
    let ca = new_ca(d.path(), "Cache CA").await;
    let (_, kra) = issue_kra(&ca, "KRA One", "admin").await;
    let kra_serial = kra.serial.clone().unwrap();
    ca.set_kra_required(&admin(), 1).await.unwrap();
    // This process archives (and caches templates, KRAs, exchange certificates).
    let out = archive(
        &ca,
        "Alice",
        "alice@contoso.com",
        "alice@contoso.com",
        "alice",
    )
    .await;
    assert_eq!(out.disposition, Disposition::Issued);
    assert!(out.archived);

    let other = Ca::open(d.path()).await.unwrap();

    // Another process removes the only KRA.
    other.kra_remove(&admin(), &kra_serial, true).await.unwrap();
    let req = archival_request(&ca, "Bob").await;
    let err = ca
        .submit(&req, &submit_options(None, "bob"))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        codes::CERTSRV_E_KEY_ARCHIVAL_NOT_CONFIGURED,
        "{err}"
    );
    other
        .kra_add(&admin(), kra_serial.as_bytes(), None, None)
        .await
        .unwrap();
    other.set_kra_required(&admin(), 1).await.unwrap();
    let out = ca.submit(&req, &submit_options(None, "bob")).await.unwrap();
    assert!(
        out.archived,
        "archival works again once the other process added the KRA back"
    );

    // Another process takes ExchangeUser off the CA's list.
    other
        .set_ca_template(&admin(), "ExchangeUser", false)
        .await
        .unwrap();
    let req = archival_request(&ca, "Carol").await;
    let err = ca
        .submit(&req, &submit_options(None, "carol"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::CERTSRV_E_UNSUPPORTED_CERT_TYPE, "{err}");
    other
        .set_ca_template(&admin(), "ExchangeUser", true)
        .await
        .unwrap();

    // Another process revokes the only KRA certificate.
    other.revoke(&kra_serial, 1, &admin()).await.unwrap();
    let err = ca
        .submit(&req, &submit_options(None, "carol"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::CERTSRV_E_NO_VALID_KRA, "{err}");
}

/// Two principals whose names fold to the same lower case under Unicode
/// rules but not under the directory's (ASCII) rules are two principals:
/// the resolved-actor cache never hands one the other's roles.
#[tokio::test]
async fn look_alike_principal_names_do_not_share_a_cached_actor() {
    let d = tempfile::tempdir().unwrap();
    let ca = new_ca(d.path(), "Actors CA").await;
    let kate = "kate";
    let kelvin = "\u{212A}ate"; // KELVIN SIGN, lower-cases to 'k'
    ca.add_principal(&admin(), kate, false, None, None, None, None, false)
        .await
        .unwrap();
    if let Err(e) = ca
        .add_principal(&admin(), kelvin, false, None, None, None, None, false)
        .await
    {
        // PostgreSQL's ICU collation may fold the Kelvin sign to K: there
        // the two names are one principal and the second is refused.
        assert!(common::on_postgres(), "{e}");
        return;
    }
    ca.set_role(&admin(), kate, lockbox_engine::Role::CaAdministrator, true)
        .await
        .unwrap();
    let k = ca.actor_for(kate).await.unwrap();
    assert!(k.roles.contains(&lockbox_engine::Role::CaAdministrator));
    let other = ca.actor_for(kelvin).await.unwrap();
    assert_eq!(other.name, kelvin);
    assert!(other.roles.is_empty(), "{:?}", other.roles);
}
