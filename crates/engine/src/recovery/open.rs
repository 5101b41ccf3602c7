//! Opening a recovery blob with an agent's key: the agent does it offline
//! (`lockbox_client::recover_from_blob`, `lockbox recoverkey`), and the CA does
//! it when it exports a key history with an agent key the operator holds
//! ([`crate::export`]); one copy for both.

use lockbox_codec::hexfmt::to_hex;
use lockbox_codec::oids;
use lockbox_crypto::cms::{
    decode_envelope, open_envelope, verify_signed_data, OpenError, OpeningKey, VerifiedSignedData,
};
use lockbox_crypto::digest::sha1;
use lockbox_crypto::keytransport::DecryptionKey;
use lockbox_crypto::{default_provider, PrivateKey};
use zeroize::Zeroizing;

use crate::certbuild::decode_certificate;
use crate::codes::{CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL, CRYPT_E_NOT_FOUND};
use crate::trust::CaSigner;
use crate::{codes, EngineError, EngineResult};
use lockbox_crypto::cms::envelope_recipient_ids;

/// A recovered key with its certificates.
pub struct Recovered {
    /// PKCS#8 of the recovered key.
    pub pkcs8: Zeroizing<Vec<u8>>,
    /// The user's certificate (DER).
    pub certificate: Vec<u8>,
    /// The CA chain from the blob (DER).
    pub chain: Vec<Vec<u8>>,
}

/// Opens a recovery blob offline with a KRA key (the agent's side): checks the
/// CA signature against `trusted_ca`, finds the recipient matching the agent's
/// certificate, decrypts, and checks the key matches the certificate in the blob.
pub fn recover_from_blob(
    blob: &[u8],
    trusted_ca: &[u8],
    kra_key: &dyn PrivateKey,
    kra_cert: &[u8],
) -> EngineResult<Recovered> {
    let (sd, ca) = verify_blob(blob, trusted_ca)?;
    let env = carried_envelope(&sd)?;
    let pkcs8 = open_as_kra(&env, kra_key, kra_cert)?;
    let key = default_provider().load_pkcs8_der(&pkcs8).map_err(|e| {
        EngineError::bad_input(
            CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL,
            format!("the recovered key does not load: {e}"),
        )
    })?;
    let (certificate, chain) = user_certificate_and_chain(&sd, key.as_ref())?;
    // The user certificate must be one the CA issued: a blob cannot name a
    // self-made certificate as "the key of" someone.
    if !vouched_by_signer(&sd, &certificate) {
        ca.check_issued("the recovery blob", &certificate)?;
    }
    Ok(Recovered {
        pkcs8,
        certificate,
        chain,
    })
}

/// Step 1: the blob's signature verifies (0x80090006 if not) and its signer
/// is the trusted CA or a CA certificate it issued.
fn verify_blob(blob: &[u8], trusted_ca: &[u8]) -> EngineResult<(VerifiedSignedData, CaSigner)> {
    let bad = |m: String| EngineError::bad_input(codes::NTE_BAD_SIGNATURE, m);
    let der = lockbox_codec::pem::decode_input(blob)?.der;
    let sd = verify_signed_data(&der).map_err(|e| {
        bad(format!(
            "the recovery blob's signature does not verify: {e}"
        ))
    })?;
    let ca = crate::trust::check_ca_signer_in(
        "the recovery blob",
        &sd.signer_certificate,
        &lockbox_codec::pem::decode_input(trusted_ca)?.der,
        &sd.certificates,
    )?;
    Ok((sd, ca))
}

/// Step 2: the signed content is an EnvelopedData (0x8009310B if not).
fn carried_envelope(sd: &VerifiedSignedData) -> EngineResult<Vec<u8>> {
    if sd.econtent.first() == Some(&0x30) && decode_envelope(&sd.econtent).is_ok() {
        Ok(sd.econtent.clone())
    } else {
        Err(EngineError::bad_input(
            codes::CRYPT_E_ASN1_BADTAG,
            "the recovery blob does not carry an EnvelopedData",
        ))
    }
}

/// Step 3: the KRA key matches its certificate (0x80070057), the envelope
/// names that certificate (0x80092004, listing the KRAs that can), and it
/// decrypts (0x8009400C).
fn open_as_kra(
    env: &[u8],
    kra_key: &dyn PrivateKey,
    kra_cert: &[u8],
) -> EngineResult<Zeroizing<Vec<u8>>> {
    let kra = decode_certificate(kra_cert)?;
    let ed = decode_envelope(env)
        .map_err(|e| EngineError::bad_input(codes::CRYPT_E_ASN1_BADTAG, e.to_string()))?;
    let ids = envelope_recipient_ids(&ed);
    if kra.tbs_certificate().subject_public_key_info()
        != DecryptionKey::recipient_public_key(kra_key)
    {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "the KRA private key does not match the KRA certificate",
        ));
    }
    let opening = OpeningKey {
        issuer: kra.tbs_certificate().issuer(),
        serial: kra.tbs_certificate().serial_number(),
        key: kra_key,
    };
    match open_envelope(env, &[opening]) {
        Ok(p) => Ok(p),
        Err(OpenError::NotForUs) => Err(EngineError::Denied {
            code: CRYPT_E_NOT_FOUND,
            message: format!(
                "This key recovery agent cannot open the blob. KRAs that can: {}",
                ids.iter()
                    .map(|(i, s)| format!("issuer '{i}' serial {}", to_hex(s.as_bytes())))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }),
        Err(OpenError::KeyUnavailable(e)) => Err(EngineError::Crypto(e)),
        Err(e) => Err(EngineError::bad_input(
            CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL,
            format!("the archived key could not be decrypted: {e}"),
        )),
    }
}

/// Step 4: the first certificate in the blob carrying the recovered key's
/// public key is the user's (0x8009400C when none does); the rest is the chain.
fn user_certificate_and_chain(
    sd: &VerifiedSignedData,
    key: &dyn PrivateKey,
) -> EngineResult<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut user = None;
    let mut chain = Vec::new();
    for c in &sd.certificates {
        let cert = decode_certificate(c)?;
        if user.is_none()
            && cert.tbs_certificate().subject_public_key_info() == key.public_key_info()
        {
            user = Some(c.clone());
        } else {
            chain.push(c.clone());
        }
    }
    let certificate = user.ok_or_else(|| {
        EngineError::bad_input(
            CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL,
            "the recovered key does not match the certificate in the blob",
        )
    })?;
    Ok((certificate, chain))
}

/// Whether the CA's signed attributes carry the user certificate's hash (the
/// CA vouches for the pairing; else the CA must have issued it).
fn vouched_by_signer(sd: &VerifiedSignedData, certificate: &[u8]) -> bool {
    sd.signed_attributes
        .iter()
        .filter(|a| a.oid == oids::MS_ISSUED_CERT_HASH)
        .flat_map(|a| a.values.iter())
        .filter_map(|v| v.decode_as::<der::asn1::OctetString>().ok())
        .any(|h| h.as_bytes() == sha1(certificate).as_slice())
}
