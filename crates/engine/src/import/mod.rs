//! Manual key archival and migration (`importkms`, `importcert`): keys and
//! certificates that were not enrolled through this CA, with their owners.

pub(crate) mod one;
pub(crate) mod pkcs12;

use lockbox_store::Change;
use serde::{Deserialize, Serialize};
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

use lockbox_codec::ms::CertificateTemplateExt;
use lockbox_codec::msext::CertTypeName;

use crate::category::{AuditAction, AuditCategory};
use crate::certs::first_extension;
use crate::core::Core;
use crate::{Actor, EngineError, EngineResult, Op};

/// Setting: accept foreign certificates (AD CS KRAF_ENABLEFOREIGN).
pub const ENABLE_FOREIGN: &str = "kra.enable_foreign";

/// The outcome of one key or certificate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImportItem {
    /// Owner (subject DN, else the export record's user).
    pub owner: String,
    /// E-mail of the owner, when known.
    pub email: Option<String>,
    /// UPN of the owner, when known.
    pub upn: Option<String>,
    /// Key ID (SKI of the key).
    pub key_id: String,
    /// Certificate serial (hex), when a certificate exists.
    pub serial: Option<String>,
    /// Certificate issuer DN.
    pub issuer: Option<String>,
    /// Template, when the certificate names one.
    pub template: Option<String>,
    /// Source file.
    pub source: String,
    /// `archived`, `already archived`, `unmatched`, `ignored signature`, `refused foreign`, `imported`, `error`.
    pub outcome: String,
    /// Why, for refusals and errors.
    pub error: Option<String>,
    /// Foreign certificate (not issued by this CA).
    pub foreign: bool,
}

/// Options of an import run.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// `-f`: the operator asks to import foreign certificates.
    pub foreign: bool,
    /// Import keys (`importkms`) or certificates only (`importcert`).
    pub keys: bool,
}

fn is_signature_only(cert: &Certificate) -> bool {
    match crate::certs::first_extension::<KeyUsage>(cert) {
        Some(KeyUsage(ku)) => {
            !(ku.contains(KeyUsages::KeyEncipherment)
                || ku.contains(KeyUsages::KeyAgreement)
                || ku.contains(KeyUsages::DataEncipherment))
        }
        None => false,
    }
}

/// The template a certificate names (v1 name or v2 OID), if any.
fn cert_template(cert: &Certificate) -> Option<String> {
    let tbs = cert.tbs_certificate();
    if let Some(found) = tbs.filter_extensions::<CertTypeName>().next() {
        return found.ok().map(|(_, name)| name.0);
    }
    first_extension::<CertificateTemplateExt>(cert).map(|t| t.template_id.to_string())
}

/// The names an imported key's owner is known by, from a key-history user
/// record: the owner's principal name, UPN, down-level name and e-mail, and
/// the source's mailbox, UPN and e-mail (distinct, case-insensitively).
fn owner_names(record: Option<&serde_json::Value>) -> Vec<String> {
    let Some(r) = record else {
        return vec![];
    };
    let mut out: Vec<String> = Vec::new();
    let owner = r.get("owner");
    let fields = ["principal", "upn", "downlevel", "email"]
        .iter()
        .filter_map(|k| owner.and_then(|o| o.get(*k)))
        .chain(["mailbox", "upn", "email"].iter().filter_map(|k| r.get(*k)));
    for v in fields {
        if let Some(n) = v.as_str().map(str::trim).filter(|n| !n.is_empty()) {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(n)) {
                out.push(n.to_string());
            }
        }
    }
    out
}

/// Whether the CA accepts foreign certificates.
pub(crate) async fn foreign_enabled(core: &Core) -> EngineResult<bool> {
    Ok(core
        .store
        .setting(ENABLE_FOREIGN)
        .await?
        .is_some_and(|v| v == "true"))
}

/// KRAF_ENABLEFOREIGN as read once per batch import (or now, outside one).
pub(crate) async fn foreign_allowed(core: &Core) -> EngineResult<bool> {
    let cached = core
        .import_batch
        .lock()
        .map_err(|_| EngineError::Config("import batch lock".into()))?
        .as_ref()
        .and_then(|b| b.foreign);
    match cached {
        Some(v) => Ok(v),
        None => foreign_enabled(core).await,
    }
}

/// Turns KRAF_ENABLEFOREIGN on or off.
pub(crate) async fn set_foreign_enabled(core: &Core, actor: &Actor, on: bool) -> EngineResult<()> {
    crate::authz::authorize(core, actor, Op::Configure).await?;
    let audit = crate::audit::chain::success(
        core,
        actor,
        AuditCategory::Config,
        AuditAction::SetEnableForeign,
        &on.to_string(),
        "{}",
    )
    .await;
    core.store
        .apply(
            &[Change::SetSetting {
                name: ENABLE_FOREIGN.into(),
                value: on.to_string(),
            }],
            &audit,
        )
        .await?;
    Ok(())
}
