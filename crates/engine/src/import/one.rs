//! Importing one certificate and key: matching, foreign certificates, sealing for KRAs, deferred writes.

use lockbox_codec::hexfmt::to_hex;
use lockbox_crypto::cms::{envelope, Recipient};
use lockbox_crypto::digest::sha1;
use lockbox_crypto::keyinfo::key_identifier;
use lockbox_crypto::PrivateKey;
use lockbox_store::{CertFields, Change, Disposition, NewRequest, RequestRecord};
use x509_cert::certificate::Certificate;

use crate::category::{AuditAction, AuditCategory};
use crate::certs::cert_fields;
use crate::core::Core;
use crate::import::{cert_template, is_signature_only, owner_names, ImportItem, ImportOptions};
use crate::period::now;
use crate::{codes, Actor, EngineError, EngineResult};

/// One certificate, with its key when given.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn import_one(
    core: &Core,
    actor: &Actor,
    der: &[u8],
    cert: &Certificate,
    pkcs8: Option<&[u8]>,
    source: &str,
    opts: &ImportOptions,
    owner_record: Option<serde_json::Value>,
) -> EngineResult<ImportItem> {
    let f = cert_fields(der)?;
    let template = cert_template(cert);
    let mut item = new_item(&f, cert, &template, source);
    if pkcs8.is_some() && is_signature_only(cert) {
        item.outcome = "ignored signature".into();
        return Ok(item);
    }
    let ours = issued_here(core, cert);
    item.foreign = !ours;
    let owner = owner_text(&f, source, &owner_record);
    let existing = core.store.get_by_thumbprint(&f.thumbprint).await?;
    if let Some(outcome) = already_there(existing.as_ref(), pkcs8.is_some()) {
        item.outcome = outcome.into();
        return Ok(item);
    }
    if !ours && existing.is_none() {
        if let Some(w) = foreign_refusal(core, opts).await? {
            item.outcome = "refused foreign".into();
            item.error = Some(format!(
                "{} (issuer '{}'): {w}",
                f.subject,
                cert.tbs_certificate().issuer()
            ));
            return Ok(item);
        }
    }
    let sealed = match pkcs8 {
        Some(p) => match seal_matching_key(core, cert, p).await? {
            Some(s) => Some(s),
            None => {
                item.outcome = "error".into();
                item.error = Some("the key does not match the certificate".into());
                return Ok(item);
            }
        },
        None => None,
    };
    let audit = import_audit(core, actor, &f.serial, source, ours, sealed.is_some()).await;
    let change = match (&existing, sealed) {
        (Some(row), Some((env, hashes))) => Change::AttachArchivedKey {
            request_id: row.request_id,
            archived_key: env,
            kra_hashes: hashes,
            owner: Some(owner),
            source: Some(source.into()),
        },
        (_, sealed) => Change::InsertImported {
            request: Box::new(imported_request(
                der,
                actor,
                template,
                &f,
                ours,
                sealed.as_ref(),
            )),
            foreign: !ours,
            owner: Some(owner),
            source: Some(source.into()),
        },
    };
    write_or_defer(core, change, audit).await?;
    record_owner_names(core, &f.thumbprint, owner_record.as_ref()).await?;
    item.outcome = if pkcs8.is_some() {
        "archived"
    } else {
        "imported"
    }
    .into();
    Ok(item)
}

/// Whether this CA issued the certificate (false before the CA has one).
fn issued_here(core: &Core, cert: &Certificate) -> bool {
    core.issued_by_this_ca(cert)
}

/// The owner record stored beside an imported certificate (JSON text).
fn owner_text(f: &CertFields, source: &str, owner_record: &Option<serde_json::Value>) -> String {
    serde_json::json!({
        "subject": f.subject, "email": f.email, "upn": f.upn, "key_id": f.key_id, "source": source, "record": owner_record,
    })
    .to_string()
}

/// The outcome when the certificate is already stored and there is nothing
/// to add: no key given, or its key already archived.
fn already_there(existing: Option<&RequestRecord>, with_key: bool) -> Option<&'static str> {
    let row = existing?;
    if with_key && !row.has_archived_key {
        return None;
    }
    Some(if with_key {
        "already archived"
    } else {
        "already imported"
    })
}

/// Loads the given key and, when it matches the certificate, seals it for the
/// KRAs; `None` when it does not match. A key that does not load is an error.
async fn seal_matching_key(
    core: &Core,
    cert: &Certificate,
    pkcs8: &[u8],
) -> EngineResult<Option<(Vec<u8>, String)>> {
    let key = core
        .keys
        .load_pkcs8_der(pkcs8)
        .map_err(|e| EngineError::bad_input(codes::E_INVALIDARG, e.to_string()))?;
    if key.public_key_info() != cert.tbs_certificate().subject_public_key_info() {
        return Ok(None);
    }
    Ok(Some(seal_for_kras(core, pkcs8).await?))
}

/// The audit record of one import: a key archived, or a certificate imported.
async fn import_audit(
    core: &Core,
    actor: &Actor,
    serial: &str,
    source: &str,
    ours: bool,
    archived: bool,
) -> Vec<lockbox_store::AuditEntry> {
    let audit_action = if archived {
        AuditAction::KeyArchivedImport
    } else {
        AuditAction::CertificateImported
    };
    crate::audit::chain::success(
        core,
        actor,
        if archived {
            AuditCategory::Keys
        } else {
            AuditCategory::Requests
        },
        audit_action,
        serial,
        &serde_json::json!({ "source": source, "foreign": !ours }).to_string(),
    )
    .await
}

/// Stores the owner's names from the owner record, when it has any.
async fn record_owner_names(
    core: &Core,
    thumbprint: &str,
    owner_record: Option<&serde_json::Value>,
) -> EngineResult<()> {
    let names = owner_names(owner_record);
    if !names.is_empty() {
        write_or_defer(
            core,
            Change::SetOwnerNames {
                thumbprint: thumbprint.to_string(),
                names,
            },
            vec![],
        )
        .await?;
    }
    Ok(())
}

/// The report line of one certificate, before its outcome is known.
fn new_item(
    f: &CertFields,
    cert: &Certificate,
    template: &Option<String>,
    source: &str,
) -> ImportItem {
    ImportItem {
        owner: f.subject.clone(),
        email: f.email.clone(),
        upn: f.upn.clone(),
        key_id: f.key_id.clone(),
        serial: Some(f.serial.clone()),
        issuer: Some(cert.tbs_certificate().issuer().to_string()),
        template: template.clone(),
        source: source.into(),
        outcome: String::new(),
        error: None,
        foreign: false,
    }
}

/// Why a foreign certificate is refused, if it is.
async fn foreign_refusal(core: &Core, opts: &ImportOptions) -> EngineResult<Option<String>> {
    Ok(if !opts.foreign {
        Some("foreign certificate: give -f to import it".to_string())
    } else if !crate::import::foreign_allowed(core).await? {
        Some("foreign certificate: the CA setting kra.enable_foreign is off".to_string())
    } else {
        None
    })
}

/// The issued row an imported certificate becomes, with its sealed key when given.
fn imported_request(
    der: &[u8],
    actor: &Actor,
    template: Option<String>,
    f: &CertFields,
    ours: bool,
    sealed: Option<&(Vec<u8>, String)>,
) -> NewRequest {
    NewRequest {
        request_der: der.to_vec(),
        request_kind: "import".into(),
        requester: actor.name.clone(),
        template,
        request_subject: f.subject.clone(),
        request_common_name: f.common_name.clone(),
        request_upn: f.upn.clone(),
        request_email: f.email.clone(),
        disposition: Disposition::Issued,
        disposition_message: if ours {
            "Imported"
        } else {
            "Imported (foreign)"
        }
        .into(),
        status_code: 0,
        submitted_at: now(),
        archived_key: sealed.map(|s| s.0.clone()),
        kra_hashes: sealed.map(|s| s.1.clone()),
        cert: Some(f.clone()),
        renewal_of: None,
    }
}

/// A key whose certificate is unknown: archived under its key ID.
pub(crate) async fn import_unmatched(
    core: &Core,
    actor: &Actor,
    key: &dyn PrivateKey,
    pkcs8: &[u8],
    source: &str,
    owner: Option<String>,
) -> EngineResult<ImportItem> {
    let key_id = to_hex(&key_identifier(key.public_key_info()));
    let mut item = ImportItem {
        owner: owner.clone().unwrap_or_default(),
        email: None,
        upn: None,
        key_id: key_id.clone(),
        serial: None,
        issuer: None,
        template: None,
        source: source.into(),
        outcome: "unmatched".into(),
        error: Some("no certificate matches this key; archived under its Key ID".into()),
        foreign: false,
    };
    if core.store.unmatched_key_exists(&key_id).await? {
        item.outcome = "already archived".into();
        return Ok(item);
    }
    let (env, hashes) = seal_for_kras(core, pkcs8).await?;
    let audit = crate::audit::chain::success(
        core,
        actor,
        AuditCategory::Keys,
        AuditAction::UnmatchedKeyArchivedImport,
        &key_id,
        &serde_json::json!({ "source": source }).to_string(),
    )
    .await;
    write_or_defer(
        core,
        Change::InsertUnmatchedKey {
            key_id,
            archived_key: env,
            kra_hashes: hashes,
            owner,
            source: Some(source.into()),
            imported_by: actor.name.clone(),
            at: now(),
        },
        audit,
    )
    .await?;
    Ok(item)
}

/// Writes a change now, or queues it when a batch import is running.
pub(crate) async fn write_or_defer(
    core: &Core,
    change: Change,
    audit: Vec<lockbox_store::AuditEntry>,
) -> EngineResult<()> {
    {
        let mut guard = core
            .import_batch
            .lock()
            .map_err(|_| EngineError::Config("import batch lock".into()))?;
        if let Some(b) = guard.as_mut() {
            b.changes.push(change);
            b.audit.extend(audit);
            return Ok(());
        }
    }
    core.store.apply(&[change], &audit).await?;
    Ok(())
}

/// Envelopes a PKCS#8 key to the KRAs (as archival at enrollment does).
pub(crate) async fn seal_for_kras(core: &Core, pkcs8: &[u8]) -> EngineResult<(Vec<u8>, String)> {
    let cached = core
        .import_batch
        .lock()
        .map_err(|_| EngineError::Config("import batch lock".into()))?
        .as_ref()
        .and_then(|b| b.kras.clone());
    let kras = match cached {
        Some((valid, required)) => crate::archival::kra::round_robin(core, &valid, required),
        None => crate::archival::kra::choose_kras(core).await?,
    };
    let recipients: Vec<Recipient> = kras.iter().map(Recipient::from_certificate).collect();
    let env = envelope(
        pkcs8,
        &recipients,
        core.content_cipher()?,
        core.key_transport()?,
    )?;
    let hashes = kras
        .iter()
        .map(|c| der::Encode::to_der(c).map(|d| to_hex(&sha1(&d))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| EngineError::Config(e.to_string()))?
        .join(",");
    Ok((env, hashes))
}
