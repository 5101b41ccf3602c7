//! Certificate and key-file helpers shared by the services: searchable fields, issuer checks, PKCS#8 files.

use const_oid::AssociatedOid;
use der::Encode;
use lockbox_codec::hexfmt::to_hex;
use lockbox_codec::names::{common_name, dn_string, email, parse_alt_names, AltNames};
use lockbox_codec::oids;
use lockbox_codec::pem::{decode_input, encode_pem};
use lockbox_crypto::digest::sha1;
use lockbox_crypto::keyinfo::{key_identifier, public_key_facts};
use lockbox_crypto::pkcs8enc::{decrypt_pkcs8, encrypt_pkcs8};
use lockbox_crypto::verify::verify_signature;
use lockbox_crypto::{KeyProvider, PrivateKey, SoftwareKey, SoftwareKeyProvider};
use lockbox_store::CertFields;
use std::sync::Arc;
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::name::Name;
use zeroize::Zeroizing;

use crate::certbuild::decode_certificate;
use crate::period::unix_of;
use crate::{codes, EngineError, EngineResult};

/// The PEM of a key file: encrypted with `pass`, or plain.
pub(crate) fn key_pem(
    key: &dyn PrivateKey,
    pass: Option<&[u8]>,
) -> EngineResult<Zeroizing<String>> {
    let pkcs8 = key.export_pkcs8()?;
    Ok(Zeroizing::new(match pass {
        Some(p) => encode_pem("ENCRYPTED PRIVATE KEY", &encrypt_pkcs8(&pkcs8, p)?),
        None => encode_pem("PRIVATE KEY", &pkcs8),
    }))
}

/// The PKCS#8 DER of a PEM or DER key file, decrypted with `pass` when it is encrypted.
fn key_file_der(bytes: &[u8], pass: Option<&[u8]>) -> EngineResult<Zeroizing<Vec<u8>>> {
    let d = decode_input(bytes).map_err(|e| EngineError::Config(format!("key file: {e}")))?;
    if d.label.as_deref() == Some("ENCRYPTED PRIVATE KEY") {
        let pass = pass.ok_or_else(|| {
            EngineError::Config(
                "the CA key is passphrase-protected: set LOCKBOX_CA_PASSPHRASE or LOCKBOX_CA_PASSPHRASE_FILE".into(),
            )
        })?;
        return Ok(decrypt_pkcs8(&d.der, pass)?);
    }
    Ok(Zeroizing::new(d.der))
}

/// Loads a key file (PEM or DER PKCS#8, decrypted with `pass`) through the provider.
pub(crate) fn load_key(
    keys: &dyn KeyProvider,
    bytes: &[u8],
    pass: Option<&[u8]>,
) -> EngineResult<Arc<dyn PrivateKey>> {
    let der = key_file_der(bytes, pass)?;
    Ok(keys.load_pkcs8_der(&der)?)
}

/// Reads a CA key file of the home (`keys/ca.key`, an exchange key) and loads
/// it, decrypted with the configured passphrase when it is encrypted.
pub(crate) fn load_home_key(
    keys: &dyn KeyProvider,
    home: &crate::config::Home,
    key_file: &str,
    passphrase_file: Option<&str>,
) -> EngineResult<Arc<dyn PrivateKey>> {
    let bytes = Zeroizing::new(home.read(key_file)?);
    let pass = crate::config::passphrase(home, passphrase_file)?;
    load_key(keys, &bytes, pass.as_deref().map(|p| p.as_slice()))
}

/// Loads a PEM or DER PKCS#8 private key, decrypting with `pass` when it is encrypted.
///
/// For front ends handling their own key files (a KRA's or a user's); the
/// engine itself loads keys through its [`KeyProvider`].
pub fn load_private_key(bytes: &[u8], pass: Option<&[u8]>) -> EngineResult<SoftwareKey> {
    let der = key_file_der(bytes, pass)?;
    Ok(SoftwareKeyProvider.load_software(&der)?)
}

/// The first extension of type `T` in `cert`, decoded; `None` when it is
/// absent or does not decode (a typed lookup through `T`'s OID that keeps the
/// first-match reading of the hand scans it replaced: a duplicate extension
/// is not an error here).
pub(crate) fn first_extension<'a, T: der::Decode<'a> + AssociatedOid>(
    cert: &'a Certificate,
) -> Option<T> {
    cert.tbs_certificate()
        .filter_extensions::<T>()
        .next()
        .and_then(|r| r.ok())
        .map(|(_, t)| t)
}

pub(crate) fn subject_name(dn: &str) -> EngineResult<Name> {
    lockbox_codec::names::parse_dn(dn)
        .map_err(|e| EngineError::bad_input(codes::E_INVALIDARG, format!("invalid DN '{dn}': {e}")))
}

/// The searchable columns of a certificate.
pub fn cert_fields(der: &[u8]) -> EngineResult<CertFields> {
    let cert = decode_certificate(der)?;
    let tbs = cert.tbs_certificate();
    let exts = tbs.extensions().map(|e| e.as_slice()).unwrap_or(&[]);
    let alt = match exts.iter().find(|e| e.extn_id == oids::CE_SUBJECT_ALT_NAME) {
        Some(e) => parse_alt_names(e.extn_value.as_bytes())?,
        None => AltNames::default(),
    };
    let key_id = first_extension::<SubjectKeyIdentifier>(&cert)
        .map(|s| to_hex(s.0.as_bytes()))
        .unwrap_or_else(|| to_hex(&key_identifier(tbs.subject_public_key_info())));
    let facts = public_key_facts(tbs.subject_public_key_info())?;
    Ok(CertFields {
        cert_der: der.to_vec(),
        serial: to_hex(tbs.serial_number().as_bytes()),
        subject: dn_string(tbs.subject()),
        common_name: common_name(tbs.subject()),
        upn: alt.upns.first().cloned(),
        email: email(tbs.subject(), &alt),
        key_id,
        thumbprint: to_hex(&sha1(der)),
        not_before: unix_of(&tbs.validity().not_before),
        not_after: unix_of(&tbs.validity().not_after),
        key_algorithm: facts.algorithm_name(),
        key_length: facts.bits as i64,
        issuer_key_id: first_extension::<x509_cert::ext::pkix::AuthorityKeyIdentifier>(&cert)
            .and_then(|a| a.key_identifier)
            .map(|k| to_hex(k.as_bytes())),
    })
}

/// Verifies that `cert` was signed by `issuer`.
pub fn verify_issued_by(cert: &Certificate, issuer: &Certificate) -> EngineResult<()> {
    if cert.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
        return Err(EngineError::bad_input(
            codes::NTE_BAD_SIGNATURE,
            format!(
                "certificate issuer '{}' is not '{}'",
                cert.tbs_certificate().issuer(),
                issuer.tbs_certificate().subject()
            ),
        ));
    }
    let tbs = cert
        .tbs_certificate()
        .to_der()
        .map_err(|e| EngineError::bad_input(codes::CRYPT_E_ASN1_BADTAG, e.to_string()))?;
    verify_signature(
        issuer.tbs_certificate().subject_public_key_info(),
        cert.signature_algorithm(),
        &tbs,
        cert.signature().raw_bytes(),
    )
    .map_err(|_| {
        EngineError::bad_input(
            codes::NTE_BAD_SIGNATURE,
            "certificate signature does not verify with its issuer's key",
        )
    })
}

pub(crate) fn is_ca_cert(cert: &Certificate) -> bool {
    first_extension::<x509_cert::ext::pkix::BasicConstraints>(cert).is_some_and(|b| b.ca)
}
