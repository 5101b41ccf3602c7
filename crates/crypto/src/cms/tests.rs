//! Round trips and refusals of the CMS module.

use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use crate::keytransport::KeyTransport;
use crate::symmetric::ContentCipher;
use crate::KeyHandle;

use super::*;
use crate::{KeySpec, SoftwareKey};
use std::str::FromStr;

fn recipient(key: &SoftwareKey, serial: u8) -> (Recipient, Name, SerialNumber) {
    let issuer = Name::from_str("CN=Test CA").unwrap();
    let serial = SerialNumber::new(&[serial]).unwrap();
    (
        Recipient {
            issuer: issuer.clone(),
            serial: serial.clone(),
            spki: KeyHandle::public_key_info(key).clone(),
        },
        issuer,
        serial,
    )
}

#[test]
fn envelope_round_trip_every_cipher_and_transport() {
    let k1 = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let k2 = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let (r1, i1, s1) = recipient(&k1, 1);
    let (r2, i2, s2) = recipient(&k2, 2);
    for cipher in [
        ContentCipher::Aes256Cbc,
        ContentCipher::Aes128Cbc,
        ContentCipher::DesEde3Cbc,
    ] {
        for transport in [
            KeyTransport::RsaPkcs1v15,
            KeyTransport::RsaOaepSha1,
            KeyTransport::RsaOaepSha256,
        ] {
            let env = envelope(
                b"secret key bytes",
                &[r1.clone(), r2.clone()],
                cipher,
                transport,
            )
            .unwrap();
            for (i, s, k) in [(&i1, &s1, &k1), (&i2, &s2, &k2)] {
                let got = open_envelope(
                    &env,
                    &[OpeningKey {
                        issuer: i,
                        serial: s,
                        key: k,
                    }],
                )
                .unwrap();
                assert_eq!(&got[..], b"secret key bytes");
            }
            assert_eq!(envelope_recipients(&env).unwrap().len(), 2);
        }
    }
    let stranger = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let (_r, _i, s3) = recipient(&stranger, 3);
    let env = envelope(
        b"x",
        std::slice::from_ref(&r1),
        ContentCipher::Aes256Cbc,
        KeyTransport::RsaPkcs1v15,
    )
    .unwrap();
    assert!(matches!(
        open_envelope(
            &env,
            &[OpeningKey {
                issuer: &i1,
                serial: &s3,
                key: &stranger
            }]
        ),
        Err(OpenError::NotForUs)
    ));
}

#[test]
fn ecdh_recipients_round_trip() {
    for spec in [KeySpec::P256, KeySpec::P384] {
        let ec = SoftwareKey::generate(spec).unwrap();
        let rsa = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
        let (r1, i1, s1) = recipient(&ec, 1);
        let (r2, _i2, _s2) = recipient(&rsa, 2);
        let env = envelope(
            b"escrowed",
            &[r1, r2],
            ContentCipher::Aes256Cbc,
            KeyTransport::RsaPkcs1v15,
        )
        .unwrap();
        let got = open_envelope(
            &env,
            &[OpeningKey {
                issuer: &i1,
                serial: &s1,
                key: &ec,
            }],
        )
        .unwrap();
        assert_eq!(&got[..], b"escrowed");
        assert_eq!(envelope_recipients(&env).unwrap().len(), 2);
        let other = SoftwareKey::generate(spec).unwrap();
        assert!(matches!(
            open_envelope(
                &env,
                &[OpeningKey {
                    issuer: &i1,
                    serial: &s1,
                    key: &other
                }]
            ),
            Err(OpenError::Decrypt)
        ));
    }
}

#[test]
fn corrupted_key_transport_fails_like_any_bad_envelope() {
    let k = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let (r, i, s) = recipient(&k, 1);
    let env = envelope(
        b"payload",
        &[r],
        ContentCipher::Aes256Cbc,
        KeyTransport::RsaPkcs1v15,
    )
    .unwrap();
    // Flip a byte inside the RSA ciphertext (the first 0x04 0x82 0x01 0x00 OCTET STRING of 256 bytes).
    let pos = env
        .windows(4)
        .position(|w| w == [0x04, 0x82, 0x01, 0x00])
        .unwrap()
        + 10;
    let mut bad = env.clone();
    bad[pos] ^= 0xff;
    let keys = [OpeningKey {
        issuer: &i,
        serial: &s,
        key: &k,
    }];
    assert!(matches!(
        open_envelope(&bad, &keys),
        Err(OpenError::Decrypt)
    ));
    // A corrupted content ciphertext fails the same way, or (CBC has no
    // integrity: about 1 in 256 garbled last blocks still end in valid
    // padding) decrypts to something that is not the payload.
    let mut bad2 = env.clone();
    let n = bad2.len();
    bad2[n - 1] ^= 0x01;
    match open_envelope(&bad2, &keys) {
        Err(OpenError::Decrypt) => {}
        Ok(p) => assert_ne!(&p[..], b"payload"),
        Err(e) => panic!("a corrupted ciphertext is a decryption failure, not {e:?}"),
    }
    assert!(matches!(
        open_envelope(&env[..env.len() - 5], &keys),
        Err(OpenError::Malformed(_))
    ));
}
