//! `lockbox verifykeys KEY CERT`: check that a private key matches a certificate.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use lockbox_codec::pem::decode_input;
use lockbox_crypto::KeyHandle;
use lockbox_engine::certbuild::decode_certificate;
use lockbox_engine::load_private_key;
use serde_json::json;

use crate::files::read;
use crate::global::Global;

#[derive(Args, Debug)]
pub struct VerifyKeysArgs {
    /// Private key (PKCS#8 PEM/DER).
    pub key: PathBuf,
    /// Certificate.
    pub cert: PathBuf,
}

/// `lockbox verifykeys KEY CERT`
pub fn verifykeys(g: &Global, a: VerifyKeysArgs) -> Result<ExitCode> {
    let key_bytes = zeroize::Zeroizing::new(read(&a.key)?);
    let key = load_private_key(&key_bytes, None)?;
    let cert = decode_certificate(&decode_input(&read(&a.cert)?)?.der)?;
    let probe = lockbox_crypto::random::random_bytes(32)?;
    let sig = key.sign(&probe)?;
    let ok = cert.tbs_certificate().subject_public_key_info() == key.public_key_info()
        && lockbox_crypto::verify::verify_signature(
            cert.tbs_certificate().subject_public_key_info(),
            &key.signature_algorithm(),
            &probe,
            &sig,
        )
        .is_ok();
    if g.json {
        println!("{}", json!({ "match": ok }));
    } else if ok {
        println!("The private key matches the certificate's public key.");
    } else {
        println!("The private key does NOT match the certificate.");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
