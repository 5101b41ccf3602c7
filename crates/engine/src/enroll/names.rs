//! The names a leaf certificate gets: from the request, the principal record or a pending record.

use std::str::FromStr;

use der::{Decode, Encode};
use lockbox_codec::names::{dn_string, email, parse_alt_names, AltNames};
use lockbox_codec::oids;
use lockbox_store::RequestRecord;
use x509_cert::name::Name;

use crate::core::Core;
use crate::inbound::Inbound;
use crate::template::Template;
use crate::{codes, Actor, EngineError, EngineResult, Op, SubmitOptions};

/// The names an issued certificate carries and where they came from.
pub(crate) struct LeafNames {
    /// Subject DN.
    pub(crate) subject: Name,
    /// subjectAltName extension, if any.
    pub(crate) san: Option<x509_cert::ext::Extension>,
    /// Where the names come from (for the audit record).
    pub(crate) source: String,
}

/// Upper bound of a common name (RFC 5280 ub-common-name).
pub(crate) const UB_COMMON_NAME: usize = 64;

impl LeafNames {
    /// The request's own names. An empty subject without SAN gets `CN=<requester>`
    /// (Windows leaves it for the CA to fill in); an `emailAddress` in the
    /// subject is also written to the SAN as rfc822Name (RFC 5280 4.2.1.6).
    pub(crate) fn from_request(
        inbound: &Inbound,
        requester: &str,
        source: &str,
    ) -> EngineResult<LeafNames> {
        use x509_cert::ext::pkix::name::GeneralName;
        use x509_cert::ext::pkix::SubjectAltName;
        let info = &inbound.pkcs10.cert_req.info;
        let requested = inbound.pkcs10.extension(&oids::CE_SUBJECT_ALT_NAME);
        let subject = if info.subject.as_ref().is_empty() && requested.is_none() {
            requester_subject(requester).ok_or_else(|| {
                EngineError::denied(
                    codes::CERTSRV_E_BAD_REQUESTSUBJECT,
                    "The request has an empty subject and no subject alternative name, and the requester is anonymous.",
                )
            })?
        } else {
            info.subject.clone()
        };
        let subject_emails = lockbox_codec::names::name_attr(&subject, &oids::PKCS9_EMAIL_ADDRESS);
        let mut san = requested.cloned();
        let listed = match &san {
            Some(e) => parse_alt_names(e.extn_value.as_bytes())?.emails,
            None => vec![],
        };
        let missing: Vec<&String> = subject_emails
            .iter()
            .filter(|m| !listed.iter().any(|l| l.eq_ignore_ascii_case(m)))
            .collect();
        if !missing.is_empty() {
            let mut names = match &san {
                Some(e) => {
                    SubjectAltName::from_der(e.extn_value.as_bytes())
                        .map_err(|e| {
                            EngineError::bad_input(
                                codes::CRYPT_E_ASN1_BADTAG,
                                format!("subjectAltName: {e}"),
                            )
                        })?
                        .0
                }
                None => vec![],
            };
            for m in missing {
                names.push(GeneralName::Rfc822Name(rfc822(m)?));
            }
            san = Some(crate::certbuild::extension(
                oids::CE_SUBJECT_ALT_NAME,
                false,
                &SubjectAltName(names),
            )?);
        }
        if let Some(e) = san.as_mut() {
            e.critical = subject.as_ref().is_empty();
        }
        Ok(LeafNames {
            subject,
            san,
            source: source.into(),
        })
    }

    /// Names built from a principal record: CN from the principal name, e-mail
    /// as SAN rfc822Name, UPN as SAN otherName; nothing from the request.
    pub(crate) fn from_record(
        name: &str,
        upn: Option<&str>,
        mail: Option<&str>,
    ) -> EngineResult<LeafNames> {
        use der::asn1::{Any, Utf8StringRef};
        use x509_cert::attr::AttributeTypeAndValue;
        use x509_cert::ext::pkix::name::{GeneralName, OtherName};
        use x509_cert::ext::pkix::SubjectAltName;
        use x509_cert::name::{RdnSequence, RelativeDistinguishedName};
        let bad = |what: &str| {
            EngineError::denied(
                codes::CERTSRV_E_BAD_REQUESTSUBJECT,
                format!(
                    "The subject cannot be built from the principal record of '{name}': {what}."
                ),
            )
        };
        if name.trim().is_empty() || name.chars().count() > UB_COMMON_NAME {
            return Err(bad("the name is empty or longer than 64 characters"));
        }
        let cn = AttributeTypeAndValue {
            oid: oids::AT_COMMON_NAME,
            value: Any::encode_from(
                &Utf8StringRef::new(name).map_err(|_| bad("the name is not UTF-8"))?,
            )
            .map_err(|_| bad("encoding"))?,
        };
        let rdn = RelativeDistinguishedName::try_from(vec![cn]).map_err(|_| bad("encoding"))?;
        let mut seq = RdnSequence::default();
        seq.push(rdn);
        let subject = Name::from_der(&seq.to_der().map_err(|_| bad("encoding"))?)
            .map_err(|_| bad("encoding"))?;
        let mut alt = Vec::new();
        if let Some(m) = mail.map(str::trim).filter(|m| !m.is_empty()) {
            alt.push(GeneralName::Rfc822Name(rfc822(m)?));
        }
        if let Some(u) = upn.map(str::trim).filter(|u| !u.is_empty()) {
            alt.push(GeneralName::OtherName(OtherName {
                type_id: oids::MS_UPN,
                value: Any::encode_from(
                    &Utf8StringRef::new(u).map_err(|_| bad("the UPN is not UTF-8"))?,
                )
                .map_err(|_| bad("encoding"))?,
            }));
        }
        let san = if alt.is_empty() {
            None
        } else {
            Some(crate::certbuild::extension(
                oids::CE_SUBJECT_ALT_NAME,
                false,
                &SubjectAltName(alt),
            )?)
        };
        Ok(LeafNames {
            subject,
            san,
            source: format!("the principal record of {name}"),
        })
    }

    /// The identities in the SAN.
    pub(crate) fn alt_names(&self) -> EngineResult<AltNames> {
        Ok(match &self.san {
            Some(e) => parse_alt_names(e.extn_value.as_bytes())?,
            None => AltNames::default(),
        })
    }
}

pub(crate) fn rfc822(mail: &str) -> EngineResult<der::asn1::Ia5String> {
    der::asn1::Ia5String::new(mail).map_err(|_| {
        EngineError::denied(
            codes::CERTSRV_E_BAD_REQUESTSUBJECT,
            format!("The e-mail address '{}' is not ASCII.", mail.escape_debug()),
        )
    })
}

/// `CN=<user>` for a requester `DOMAIN\\user` or `user@domain`; None for anonymous callers.
pub(crate) fn requester_subject(requester: &str) -> Option<Name> {
    let name = requester.rsplit('\\').next().unwrap_or(requester);
    let name = name.split('@').next().unwrap_or(name).trim();
    if name.is_empty() || requester == "anonymous" {
        return None;
    }
    Name::from_str(&format!(
        "CN={}",
        name.replace(['\\', ',', '+', '"', '<', '>', ';', '='], "_")
    ))
    .ok()
}

/// Who the request is for and the names its certificate gets (see
/// [`SubmitOptions::on_behalf_of`] and `Template::enrollee_supplies_subject`).
/// Returns the requester, the names and whether an agent submitted it.
pub(crate) async fn enrollee_names(
    core: &Core,
    actor: &Actor,
    inbound: &Inbound,
    template: &Template,
    opts: &SubmitOptions,
) -> EngineResult<(String, LeafNames, bool)> {
    let on_behalf_of = opts
        .on_behalf_of
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(subject) = on_behalf_of {
        let target = crate::core::directory::actor_for(core, subject).await?;
        crate::authz::authorize(
            core,
            actor,
            Op::EnrollOnBehalfOf {
                template,
                subject: &target.name,
            },
        )
        .await?;
        let record = core
            .directory
            .principal(&target.name)
            .await?
            .filter(|p| p.kind != "group")
            .ok_or_else(|| EngineError::NotFound(format!("no principal named '{subject}'")))?;
        if !actor.local_admin {
            // The certificate is the subject's: the template must allow it too.
            crate::authz::authorize(core, &target, Op::Enroll(template)).await?;
        }
        let names = if template.enrollee_supplies_subject {
            LeafNames::from_request(
                inbound,
                &record.name,
                "the request (template: enrollee supplies subject)",
            )?
        } else {
            LeafNames::from_record(&record.name, record.upn.as_deref(), record.email.as_deref())?
        };
        return Ok((record.name, names, true));
    }
    crate::authz::authorize(core, actor, Op::Enroll(template)).await?;
    let names = if actor.local_admin {
        LeafNames::from_request(
            inbound,
            &opts.requester,
            "the request (local administrator as operator)",
        )?
    } else if template.enrollee_supplies_subject {
        LeafNames::from_request(
            inbound,
            &opts.requester,
            "the request (template: enrollee supplies subject)",
        )?
    } else {
        let record = core
            .directory
            .principal(&actor.name)
            .await?
            .filter(|p| p.kind != "group");
        LeafNames::from_record(
            &actor.name,
            record.as_ref().and_then(|p| p.upn.as_deref()),
            record.as_ref().and_then(|p| p.email.as_deref()),
        )?
    };
    Ok((opts.requester.clone(), names, false))
}

/// The names of a pending request's certificate, decided again at issue
/// time: the record-built names when they are what was recorded at
/// submission, else the request's own when those were recorded (the
/// operator's), else the requester's current record.
pub(crate) async fn pending_names(
    core: &Core,
    template: &Template,
    inbound: &Inbound,
    rec: &RequestRecord,
) -> EngineResult<LeafNames> {
    let from_request = || {
        LeafNames::from_request(
            inbound,
            &rec.requester,
            "the request (template: enrollee supplies subject)",
        )
    };
    if template.enrollee_supplies_subject {
        return from_request();
    }
    let recorded = |n: &LeafNames| -> EngineResult<bool> {
        let alt = n.alt_names()?;
        let same = |a: Option<&String>, b: Option<&String>| match (a, b) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            (None, None) => true,
            _ => false,
        };
        Ok(dn_string(&n.subject) == rec.request_subject
            && same(alt.upns.first(), rec.upn.as_ref())
            && same(email(&n.subject, &alt).as_ref(), rec.email.as_ref()))
    };
    let record = core
        .directory
        .principal(&rec.requester)
        .await?
        .filter(|p| p.kind != "group");
    let from_record = record
        .as_ref()
        .map(|p| LeafNames::from_record(&p.name, p.upn.as_deref(), p.email.as_deref()))
        .transpose()?;
    if let Some(n) = from_record.as_ref() {
        if recorded(n)? {
            return from_record.ok_or_else(|| EngineError::Config("unreachable".into()));
        }
    }
    let n = LeafNames::from_request(inbound, &rec.requester, "the request")?;
    if recorded(&n)? {
        return Ok(n);
    }
    from_record.ok_or_else(|| {
        EngineError::Conflict(format!(
            "request {} was made by '{}', who no longer has a principal record: its certificate names cannot be built (deny it)",
            rec.request_id, rec.requester
        ))
    })
}

/// No issued certificate carries the CA's own subject: verifiers that
/// accept a renewed CA certificate by its name (recovery blobs, key-history
/// exports, CMC responses) must never meet an enrollee's certificate
/// under that name.
pub(crate) fn refuse_ca_name(core: &Core, names: &LeafNames) -> EngineResult<()> {
    let Ok((_, ca)) = core.ca_cert() else {
        return Ok(());
    };
    if &names.subject == ca.tbs_certificate().subject() {
        return Err(EngineError::denied(
            codes::CERTSRV_E_BAD_REQUESTSUBJECT,
            "The requested subject is the CA's own name; only the CA's certificates carry it.",
        ));
    }
    Ok(())
}
