//! Opening a recovery blob with an agent's key: the agent does it offline
//! (`lockbox_client::recover_from_blob`, `lockbox recoverkey`), and the CA does
//! it when it exports a key history with an agent key the operator holds
//! ([`crate::export`]); one copy for both.

use lockbox_codec::hexfmt::to_hex;
use lockbox_codec::oids;
use lockbox_crypto::cms::{
    decode_envelope, open_envelope, verify_signed_data, OpenError, OpeningKey,
};
use lockbox_crypto::digest::sha1;
use lockbox_crypto::keytransport::DecryptionKey;
use lockbox_crypto::{default_provider, PrivateKey};
use zeroize::Zeroizing;

use crate::certbuild::decode_certificate;
use crate::codes::{CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL, CRYPT_E_NOT_FOUND};
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
    let bad = |m: String| EngineError::bad_input(codes::NTE_BAD_SIGNATURE, m);
    let der = lockbox_codec::pem::decode_input(blob)?.der;
    let sd = verify_signed_data(&der).map_err(|e| {
        bad(format!(
            "the recovery blob's signature does not verify: {e}"
        ))
    })?;
    let ca = crate::trust::check_ca_signer(
        "the recovery blob",
        &sd.signer_certificate,
        &lockbox_codec::pem::decode_input(trusted_ca)?.der,
    )?;
    let env = if sd.econtent.first() == Some(&0x30) && decode_envelope(&sd.econtent).is_ok() {
        sd.econtent.clone()
    } else {
        return Err(EngineError::bad_input(
            codes::CRYPT_E_ASN1_BADTAG,
            "the recovery blob does not carry an EnvelopedData",
        ));
    };
    let kra = decode_certificate(kra_cert)?;
    let ed = decode_envelope(&env)
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
    let pkcs8 = match open_envelope(&env, &[opening]) {
        Ok(p) => p,
        Err(OpenError::NotForUs) => {
            return Err(EngineError::Denied {
                code: CRYPT_E_NOT_FOUND,
                message: format!(
                    "This key recovery agent cannot open the blob. KRAs that can: {}",
                    ids.iter()
                        .map(|(i, s)| format!("issuer '{i}' serial {}", to_hex(s.as_bytes())))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            })
        }
        Err(e) => {
            return Err(EngineError::bad_input(
                CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL,
                format!("the archived key could not be decrypted: {e}"),
            ))
        }
    };
    let key = default_provider().load_pkcs8_der(&pkcs8).map_err(|e| {
        EngineError::bad_input(
            CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL,
            format!("the recovered key does not load: {e}"),
        )
    })?;
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
    // The user certificate must be one the CA issued: a blob cannot name a
    // self-made certificate as "the key of" someone.
    let vouched = sd
        .signed_attributes
        .iter()
        .filter(|a| a.oid == oids::MS_ISSUED_CERT_HASH)
        .flat_map(|a| a.values.iter())
        .filter_map(|v| v.decode_as::<der::asn1::OctetString>().ok())
        .any(|h| h.as_bytes() == sha1(&certificate).as_slice());
    if !vouched {
        ca.check_issued("the recovery blob", &certificate)?;
    }
    Ok(Recovered {
        pkcs8,
        certificate,
        chain,
    })
}
