//! Enrollment checks: template choice, duplicate enrollment, key policy.

use lockbox_crypto::keyinfo::{public_key_facts, KeyKind};
use lockbox_store::Disposition;

use crate::core::Core;
use crate::inbound::Inbound;
use crate::period::now;
use crate::template::Template;
use crate::templates::find_template;
use crate::{codes, EngineError, EngineResult, SubmitOptions};

pub(crate) async fn resolve_template(
    core: &Core,
    inbound: &Inbound,
    opts: &SubmitOptions,
) -> EngineResult<Template> {
    let from_attrs = opts
        .attributes
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("CertificateTemplate"))
        .map(|(_, v)| v.clone());
    let from_cmc = inbound.cmc.as_ref().and_then(|c| {
        c.reg_info
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("CertificateTemplate"))
            .map(|(_, v)| v.clone())
    });
    let name = opts
        .template
        .clone()
        .filter(|t| !t.is_empty())
        .or(from_attrs)
        .or_else(|| inbound.pkcs10.template_name.clone())
        .or(from_cmc);
    let set = crate::templates::template_set(core).await?;
    let enabled = &set.enabled;
    let template = match (&name, &inbound.pkcs10.template_ext) {
        (Some(n), _) => find_template(&set.all, n).cloned(),
        (None, Some(ext)) => set
            .all
            .iter()
            .find(|t| t.oid == ext.template_id.to_string())
            .cloned(),
        (None, None) => {
            return Err(EngineError::denied(
                codes::CERTSRV_E_NO_CERT_TYPE,
                "The request contains no certificate template information.",
            ))
        }
    };
    let label = name.clone().unwrap_or_else(|| {
        inbound
            .pkcs10
            .template_ext
            .as_ref()
            .map(|e| e.template_id.to_string())
            .unwrap_or_default()
    });
    match template {
        Some(t) if !t.internal && enabled.iter().any(|e| e.eq_ignore_ascii_case(&t.name)) => {
            Ok(t)
        }
        _ => Err(EngineError::denied(
            codes::CERTSRV_E_UNSUPPORTED_CERT_TYPE,
            format!(
                "The request names a certificate template that is not supported by this CA: '{label}'."
            ),
        )),
    }
}

/// `do_not_reenroll_if_duplicate`: a requester holding a valid certificate
/// of the template (issued, not revoked, not expired) may not enroll again
/// until that certificate is within the template's `renewal_overlap` of
/// its expiry.
pub(crate) async fn check_duplicate_enrollment(
    core: &Core,
    t: &Template,
    requester: &str,
) -> EngineResult<()> {
    if !t.do_not_reenroll_if_duplicate {
        return Ok(());
    }
    let renew_from = now() + t.renewal_overlap.approx_seconds();
    use lockbox_store::{Column, Op as Cmp, Restriction, Value};
    let term = |column, op, value| Restriction { column, op, value };
    let held = core
        .store
        .query(
            &[
                term(Column::Requester, Cmp::Eq, Value::Text(requester.into())),
                term(Column::Template, Cmp::Eq, Value::Text(t.name.clone())),
                term(
                    Column::Disposition,
                    Cmp::Eq,
                    Value::Text(Disposition::Issued.as_str().into()),
                ),
                term(Column::NotAfter, Cmp::Gt, Value::Int(renew_from)),
            ],
            1000,
        )
        .await?
        .into_iter()
        .filter(|r| r.disposition == Disposition::Issued && r.revoked_at.is_none())
        .find_map(|r| r.cert);
    match held {
        Some(c) => Err(EngineError::denied(
            codes::E_ALREADY_EXISTS,
            format!(
                "Template '{}' does not re-enroll a requester that already holds a valid certificate of it (serial {}, valid until {}); renewal opens {} before expiry.",
                t.name,
                c.serial,
                crate::period::rfc3339(c.not_after),
                t.renewal_overlap
            ),
        )),
        None => Ok(()),
    }
}

pub(crate) fn check_key_policy(_core: &Core, inbound: &Inbound, t: &Template) -> EngineResult<()> {
    let facts = public_key_facts(&inbound.pkcs10.cert_req.info.public_key).map_err(|e| {
        EngineError::denied(
            codes::NTE_BAD_ALGID,
            format!("The request's public key is not usable: {e}"),
        )
    })?;
    let alg = facts.algorithm_name();
    if !t.key_algorithms.iter().any(|a| a == &alg) {
        return Err(EngineError::denied(
            codes::NTE_BAD_ALGID,
            format!(
                "Key algorithm '{alg}' is not allowed by template '{}' (allowed: {}).",
                t.name,
                t.key_algorithms.join(", ")
            ),
        ));
    }
    if facts.kind == KeyKind::Rsa && facts.bits < t.min_key_size {
        return Err(EngineError::denied(
            codes::CERTSRV_E_KEY_LENGTH,
            format!(
                "The public key does not meet the minimum size required by template '{}': {} bits, at least {} required.",
                t.name, facts.bits, t.min_key_size
            ),
        ));
    }
    Ok(())
}
