//! The OCSP responder (RFC 6960, with the RFC 5019 profile for caching):
//! status of this CA's certificates from the database, signed by the
//! delegated responder of the CA key that issued them ([`signer`]; after a
//! renewal with a new key each key has its own, and a request about
//! certificates of several keys is `unauthorized`).
//!
//! Every answer is an OCSP response, never an engine error: a request that
//! does not parse gets `malformedRequest`, one about another CA's
//! certificates `unauthorized`, a failure here `internalError`. Status is
//! read live: a revocation, hold or release shows in the next response.
//! A serial this CA never issued (or a request still pending or denied) is
//! `unknown`; a certificate on hold is `revoked` with reason
//! `certificateHold`.

pub(crate) mod signer;

use std::time::Duration;

use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
use der::Encode;
use lockbox_codec::hexfmt::to_hex;
use lockbox_codec::ocsp::{
    error_response, parse_request, successful_response, BasicOcspResponse, CertId, CertStatus,
    ResponderId, ResponseData, ResponseStatus, RevokedInfo, SingleResponse, ID_PKIX_OCSP_NONCE,
};
use lockbox_crypto::digest::digest_by_oid;
use lockbox_store::Disposition;
use x509_cert::certificate::Certificate;
use x509_cert::ext::Extension;

use crate::core::Core;
use crate::period::now;
use crate::{EngineError, EngineResult};

/// Per-process responder state: the loaded signer, its renewal lock, and
/// the permits that bound how many answers are made at once.
pub(crate) struct OcspState {
    /// The loaded responder of each CA key (by key index).
    pub(crate) signer:
        std::sync::Mutex<std::collections::HashMap<u32, std::sync::Arc<signer::OcspSigner>>>,
    pub(crate) renewing: tokio::sync::Mutex<()>,
    /// Anonymous OCSP traffic holds at most this many database connections
    /// and signing threads at once (two per core); the rest waits, and
    /// authenticated work keeps the remaining connections.
    pub(crate) answering: tokio::sync::Semaphore,
}

impl Default for OcspState {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        OcspState {
            signer: Default::default(),
            renewing: Default::default(),
            answering: tokio::sync::Semaphore::new((2 * cores).clamp(2, 8)),
        }
    }
}

/// A response and what HTTP caching may do with it.
#[derive(Clone, Debug)]
pub struct OcspAnswer {
    /// DER `OCSPResponse`.
    pub der: Vec<u8>,
    /// For a successful response without a nonce: (thisUpdate, nextUpdate)
    /// in unix seconds, from which RFC 5019 cache headers are made. None:
    /// not to be cached (an error, or a nonce that makes it one-off).
    pub cacheable: Option<(i64, i64)>,
}

fn failed(status: ResponseStatus) -> OcspAnswer {
    OcspAnswer {
        // A status-only response is five fixed bytes; encoding cannot fail.
        der: error_response(status).unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, 0x02]),
        cacheable: None,
    }
}

/// Answers one DER OCSP request.
pub(crate) async fn respond(core: &Core, request: &[u8]) -> OcspAnswer {
    let parsed = match parse_request(request) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "OCSP request refused");
            return failed(ResponseStatus::MalformedRequest);
        }
    };
    match answer(core, &parsed.cert_ids, parsed.nonce.as_deref()).await {
        Ok(Some(a)) => a,
        Ok(None) => failed(ResponseStatus::Unauthorized),
        Err(e) => {
            tracing::warn!(error = %e, "OCSP response not made");
            failed(ResponseStatus::InternalError)
        }
    }
}

/// Whether `id` names this CA as the issuer (by name and key hash, with the
/// hash algorithm the request chose).
fn names_this_ca(id: &CertId, ca: &Certificate) -> bool {
    let oid = &id.hash_algorithm.oid;
    let tbs = ca.tbs_certificate();
    let (Ok(name_der), Ok(key_hash)) = (
        tbs.subject().to_der(),
        digest_by_oid(
            oid,
            tbs.subject_public_key_info().subject_public_key.raw_bytes(),
        ),
    ) else {
        return false;
    };
    digest_by_oid(oid, &name_der).is_ok_and(|h| h == id.issuer_name_hash.as_bytes())
        && key_hash == id.issuer_key_hash.as_bytes()
}

fn gtime(unix: i64) -> EngineResult<GeneralizedTime> {
    GeneralizedTime::from_unix_duration(Duration::from_secs(unix.max(0) as u64))
        .map_err(|e| EngineError::Config(format!("OCSP time: {e}")))
}

fn enc(e: der::Error) -> EngineError {
    EngineError::Config(format!("encoding OCSP response: {e}"))
}

/// The status of one certificate of this CA, from its database row.
async fn status_of(core: &Core, id: &CertId, ca: &Certificate) -> EngineResult<CertStatus> {
    let serial = to_hex(id.serial_number.as_bytes());
    let Some(row) = core.store.get_by_serial(&serial).await? else {
        return Ok(CertStatus::Unknown(Null));
    };
    // An imported certificate another CA issued is not this CA's to answer for.
    let ours = row.cert.as_ref().is_some_and(|c| {
        <Certificate as der::Decode>::from_der(&c.cert_der)
            .is_ok_and(|cert| signer::issued_by(&cert, ca))
    });
    if !ours {
        return Ok(CertStatus::Unknown(Null));
    }
    Ok(match row.disposition {
        Disposition::Issued => CertStatus::Good(Null),
        Disposition::Revoked => {
            let reason = row.revocation_reason.unwrap_or(0);
            CertStatus::Revoked(RevokedInfo {
                revocation_time: gtime(row.revoked_at.unwrap_or(0))?,
                revocation_reason: (reason != 0).then(|| crate::crl::crl_reason(reason)),
            })
        }
        _ => CertStatus::Unknown(Null),
    })
}

/// The key index of the CA certificate `id` names (by name and key hash);
/// None when it names no certificate of this CA.
fn key_index_named(core: &Core, id: &CertId) -> Option<u32> {
    core.generations
        .all
        .iter()
        .find(|g| names_this_ca(id, &g.cert))
        .map(|g| g.key_index)
}

/// The signed response, or None when a certificate asked about is not this
/// CA's (or the request mixes certificates of several CA keys).
async fn answer(
    core: &Core,
    ids: &[CertId],
    nonce: Option<&[u8]>,
) -> EngineResult<Option<OcspAnswer>> {
    let keys: Vec<Option<u32>> = ids.iter().map(|id| key_index_named(core, id)).collect();
    let Some(Some(k)) = keys.first().copied() else {
        return Ok(None);
    };
    if keys.iter().any(|x| *x != Some(k)) {
        return Ok(None);
    }
    let Some(generation) = core.generations.for_key(k) else {
        return Ok(None);
    };
    let ca = &generation.cert;
    let _permit = core
        .ocsp
        .answering
        .acquire()
        .await
        .map_err(|e| EngineError::Config(format!("OCSP permits: {e}")))?;
    let signer = signer::signer_for(core, k).await?;
    let this_update = now();
    let next_update = core
        .config
        .ocsp
        .response_validity
        .add_to(this_update)?
        .min(signer.not_after);
    let mut responses = Vec::with_capacity(ids.len());
    for id in ids {
        responses.push(SingleResponse {
            cert_id: id.clone(),
            cert_status: status_of(core, id, ca).await?,
            this_update: gtime(this_update)?,
            next_update: Some(gtime(next_update)?),
            single_extensions: None,
        });
    }
    let response_extensions = match nonce {
        Some(n) => Some(vec![Extension {
            extn_id: ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(OctetString::new(n).map_err(enc)?.to_der().map_err(enc)?)
                .map_err(enc)?,
        }]),
        None => None,
    };
    let tbs = ResponseData {
        version: 0,
        responder_id: ResponderId::ByKey(OctetString::new(signer.key_hash.clone()).map_err(enc)?),
        produced_at: gtime(this_update)?,
        responses,
        response_extensions,
    };
    let tbs_der = tbs.to_der().map_err(enc)?;
    let key = signer.key.clone();
    let signature = tokio::task::spawn_blocking(move || {
        key.sign(&tbs_der).map(|s| (s, key.signature_algorithm()))
    })
    .await
    .map_err(|e| EngineError::Config(format!("OCSP signing task: {e}")))??;
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm: signature.1,
        signature: BitString::from_bytes(&signature.0).map_err(enc)?,
        certs: Some(vec![signer.cert.clone()]),
    };
    let der = successful_response(&basic)
        .map_err(|e| EngineError::Config(format!("encoding OCSP response: {e}")))?;
    Ok(Some(OcspAnswer {
        der,
        cacheable: nonce.is_none().then_some((this_update, next_update)),
    }))
}
