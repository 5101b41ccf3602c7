//! Key-history export between servers (the KMS "Export Users" operation).
//!
//! File format (documented in `docs/key-history-export.md`): a CMS SignedData
//! signed by the source CA, whose content (id-data) is a CMS EnvelopedData to
//! the destination's export certificate (the "lock box"), whose plaintext is a
//! JSON document `lockbox-key-history/1` listing users and their key histories.

use std::collections::BTreeMap;

use lockbox_codec::oids;
use lockbox_codec::pem::encode_pem;
use lockbox_crypto::cms::{
    decode_envelope, envelope, open_envelope, sign_data, verify_signed_data, OpeningKey, Recipient,
};
use lockbox_crypto::keytransport::KeyTransport;
use lockbox_crypto::symmetric::ContentCipher;
use lockbox_crypto::PrivateKey;
use lockbox_store::{CertFields, Change, Principal};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::category::{AuditAction, AuditCategory};
use crate::certbuild::decode_certificate;
use crate::core::Core;
use crate::import::{ImportItem, ImportOptions};
use crate::recovery::recover_from_blob;
use crate::{codes, Actor, EngineError, EngineResult, Op};

/// Format identifier of the JSON payload.
pub const FORMAT: &str = "lockbox-key-history/1";

/// One key (certificate + PKCS#8) of a user's history.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportedKey {
    /// Certificate, base64 DER.
    pub certificate: String,
    /// PKCS#8 private key, base64 DER.
    pub pkcs8: String,
    /// Serial (hex).
    pub serial: String,
    /// Template.
    pub template: Option<String>,
}

/// Who a user's keys belong to on the source: the principal and the names
/// it is known by. The destination makes each of them a recovery search key.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KeyOwner {
    /// Principal name on the source.
    pub principal: Option<String>,
    /// User principal name.
    pub upn: Option<String>,
    /// Down-level logon name (`DOMAIN\user`).
    pub downlevel: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
}

/// One user and the keys exported for them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportedUser {
    /// Subject DN.
    pub subject: String,
    /// Mailbox / requester name on the source.
    pub mailbox: String,
    /// UPN (from the certificate).
    pub upn: Option<String>,
    /// E-mail (from the certificate).
    pub email: Option<String>,
    /// The owner's identity on the source (absent in files of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<KeyOwner>,
    /// Key history.
    pub keys: Vec<ExportedKey>,
    /// Signature certificates (never with keys), base64 DER.
    #[serde(default)]
    pub signature_certificates: Vec<String>,
}

/// The payload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyHistory {
    /// [`FORMAT`].
    pub format: String,
    /// Source CA DN.
    pub source_ca: String,
    /// Export time, unix seconds.
    pub exported_at: i64,
    /// Users.
    pub users: Vec<ExportedUser>,
}

fn b64(der: &[u8]) -> String {
    encode_pem("X", der)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

fn unb64(s: &str) -> EngineResult<Vec<u8>> {
    lockbox_codec::pem::decode_base64_text(s)
        .map_err(|e| EngineError::bad_input(codes::CRYPT_E_ASN1_BADTAG, e.to_string()))
}

/// Which archived keys to export.
#[derive(Clone, Debug)]
pub enum Selection {
    /// Candidates of a getkey token.
    User(String),
    /// Every member of a group.
    Group(String),
    /// Everything archived.
    All,
}

/// The export file and the rows it covers.
pub struct Export {
    /// The file (DER SignedData).
    pub file: Vec<u8>,
    /// Request IDs exported.
    pub request_ids: Vec<i64>,
    /// Users exported.
    pub users: usize,
}

/// Verifies and opens an export file (no database involved).
pub fn open_key_history(
    file: &[u8],
    trusted_source: &[u8],
    dest_key: &dyn PrivateKey,
    dest_cert: &[u8],
) -> EngineResult<KeyHistory> {
    let der = lockbox_codec::pem::decode_input(file)?.der;
    let sd = verify_signed_data(&der).map_err(|e| {
        EngineError::bad_input(
            codes::NTE_BAD_SIGNATURE,
            format!("the export file's signature does not verify: {e}"),
        )
    })?;
    crate::trust::check_ca_signer_in(
        "the export file",
        &sd.signer_certificate,
        &lockbox_codec::pem::decode_input(trusted_source)?.der,
        &sd.certificates,
    )
    .map_err(|e| {
        EngineError::bad_input(
            codes::NTE_BAD_SIGNATURE,
            format!("the export file is not signed by the trusted source CA: {e}"),
        )
    })?;
    decode_envelope(&sd.econtent).map_err(|e| {
        EngineError::bad_input(codes::CRYPT_E_ASN1_BADTAG, format!("lock box: {e}"))
    })?;
    let dest = decode_certificate(&lockbox_codec::pem::decode_input(dest_cert)?.der)?;
    let plain = open_envelope(
        &sd.econtent,
        &[OpeningKey {
            issuer: dest.tbs_certificate().issuer(),
            serial: dest.tbs_certificate().serial_number(),
            key: dest_key,
        }],
    )
    .map_err(|e| {
        EngineError::bad_input(
            crate::error::codes::CRYPT_E_NOT_FOUND,
            format!("the lock box does not open with this destination key: {e}"),
        )
    })?;
    // The certificates travel inside the signed payload: the source CA's
    // signature vouches for them (including foreign certificates the source
    // imported); the destination's foreign-certificate rules still apply.
    parse_key_history(&plain)
}

/// Parses the decrypted payload of an export file (the key-history document).
pub fn parse_key_history(plain: &[u8]) -> EngineResult<KeyHistory> {
    let doc: KeyHistory = serde_json::from_slice(plain).map_err(|e| {
        EngineError::bad_input(codes::CRYPT_E_ASN1_BADTAG, format!("export payload: {e}"))
    })?;
    if doc.format != FORMAT {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            format!("unknown export format '{}'", doc.format),
        ));
    }
    Ok(doc)
}

/// Builds a key-history export: retrieves each selected blob (audited, as a
/// certificate manager), opens it with the agent's key, groups keys per
/// user, locks the document to `dest_cert` and signs it with this CA.
pub(crate) async fn export_keys(
    core: &Core,
    actor: &Actor,
    selection: &Selection,
    dest_cert: &[u8],
    kra_key: &dyn PrivateKey,
    kra_cert: &[u8],
) -> EngineResult<Export> {
    let ids = selected_requests(core, actor, selection).await?;
    let ca_der = core.ca_certificate_der()?;
    let principals = core.directory.principals().await?;
    let mut users: BTreeMap<String, ExportedUser> = BTreeMap::new();
    for id in &ids {
        let blob = crate::recovery::blob::get_key_by_request(core, actor, *id).await?;
        let rec = recover_from_blob(&blob.blob, &ca_der, kra_key, kra_cert)?;
        let row = core.request(*id).await?;
        let f = row
            .cert
            .clone()
            .ok_or_else(|| EngineError::NotFound(format!("request {id} has no certificate")))?;
        let owner = key_owner(&principals, row.requester.as_str(), &f);
        let u = users
            .entry(f.subject.clone())
            .or_insert_with(|| ExportedUser {
                subject: f.subject.clone(),
                mailbox: row.requester.clone(),
                upn: f.upn.clone(),
                email: f.email.clone(),
                owner: Some(owner),
                keys: vec![],
                signature_certificates: vec![],
            });
        u.keys.push(ExportedKey {
            certificate: b64(&rec.certificate),
            pkcs8: b64(&rec.pkcs8),
            serial: f.serial.clone(),
            template: row.template.clone(),
        });
    }
    let doc = KeyHistory {
        format: FORMAT.into(),
        source_ca: decode_certificate(&ca_der)?
            .tbs_certificate()
            .subject()
            .to_string(),
        exported_at: crate::period::now(),
        users: users.into_values().collect(),
    };
    let json =
        Zeroizing::new(serde_json::to_vec(&doc).map_err(|e| EngineError::Config(e.to_string()))?);
    let dest = decode_certificate(&lockbox_codec::pem::decode_input(dest_cert)?.der)?;
    let locked = envelope(
        &json,
        &[Recipient::from_certificate(&dest)],
        ContentCipher::Aes256Cbc,
        KeyTransport::RsaOaepSha256,
    )?;
    let (_, ca_cert) = core.ca_cert()?;
    let file = sign_data(
        core.signing_key()?.as_ref(),
        ca_cert,
        oids::ID_DATA,
        &locked,
        &core.chain_and_cross()?,
    )?;
    let audit = crate::audit::chain::success(core, actor, AuditCategory::Keys, AuditAction::KeyHistoryExported, &format!("{} keys", ids.len()), &serde_json::json!({ "request_ids": ids, "destination": dest.tbs_certificate().subject().to_string() }).to_string())
        .await;
    core.store.append_audit(&audit).await?;
    Ok(Export {
        file,
        request_ids: ids,
        users: doc.users.len(),
    })
}

/// The request IDs of the archived keys a selection names (every archived key
/// the actor may see, or the candidates of a user or of a group's members).
async fn selected_requests(
    core: &Core,
    actor: &Actor,
    selection: &Selection,
) -> EngineResult<Vec<i64>> {
    let tokens: Vec<String> = match selection {
        Selection::User(t) => vec![t.clone()],
        Selection::Group(g) => core.store.members(g).await?,
        Selection::All => vec![],
    };
    let mut ids: Vec<i64> = Vec::new();
    if matches!(selection, Selection::All) {
        ids = crate::officer::view(core, actor, "ArchivedKey=true", 1_000_000)
            .await?
            .into_iter()
            .filter(|r| r.cert.is_some())
            .map(|r| r.request_id)
            .collect();
    } else {
        for t in &tokens {
            for c in crate::recovery::search::find_candidates(core, actor, t).await? {
                if !ids.contains(&c.request_id) {
                    ids.push(c.request_id);
                }
            }
        }
    }
    if ids.is_empty() {
        return Err(EngineError::NotFound(
            "no archived keys match the selection".into(),
        ));
    }
    Ok(ids)
}

/// The owner of an exported key: the requester as a principal (by name,
/// down-level name or UPN), else what the certificate says.
fn key_owner(principals: &[Principal], req: &str, f: &CertFields) -> KeyOwner {
    principals
        .iter()
        .find(|p| {
            p.kind == "user"
                && (p.name.eq_ignore_ascii_case(req)
                    || p.downlevel
                        .as_deref()
                        .is_some_and(|d| d.eq_ignore_ascii_case(req))
                    || p.upn
                        .as_deref()
                        .is_some_and(|u| u.eq_ignore_ascii_case(req)))
        })
        .map(|p| KeyOwner {
            principal: Some(p.name.clone()),
            upn: p.upn.clone(),
            downlevel: p.downlevel.clone(),
            email: p.email.clone(),
        })
        .unwrap_or_else(|| KeyOwner {
            principal: None,
            upn: f.upn.clone(),
            downlevel: req.contains('\\').then(|| req.to_string()),
            email: f.email.clone(),
        })
}

/// Deletes exported archived keys from this CA (after the export file was written and verified).
pub(crate) async fn remove_exported_keys(
    core: &Core,
    actor: &Actor,
    request_ids: &[i64],
) -> EngineResult<()> {
    crate::authz::authorize(core, actor, crate::actor::Op::Configure).await?;
    let changes: Vec<Change> = request_ids
        .iter()
        .map(|id| Change::ClearArchivedKey { request_id: *id })
        .collect();
    let audit = crate::audit::chain::success(
        core,
        actor,
        AuditCategory::Keys,
        AuditAction::ExportedKeysRemoved,
        &format!("{} keys", request_ids.len()),
        &serde_json::json!({ "request_ids": request_ids }).to_string(),
    )
    .await;
    core.store.apply(&changes, &audit).await?;
    Ok(())
}

/// Imports a key-history export: the signature must verify against
/// `trusted_source`, the lock box must open with `dest_key`/`dest_cert`;
/// nothing is written otherwise. Returns (source CA, users, items).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn import_key_history(
    core: &Core,
    actor: &Actor,
    file: &[u8],
    trusted_source: &[u8],
    dest_key: &dyn PrivateKey,
    dest_cert: &[u8],
    source: &str,
    opts: &ImportOptions,
) -> EngineResult<(String, usize, Vec<ImportItem>)> {
    // the same right as a PKCS#12 import, checked before the file is read
    crate::authz::authorize(core, actor, Op::Configure).await?;
    let doc = open_key_history(file, trusted_source, dest_key, dest_cert)?;
    let mut items = Vec::new();
    for u in &doc.users {
        let record = serde_json::json!({ "subject": u.subject, "mailbox": u.mailbox, "upn": u.upn, "email": u.email, "owner": u.owner });
        for k in &u.keys {
            let der = unb64(&k.certificate)?;
            let pkcs8 = Zeroizing::new(unb64(&k.pkcs8)?);
            let cert = decode_certificate(&der)?;
            items.push(
                crate::import::one::import_one(
                    core,
                    actor,
                    &der,
                    &cert,
                    Some(&pkcs8),
                    source,
                    opts,
                    Some(record.clone()),
                )
                .await?,
            );
        }
        for s in &u.signature_certificates {
            let der = unb64(s)?;
            let f = crate::certs::cert_fields(&der)?;
            items.push(ImportItem {
                owner: u.subject.clone(),
                email: u.email.clone(),
                upn: u.upn.clone(),
                key_id: f.key_id,
                serial: Some(f.serial),
                issuer: None,
                template: None,
                source: source.into(),
                outcome: "ignored signature".into(),
                error: None,
                foreign: false,
            });
        }
    }
    Ok((doc.source_ca, doc.users.len(), items))
}
