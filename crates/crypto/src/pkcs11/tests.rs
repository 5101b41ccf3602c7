//! Token tests against SoftHSM2 (tokens made for the test under a temporary
//! `SOFTHSM2_CONF`). Without SoftHSM2 they are skipped with a line on stderr,
//! unless `LOCKBOX_REQUIRE_SOFTHSM` is set (the test script sets it), when
//! they fail.

use std::sync::{Arc, OnceLock};

use super::softhsm::SoftHsm;
use super::*;
use crate::keytransport::{decrypt_key_implicit, encrypt_key, DecryptionKey, KeyTransport};
use crate::verify::verify_signature;
use crate::{KeyHandle, PrivateKey};

const PIN: &str = "test-pin-4711";

/// One SoftHSM2 directory per test process (the module reads
/// `SOFTHSM2_CONF` once, when it is initialised).
fn hsm() -> Option<&'static SoftHsm> {
    static HSM: OnceLock<Option<SoftHsm>> = OnceLock::new();
    HSM.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("lockbox-crypto-hsm-{}", std::process::id()));
        let hsm = SoftHsm::create(&dir).ok().flatten();
        match &hsm {
            Some(h) => {
                // Made before the module is first initialised: SoftHSM2
                // sees the tokens that exist then.
                for label in ["sign", "decrypt", "agree", "errors", "wrong-pin"] {
                    h.init_token(label, PIN).unwrap();
                }
                std::env::set_var("SOFTHSM2_CONF", &h.conf)
            }
            None if std::env::var_os("LOCKBOX_REQUIRE_SOFTHSM").is_some() => {
                panic!("LOCKBOX_REQUIRE_SOFTHSM is set but SoftHSM2 is not installed")
            }
            None => eprintln!("SoftHSM2 not installed: PKCS#11 token tests skipped"),
        }
        hsm
    })
    .as_ref()
}

fn token(label: &str) -> Option<Arc<Token>> {
    let hsm = hsm()?;
    Some(
        Token::open(TokenConfig {
            module: hsm.module.clone(),
            token_label: label.into(),
            pin: Zeroizing::new(PIN.into()),
            max_sessions: 2,
            token_serial: None,
        })
        .unwrap(),
    )
}

#[test]
fn signs_on_the_token_with_each_key_type() {
    let Some(t) = token("sign") else { return };
    for spec in [KeySpec::Rsa2048, KeySpec::P256, KeySpec::P384] {
        let k = t
            .generate(spec, &format!("ca-{spec}"), KeyUse::Sign)
            .unwrap();
        let sig = k.sign(b"to be signed").unwrap();
        verify_signature(
            k.public_key_info(),
            &k.signature_algorithm(),
            b"to be signed",
            &sig,
        )
        .unwrap();
        assert!(verify_signature(
            k.public_key_info(),
            &k.signature_algorithm(),
            b"to be signeD",
            &sig
        )
        .is_err());
        let p = k.protection().unwrap();
        assert!(
            p.sensitive && !p.extractable && p.never_extractable,
            "{p:?}"
        );
        assert!(k.export_pkcs8().is_err());
        // Found again by its label, same public key.
        let again = t.find_key(&format!("ca-{spec}")).unwrap();
        assert_eq!(again.public_key_info(), k.public_key_info());
    }
}

#[test]
fn decrypts_pkcs1_with_raw_rsa_and_oaep_on_the_token() {
    let Some(t) = token("decrypt") else { return };
    let k = t
        .generate(KeySpec::Rsa2048, "xchg", KeyUse::Decrypt)
        .unwrap();
    let cek = [0x42u8; 32];
    for transport in [KeyTransport::RsaPkcs1v15, KeyTransport::RsaOaepSha1] {
        let ct = encrypt_key(k.public_key_info(), transport, &cek).unwrap();
        assert_eq!(&k.decrypt_key(transport, &ct).unwrap()[..], &cek[..]);
        let implicit = decrypt_key_implicit(&k, transport, &ct, 32).unwrap();
        assert_eq!(&implicit[..], &cek[..]);
    }
    // Encrypted to another key: an error from decrypt_key, a random key
    // (not an error) from the implicit path, as for software keys.
    let other = crate::SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let ct = encrypt_key(other.public_key_info(), KeyTransport::RsaPkcs1v15, &cek).unwrap();
    assert!(k.decrypt_key(KeyTransport::RsaPkcs1v15, &ct).is_err());
    let implicit = decrypt_key_implicit(&k, KeyTransport::RsaPkcs1v15, &ct, 32).unwrap();
    assert_ne!(&implicit[..], &cek[..]);
    // The exchange key does not sign.
    assert!(k.sign(b"x").is_err());
}

#[test]
fn agrees_ecdh_on_the_token() {
    let Some(t) = token("agree") else { return };
    for spec in [KeySpec::P256, KeySpec::P384] {
        let k = t.generate(spec, "kra-ec", KeyUse::Decrypt).unwrap();
        let cek = [9u8; 32];
        let parts = crate::kari::wrap_for(k.public_key_info(), &cek).unwrap();
        let got = k
            .unwrap_agreed_key(
                &parts.ephemeral_point,
                &parts.key_enc_alg,
                None,
                &parts.wrapped_key,
            )
            .unwrap();
        assert_eq!(&got[..], &cek[..]);
        k.destroy().unwrap();
    }
}

#[test]
fn wrong_pin_absent_token_and_removed_key_are_clear_errors() {
    let Some(hsm) = hsm() else { return };
    let Some(t) = token("errors") else { return };
    let k = t
        .generate(KeySpec::P256, "gone-soon", KeyUse::Sign)
        .unwrap();
    k.sign(b"x").unwrap();
    // Removed key.
    t.find_key("gone-soon").unwrap().destroy().unwrap();
    let e = k.sign(b"x").unwrap_err();
    assert!(matches!(e, CryptoError::TokenUnavailable(_)), "{e}");
    assert!(e.to_string().contains("gone-soon"), "{e}");
    // Absent token.
    let absent = Token::open(TokenConfig {
        module: hsm.module.clone(),
        token_label: "no-such-token".into(),
        pin: Zeroizing::new(PIN.into()),
        max_sessions: 1,
        token_serial: None,
    })
    .unwrap();
    let e = absent.check().unwrap_err();
    assert!(matches!(e, CryptoError::TokenUnavailable(_)), "{e}");
    // Wrong PIN: refused, and the PIN is in no message.
    let wrong = Token::open(TokenConfig {
        module: hsm.module.clone(),
        token_label: "wrong-pin".into(),
        pin: Zeroizing::new("not-the-pin-0815".into()),
        max_sessions: 1,
        token_serial: None,
    })
    .unwrap();
    let e = wrong.check().unwrap_err();
    assert!(matches!(e, CryptoError::TokenLogin(_)), "{e}");
    // Not offered a second time.
    let again = wrong.check().unwrap_err();
    assert!(again.to_string().contains("not offered again"), "{again}");
    assert!(!e.to_string().contains("0815") && !format!("{wrong:?}").contains("0815"));
}
