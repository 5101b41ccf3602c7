//! Manual key archival and migration (`importkms`, `importcert`): keys and
//! certificates that were not enrolled through this CA, with their owners.

use lockbox_codec::hexfmt::to_hex;
use lockbox_crypto::cms::{envelope, Recipient};
use lockbox_crypto::digest::sha1;
use lockbox_crypto::keyinfo::key_identifier;
use lockbox_crypto::pkcs12::read_pfx;
use lockbox_crypto::{KeyHandle, SoftwareKey};
use lockbox_store::{Change, Disposition, NewRequest};
use serde::{Deserialize, Serialize};
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
use zeroize::Zeroizing;

use crate::authz::{Actor, Op};
use crate::ca::{cert_fields, verify_issued_by, Ca};
use crate::certbuild::decode_certificate;
use crate::error::{codes, EngineError, EngineResult};
use crate::period::now;

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
    let exts = cert
        .tbs_certificate()
        .extensions()
        .map(|e| e.as_slice())
        .unwrap_or(&[]);
    match exts
        .iter()
        .find(|e| e.extn_id == lockbox_codec::oids::CE_KEY_USAGE)
        .and_then(|e| der::Decode::from_der(e.extn_value.as_bytes()).ok())
    {
        Some(KeyUsage(ku)) => {
            !(ku.contains(KeyUsages::KeyEncipherment)
                || ku.contains(KeyUsages::KeyAgreement)
                || ku.contains(KeyUsages::DataEncipherment))
        }
        None => false,
    }
}

impl Ca {
    /// Whether the CA accepts foreign certificates.
    pub async fn foreign_enabled(&self) -> EngineResult<bool> {
        Ok(self
            .store
            .setting(ENABLE_FOREIGN)
            .await?
            .is_some_and(|v| v == "true"))
    }

    /// KRAF_ENABLEFOREIGN as read once per batch import (or now, outside one).
    async fn foreign_allowed(&self) -> EngineResult<bool> {
        let cached = self
            .import_batch
            .lock()
            .map_err(|_| EngineError::Config("import batch lock".into()))?
            .as_ref()
            .and_then(|b| b.foreign);
        match cached {
            Some(v) => Ok(v),
            None => self.foreign_enabled().await,
        }
    }

    /// Turns KRAF_ENABLEFOREIGN on or off.
    pub async fn set_foreign_enabled(&self, actor: &Actor, on: bool) -> EngineResult<()> {
        self.authorize(actor, Op::Configure).await?;
        let audit = self
            .audited(self.audit_entry(
                actor,
                "config",
                "set kra.enable_foreign",
                &on.to_string(),
                "{}",
            ))
            .await;
        self.store
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

    /// Imports one PKCS#12 file (its key and certificates).
    pub async fn import_pkcs12(
        &self,
        actor: &Actor,
        data: &[u8],
        password: &str,
        source: &str,
        opts: &ImportOptions,
    ) -> EngineResult<Vec<ImportItem>> {
        self.authorize(actor, Op::Configure).await?;
        let parsed = parse_pfx(data, password)?;
        self.import_parsed(actor, parsed, source, opts).await
    }

    /// Imports a PKCS#12 file already opened by [`parse_pfx`].
    async fn import_parsed(
        &self,
        actor: &Actor,
        parsed: ParsedPfx,
        source: &str,
        opts: &ImportOptions,
    ) -> EngineResult<Vec<ImportItem>> {
        let ParsedPfx { pkcs8, certs, key } = parsed;
        let mut items = Vec::new();
        let mut matched = false;
        for der in &certs {
            let cert = decode_certificate(der)?;
            if cert.tbs_certificate().subject_public_key_info() == key.public_key_info() {
                matched = true;
                items.push(
                    self.import_one(
                        actor,
                        der,
                        &cert,
                        opts.keys.then_some(&pkcs8[..]),
                        source,
                        opts,
                        None,
                    )
                    .await?,
                );
            }
        }
        if !matched && opts.keys {
            items.push(
                self.import_unmatched(actor, &key, &pkcs8, source, None)
                    .await?,
            );
        }
        Ok(items)
    }

    /// Imports one certificate without a key (`importcert`).
    pub async fn import_certificate(
        &self,
        actor: &Actor,
        der: &[u8],
        source: &str,
        opts: &ImportOptions,
    ) -> EngineResult<ImportItem> {
        self.authorize(actor, Op::Configure).await?;
        let cert = decode_certificate(der)?;
        self.import_one(actor, der, &cert, None, source, opts, None)
            .await
    }

    /// One certificate, with its key when given.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn import_one(
        &self,
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
        let mut item = ImportItem {
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
        };
        if pkcs8.is_some() && is_signature_only(cert) {
            item.outcome = "ignored signature".into();
            return Ok(item);
        }
        let ours = self
            .ca_cert()
            .map(|(_, ca)| verify_issued_by(cert, ca).is_ok())
            .unwrap_or(false);
        item.foreign = !ours;
        let owner = serde_json::json!({
            "subject": f.subject, "email": f.email, "upn": f.upn, "key_id": f.key_id, "source": source, "record": owner_record,
        })
        .to_string();
        let existing = self.store.get_by_thumbprint(&f.thumbprint).await?;
        if let Some(row) = &existing {
            if pkcs8.is_none() || row.has_archived_key {
                item.outcome = if pkcs8.is_some() {
                    "already archived"
                } else {
                    "already imported"
                }
                .into();
                return Ok(item);
            }
        }
        if !ours && existing.is_none() {
            let why = if !opts.foreign {
                Some("foreign certificate: give -f to import it".to_string())
            } else if !self.foreign_allowed().await? {
                Some("foreign certificate: the CA setting kra.enable_foreign is off".to_string())
            } else {
                None
            };
            if let Some(w) = why {
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
            Some(p) => {
                let key = SoftwareKey::from_pkcs8_der(p)
                    .map_err(|e| EngineError::bad_input(codes::E_INVALIDARG, e.to_string()))?;
                if key.public_key_info() != cert.tbs_certificate().subject_public_key_info() {
                    item.outcome = "error".into();
                    item.error = Some("the key does not match the certificate".into());
                    return Ok(item);
                }
                Some(self.seal_for_kras(p).await?)
            }
            None => None,
        };
        let audit_action = if sealed.is_some() {
            "key archived (import)"
        } else {
            "certificate imported"
        };
        let audit = self
            .audited(self.audit_entry(
                actor,
                if sealed.is_some() { "keys" } else { "requests" },
                audit_action,
                &f.serial,
                &serde_json::json!({ "source": source, "foreign": !ours }).to_string(),
            ))
            .await;
        let change = match (&existing, sealed) {
            (Some(row), Some((env, hashes))) => Change::AttachArchivedKey {
                request_id: row.request_id,
                archived_key: env,
                kra_hashes: hashes,
                owner: Some(owner),
                source: Some(source.into()),
            },
            (_, sealed) => Change::InsertImported {
                request: Box::new(NewRequest {
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
                    archived_key: sealed.as_ref().map(|s| s.0.clone()),
                    kra_hashes: sealed.as_ref().map(|s| s.1.clone()),
                    cert: Some(f.clone()),
                }),
                foreign: !ours,
                owner: Some(owner),
                source: Some(source.into()),
            },
        };
        let archived = pkcs8.is_some();
        self.write_or_defer(change, audit).await?;
        let names = owner_names(owner_record.as_ref());
        if !names.is_empty() {
            self.write_or_defer(
                Change::SetOwnerNames {
                    thumbprint: f.thumbprint.clone(),
                    names,
                },
                vec![],
            )
            .await?;
        }
        item.outcome = if archived { "archived" } else { "imported" }.into();
        Ok(item)
    }

    /// A key whose certificate is unknown: archived under its key ID.
    pub(crate) async fn import_unmatched(
        &self,
        actor: &Actor,
        key: &SoftwareKey,
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
        if self.store.unmatched_key_exists(&key_id).await? {
            item.outcome = "already archived".into();
            return Ok(item);
        }
        let (env, hashes) = self.seal_for_kras(pkcs8).await?;
        let audit = self
            .audited(self.audit_entry(
                actor,
                "keys",
                "unmatched key archived (import)",
                &key_id,
                &serde_json::json!({ "source": source }).to_string(),
            ))
            .await;
        self.write_or_defer(
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
    async fn write_or_defer(
        &self,
        change: Change,
        audit: Vec<lockbox_store::AuditEntry>,
    ) -> EngineResult<()> {
        {
            let mut guard = self
                .import_batch
                .lock()
                .map_err(|_| EngineError::Config("import batch lock".into()))?;
            if let Some(b) = guard.as_mut() {
                b.changes.push(change);
                b.audit.extend(audit);
                return Ok(());
            }
        }
        self.store.apply(&[change], &audit).await?;
        Ok(())
    }

    /// Imports many PKCS#12 files with one transaction (one durable commit)
    /// per call; if the batch cannot be written as a whole, each file is
    /// imported on its own so one bad file never stops the others.
    pub async fn import_pkcs12_many(
        &self,
        actor: &Actor,
        files: &[(String, Vec<u8>)],
        password: &str,
        opts: &ImportOptions,
    ) -> EngineResult<Vec<(String, EngineResult<Vec<ImportItem>>)>> {
        self.authorize(actor, Op::Configure).await?;
        // The KRA choice is made once per batch (round robin continues across keys).
        let kras = self.valid_kras_for_batch().await?;
        let foreign = self.foreign_enabled().await?;
        {
            let mut guard = self
                .import_batch
                .lock()
                .map_err(|_| EngineError::Config("import batch lock".into()))?;
            *guard = Some(ImportBatch {
                changes: vec![],
                audit: vec![],
                kras: Some(kras),
                foreign: Some(foreign),
            });
        }
        // Opening the files (password derivation, decryption, key checks) is the
        // costly part and needs no store: it runs on all cores first.
        let parsed = parse_many(files, password);
        let mut results = Vec::new();
        for ((source, _), opened) in files.iter().zip(parsed) {
            let outcome = match opened {
                Ok(p) => self.import_parsed(actor, p, source, opts).await,
                Err(e) => Err(e),
            };
            results.push((source.clone(), outcome));
        }
        let batch = self
            .import_batch
            .lock()
            .map_err(|_| EngineError::Config("import batch lock".into()))?
            .take();
        if let Some(b) = batch {
            if let Err(e) = self.store.apply(&b.changes, &b.audit).await {
                tracing::warn!(error = %e, "batch import failed as a whole; importing file by file");
                let mut one_by_one = Vec::new();
                for (source, data) in files {
                    one_by_one.push((
                        source.clone(),
                        self.import_pkcs12(actor, data, password, source, opts)
                            .await,
                    ));
                }
                return Ok(one_by_one);
            }
        }
        Ok(results)
    }

    /// Envelopes a PKCS#8 key to the KRAs (as archival at enrollment does).
    pub(crate) async fn seal_for_kras(&self, pkcs8: &[u8]) -> EngineResult<(Vec<u8>, String)> {
        let cached = self
            .import_batch
            .lock()
            .map_err(|_| EngineError::Config("import batch lock".into()))?
            .as_ref()
            .and_then(|b| b.kras.clone());
        let kras = match cached {
            Some((valid, required)) => self.round_robin(&valid, required),
            None => self.choose_kras().await?,
        };
        let recipients: Vec<Recipient> = kras.iter().map(Recipient::from_certificate).collect();
        let env = envelope(
            pkcs8,
            &recipients,
            self.content_cipher()?,
            self.key_transport()?,
        )?;
        let hashes = kras
            .iter()
            .map(|c| der::Encode::to_der(c).map(|d| to_hex(&sha1(&d))))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Config(e.to_string()))?
            .join(",");
        Ok((env, hashes))
    }
}

/// Changes and audit records queued by a batch import, and the KRAs it uses.
#[derive(Default)]
pub struct ImportBatch {
    changes: Vec<Change>,
    audit: Vec<lockbox_store::AuditEntry>,
    kras: Option<(Vec<Certificate>, usize)>,
    foreign: Option<bool>,
}

/// The template a certificate names (v1 name or v2 OID), if any.
fn cert_template(cert: &Certificate) -> Option<String> {
    let exts = cert
        .tbs_certificate()
        .extensions()
        .map(|e| e.as_slice())
        .unwrap_or(&[]);
    if let Some(e) = exts
        .iter()
        .find(|e| e.extn_id == lockbox_codec::oids::MS_CERT_TYPE_NAME)
    {
        return lockbox_codec::ms::decode_cert_type_name(e.extn_value.as_bytes()).ok();
    }
    exts.iter()
        .find(|e| e.extn_id == lockbox_codec::oids::MS_CERTIFICATE_TEMPLATE)
        .and_then(|e| {
            <lockbox_codec::ms::CertificateTemplateExt as der::Decode>::from_der(
                e.extn_value.as_bytes(),
            )
            .ok()
        })
        .map(|t| t.template_id.to_string())
}

/// A PKCS#12 file once opened: its key (PKCS#8, loaded) and certificates.
pub(crate) struct ParsedPfx {
    pkcs8: Zeroizing<Vec<u8>>,
    certs: Vec<Vec<u8>>,
    key: SoftwareKey,
}

/// Opens a PKCS#12 file and loads its key.
fn parse_pfx(data: &[u8], password: &str) -> EngineResult<ParsedPfx> {
    let (pkcs8, certs) = read_pfx(data, password)
        .map_err(|e| EngineError::bad_input(codes::E_INVALIDARG, e.to_string()))?;
    let key = SoftwareKey::from_pkcs8_der(&pkcs8).map_err(|e| {
        EngineError::bad_input(codes::E_INVALIDARG, format!("the key does not load: {e}"))
    })?;
    Ok(ParsedPfx { pkcs8, certs, key })
}

/// Opens many PKCS#12 files on all available cores, keeping their order.
fn parse_many(files: &[(String, Vec<u8>)], password: &str) -> Vec<EngineResult<ParsedPfx>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    if threads == 1 || files.len() < 2 {
        return files.iter().map(|(_, d)| parse_pfx(d, password)).collect();
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                let h = scope.spawn(move || {
                    part.iter()
                        .map(|(_, d)| parse_pfx(d, password))
                        .collect::<Vec<_>>()
                });
                (part.len(), h)
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(len, h)| {
                // A panicking worker fails its own files, never drops them.
                h.join().unwrap_or_else(|_| {
                    (0..len)
                        .map(|_| Err(EngineError::Config("PKCS#12 reader failed".into())))
                        .collect()
                })
            })
            .collect()
    })
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
