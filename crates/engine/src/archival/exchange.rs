//! The CA exchange certificate clients encrypt archived keys to, and its private key.

use std::str::FromStr;

use der::Encode;
use lockbox_crypto::random::serial_number;
use lockbox_crypto::{KeyHandle, KeySpec, PrivateKey};
use lockbox_store::{CertFields, Disposition, NewRequest};
use x509_cert::certificate::Certificate;
use x509_cert::name::Name;

use crate::archival::xchg_subject;
use crate::category::{AuditAction, AuditCategory};
use crate::certbuild::{aki, sign_certificate, sign_request, ski, template_extensions, CertSpec};
use crate::certs::cert_fields;
use crate::core::cache::{cached, earliest_not_after};
use crate::core::Core;
use crate::period::{now, unix_of};
use crate::template::builtins;
use crate::{EngineError, EngineResult};

/// Exchange certificates still valid whose private key this CA holds
/// (newest first), as DER. A home restored from a backup without exchange
/// keys has the old certificates but not their keys: they are skipped, and
/// a new exchange certificate is made when one is next needed.
pub(crate) async fn exchange_certificates(core: &Core) -> EngineResult<Vec<Vec<u8>>> {
    Ok(usable_exchange_certificates(core)
        .await?
        .iter()
        .map(|(der, _)| der.clone())
        .collect())
}

/// The usable exchange certificates (as [`exchange_certificates`]) with
/// their decoded form, from the cache while the configuration version
/// holds and none of them has expired.
pub(crate) async fn usable_exchange_certificates(
    core: &Core,
) -> EngineResult<std::sync::Arc<Vec<(Vec<u8>, Certificate)>>> {
    cached(core, &core.cache.exchange, || async {
        let certs = usable_and_foreign(core)
            .await?
            .0
            .into_iter()
            .map(|der| Ok((der.clone(), crate::certbuild::decode_certificate(&der)?)))
            .collect::<EngineResult<Vec<_>>>()?;
        let until = earliest_not_after(certs.iter().map(|(_, c)| c));
        Ok((certs, until))
    })
    .await
}

/// The usable exchange certificates (as [`exchange_certificates`]) and the
/// serials of CAExchange rows in force that this CA did not sign.
async fn usable_and_foreign(core: &Core) -> EngineResult<(Vec<Vec<u8>>, Vec<String>)> {
    let t = now();
    let rows = core
        .store
        .query(
            &crate::view::parse_restrictions("CertificateTemplate=CAExchange,Disposition=issued")?,
            1000,
        )
        .await?;
    let valid: Vec<_> = rows
        .into_iter()
        .filter_map(|r| r.cert)
        .filter(|c| c.not_before <= t && c.not_after > t)
        .collect();
    // Keys already opened in this process are held; the stored serials (a
    // query and a directory read) are needed only for the others.
    let loaded: std::collections::HashSet<String> = core
        .archival
        .exchange_keys
        .lock()
        .map(|c| c.keys().cloned().collect())
        .unwrap_or_default();
    let held = if valid.iter().all(|c| loaded.contains(&c.serial)) {
        loaded
    } else {
        crate::archival::exchange_keys::held(core).await?
    };
    // Only certificates this CA signed: a row written into the database by
    // anyone else is never handed to clients as the exchange certificate.
    let Ok((_, ca)) = core.ca_cert() else {
        return Ok((vec![], vec![]));
    };
    let (signed, foreign): (Vec<_>, Vec<_>) = valid.into_iter().partition(|c| {
        crate::certbuild::decode_certificate(&c.cert_der)
            .is_ok_and(|x| crate::certs::verify_issued_by(&x, ca).is_ok())
    });
    let mut certs: Vec<(i64, Vec<u8>)> = signed
        .into_iter()
        .filter(|c| held.contains(&c.serial))
        .map(|c| (c.not_before, c.cert_der))
        .collect();
    certs.sort_by_key(|c| std::cmp::Reverse(c.0));
    Ok((
        certs.into_iter().map(|c| c.1).collect(),
        foreign.into_iter().map(|c| c.serial).collect(),
    ))
}

/// The exchange certificate clients should encrypt to, creating one when
/// none is valid or the newest is inside its overlap window.
pub(crate) async fn current_exchange_certificate(core: &Core) -> EngineResult<Vec<u8>> {
    let overlap = core.config.archival.exchange_overlap.approx_seconds();
    let fresh = |der: &Vec<u8>| {
        cert_fields(der)
            .map(|f| f.not_after - overlap > now())
            .unwrap_or(false)
    };
    if let Some(c) = exchange_certificates(core)
        .await?
        .into_iter()
        .next()
        .filter(fresh)
    {
        return Ok(c);
    }
    let _guard = core.archival.creating.lock().await;
    if let Some(c) = exchange_certificates(core)
        .await?
        .into_iter()
        .next()
        .filter(fresh)
    {
        return Ok(c);
    }
    create_exchange_certificate(core).await
}

/// Makes a new exchange certificate and records it with its sealed key, unless
/// another node recorded one meanwhile (then that one is returned).
pub(crate) async fn create_exchange_certificate(core: &Core) -> EngineResult<Vec<u8>> {
    let (_, ca) = core.ca_cert()?;
    let signer = core.signing_key()?;
    let spec = exchange_key_spec(core)?;
    let key = crate::archival::exchange_keys::generate(core, spec)?;
    let recorded = sign_and_record(core, ca, signer.as_ref(), &*key).await;
    let (recorded, der, fields) = match recorded {
        Ok(r) => r,
        Err(e) => {
            crate::archival::exchange_keys::discard(core, &*key);
            return Err(e);
        }
    };
    if !recorded {
        crate::archival::exchange_keys::discard(core, &*key);
        // Another node made one between our check and our write: use it.
        return exchange_certificates(core)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| EngineError::Config("no exchange certificate after renewal".into()));
    }
    let _ = crate::audit::heads::maybe_sign_head(core).await;
    let _ = crate::audit::chain::event(
        core,
        1001,
        "info",
        &format!(
            "CA exchange certificate {} created, valid until {}",
            fields.serial,
            crate::period::rfc3339(fields.not_after)
        ),
    )
    .await;
    if let Ok(mut cache) = core.archival.exchange_keys.lock() {
        cache.insert(fields.serial.clone(), key);
    }
    remove_expired_token_keys(core).await;
    Ok(der)
}

/// Signs the exchange certificate of `key` and records it with its sealed
/// key (or token reference); false when another node recorded one first.
async fn sign_and_record(
    core: &Core,
    ca: &Certificate,
    signer: &dyn KeyHandle,
    key: &dyn PrivateKey,
) -> EngineResult<(bool, Vec<u8>, lockbox_store::CertFields)> {
    let issued_at = now();
    let (cert, subject) = sign_exchange_certificate(core, ca, signer, key, issued_at)?;
    let der = cert
        .to_der()
        .map_err(|e| EngineError::Config(e.to_string()))?;
    let fields = cert_fields(&der)?;
    // The request first: sealing a key on the token turns its signing off.
    let csr = sign_request(key, subject, vec![])?;
    let sealed = crate::archival::exchange_keys::seal(core, key, &der, &fields.serial)?;
    let overlap = core.config.archival.exchange_overlap.approx_seconds();
    // Rows this CA did not sign do not count as a fresh exchange certificate.
    let foreign = usable_and_foreign(core).await?.1;
    let recorded = record_exchange_certificate(
        core,
        csr,
        &fields,
        (&sealed, &foreign),
        issued_at + overlap,
        issued_at,
    )
    .await?;
    Ok((recorded, der, fields))
}

/// With exchange keys on the token, removes those of expired exchange
/// certificates from it (after a new one is made), with an event for each.
async fn remove_expired_token_keys(core: &Core) {
    if !core.config.archival.exchange_on_token {
        return;
    }
    let Ok(rows) = core
        .store
        .query(
            &crate::view::parse_restrictions("CertificateTemplate=CAExchange").unwrap_or_default(),
            1000,
        )
        .await
    else {
        return;
    };
    let certs: Vec<(String, Vec<u8>)> = rows
        .into_iter()
        .filter_map(|r| r.cert)
        .map(|c| (c.serial, c.cert_der))
        .collect();
    match crate::archival::exchange_keys::remove_expired_from_token(core, &certs).await {
        Ok(removed) => {
            for serial in removed {
                let _ = crate::audit::chain::event(
                    core,
                    1003,
                    "info",
                    &format!("expired CA exchange key {serial} removed from the token"),
                )
                .await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "removing expired exchange keys from the token"),
    }
}

/// The configured exchange key type, which must be RSA.
fn exchange_key_spec(core: &Core) -> EngineResult<KeySpec> {
    let spec = KeySpec::from_str(&core.config.archival.exchange_key)
        .map_err(|e| EngineError::Config(e.to_string()))?;
    if !matches!(spec, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096) {
        return Err(EngineError::Config(
            "the exchange key must be RSA (it receives transported keys)".into(),
        ));
    }
    Ok(spec)
}

/// Signs an exchange certificate for `key` from the CAExchange template,
/// valid from `issued_at` (backdated a minute) until the configured validity
/// or the CA's own end, whichever is first. Returns it with its subject.
fn sign_exchange_certificate(
    core: &Core,
    ca: &Certificate,
    signer: &dyn KeyHandle,
    key: &dyn PrivateKey,
    issued_at: i64,
) -> EngineResult<(Certificate, Name)> {
    let template = builtins()
        .into_iter()
        .find(|t| t.name == "CAExchange")
        .ok_or_else(|| EngineError::Config("CAExchange template missing".into()))?;
    let subject = xchg_subject(ca.tbs_certificate().subject())?;
    let mut exts = template_extensions(&template, false)?;
    exts.push(ski(key.public_key_info())?);
    exts.push(aki(ca.tbs_certificate().subject_public_key_info())?);
    let not_after = core
        .config
        .archival
        .exchange_validity
        .add_to(issued_at)?
        .min(unix_of(&ca.tbs_certificate().validity().not_after));
    let cert = sign_certificate(
        signer,
        CertSpec {
            issuer: ca.tbs_certificate().subject().clone(),
            subject: subject.clone(),
            spki: key.public_key_info().clone(),
            serial: serial_number(16)?,
            not_before: issued_at - 60,
            not_after,
            extensions: exts,
        },
    )?;
    Ok((cert, subject))
}

/// The issued row of the exchange certificate with its sealed key, audited
/// like any issuance; false when a fresh one (in force until after
/// `fresh_after`) already exists.
async fn record_exchange_certificate(
    core: &Core,
    csr: Vec<u8>,
    fields: &CertFields,
    (sealed_key, ignore): (&[u8], &[String]),
    fresh_after: i64,
    issued_at: i64,
) -> EngineResult<bool> {
    let id = core
        .store
        .insert_exchange_certificate(
            &NewRequest {
                request_der: csr,
                request_kind: "pkcs10".into(),
                requester: format!("{} (CA exchange)", core.config.ca.name),
                template: Some("CAExchange".into()),
                request_subject: fields.subject.clone(),
                request_common_name: fields.common_name.clone(),
                request_upn: None,
                request_email: None,
                disposition: Disposition::Issued,
                disposition_message: "Issued (CA exchange certificate)".into(),
                status_code: 0,
                submitted_at: issued_at,
                cert: Some(fields.clone()),
                archived_key: None,
                kra_hashes: None,
                renewal_of: None,
            },
            sealed_key,
            fresh_after,
            ignore,
            // Issuing the CA's own exchange certificate is audited like any issuance.
            &crate::audit::chain::audited(
                core,
                vec![lockbox_store::AuditEntry {
                    at: issued_at,
                    actor: format!("{} (CA exchange)", core.config.ca.name),
                    category: AuditCategory::Requests.as_str().into(),
                    action: AuditAction::ExchangeCertificateIssued.as_str().into(),
                    target: "{request_id}".into(),
                    outcome: "success".into(),
                    details: serde_json::json!({
                        "template": "CAExchange",
                        "serial": fields.serial,
                        "not_after": fields.not_after,
                    })
                    .to_string(),
                }],
            )
            .await,
        )
        .await?;
    Ok(id.is_some())
}
