//! Key archival at enrollment: checks on the request and envelope, sealing for the KRAs, archived blobs.

use der::{Decode, Encode};
use lockbox_codec::hexfmt::to_hex;
use lockbox_codec::oids;
use lockbox_crypto::cms::{envelope, Recipient};
use lockbox_crypto::digest::{digest_by_oid, sha1};
use lockbox_crypto::symmetric::ContentCipher;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

use crate::archival::{strip_archived_key, Archived};
use crate::core::Core;
use crate::inbound::Inbound;
use crate::template::Template;
use crate::{codes, EngineError, EngineResult};

/// The encrypted-key hash in the signed controls binds the envelope to the
/// request: same hash algorithm as the request signature, or SHA-1. None when
/// it is missing or does not match.
pub(crate) fn check_key_hash(inbound: &Inbound, envelope_der: &[u8]) -> Option<Vec<u8>> {
    let cmc = inbound.cmc.as_ref()?;
    let sent = cmc.encrypted_key_hash.clone()?;
    let request_hash = digest_by_oid(&cmc.signer.digest_alg.oid, envelope_der).ok();
    let sha1_hash = sha1(envelope_der).to_vec();
    (request_hash.as_deref() == Some(sent.as_slice()) || sha1_hash == sent).then_some(sent)
}

/// Keys whose request asks for signature use only are never archived.
pub(crate) fn request_allows_encryption(inbound: &Inbound) -> bool {
    match inbound
        .pkcs10
        .extension(&oids::CE_KEY_USAGE)
        .map(|e| KeyUsage::from_der(e.extn_value.as_bytes()))
    {
        None => true,
        Some(Err(_)) => false,
        Some(Ok(ku)) => {
            ku.0.contains(KeyUsages::KeyEncipherment)
                || ku.0.contains(KeyUsages::KeyAgreement)
                || ku.0.contains(KeyUsages::DataEncipherment)
        }
    }
}

/// `use_aes_for_key_transport`: the template refuses a key the client
/// encrypted to the CA with 3DES. Only the envelope's clear algorithm
/// identifier is read, before the exchange key is used, so the refusal says
/// nothing about the encrypted content.
pub(crate) fn check_transport_cipher(t: &Template, envelope_der: &[u8]) -> EngineResult<()> {
    if !t.use_aes_for_key_transport {
        return Ok(());
    }
    let alg = lockbox_crypto::cms::decode_envelope(envelope_der)
        .ok()
        .map(|e| e.encrypted_content.content_enc_alg.oid);
    if alg.and_then(|o| ContentCipher::from_oid(&o)) == Some(ContentCipher::DesEde3Cbc) {
        return Err(EngineError::denied(
            codes::NTE_BAD_ALGID,
            format!(
                "Template '{}' requires AES for the private key sent to the CA (use_aes_for_key_transport); the request used 3DES.",
                t.name
            ),
        ));
    }
    Ok(())
}

/// Checks the template's archival rule against the request and, when the
/// template archives, opens, verifies and re-envelopes the key.
pub(crate) async fn archive_if_required(
    core: &Core,
    inbound: &Inbound,
    t: &Template,
) -> EngineResult<Option<Archived>> {
    let cmc = inbound.cmc.as_ref();
    let envelope_der = cmc.and_then(|c| c.archived_key.clone());
    match (t.archive_private_key, envelope_der) {
        (false, None) => Ok(None),
        (true, None) => Err(EngineError::denied(
            codes::CERTSRV_E_ARCHIVED_KEY_REQUIRED,
            format!(
                "Template '{}' requires key archival, but the request carries no private key.",
                t.name
            ),
        )),
        (false, Some(_)) => Err(EngineError::denied(
            codes::CERTSRV_E_ARCHIVED_KEY_UNEXPECTED,
            format!(
                "The request carries a private key, but template '{}' does not archive keys.",
                t.name
            ),
        )),
        (true, Some(env)) => {
            // Configuration checks come first: they do not depend on the key.
            check_transport_cipher(t, &env)?;
            let kras = crate::archival::kra::choose_kras(core).await?;
            let (pkcs8, client_hash) =
                crate::archival::client_key::recover_client_key(core, inbound, &env).await?;
            let recipients: Vec<Recipient> = kras.iter().map(Recipient::from_certificate).collect();
            let sealed = envelope(
                &pkcs8,
                &recipients,
                core.content_cipher()?,
                core.key_transport()?,
            )?;
            let kra_hashes = kras
                .iter()
                .map(|c| c.to_der().map(|d| to_hex(&sha1(&d))))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| EngineError::Config(e.to_string()))?
                .join(",");
            Ok(Some(Archived {
                envelope: sealed,
                kra_hashes,
                client_hash,
                stripped_request: strip_archived_key(&inbound.der)?,
            }))
        }
    }
}

/// The archived-key envelope stored with a request.
pub(crate) async fn archived_key(core: &Core, request_id: i64) -> EngineResult<Vec<u8>> {
    core.store
        .archived_key(request_id)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("request {request_id} has no archived key")))
}

/// SHA-1 thumbprints of the KRA certificates a request's key is encrypted to.
pub(crate) async fn kra_hashes(core: &Core, request_id: i64) -> EngineResult<Vec<String>> {
    Ok(core
        .store
        .kra_hashes(request_id)
        .await?
        .map(|s| {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}
