//! Recovering the client's private key from the archival envelope: one error on one path.

use der::Encode;
use lockbox_codec::keyblob::{
    blob_to_pkcs8, is_private_key_blob, parse_private_key_blob, pkcs8_claimed_public_key,
    CALG_RSA_SIGN,
};
use lockbox_codec::oids;
use lockbox_crypto::cms::{open_envelope, OpenError, OpeningKey};
use lockbox_crypto::random::random_bytes;
use lockbox_crypto::verify::verify_signature;
use lockbox_crypto::KeyProvider;
use zeroize::Zeroizing;

use crate::archival::archival_error;
use crate::archival::envelope::{check_key_hash, request_allows_encryption};
use crate::codes::CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL;
use crate::core::Core;
use crate::inbound::Inbound;
use crate::{EngineError, EngineResult};

/// The decrypted payload as PKCS#8: a Microsoft PRIVATEKEYBLOB (exchange
/// keys only; CALG_RSA_SIGN blobs are signature keys, never archived) or a
/// PKCS#8 structure. None for anything else.
pub(crate) fn client_key_pkcs8(plain: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if is_private_key_blob(plain) {
        let blob = parse_private_key_blob(plain).ok()?;
        let converted = blob_to_pkcs8(&blob).ok().map(Zeroizing::new);
        return converted.filter(|_| blob.key_alg != CALG_RSA_SIGN);
    }
    (plain.first() == Some(&0x30)).then(|| Zeroizing::new(plain.to_vec()))
}

/// A cheap filter before the key is imported: the payload must claim the
/// request's public key — same algorithm (and curve), same RSA modulus and
/// exponent or EC point — read from the PKCS#8 without checking the key. A
/// forged payload (an envelope taken from someone else's request, whatever
/// the attacker's own key type) fails here, at the same early step as a
/// payload that does not parse, and never reaches the expensive import.
pub(crate) fn claims_request_key(pkcs8: &[u8], inbound: &Inbound) -> bool {
    let request_key = &inbound.pkcs10.cert_req.info.public_key;
    let Some(claimed) = pkcs8_claimed_public_key(pkcs8) else {
        return false;
    };
    let same_parameters = request_key.algorithm.oid == oids::RSA_ENCRYPTION
        || request_key
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.to_der().ok())
            == claimed.parameters;
    claimed.algorithm == request_key.algorithm.oid
        && same_parameters
        && Some(claimed.public_key.as_slice()) == request_key.subject_public_key.as_bytes()
}

/// The decrypted key must be the PKCS#10's key: it must load (aws-lc checks
/// the RSA/EC key's internal consistency), carry the same public key, and
/// produce a signature the request's public key verifies.
pub(crate) fn key_matches_request(keys: &dyn KeyProvider, pkcs8: &[u8], inbound: &Inbound) -> bool {
    let Ok(key) = keys.load_pkcs8_der(pkcs8) else {
        return false;
    };
    let request_key = &inbound.pkcs10.cert_req.info.public_key;
    if key.public_key_info() != request_key {
        return false;
    }
    // RSA: importing the key ran AWS-LC's RSA_check_key (n = pq, CRT values,
    // d*e = 1), so equal public keys prove the pair. EC: prove it with a signature.
    if key.is_rsa() {
        return true;
    }
    let Ok(probe) = random_bytes(32) else {
        return false;
    };
    key.sign(&probe).is_ok_and(|sig| {
        verify_signature(request_key, &key.signature_algorithm(), &probe, &sig).is_ok()
    })
}

/// Opens the client's envelope with the exchange key and checks what it
/// holds. Once the envelope names one of the CA's exchange certificates,
/// every failure (RSA padding, content decryption, PRIVATEKEYBLOB or
/// PKCS#8 parsing, a signature key, a key that is not the request's, an
/// encrypted-key hash that does not bind the envelope) runs the same steps
/// and ends in the one error [`archival_error`]: the answer reveals nothing
/// about the plaintext, so the exchange key is no padding oracle.
pub(crate) async fn recover_client_key(
    core: &Core,
    inbound: &Inbound,
    envelope_der: &[u8],
) -> EngineResult<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let certs = crate::archival::exchange::usable_exchange_certificates(core).await?;
    let mut keys = Vec::new();
    for (_, c) in certs.iter() {
        keys.push(crate::archival::exchange_keys::exchange_key(core, c).await?);
    }
    let offered: Vec<OpeningKey<'_>> = certs
        .iter()
        .map(|(_, c)| c)
        .zip(keys.iter())
        .map(|(c, k)| OpeningKey {
            issuer: c.tbs_certificate().issuer(),
            serial: c.tbs_certificate().serial_number(),
            key: k.as_ref(),
        })
        .collect();
    // Verdicts that need no key come first: the requester already knows
    // them (it signed the hash and chose the key usage), and a request
    // that fails them never has its payload parsed or imported.
    let Some(hash) = check_key_hash(inbound, envelope_der) else {
        return Err(archival_error());
    };
    if !request_allows_encryption(inbound) {
        return Err(archival_error());
    }
    let (opened, plain) = match open_envelope(envelope_der, &offered) {
        Ok(p) => (true, p),
        // The exchange key's token is away: nothing was decrypted, and the
        // answer (503) does not depend on the envelope.
        Err(OpenError::KeyUnavailable(e)) => return Err(EngineError::Crypto(e)),
        Err(OpenError::NotForUs) => {
            return Err(EngineError::bad_input(
                CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL,
                "The archived key is not encrypted to a valid exchange certificate of this CA.",
            ))
        }
        Err(OpenError::Malformed(m)) => {
            return Err(EngineError::bad_input(
                CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL,
                format!("Archived key envelope: {m}"),
            ))
        }
        // Continue on random bytes of the ciphertext's length, so that a
        // decryption failure takes the same path as a plaintext that
        // does not parse.
        Err(OpenError::Decrypt) => (
            false,
            Zeroizing::new(random_bytes(envelope_der.len().min(8192))?),
        ),
    };
    let key = client_key_pkcs8(&plain)
        .filter(|pkcs8| claims_request_key(pkcs8, inbound))
        .filter(|pkcs8| key_matches_request(&*core.keys, pkcs8, inbound));
    match (opened, key) {
        (true, Some(pkcs8)) => Ok((pkcs8, hash)),
        _ => Err(archival_error()),
    }
}
