//! Renewal and re-key of a certificate this CA issued (MS-WCCE renewal:
//! a PKCS#10 inside a CMC or PKCS#7 signed with the old certificate's key).
//!
//! The signature by the old key is the proof: the renewal keeps the old
//! certificate's template, subject and subjectAltName, is made for the same
//! requester, and is linked to it (`renewal_of`; the old row is marked
//! `superseded_by` once the renewal is issued). With a new key it is a
//! re-key and a template that archives keys archives the new one as for any
//! enrollment; with the same key, the key archived with the old certificate
//! is kept for the new one (it is the same key). The old certificate must be
//! issued (not revoked or on hold), unexpired, and not renewed already.

use der::Decode;
use lockbox_codec::hexfmt::to_hex;
use lockbox_store::{Disposition, RequestRecord};
use x509_cert::certificate::Certificate;

use crate::core::Core;
use crate::enroll::names::LeafNames;
use crate::inbound::{Inbound, RequestKind};
use crate::period::now;
use crate::{codes, EngineError, EngineResult};

/// A renewal request's old certificate and its row.
pub(crate) struct Renewal {
    /// The row of the certificate being renewed.
    pub(crate) old: RequestRecord,
    /// The certificate being renewed.
    pub(crate) cert: Certificate,
    /// Whether the request keeps the old key.
    pub(crate) same_key: bool,
}

impl Renewal {
    /// The names the renewal carries: the old certificate's.
    pub(crate) fn names(&self) -> EngineResult<LeafNames> {
        names_of(&self.cert)
    }
}

/// The subject and subjectAltName of `cert`, for its renewal.
pub(crate) fn names_of(cert: &Certificate) -> EngineResult<LeafNames> {
    let san = cert
        .tbs_certificate()
        .extensions()
        .into_iter()
        .flatten()
        .find(|e| e.extn_id == lockbox_codec::oids::CE_SUBJECT_ALT_NAME)
        .cloned();
    Ok(LeafNames {
        subject: cert.tbs_certificate().subject().clone(),
        san,
        source: "the renewed certificate".into(),
    })
}

fn refused(message: &str) -> EngineError {
    EngineError::bad_input(codes::NTE_BAD_SIGNATURE, message.to_string())
}

/// Whether `inbound` is a renewal of a certificate this CA issued, checked.
///
/// None: not signed with a certificate, or a CMC signed with a certificate
/// of the request key that this CA did not issue (a self-signed signer, as
/// some clients send). Any other signer certificate this CA cannot vouch
/// for is refused: the request would otherwise enter under a key nobody
/// checked.
pub(crate) async fn renewal(core: &Core, inbound: &Inbound) -> EngineResult<Option<Renewal>> {
    let Some(signer) = &inbound.signer_cert else {
        return Ok(None);
    };
    let request_key = &inbound.pkcs10.cert_req.info.public_key;
    let same_key = signer.tbs_certificate().subject_public_key_info() == request_key;
    // Issued under the current CA key or an earlier one (a user renews a
    // certificate from before the CA's own renewal too).
    let ours = core.issued_by_this_ca(signer);
    if !ours {
        // A request signed by its own key that names a certificate of that
        // key from elsewhere is an ordinary enrollment; a PKCS#7 wrapper is
        // only ever a renewal.
        if inbound.kind != RequestKind::Pkcs7 && same_key {
            return Ok(None);
        }
        return Err(refused(
            "the request is signed with a certificate this CA did not issue",
        ));
    }
    let serial = to_hex(signer.tbs_certificate().serial_number().as_bytes());
    let old = core.store.get_by_serial(&serial).await?.ok_or_else(|| {
        refused("the request is signed with a certificate this CA has no record of")
    })?;
    let recorded = old
        .cert
        .as_ref()
        .and_then(|c| Certificate::from_der(&c.cert_der).ok());
    if recorded.as_ref() != Some(signer) {
        return Err(refused(
            "the request is signed with a certificate this CA has no record of",
        ));
    }
    still_renewable(&old, &serial)?;
    Ok(Some(Renewal {
        old,
        cert: signer.clone(),
        same_key,
    }))
}

/// EST `simplereenroll` (RFC 7030 4.2.2): the certificate the client
/// authenticated with over TLS (`thumbprint`, verified by the connection
/// layer, which proves possession of its key) is the one renewed. A
/// request that is also signed with a certificate must name the same one.
pub(crate) async fn renewal_by_tls(
    core: &Core,
    inbound: &Inbound,
    thumbprint: &str,
) -> EngineResult<Renewal> {
    let not_ours = || refused("the TLS client certificate is not a certificate this CA issued");
    let old = core
        .store
        .get_by_thumbprint(&thumbprint.to_ascii_lowercase())
        .await?
        .ok_or_else(not_ours)?;
    let cert = old
        .cert
        .as_ref()
        .and_then(|c| Certificate::from_der(&c.cert_der).ok())
        .ok_or_else(not_ours)?;
    if !core.issued_by_this_ca(&cert) {
        return Err(not_ours());
    }
    if inbound.signer_cert.as_ref().is_some_and(|s| s != &cert) {
        return Err(refused(
            "the request is signed with another certificate than the TLS client certificate",
        ));
    }
    let serial = to_hex(cert.tbs_certificate().serial_number().as_bytes());
    still_renewable(&old, &serial)?;
    let same_key = cert.tbs_certificate().subject_public_key_info()
        == &inbound.pkcs10.cert_req.info.public_key;
    Ok(Renewal {
        old,
        cert,
        same_key,
    })
}

/// The old certificate's row still allows a renewal: issued here (not
/// imported), issued (not revoked or on hold), unexpired, not renewed already. Checked at submission and
/// again when an officer issues a pending renewal.
fn still_renewable(old: &RequestRecord, serial: &str) -> EngineResult<()> {
    if old.request_kind == "import" {
        return Err(EngineError::denied(
            codes::E_INVALID_STATE,
            format!("certificate {serial} was imported, not issued here: enroll anew"),
        ));
    }
    match old.disposition {
        Disposition::Issued => {}
        Disposition::Revoked => {
            return Err(EngineError::denied(
                codes::CRYPT_E_REVOKED,
                format!("certificate {serial} is revoked: it cannot be renewed"),
            ))
        }
        other => {
            return Err(EngineError::denied(
                codes::E_INVALID_STATE,
                format!(
                    "request {} is {}: nothing to renew",
                    old.request_id,
                    other.as_str()
                ),
            ))
        }
    }
    if old.cert.as_ref().is_some_and(|c| c.not_after <= now()) {
        return Err(EngineError::denied(
            codes::CERT_E_EXPIRED,
            format!("certificate {serial} has expired: enroll anew instead of renewing"),
        ));
    }
    if let Some(next) = old.superseded_by {
        return Err(EngineError::denied(
            codes::E_INVALID_STATE,
            format!("certificate {serial} was already renewed (request {next})"),
        ));
    }
    Ok(())
}

/// A template that keeps one valid certificate per requester
/// (`do_not_reenroll_if_duplicate`) renews only within its renewal window.
pub(crate) fn check_renewal_window(t: &crate::template::Template, r: &Renewal) -> EngineResult<()> {
    let Some(c) = &r.old.cert else {
        return Ok(());
    };
    let opens = c.not_after - t.renewal_overlap.approx_seconds();
    if t.do_not_reenroll_if_duplicate && now() < opens {
        return Err(EngineError::denied(
            codes::CERTSRV_E_TEMPLATE_DENIED,
            format!(
                "Template '{}' renews a certificate only in the {} before it expires (certificate {} until {}).",
                t.name,
                t.renewal_overlap,
                c.serial,
                crate::period::rfc3339(c.not_after)
            ),
        ));
    }
    Ok(())
}

/// For a pending renewal being issued: the old certificate must still be
/// renewable (not revoked, expired or renewed meanwhile), and the names are
/// those recorded at submission: the requester's record names when those
/// were used, else the renewed certificate's.
pub(crate) async fn pending_renewal_names(
    core: &Core,
    rec: &RequestRecord,
    old_id: i64,
) -> EngineResult<LeafNames> {
    let old = core.request(old_id).await?;
    let serial = old
        .cert
        .as_ref()
        .map(|c| c.serial.clone())
        .unwrap_or_default();
    still_renewable(&old, &serial)?;
    let cert = old
        .cert
        .as_ref()
        .and_then(|c| Certificate::from_der(&c.cert_der).ok())
        .ok_or_else(|| EngineError::Conflict(format!("request {old_id} has no certificate")))?;
    let record = core
        .directory
        .principal(&rec.requester)
        .await?
        .filter(|p| p.kind != "group");
    if let Some(p) = record {
        let from_record = LeafNames::from_record(&p.name, p.upn.as_deref(), p.email.as_deref())?;
        if lockbox_codec::names::dn_string(&from_record.subject) == rec.request_subject {
            return Ok(from_record);
        }
    }
    names_of(&cert)
}

/// The renewal's template: the old certificate's, which must still be one
/// this CA issues; a request naming another template is refused.
pub(crate) async fn renewal_template(
    core: &Core,
    inbound: &Inbound,
    opts: &crate::SubmitOptions,
    r: &Renewal,
) -> EngineResult<crate::template::Template> {
    let old = r.old.template.clone().unwrap_or_default();
    let named = opts
        .template
        .clone()
        .filter(|t| !t.is_empty())
        .or_else(|| {
            opts.attributes
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("CertificateTemplate"))
                .map(|(_, v)| v.clone())
        })
        .or_else(|| inbound.pkcs10.template_name.clone())
        .or_else(|| {
            inbound.cmc.as_ref().and_then(|c| {
                c.reg_info
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("CertificateTemplate"))
                    .map(|(_, v)| v.clone())
            })
        });
    let set = crate::templates::template_set(core).await?;
    let old_template = crate::templates::find_template(&set.all, &old);
    if let (Some(ext), Some(t)) = (&inbound.pkcs10.template_ext, old_template) {
        if ext.template_id.to_string() != t.oid {
            return Err(EngineError::denied(
                codes::CERTSRV_E_UNSUPPORTED_CERT_TYPE,
                format!("a renewal keeps the template of the certificate it renews ('{old}')"),
            ));
        }
    }
    if let Some(n) = named {
        if !n.eq_ignore_ascii_case(&old) {
            return Err(EngineError::denied(
                codes::CERTSRV_E_UNSUPPORTED_CERT_TYPE,
                format!("a renewal keeps the template of the certificate it renews ('{old}'), not '{n}'"),
            ));
        }
    }
    let enabled = set.enabled.iter().any(|e| e.eq_ignore_ascii_case(&old));
    match old_template {
        Some(t) if enabled && !t.internal => Ok(t.clone()),
        _ => Err(EngineError::denied(
            codes::CERTSRV_E_UNSUPPORTED_CERT_TYPE,
            format!("template '{old}' of the renewed certificate is no longer issued by this CA"),
        )),
    }
}

/// A renewal is made for the requester of the certificate it renews, never
/// on behalf of someone else.
pub(crate) fn check_requester(r: &Renewal, requester: &str, agent: bool) -> EngineResult<()> {
    if agent || !requester.eq_ignore_ascii_case(&r.old.requester) {
        return Err(EngineError::denied(
            codes::E_ACCESSDENIED,
            format!(
                "certificate {} belongs to another requester: only they may renew it",
                r.old
                    .cert
                    .as_ref()
                    .map(|c| c.serial.as_str())
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

/// For a same-key renewal of a template that archives keys, with no key in
/// the request: the old row's envelope and agents (the same key, already
/// escrowed). None when the request archives a key itself, or when nothing
/// is to be kept (the normal archival rules then apply).
pub(crate) async fn kept_archive(
    core: &Core,
    inbound: &Inbound,
    t: &crate::template::Template,
    r: &Renewal,
) -> EngineResult<Option<(Vec<u8>, String)>> {
    let carries_key = inbound
        .cmc
        .as_ref()
        .is_some_and(|c| c.archived_key.is_some());
    if !t.archive_private_key || !r.same_key || carries_key || !r.old.has_archived_key {
        return Ok(None);
    }
    let envelope = core.store.archived_key(r.old.request_id).await?;
    let agents = core.store.kra_hashes(r.old.request_id).await?;
    Ok(envelope.zip(agents))
}
