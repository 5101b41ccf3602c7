//! Enrollment: submit -> template -> names -> policy -> archive -> issue.

pub(crate) mod checks;
pub(crate) mod names;
pub(crate) mod renewal;

use der::Encode;
use lockbox_codec::hexfmt::to_hex;
use lockbox_codec::names::{common_name, dn_string, email};
use lockbox_codec::pem::encode_pem;
use lockbox_crypto::keyinfo::{public_key_facts, KeyKind};
use lockbox_crypto::random::serial_number;
use lockbox_store::{CertFields, Disposition, NewRequest, StoreError};
use serde::Serialize;
use spki::SubjectPublicKeyInfoOwned;

use crate::category::{AuditAction, AuditCategory};
use crate::certbuild::{
    aki, distribution_extensions, sign_certificate, ski, template_extensions, CertSpec,
};
use crate::certs::cert_fields;
use crate::core::Core;
use crate::enroll::names::LeafNames;
use crate::inbound::{decode_and_verify_submission, Inbound};
use crate::period::{now, unix_of};
use crate::template::Template;
use crate::{codes, Actor, EngineError, EngineResult, ErrorKind};

/// Options of a submission.
#[derive(Clone, Debug, Default)]
pub struct SubmitOptions {
    /// Template named by the caller (overrides the request).
    pub template: Option<String>,
    /// Requester name recorded in the row.
    pub requester: String,
    /// Extra request attributes (`CertificateTemplate:NAME`, ...).
    pub attributes: Vec<(String, String)>,
    /// The authenticated caller; `None` means the local administrator (CLI on the CA home).
    pub actor: Option<Actor>,
    /// Submit for this principal (name, UPN or `DOMAIN\\name`): it becomes the
    /// requester and the names come from its record. Only the local
    /// administrator and holders of the EnrollmentAgent role may.
    pub on_behalf_of: Option<String>,
    /// Renew the certificate with this SHA-1 thumbprint (hex), whose key
    /// the caller proved to hold by authenticating with it over TLS (EST
    /// `simplereenroll`).
    pub renewing: Option<String>,
}

/// The result of a submission or an officer action.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Outcome {
    /// Request ID.
    pub request_id: i64,
    /// `issued`, `pending`, `denied` or `revoked`.
    pub disposition: Disposition,
    /// Status code (0 on success).
    pub status_code: u32,
    /// Disposition message.
    pub message: String,
    /// Template.
    pub template: Option<String>,
    /// Serial number of the issued certificate.
    pub serial: Option<String>,
    /// Issued certificate (PEM).
    pub certificate_pem: Option<String>,
    /// Whether a private key was archived with this request.
    #[serde(default)]
    pub archived: bool,
    /// The client's encrypted-key hash (hex), echoed in CMC responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_key_hash: Option<String>,
    /// Body part id of the PKCS#10 inside a CMC request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_part_id: Option<u32>,
    /// CMC Full PKI Response (base64 DER), for CMC requests over the JSON API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmc_response: Option<String>,
}

pub(crate) fn conflict(e: StoreError) -> EngineError {
    match e {
        StoreError::Conflict(m) => EngineError::Conflict(m),
        StoreError::NotFound(m) => EngineError::NotFound(m),
        other => EngineError::Store(other),
    }
}

pub(crate) fn outcome(
    id: i64,
    d: &Disposition,
    message: &str,
    template: Option<String>,
    cert: Option<&CertFields>,
) -> Outcome {
    Outcome {
        request_id: id,
        disposition: *d,
        status_code: 0,
        message: message.to_string(),
        template,
        serial: cert.map(|c| c.serial.clone()),
        certificate_pem: cert.map(|c| encode_pem("CERTIFICATE", &c.cert_der)),
        archived: false,
        encrypted_key_hash: None,
        body_part_id: None,
        cmc_response: None,
    }
}

/// Submits a PKCS#10 or CMC request (PEM, base64 or DER).
///
/// Input that cannot be decoded or authenticated, and requests the policy
/// refuses, return an error and change nothing. Accepted requests are
/// recorded in one transaction, issued or pending.
pub(crate) async fn submit(
    core: &Core,
    input: &[u8],
    opts: &SubmitOptions,
) -> EngineResult<Outcome> {
    let actor = opts
        .actor
        .clone()
        .unwrap_or_else(|| Actor::local_admin(&opts.requester));
    // One configuration version for the whole request (the caches compare it).
    let version = core.config_version().await?;
    let submitted =
        crate::core::cache::with_version(version, submit_as(core, &actor, input, opts)).await;
    match submitted {
        Ok(o) => Ok(o),
        Err(e) => {
            if matches!(e.kind(), ErrorKind::Denied | ErrorKind::Forbidden)
                && !matches!(
                    e.code(),
                    codes::CERTSRV_E_TEMPLATE_DENIED | codes::CERTSRV_E_ROLECONFLICT
                )
            {
                crate::audit::chain::audit_refusal(
                    core,
                    &actor,
                    AuditCategory::Requests,
                    AuditAction::SubmitRequest,
                    "",
                    &e,
                )
                .await?;
            }
            Err(e)
        }
    }
}

/// A request `actor` already submitted with exactly these bytes that is
/// still pending or was issued: a client repeating its request after
/// "pending" (EST, RFC 7030 4.2.3) gets that one back instead of filing
/// another.
pub(crate) async fn earlier_submission(
    core: &Core,
    actor: &Actor,
    input: &[u8],
) -> EngineResult<Option<Outcome>> {
    use lockbox_store::{Column, Op as Cmp, Restriction, Value};
    let der = decode_and_verify_submission(input)?.der;
    let rows = core
        .store
        .query(
            &[Restriction {
                column: Column::Requester,
                op: Cmp::Eq,
                value: Value::Text(actor.name.clone()),
            }],
            10_000,
        )
        .await?;
    Ok(rows
        .into_iter()
        .rev()
        .find(|r| {
            r.request_der == der
                && matches!(r.disposition, Disposition::Pending | Disposition::Issued)
        })
        .map(|r| {
            outcome(
                r.request_id,
                &r.disposition,
                &r.disposition_message,
                r.template.clone(),
                r.cert.as_ref(),
            )
        }))
}

pub(crate) async fn submit_as(
    core: &Core,
    actor: &Actor,
    input: &[u8],
    opts: &SubmitOptions,
) -> EngineResult<Outcome> {
    let inbound = decode_and_verify_submission(input)?;
    let renewal = match &opts.renewing {
        Some(thumbprint) => {
            Some(crate::enroll::renewal::renewal_by_tls(core, &inbound, thumbprint).await?)
        }
        None => crate::enroll::renewal::renewal(core, &inbound).await?,
    };
    let template = match &renewal {
        Some(r) => crate::enroll::renewal::renewal_template(core, &inbound, opts, r).await?,
        None => crate::enroll::checks::resolve_template(core, &inbound, opts).await?,
    };
    let (requester, mut names, agent) =
        crate::enroll::names::enrollee_names(core, actor, &inbound, &template, opts).await?;
    if let Some(r) = &renewal {
        crate::enroll::renewal::check_requester(r, &requester, agent)?;
        // Names the request would supply are the renewed certificate's;
        // names built from the requester's record stay current.
        if actor.local_admin || template.enrollee_supplies_subject {
            names = r.names()?;
        }
    }
    crate::enroll::checks::check_key_policy(core, &inbound, &template)?;
    match &renewal {
        // A renewal supersedes the certificate it renews, inside the window.
        Some(r) => crate::enroll::renewal::check_renewal_window(&template, r)?,
        None => {
            crate::enroll::checks::check_duplicate_enrollment(core, &template, &requester).await?
        }
    }
    crate::enroll::names::refuse_ca_name(core, &names)?;
    let alt_names = names.alt_names()?;
    // A same-key renewal of an archiving template keeps the key archived
    // with the old certificate (it is that key); anything else archives
    // before anything is recorded or issued: decrypt, check, re-envelope.
    let kept = match &renewal {
        Some(r) => crate::enroll::renewal::kept_archive(core, &inbound, &template, r).await?,
        None => None,
    };
    let archived = match kept {
        Some(_) => None,
        None => crate::archival::envelope::archive_if_required(core, &inbound, &template).await?,
    };
    let mut new = NewRequest {
        request_der: archived
            .as_ref()
            .map_or_else(|| inbound.der.clone(), |a| a.stripped_request.clone()),
        request_kind: inbound.kind.as_str().into(),
        requester: requester.clone(),
        template: Some(template.name.clone()),
        request_subject: dn_string(&names.subject),
        request_common_name: common_name(&names.subject),
        request_upn: alt_names.upns.first().cloned(),
        request_email: email(&names.subject, &alt_names),
        disposition: Disposition::Pending,
        disposition_message: "Taken Under Submission".into(),
        status_code: 0,
        submitted_at: now(),
        cert: None,
        archived_key: archived
            .as_ref()
            .map(|a| a.envelope.clone())
            .or_else(|| kept.as_ref().map(|k| k.0.clone())),
        kra_hashes: archived
            .as_ref()
            .map(|a| a.kra_hashes.clone())
            .or_else(|| kept.as_ref().map(|k| k.1.clone())),
        renewal_of: renewal.as_ref().map(|r| r.old.request_id),
    };
    if !template.requires_approval {
        let fields = build_leaf(core, &template, &inbound, &names)?;
        new.disposition = Disposition::Issued;
        new.disposition_message = "Issued".into();
        new.cert = Some(fields);
    }
    let mut audit = crate::audit::chain::audit_entry(core,
        actor,
        AuditCategory::Requests,
        if new.disposition == Disposition::Issued { AuditAction::CertificateIssued } else { AuditAction::RequestPended },
        "{request_id}",
        &serde_json::json!({ "template": template.name, "requester": requester, "names": names.source, "on_behalf_of": agent.then_some(&requester), "serial": new.cert.as_ref().map(|c| c.serial.clone()), "renewal_of": new.renewal_of }).to_string(),
    );
    if let Some(a) = &archived {
        audit.extend(crate::audit::chain::audit_entry(
            core,
            actor,
            AuditCategory::Keys,
            AuditAction::KeyArchived,
            "{request_id}",
            &serde_json::json!({ "kra": a.kra_hashes }).to_string(),
        ));
    }
    let mut audit = crate::audit::chain::audited(core, audit).await;
    // A serial number another certificate already has (random 64+ bits: in
    // practice never, across nodes or not) is refused by the database's
    // unique index; the certificate is signed again with a new one.
    let mut attempts = 0;
    let id = loop {
        match core.store.insert_request(&new, &audit).await {
            Err(lockbox_store::StoreError::DuplicateSerial)
                if new.cert.is_some() && attempts < 3 =>
            {
                attempts += 1;
                let old = new
                    .cert
                    .as_ref()
                    .map(|c| c.serial.clone())
                    .unwrap_or_default();
                let fields = build_leaf(core, &template, &inbound, &names)?;
                for e in &mut audit {
                    e.details = e.details.replace(&old, &fields.serial);
                }
                tracing::warn!(serial = %old, "serial number already in use: signing again with a new one");
                new.cert = Some(fields);
            }
            other => break other?,
        }
    };
    if let Some(c) = &new.cert {
        crate::archival::kra_events::land_kra_certificate(core, actor, &c.cert_der).await?;
    }
    let _ = crate::audit::heads::maybe_sign_head(core).await;
    tracing::info!(request_id = id, template = %template.name, disposition = new.disposition.as_str(), archived = archived.is_some(), "request recorded");
    let mut o = outcome(
        id,
        &new.disposition,
        &new.disposition_message,
        Some(template.name.clone()),
        new.cert.as_ref(),
    );
    o.archived = archived.is_some() || kept.is_some();
    o.encrypted_key_hash = archived.map(|a| to_hex(&a.client_hash));
    o.body_part_id = inbound.cmc.as_ref().map(|c| c.body_part_id);
    Ok(o)
}

pub(crate) fn build_leaf(
    core: &Core,
    template: &Template,
    inbound: &Inbound,
    names: &LeafNames,
) -> EngineResult<CertFields> {
    crate::enroll::names::refuse_ca_name(core, names)?;
    let key = core.signing_key()?;
    let (_, ca) = core.ca_cert()?;
    let info = &inbound.pkcs10.cert_req.info;
    let spki: &SubjectPublicKeyInfoOwned = &info.public_key;
    let ec = public_key_facts(spki)?.kind == KeyKind::Ec;
    let issued_at = now();
    let not_before = issued_at - core.config.issuance.backdate_seconds.max(0);
    let ca_not_after = unix_of(&ca.tbs_certificate().validity().not_after);
    let not_after = template.validity.add_to(issued_at)?.min(ca_not_after);
    if not_after <= issued_at {
        return Err(EngineError::Config(
            "the CA certificate has expired; renew the CA".into(),
        ));
    }
    let mut exts = template_extensions(template, ec)?;
    exts.push(ski(spki)?);
    exts.push(aki(ca.tbs_certificate().subject_public_key_info())?);
    exts.extend(distribution_extensions(
        &core.config.issuance,
        core.config.ca.key_index,
    )?);
    if let Some(san) = &names.san {
        exts.push(san.clone());
    }
    let cert = sign_certificate(
        key.as_ref(),
        CertSpec {
            issuer: ca.tbs_certificate().subject().clone(),
            subject: names.subject.clone(),
            spki: spki.clone(),
            serial: serial_number(core.config.issuance.serial_bytes.clamp(8, 20))?,
            not_before,
            not_after,
            extensions: exts,
        },
    )?;
    let der = cert
        .to_der()
        .map_err(|e| EngineError::Config(e.to_string()))?;
    cert_fields(&der)
}
