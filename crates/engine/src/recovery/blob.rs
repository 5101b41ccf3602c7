//! Handing out archived keys as recovery blobs to KRAs.

use lockbox_codec::hexfmt::to_hex;
use lockbox_codec::oids;
use lockbox_crypto::cms::{decode_envelope, sign_data_with_attributes};
use lockbox_crypto::digest::sha1;

use crate::category::{AuditAction, AuditCategory};
use crate::certbuild::decode_certificate;
use crate::codes::{CRYPT_E_NOT_FOUND, TYPE_E_AMBIGUOUSNAME};
use crate::core::Core;
use crate::recovery::search::candidate;
use crate::recovery::{RecipientInfo, RecoveryBlob};
use crate::{Actor, EngineError, EngineResult, Op};
use lockbox_crypto::cms::envelope_recipient_ids;
use lockbox_store::RequestRecord;

/// Produces the recovery blob of one candidate: CMS SignedData by the CA
/// over the archived EnvelopedData, with the user certificate and chain.
/// Several matches are refused (0x8002802C); every retrieval is audited.
pub(crate) async fn get_key(core: &Core, actor: &Actor, token: &str) -> EngineResult<RecoveryBlob> {
    let candidates = crate::recovery::search::find_candidates(core, actor, token).await?;
    let c = match candidates.len() {
        0 => {
            // A key outside a restricted manager's groups or templates is
            // refused as such (0x80094009, audited), not reported missing.
            if let Some(r) = crate::recovery::search::search_rows(core, token)
                .await?
                .into_iter()
                .find(|r| candidate(r).is_some())
            {
                crate::authz::authorize(core,
                    actor,
                    Op::RetrieveKey {
                        requester: &r.requester,
                        template: r.template.as_deref(),
                    },
                )
                .await?;
            }
            return Err(EngineError::NotFound(format!("no archived key matches '{token}'")));
        }
        1 => candidates.into_iter().next().ok_or_else(|| EngineError::NotFound(token.into()))?,
        n => {
            return Err(EngineError::denied(
                TYPE_E_AMBIGUOUSNAME,
                format!(
                    "Ambiguous name: {n} archived keys match '{token}' (serials {}); use a serial number or thumbprint",
                    candidates.iter().map(|c| c.serial.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ))
        }
    };
    get_key_by_request(core, actor, c.request_id).await
}

/// Produces the recovery blob of a request.
pub(crate) async fn get_key_by_request(
    core: &Core,
    actor: &Actor,
    request_id: i64,
) -> EngineResult<RecoveryBlob> {
    let r = core.request(request_id).await?;
    crate::authz::authorize(
        core,
        actor,
        Op::RetrieveKey {
            requester: &r.requester,
            template: r.template.as_deref(),
        },
    )
    .await?;
    let c = candidate(&r)
        .ok_or_else(|| EngineError::NotFound(format!("request {request_id} has no certificate")))?;
    let env = crate::archival::envelope::archived_key(core, request_id).await?;
    let recipients = known_recipients(core, &env, request_id).await?;
    let blob = sign_blob(core, &r, &env)?;
    let audit = crate::audit::chain::success(core,
            actor,
            AuditCategory::Keys,
            AuditAction::RetrievedArchivedKey,
            &request_id.to_string(),
            &serde_json::json!({ "serial": c.serial, "kra": recipients.iter().map(|r| r.sha1.clone()).collect::<Vec<_>>() }).to_string(),
        )
        .await;
    core.store.append_audit(&audit).await?;
    let _ = crate::audit::heads::maybe_sign_head(core).await;
    Ok(RecoveryBlob {
        candidate: c,
        recipients,
        blob,
    })
}

/// Every KRA the envelope names must be in the CA's KRA store (0x80092004
/// naming the first one missing); returns them in the envelope's order.
async fn known_recipients(
    core: &Core,
    env: &[u8],
    request_id: i64,
) -> EngineResult<Vec<RecipientInfo>> {
    let ed =
        decode_envelope(env).map_err(|e| EngineError::Config(format!("stored envelope: {e}")))?;
    let kras: Vec<(x509_cert::certificate::Certificate, Vec<u8>)> = core
        .store
        .kra_certificates()
        .await?
        .into_iter()
        .filter_map(|k| {
            decode_certificate(&k.cert_der)
                .ok()
                .map(|c| (c, k.cert_der))
        })
        .collect();
    let mut recipients = Vec::new();
    for (issuer, serial) in envelope_recipient_ids(&ed) {
        let kra = kras.iter().find(|(k, _)| {
            k.tbs_certificate().issuer() == &issuer
                && k.tbs_certificate().serial_number() == &serial
        });
        let Some((_, der)) = kra else {
            return Err(EngineError::Denied {
                code: CRYPT_E_NOT_FOUND,
                message: format!(
                    "Cannot find the KRA certificate (issuer '{issuer}', serial {}) named by the archived key of request {request_id}",
                    to_hex(serial.as_bytes())
                ),
            });
        };
        recipients.push(RecipientInfo {
            issuer: issuer.to_string(),
            serial: to_hex(serial.as_bytes()),
            sha1: to_hex(&sha1(der)),
        });
    }
    Ok(recipients)
}

/// The blob: CMS SignedData by the CA over the archived EnvelopedData, with
/// the user certificate first, then the CA chain.
fn sign_blob(core: &Core, r: &RequestRecord, env: &[u8]) -> EngineResult<Vec<u8>> {
    let key = core.signing_key()?;
    let (_, ca_cert) = core.ca_cert()?;
    let mut certs = vec![r
        .cert
        .as_ref()
        .map(|c| c.cert_der.clone())
        .unwrap_or_default()];
    certs.extend(core.chain_and_cross()?);
    let vouch = vouch_attribute(&certs[0])?;
    Ok(sign_data_with_attributes(
        key.as_ref(),
        ca_cert,
        oids::ID_DATA,
        env,
        &certs,
        vec![vouch],
    )?)
}

/// The user certificate's hash as a signed attribute: the CA vouches for the
/// certificate it pairs with the key (needed for imported foreign
/// certificates, which the CA did not issue).
fn vouch_attribute(user_cert: &[u8]) -> EngineResult<x509_cert::attr::Attribute> {
    Ok(x509_cert::attr::Attribute {
        oid: oids::MS_ISSUED_CERT_HASH,
        values: der::asn1::SetOfVec::try_from(vec![der::asn1::Any::encode_from(
            &der::asn1::OctetString::new(sha1(user_cert))
                .map_err(|e| EngineError::Config(e.to_string()))?,
        )
        .map_err(|e| EngineError::Config(e.to_string()))?])
        .map_err(|e| EngineError::Config(e.to_string()))?,
    })
}
