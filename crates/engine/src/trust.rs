//! Trust in objects a CA signs: recovery blobs, key-history exports and CMC
//! responses.
//!
//! One rule for every place that checks such an object: the signer is the
//! trusted CA certificate itself, or a certificate of the same CA after
//! renewal (same subject, `cA` basic constraints, `keyCertSign`, issued by the
//! trusted certificate's key); and the end-entity certificate the object
//! carries must have been issued by that CA. A certificate the CA merely
//! issued to someone (an encryption or signature certificate) never signs for
//! the CA.

use der::Encode;
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};

use crate::certbuild::decode_certificate;
use crate::certs::{first_extension, verify_issued_by};
use crate::error::{codes, EngineError, EngineResult};

fn untrusted(what: &str, why: &str) -> EngineError {
    EngineError::bad_input(
        codes::NTE_BAD_SIGNATURE,
        format!("{what} was not signed by the trusted CA: {why}"),
    )
}

/// Whether `cert` is a CA certificate able to sign certificates
/// (basicConstraints cA=TRUE and keyUsage with keyCertSign).
pub fn is_signing_ca_certificate(cert: &Certificate) -> bool {
    let ca = first_extension::<BasicConstraints>(cert).is_some_and(|b| b.ca);
    let cert_sign =
        first_extension::<KeyUsage>(cert).is_some_and(|k| k.0.contains(KeyUsages::KeyCertSign));
    ca && cert_sign
}

/// The CA certificates a signed object of this CA may be signed with.
#[derive(Clone, Debug)]
pub struct CaSigner {
    /// The trusted CA certificate (the anchor given by the operator).
    pub anchor: Certificate,
    /// The certificate that signed the object (the anchor, or its renewal).
    pub signer: Certificate,
}

impl CaSigner {
    /// Checks that `user_der` was issued by this CA (by the anchor's key or
    /// the renewed certificate's key).
    pub fn check_issued(&self, what: &str, user_der: &[u8]) -> EngineResult<Certificate> {
        let user = decode_certificate(user_der)?;
        if verify_issued_by(&user, &self.anchor).is_ok()
            || verify_issued_by(&user, &self.signer).is_ok()
        {
            return Ok(user);
        }
        Err(EngineError::bad_input(
            codes::NTE_BAD_SIGNATURE,
            format!(
                "{what}: the certificate of '{}' was not issued by the trusted CA",
                user.tbs_certificate().subject()
            ),
        ))
    }
}

/// Accepts `signer_der` as a signer for the CA whose trusted certificate is
/// `anchor_der` (both DER): the anchor itself, byte for byte, or a CA
/// certificate of the same CA after renewal (same subject, basicConstraints
/// cA=TRUE, keyUsage keyCertSign, signed by the anchor's key). `what` names
/// the object in the error ("the recovery blob", ...).
pub fn check_ca_signer(what: &str, signer_der: &[u8], anchor_der: &[u8]) -> EngineResult<CaSigner> {
    check_ca_signer_in(what, signer_der, anchor_der, &[])
}

/// [`check_ca_signer`] that also accepts a signer whose key the anchor's key
/// certified in one of `bundle` (the certificates the signed object
/// carries): after a renewal with a new key, the old key's
/// cross-certificate for the new key (same subject, cA, keyCertSign,
/// signed by the anchor's key). Objects the renewed CA signs then verify
/// against every generation's certificate.
pub fn check_ca_signer_in(
    what: &str,
    signer_der: &[u8],
    anchor_der: &[u8],
    bundle: &[Vec<u8>],
) -> EngineResult<CaSigner> {
    let direct = check_direct(what, signer_der, anchor_der);
    if direct.is_ok() || bundle.is_empty() {
        return direct;
    }
    let anchor = decode_certificate(anchor_der)?;
    let signer = decode_certificate(signer_der)?;
    let cross = bundle
        .iter()
        .filter_map(|d| decode_certificate(d).ok())
        .find(|c| {
            c.tbs_certificate().subject() == anchor.tbs_certificate().subject()
                && c.tbs_certificate().subject() == signer.tbs_certificate().subject()
                && c.tbs_certificate().subject_public_key_info()
                    == signer.tbs_certificate().subject_public_key_info()
                && is_signing_ca_certificate(c)
                && verify_issued_by(c, &anchor).is_ok()
        });
    match cross {
        Some(c) => Ok(CaSigner { anchor, signer: c }),
        None => direct,
    }
}

/// The signer is the anchor, or a renewal the anchor's key signed.
fn check_direct(what: &str, signer_der: &[u8], anchor_der: &[u8]) -> EngineResult<CaSigner> {
    let anchor = decode_certificate(anchor_der)?;
    let signer = decode_certificate(signer_der)?;
    let anchor_bytes = anchor
        .to_der()
        .map_err(|e| EngineError::bad_input(codes::CRYPT_E_ASN1_BADTAG, e.to_string()))?;
    if signer_der == anchor_bytes.as_slice() {
        return Ok(CaSigner { anchor, signer });
    }
    if signer.tbs_certificate().subject() != anchor.tbs_certificate().subject() {
        return Err(untrusted(
            what,
            &format!(
                "the signer '{}' is not the CA '{}'",
                signer.tbs_certificate().subject(),
                anchor.tbs_certificate().subject()
            ),
        ));
    }
    if !is_signing_ca_certificate(&signer) {
        return Err(untrusted(
            what,
            "the signer's certificate is not a CA certificate (cA, keyCertSign)",
        ));
    }
    if verify_issued_by(&signer, &anchor).is_err() {
        return Err(untrusted(
            what,
            "the signer's CA certificate does not chain to the trusted CA certificate",
        ));
    }
    Ok(CaSigner { anchor, signer })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use std::sync::Arc;

    use lockbox_crypto::{default_provider, KeySpec, PrivateKey};
    use x509_cert::name::Name;

    use super::*;
    use crate::certbuild::{ca_extensions, sign_certificate, CertSpec};

    fn cert(
        signer: &Arc<dyn PrivateKey>,
        issuer: &str,
        subject: &str,
        key: &Arc<dyn PrivateKey>,
        ca: bool,
    ) -> Vec<u8> {
        let t = crate::period::now();
        sign_certificate(
            &**signer,
            CertSpec {
                issuer: Name::from_str(issuer).unwrap(),
                subject: Name::from_str(subject).unwrap(),
                spki: key.public_key_info().clone(),
                serial: vec![0x11],
                not_before: t - 60,
                not_after: t + 3600,
                extensions: if ca {
                    ca_extensions(key.public_key_info(), false).unwrap()
                } else {
                    vec![]
                },
            },
        )
        .unwrap()
        .to_der()
        .unwrap()
    }

    #[test]
    fn only_the_ca_certificate_or_its_renewal_signs_for_the_ca() {
        let ca_key = default_provider().generate(KeySpec::P256, "test").unwrap();
        let anchor = cert(&ca_key, "CN=Contoso CA", "CN=Contoso CA", &ca_key, true);
        assert!(check_ca_signer("x", &anchor, &anchor).is_ok());
        // an end-entity certificate issued by the CA, even with the CA's name
        let ee_key = default_provider().generate(KeySpec::P256, "test").unwrap();
        let ee = cert(&ca_key, "CN=Contoso CA", "CN=Contoso CA", &ee_key, false);
        assert!(check_ca_signer("x", &ee, &anchor).is_err());
        let other = cert(&ca_key, "CN=Contoso CA", "CN=Bob", &ee_key, false);
        assert!(check_ca_signer("x", &other, &anchor).is_err());
        // a subordinate CA of this CA is another CA
        let sub = cert(&ca_key, "CN=Contoso CA", "CN=Contoso Sub CA", &ee_key, true);
        assert!(check_ca_signer("x", &sub, &anchor).is_err());
        // a same-name CA certificate not signed by the trusted key
        let rogue_key = default_provider().generate(KeySpec::P256, "test").unwrap();
        let rogue = cert(
            &rogue_key,
            "CN=Contoso CA",
            "CN=Contoso CA",
            &rogue_key,
            true,
        );
        assert!(check_ca_signer("x", &rogue, &anchor).is_err());
        // the renewal: same subject, cA + keyCertSign, signed by the trusted key
        let new_key = default_provider().generate(KeySpec::P256, "test").unwrap();
        let renewed = cert(&ca_key, "CN=Contoso CA", "CN=Contoso CA", &new_key, true);
        let signer = check_ca_signer("x", &renewed, &anchor).unwrap();
        // users issued under either key are the CA's; a self-made one is not
        let user_key = default_provider().generate(KeySpec::P256, "test").unwrap();
        let by_old = cert(&ca_key, "CN=Contoso CA", "CN=Ann", &user_key, false);
        let by_new = cert(&new_key, "CN=Contoso CA", "CN=Ann", &user_key, false);
        let self_made = cert(&user_key, "CN=Ann", "CN=Ann", &user_key, false);
        assert!(signer.check_issued("x", &by_old).is_ok());
        assert!(signer.check_issued("x", &by_new).is_ok());
        assert!(signer.check_issued("x", &self_made).is_err());
    }
}
