//! Key archival: the CA exchange certificate, KRA configuration, opening the
//! client's envelope, checking the key, and re-enveloping it to the KRAs.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::asn1::{Any, ObjectIdentifier};
use der::{Decode, Encode};
use lockbox_codec::hexfmt::{normalize_hex, to_hex};
use lockbox_codec::keyblob::{
    blob_to_pkcs8, is_private_key_blob, parse_private_key_blob, pkcs8_claimed_public_key,
    CALG_RSA_SIGN,
};
use lockbox_codec::oids;
use lockbox_codec::pem::{decode_input, encode_pem};
use lockbox_crypto::cms::{envelope, open_envelope, OpenError, OpeningKey, Recipient};
use lockbox_crypto::digest::{digest_by_oid, sha1};
use lockbox_crypto::keyinfo::public_key_facts;
use lockbox_crypto::keytransport::KeyTransport;
use lockbox_crypto::random::{random_bytes, serial_number};
use lockbox_crypto::symmetric::ContentCipher;
use lockbox_crypto::verify::verify_signature;
use lockbox_crypto::{KeyHandle, KeySpec, SoftwareKey};
use lockbox_store::{Change, Disposition, KraEntry, NewRequest};

use crate::authz::{Actor, Op};
use serde::{Deserialize, Serialize};
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::name::Name;
use zeroize::Zeroizing;

use crate::ca::{cert_fields, key_pem, load_private_key, verify_issued_by, Ca};
use crate::certbuild::{
    aki, decode_certificate, sign_certificate, sign_request, ski, template_extensions, CertSpec,
};
use crate::config::passphrase;
use crate::error::codes::{CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL, CERTSRV_E_NO_VALID_KRA};
use crate::error::{codes, EngineError, EngineResult};
use crate::inbound::Inbound;
use crate::period::{now, unix_of};
use crate::template::{builtins, Template};

/// Setting holding the number of KRAs each key is encrypted to.
pub const KRA_REQUIRED: &str = "kra_required";
/// Setting holding the KRA states the events were last logged for.
const KRA_LOGGED_STATES: &str = "kra_logged_states";

/// Per-process archival state.
pub struct ArchivalState {
    /// Round-robin position among the valid KRAs (random start).
    next_kra: AtomicUsize,
    /// Loaded exchange keys by certificate serial.
    exchange_keys: Mutex<HashMap<String, Arc<SoftwareKey>>>,
    /// Serialises exchange certificate creation.
    creating: tokio::sync::Mutex<()>,
}

impl ArchivalState {
    pub(crate) fn new() -> EngineResult<Self> {
        let r = random_bytes(4)?;
        Ok(ArchivalState {
            next_kra: AtomicUsize::new(u32::from_be_bytes([r[0], r[1], r[2], r[3]]) as usize),
            exchange_keys: Mutex::new(HashMap::new()),
            creating: tokio::sync::Mutex::new(()),
        })
    }
}

/// The status of a configured KRA certificate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KraStatus {
    /// SHA-1 thumbprint.
    pub thumbprint: String,
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial number (hex).
    pub serial: String,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// `valid`, `expired`, `revoked`, `not a KRA certificate`, `untrusted issuer`, `cannot be loaded`.
    pub status: String,
}

/// What archiving produced, to store with the request.
pub struct Archived {
    /// The EnvelopedData (ContentInfo DER) to the KRAs.
    pub envelope: Vec<u8>,
    /// SHA-1 thumbprints of the KRA certificates used (comma separated).
    pub kra_hashes: String,
    /// The encrypted-key hash the client sent (echoed in the CMC response).
    pub client_hash: Vec<u8>,
    /// The request with the archived-key attribute removed.
    pub stripped_request: Vec<u8>,
}

fn archival_error() -> EngineError {
    EngineError::bad_input(
        CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL,
        "The archived private key could not be decrypted or does not belong to the request.",
    )
}

pub(crate) fn has_eku(cert: &Certificate, eku: ObjectIdentifier) -> bool {
    cert.tbs_certificate()
        .extensions()
        .map(|e| e.as_slice())
        .unwrap_or(&[])
        .iter()
        .find(|e| e.extn_id == oids::CE_EXT_KEY_USAGE)
        .and_then(|e| ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|k| k.0.contains(&eku))
}

fn key_usage(cert_exts: &[x509_cert::ext::Extension]) -> Option<KeyUsage> {
    cert_exts
        .iter()
        .find(|e| e.extn_id == oids::CE_KEY_USAGE)
        .and_then(|e| KeyUsage::from_der(e.extn_value.as_bytes()).ok())
}

fn xchg_subject(ca: &Name) -> EngineResult<Name> {
    let cn = lockbox_codec::names::common_name(ca).unwrap_or_else(|| "Lockbox CA".into());
    Name::from_str(&format!("CN={}-Xchg", cn.replace(',', "\\,")))
        .map_err(|e| EngineError::Config(format!("exchange certificate subject: {e}")))
}

/// Removes the archived-key unauthenticated attribute from a CMC request
/// (MS-WCCE: the CA does not keep the client's envelope to its exchange key).
pub fn strip_archived_key(der: &[u8]) -> EngineResult<Vec<u8>> {
    let bad = |e: der::Error| {
        EngineError::bad_input(codes::CRYPT_E_ASN1_BADTAG, format!("CMC request: {e}"))
    };
    let ci = ContentInfo::from_der(der).map_err(bad)?;
    let mut sd: SignedData = ci.content.decode_as().map_err(bad)?;
    let signers: Vec<_> = sd
        .signer_infos
        .0
        .iter()
        .cloned()
        .map(|mut s| {
            if let Some(attrs) = &s.unsigned_attrs {
                let kept: Vec<_> = attrs
                    .iter()
                    .filter(|a| a.oid != oids::MS_ARCHIVED_KEY)
                    .cloned()
                    .collect();
                s.unsigned_attrs = if kept.is_empty() {
                    None
                } else {
                    der::asn1::SetOfVec::try_from(kept).ok()
                };
            }
            s
        })
        .collect();
    sd.signer_infos =
        cms::signed_data::SignerInfos(der::asn1::SetOfVec::try_from(signers).map_err(bad)?);
    let out = ContentInfo {
        content_type: ci.content_type,
        content: Any::encode_from(&sd).map_err(bad)?,
    };
    out.to_der().map_err(bad)
}

impl Ca {
    pub(crate) fn content_cipher(&self) -> EngineResult<ContentCipher> {
        ContentCipher::parse(&self.config.archival.content_cipher)
            .map_err(|e| EngineError::Config(e.to_string()))
    }

    pub(crate) fn key_transport(&self) -> EngineResult<KeyTransport> {
        KeyTransport::parse(&self.config.archival.key_transport)
            .map_err(|e| EngineError::Config(e.to_string()))
    }

    // ----- exchange certificate ------------------------------------------

    /// Exchange certificates still valid whose private key this CA holds
    /// (newest first), as DER. A home restored from a backup without exchange
    /// keys has the old certificates but not their keys: they are skipped, and
    /// a new exchange certificate is made when one is next needed.
    pub async fn exchange_certificates(&self) -> EngineResult<Vec<Vec<u8>>> {
        let t = now();
        let rows = self
            .store
            .query(
                &crate::view::parse_restrictions(
                    "CertificateTemplate=CAExchange,Disposition=issued",
                )?,
                1000,
            )
            .await?;
        let mut certs: Vec<(i64, Vec<u8>)> = rows
            .into_iter()
            .filter_map(|r| r.cert)
            .filter(|c| c.not_before <= t && c.not_after > t)
            .filter(|c| {
                self.home
                    .path(&format!("keys/xchg-{}.key", c.serial))
                    .is_file()
            })
            .map(|c| (c.not_before, c.cert_der))
            .collect();
        certs.sort_by_key(|c| std::cmp::Reverse(c.0));
        Ok(certs.into_iter().map(|c| c.1).collect())
    }

    /// The exchange certificate clients should encrypt to, creating one when
    /// none is valid or the newest is inside its overlap window.
    pub async fn current_exchange_certificate(&self) -> EngineResult<Vec<u8>> {
        let overlap = self.config.archival.exchange_overlap.approx_seconds();
        let fresh = |der: &Vec<u8>| {
            cert_fields(der)
                .map(|f| f.not_after - overlap > now())
                .unwrap_or(false)
        };
        if let Some(c) = self
            .exchange_certificates()
            .await?
            .into_iter()
            .next()
            .filter(fresh)
        {
            return Ok(c);
        }
        let _guard = self.archival.creating.lock().await;
        if let Some(c) = self
            .exchange_certificates()
            .await?
            .into_iter()
            .next()
            .filter(fresh)
        {
            return Ok(c);
        }
        self.create_exchange_certificate().await
    }

    async fn create_exchange_certificate(&self) -> EngineResult<Vec<u8>> {
        let (_, ca) = self.ca_cert()?;
        let signer = self.signing_key()?;
        let spec = KeySpec::from_str(&self.config.archival.exchange_key)
            .map_err(|e| EngineError::Config(e.to_string()))?;
        if !matches!(spec, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096) {
            return Err(EngineError::Config(
                "the exchange key must be RSA (it receives transported keys)".into(),
            ));
        }
        let key = SoftwareKey::generate(spec)?;
        let template = builtins()
            .into_iter()
            .find(|t| t.name == "CAExchange")
            .ok_or_else(|| EngineError::Config("CAExchange template missing".into()))?;
        let subject = xchg_subject(ca.tbs_certificate().subject())?;
        let mut exts = template_extensions(&template, false)?;
        exts.push(ski(key.public_key_info())?);
        exts.push(aki(ca.tbs_certificate().subject_public_key_info())?);
        let issued_at = now();
        let not_after = self
            .config
            .archival
            .exchange_validity
            .add_to(issued_at)?
            .min(unix_of(&ca.tbs_certificate().validity().not_after));
        let cert = sign_certificate(
            signer.as_ref(),
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
        let der = cert
            .to_der()
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let fields = cert_fields(&der)?;
        let pass = passphrase(&self.home, self.config.ca.passphrase_file.as_deref())?;
        let pass = if self.config.ca.key_encrypted {
            pass
        } else {
            None
        };
        let pem = key_pem(&key, pass.as_deref().map(|p| p.as_slice()))?;
        // The key file is written before the row: a row never points at a missing key.
        self.home.write_atomic(
            &format!("keys/xchg-{}.key", fields.serial),
            pem.as_bytes(),
            true,
        )?;
        let csr = sign_request(&key, subject, vec![])?;
        self.store
            .insert_request(
                &NewRequest {
                    request_der: csr,
                    request_kind: "pkcs10".into(),
                    requester: format!("{} (CA exchange)", self.config.ca.name),
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
                },
                // Issuing the CA's own exchange certificate is audited like any issuance.
                &self
                    .audited(vec![lockbox_store::AuditEntry {
                        at: issued_at,
                        actor: format!("{} (CA exchange)", self.config.ca.name),
                        category: "requests".into(),
                        action: "exchange certificate issued".into(),
                        target: "{request_id}".into(),
                        outcome: "success".into(),
                        details: serde_json::json!({
                            "template": "CAExchange",
                            "serial": fields.serial,
                            "not_after": fields.not_after,
                        })
                        .to_string(),
                    }])
                    .await,
            )
            .await?;
        let _ = self.maybe_sign_head().await;
        let _ = self
            .event(
                1001,
                "info",
                &format!(
                    "CA exchange certificate {} created, valid until {}",
                    fields.serial,
                    crate::period::rfc3339(fields.not_after)
                ),
            )
            .await;
        if let Ok(mut cache) = self.archival.exchange_keys.lock() {
            cache.insert(fields.serial.clone(), Arc::new(key));
        }
        Ok(der)
    }

    fn exchange_key(&self, serial: &str) -> EngineResult<Arc<SoftwareKey>> {
        if let Some(k) = self
            .archival
            .exchange_keys
            .lock()
            .ok()
            .and_then(|c| c.get(serial).cloned())
        {
            return Ok(k);
        }
        let bytes = Zeroizing::new(self.home.read(&format!("keys/xchg-{serial}.key"))?);
        let pass = passphrase(&self.home, self.config.ca.passphrase_file.as_deref())?;
        let key = Arc::new(load_private_key(
            &bytes,
            pass.as_deref().map(|p| p.as_slice()),
        )?);
        if let Ok(mut c) = self.archival.exchange_keys.lock() {
            c.insert(serial.to_string(), key.clone());
        }
        Ok(key)
    }

    // ----- KRAs ------------------------------------------------------------

    /// Status of one configured KRA certificate: chain, EKU, dates, revocation.
    async fn kra_status(
        &self,
        e: &KraEntry,
        revoked_serials: &[String],
    ) -> (Option<Certificate>, String) {
        let cert = match decode_certificate(&e.cert_der) {
            Ok(c) => c,
            Err(_) => return (None, "cannot be loaded".into()),
        };
        let tbs = cert.tbs_certificate();
        let t = now();
        let status = if !has_eku(&cert, oids::MS_KP_KEY_RECOVERY_AGENT) {
            "not a KRA certificate".to_string()
        } else if public_key_facts(tbs.subject_public_key_info())
            .map(|f| !matches!(f.algorithm_name().as_str(), "rsa" | "p256" | "p384"))
            .unwrap_or(true)
        {
            "unsupported key (RSA, P-256 or P-384)".into()
        } else if unix_of(&tbs.validity().not_after) <= t || unix_of(&tbs.validity().not_before) > t
        {
            "expired".into()
        } else {
            match self.ca_cert() {
                Ok((_, ca)) if verify_issued_by(&cert, ca).is_ok() => {
                    if revoked_serials.contains(&to_hex(tbs.serial_number().as_bytes())) {
                        "revoked".into()
                    } else {
                        "valid".into()
                    }
                }
                _ => self.foreign_kra_status(&cert, e).await,
            }
        };
        (Some(cert), status)
    }

    /// A KRA certificate from another CA: its chain must verify to the root given
    /// with it, and its issuer's CRL (file or http URL) must be current and not list it.
    async fn foreign_kra_status(&self, cert: &Certificate, e: &KraEntry) -> String {
        let Some(chain_der) = &e.chain_der else {
            return "untrusted issuer (no chain configured)".into();
        };
        let chain: Vec<Certificate> =
            lockbox_codec::pem::decode_all(&String::from_utf8_lossy(chain_der), "CERTIFICATE")
                .unwrap_or_default()
                .iter()
                .filter_map(|d| decode_certificate(d).ok())
                .collect();
        let Some(issuer) = chain.iter().find(|c| verify_issued_by(cert, c).is_ok()) else {
            return "untrusted issuer (chain does not verify)".into();
        };
        let mut current = issuer.clone();
        for _ in 0..8 {
            if current.tbs_certificate().issuer() == current.tbs_certificate().subject() {
                if verify_issued_by(&current, &current).is_err() {
                    return "untrusted issuer (chain does not verify)".into();
                }
                break;
            }
            match chain.iter().find(|c| verify_issued_by(&current, c).is_ok()) {
                Some(next) => current = next.clone(),
                None => return "untrusted issuer (chain does not reach a root)".into(),
            }
        }
        let Some(source) = &e.crl_source else {
            return "revocation unknown (CRL unavailable)".into();
        };
        let crl_bytes = match fetch_crl(source).await {
            Some(b) => b,
            None => return "revocation unknown (CRL unavailable)".into(),
        };
        match crl_status(&crl_bytes, cert, issuer) {
            Some(true) => "revoked".into(),
            Some(false) => "valid".into(),
            None => "revocation unknown (CRL unavailable)".into(),
        }
    }

    async fn kra_statuses(&self) -> EngineResult<Vec<(KraStatus, Option<Certificate>)>> {
        let revoked: Vec<String> = self
            .store
            .revoked()
            .await?
            .into_iter()
            .map(|r| r.serial)
            .collect();
        let mut out = Vec::new();
        for e in self.store.kra_certificates().await? {
            let (cert, status) = self.kra_status(&e, &revoked).await;
            let (subject, issuer, serial, not_after) = match &cert {
                Some(c) => {
                    let t = c.tbs_certificate();
                    (
                        t.subject().to_string(),
                        t.issuer().to_string(),
                        to_hex(t.serial_number().as_bytes()),
                        unix_of(&t.validity().not_after),
                    )
                }
                None => (String::new(), String::new(), String::new(), 0),
            };
            out.push((
                KraStatus {
                    thumbprint: e.thumbprint,
                    subject,
                    issuer,
                    serial,
                    not_after,
                    status,
                },
                cert,
            ));
        }
        Ok(out)
    }

    /// The configured KRA certificates with their status.
    pub async fn kra_list(&self, actor: &Actor) -> EngineResult<Vec<KraStatus>> {
        self.authorize(actor, Op::ReadDatabase).await?;
        Ok(self
            .kra_statuses()
            .await?
            .into_iter()
            .map(|(s, _)| s)
            .collect())
    }

    /// Validates the KRA configuration and records the seed's events: 84/85
    /// per unusable certificate, 82 when fewer than configured verify, 98 when
    /// fewer than required (archival stops), 127 when a certificate expires soon.
    /// Runs when the service starts and whenever the KRA configuration changes.
    pub async fn validate_kras(&self) -> EngineResult<(usize, usize)> {
        let statuses = match self.kra_statuses().await {
            Ok(s) => s,
            Err(e) => {
                self.event(83, "error", &format!("Error loading KRA certificates: {e}"))
                    .await?;
                return Err(e);
            }
        };
        let counts = self.log_kra_events(&statuses).await?;
        self.remember_kra_states(&statuses).await?;
        Ok(counts)
    }

    /// What the KRA events were last logged for: every certificate's status
    /// and the number required.
    async fn kra_states_fingerprint(
        &self,
        statuses: &[(KraStatus, Option<Certificate>)],
    ) -> EngineResult<String> {
        let mut parts: Vec<String> = statuses
            .iter()
            .map(|(k, _)| format!("{}={}", k.thumbprint, k.status))
            .collect();
        parts.sort();
        parts.push(format!("required={}", self.kra_required().await?));
        Ok(parts.join(";"))
    }

    async fn remember_kra_states(
        &self,
        statuses: &[(KraStatus, Option<Certificate>)],
    ) -> EngineResult<()> {
        let fp = self.kra_states_fingerprint(statuses).await?;
        if self.store.setting(KRA_LOGGED_STATES).await?.as_deref() != Some(fp.as_str()) {
            self.store
                .apply(
                    &[Change::SetSetting {
                        name: KRA_LOGGED_STATES.into(),
                        value: fp,
                    }],
                    &[],
                )
                .await?;
        }
        Ok(())
    }

    /// Logs the KRA events (84 naming each unusable agent and why, 82, 98, 127)
    /// when the agents' states differ from those last logged: a KRA revoked
    /// with `lockbox revoke`, or expired, is reported when the CA first finds
    /// it (at revocation or at the next archival), once, not for every request.
    pub(crate) async fn report_kra_changes(
        &self,
        statuses: &[(KraStatus, Option<Certificate>)],
    ) -> EngineResult<()> {
        let fp = self.kra_states_fingerprint(statuses).await?;
        if self.store.setting(KRA_LOGGED_STATES).await?.as_deref() == Some(fp.as_str()) {
            return Ok(());
        }
        self.log_kra_events(statuses).await?;
        self.remember_kra_states(statuses).await
    }

    /// After a revocation: if the certificate is a configured KRA, log what changed.
    pub(crate) async fn kra_revoked_check(&self, cert_der: &[u8]) -> EngineResult<()> {
        let thumb = to_hex(&sha1(cert_der));
        if self
            .store
            .kra_certificates()
            .await?
            .iter()
            .any(|k| k.thumbprint == thumb)
        {
            let statuses = self.kra_statuses().await?;
            self.report_kra_changes(&statuses).await?;
        }
        Ok(())
    }

    /// Records the events for the given KRA states; returns (valid, total).
    async fn log_kra_events(
        &self,
        statuses: &[(KraStatus, Option<Certificate>)],
    ) -> EngineResult<(usize, usize)> {
        let total = statuses.len();
        let mut valid = 0;
        let warn_days: i64 = self
            .store
            .setting("kra_expiry_warning_days")
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(30);
        for (k, _) in statuses {
            match k.status.as_str() {
                "valid" => {
                    valid += 1;
                    if k.not_after - now() < warn_days * 86_400 {
                        self.event(
                            127,
                            "warning",
                            &format!(
                                "KRA certificate {} ({}) expires on {}",
                                k.thumbprint,
                                k.subject,
                                crate::period::rfc3339(k.not_after)
                            ),
                        )
                        .await?;
                    }
                }
                "cannot be loaded" => {
                    self.event(
                        85,
                        "error",
                        &format!("KRA certificate {} could not be loaded", k.thumbprint),
                    )
                    .await?
                }
                reason => {
                    self.event(
                        84,
                        "error",
                        &format!(
                            "KRA certificate {} ({}) is not usable: {reason}",
                            k.thumbprint, k.subject
                        ),
                    )
                    .await?
                }
            }
        }
        if valid < total {
            self.event(
                82,
                "warning",
                &format!("Only {valid} of {total} KRA certificates were verified"),
            )
            .await?;
        }
        let required = self.kra_required().await?;
        if required > 0 && valid < required {
            self.event(98, "error", &format!("Errors validating KRA certificates: {valid} valid, {required} required; key archival is stopped")).await?;
        }
        Ok((valid, total))
    }

    /// Adds a KRA certificate, given as PEM/DER or as the serial number of a
    /// certificate this CA issued. Certificates of other CAs need their chain
    /// (PEM, up to the root) and a CRL source (file path or http URL).
    pub async fn kra_add(
        &self,
        actor: &Actor,
        cert_or_serial: &[u8],
        chain_pem: Option<Vec<u8>>,
        crl_source: Option<String>,
    ) -> EngineResult<KraStatus> {
        self.authorize(actor, Op::Configure).await?;
        let der = match std::str::from_utf8(cert_or_serial)
            .ok()
            .and_then(normalize_hex)
            .filter(|_| cert_or_serial.len() <= 64)
        {
            Some(serial) => self
                .store
                .get_by_serial(&serial)
                .await?
                .and_then(|r| r.cert)
                .map(|c| c.cert_der)
                .ok_or_else(|| {
                    EngineError::NotFound(format!("no certificate with serial number {serial}"))
                })?,
            None => decode_input(cert_or_serial)?.der,
        };
        let cert = decode_certificate(&der)?;
        if !has_eku(&cert, oids::MS_KP_KEY_RECOVERY_AGENT) {
            return Err(EngineError::bad_input(
                codes::E_INVALIDARG,
                "the certificate has no Key Recovery Agent EKU (1.3.6.1.4.1.311.21.6)",
            ));
        }
        let ku_ok = key_usage(
            cert.tbs_certificate()
                .extensions()
                .map(|e| e.as_slice())
                .unwrap_or(&[]),
        )
        .is_some_and(|k| {
            k.0.contains(KeyUsages::KeyEncipherment) || k.0.contains(KeyUsages::KeyAgreement)
        });
        if !ku_ok {
            return Err(EngineError::bad_input(
                codes::E_INVALIDARG,
                "a KRA certificate needs keyUsage keyEncipherment (RSA) or keyAgreement (EC)",
            ));
        }
        let thumb = to_hex(&sha1(&der));
        let audit = self
            .audited(
                self.audit_entry(
                    actor,
                    "config",
                    "KRA added",
                    &thumb,
                    &serde_json::json!({ "subject": cert.tbs_certificate().subject().to_string() })
                        .to_string(),
                ),
            )
            .await;
        self.store
            .apply(
                &[Change::AddKra {
                    thumbprint: thumb.clone(),
                    cert_der: der,
                    chain_der: chain_pem,
                    crl_source,
                    at: now(),
                }],
                &audit,
            )
            .await?;
        tracing::info!(thumbprint = %thumb, "KRA certificate added");
        self.validate_kras().await?;
        self.kra_statuses()
            .await?
            .into_iter()
            .map(|(s, _)| s)
            .find(|k| k.thumbprint == thumb)
            .ok_or_else(|| EngineError::Config("KRA vanished".into()))
    }

    /// Removes a KRA certificate by thumbprint or serial number. Refused
    /// (0x8007139F, listing them) when it is the last configured agent able to
    /// open some archived keys, unless `force`.
    pub async fn kra_remove(&self, actor: &Actor, id: &str, force: bool) -> EngineResult<String> {
        self.authorize(actor, Op::Configure).await?;
        let norm = normalize_hex(id).ok_or_else(|| {
            EngineError::bad_input(
                codes::E_INVALIDARG,
                format!("'{id}' is not a thumbprint or serial"),
            )
        })?;
        for (k, _) in self.kra_statuses().await? {
            if k.thumbprint == norm || k.serial == norm {
                let orphaned = self.keys_only_for_kra(&k.thumbprint).await?;
                if !orphaned.is_empty() && !force {
                    return Err(EngineError::Conflict(format!(
                        "KRA certificate {} ({}) is the last configured agent able to open {} archived key(s): {}; \
                         without it they cannot be recovered (give --force to remove it anyway)",
                        k.thumbprint,
                        k.subject,
                        orphaned.len(),
                        orphaned.join(", ")
                    )));
                }
                let required = self.kra_required().await?;
                let left = self.store.kra_certificates().await?.len().saturating_sub(1);
                let mut changes = vec![Change::RemoveKra {
                    thumbprint: k.thumbprint.clone(),
                }];
                if required > left {
                    changes.push(Change::SetSetting {
                        name: KRA_REQUIRED.into(),
                        value: left.to_string(),
                    });
                }
                let details = if orphaned.is_empty() {
                    "{}".to_string()
                } else {
                    serde_json::json!({ "forced": true, "keys_without_agent": orphaned })
                        .to_string()
                };
                let audit = self
                    .audited(self.audit_entry(
                        actor,
                        "config",
                        "KRA removed",
                        &k.thumbprint,
                        &details,
                    ))
                    .await;
                self.store.apply(&changes, &audit).await?;
                self.validate_kras().await?;
                return Ok(k.thumbprint);
            }
        }
        Err(EngineError::NotFound(format!(
            "no configured KRA certificate matches '{id}'"
        )))
    }

    /// The archived keys that no configured KRA other than `thumbprint` can
    /// open, as "request N (serial S)" or "key ID K".
    async fn keys_only_for_kra(&self, thumbprint: &str) -> EngineResult<Vec<String>> {
        let others: Vec<String> = self
            .store
            .kra_certificates()
            .await?
            .into_iter()
            .map(|e| e.thumbprint)
            .filter(|t| t != thumbprint)
            .collect();
        Ok(self
            .store
            .keys_for_kra(thumbprint)
            .await?
            .into_iter()
            .filter(|k| {
                let hashes: Vec<&str> = k.kra_hashes.split(',').map(str::trim).collect();
                hashes.contains(&thumbprint)
                    && !hashes.iter().any(|h| others.iter().any(|o| o == h))
            })
            .map(|k| match (k.request_id, k.serial, k.key_id) {
                (Some(id), Some(serial), _) => format!("request {id} (serial {serial})"),
                (Some(id), None, _) => format!("request {id}"),
                (None, _, Some(key_id)) => format!("key ID {key_id}"),
                _ => "an archived key".into(),
            })
            .collect())
    }

    /// Issued Key Recovery Agent certificates land in the CA's KRA store (the
    /// administrator still chooses how many are required).
    pub(crate) async fn land_kra_certificate(
        &self,
        actor: &Actor,
        cert_der: &[u8],
    ) -> EngineResult<()> {
        let cert = decode_certificate(cert_der)?;
        if !has_eku(&cert, oids::MS_KP_KEY_RECOVERY_AGENT) {
            return Ok(());
        }
        let thumb = to_hex(&sha1(cert_der));
        let audit = self
            .audited(self.audit_entry(
                actor,
                "config",
                "KRA certificate issued into the KRA store",
                &thumb,
                "{}",
            ))
            .await;
        self.store
            .apply(
                &[Change::AddKra {
                    thumbprint: thumb,
                    cert_der: cert_der.to_vec(),
                    chain_der: None,
                    crl_source: None,
                    at: now(),
                }],
                &audit,
            )
            .await?;
        self.validate_kras().await?;
        Ok(())
    }

    /// How many KRAs each archived key is encrypted to (0 = archival off).
    pub async fn kra_required(&self) -> EngineResult<usize> {
        Ok(self
            .store
            .setting(KRA_REQUIRED)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Sets how many KRAs each key is encrypted to; cannot exceed the configured count.
    pub async fn set_kra_required(&self, actor: &Actor, n: usize) -> EngineResult<()> {
        self.authorize(actor, Op::Configure).await?;
        let configured = self.store.kra_certificates().await?.len();
        if n > configured {
            return Err(EngineError::bad_input(
                codes::E_INVALIDARG,
                format!("cannot require {n} key recovery agents: only {configured} KRA certificate(s) are configured"),
            ));
        }
        let audit = self
            .audited(self.audit_entry(actor, "config", "KRA count required", &n.to_string(), "{}"))
            .await;
        self.store
            .apply(
                &[Change::SetSetting {
                    name: KRA_REQUIRED.into(),
                    value: n.to_string(),
                }],
                &audit,
            )
            .await?;
        self.validate_kras().await?;
        Ok(())
    }

    /// Sets how many days before a KRA certificate expires the CA warns
    /// (event 127; `kra_expiry_warning_days`, default 30).
    pub async fn set_kra_expiry_warning_days(&self, actor: &Actor, days: u32) -> EngineResult<()> {
        self.authorize(actor, Op::Configure).await?;
        let audit = self
            .audited(self.audit_entry(
                actor,
                "config",
                "set kra_expiry_warning_days",
                &days.to_string(),
                "{}",
            ))
            .await;
        self.store
            .apply(
                &[Change::SetSetting {
                    name: "kra_expiry_warning_days".into(),
                    value: days.to_string(),
                }],
                &audit,
            )
            .await?;
        self.validate_kras().await?;
        Ok(())
    }

    /// N KRA certificates chosen round robin among the valid ones.
    /// The valid KRA certificates and the number required, or the AD CS refusal.
    pub(crate) async fn valid_kras_for_batch(&self) -> EngineResult<(Vec<Certificate>, usize)> {
        let required = self.kra_required().await?;
        let entries = self.store.kra_certificates().await?;
        if required == 0 || entries.is_empty() {
            return Err(EngineError::denied(
                codes::CERTSRV_E_KEY_ARCHIVAL_NOT_CONFIGURED,
                "Cannot archive private key. The certification authority is not configured for key archival.",
            ));
        }
        let statuses = self.kra_statuses().await?;
        // A KRA that became unusable since the events were last logged (revoked
        // through `lockbox revoke`, expired) is reported now, once.
        if let Err(e) = self.report_kra_changes(&statuses).await {
            tracing::warn!(error = %e, "KRA events not recorded");
        }
        let valid: Vec<Certificate> = statuses
            .into_iter()
            .filter_map(|(s, c)| if s.status == "valid" { c } else { None })
            .collect();
        if valid.len() < required {
            return Err(EngineError::denied(
                CERTSRV_E_NO_VALID_KRA,
                format!(
                    "Cannot archive private key. No valid key recovery agent is defined for this certification authority ({} of {} required KRA certificates are valid).",
                    valid.len(),
                    required
                ),
            ));
        }
        Ok((valid, required))
    }

    /// N of the valid KRAs, round robin from the process's position.
    pub(crate) fn round_robin(&self, valid: &[Certificate], required: usize) -> Vec<Certificate> {
        let start = self
            .archival
            .next_kra
            .fetch_add(required, Ordering::Relaxed);
        (0..required)
            .map(|i| valid[(start + i) % valid.len()].clone())
            .collect()
    }

    /// N KRA certificates chosen round robin among the valid ones.
    pub(crate) async fn choose_kras(&self) -> EngineResult<Vec<Certificate>> {
        let (valid, required) = self.valid_kras_for_batch().await?;
        Ok(self.round_robin(&valid, required))
    }

    // ----- archiving a request ---------------------------------------------

    /// Checks the template's archival rule against the request and, when the
    /// template archives, opens, verifies and re-envelopes the key.
    pub(crate) async fn archive_if_required(
        &self,
        inbound: &Inbound,
        t: &Template,
    ) -> EngineResult<Option<Archived>> {
        let cmc = inbound.cmc.as_ref();
        let envelope_der = cmc.and_then(|c| c.archived_key.clone());
        match (t.archive_private_key, envelope_der) {
            (false, None) => Ok(None),
            (true, None) => Err(EngineError::denied(
                codes::CERTSRV_E_ARCHIVED_KEY_REQUIRED,
                format!(
                    "Template '{}' requires key archival, but the request carries no private key.",
                    t.name
                ),
            )),
            (false, Some(_)) => Err(EngineError::denied(
                codes::CERTSRV_E_ARCHIVED_KEY_UNEXPECTED,
                format!(
                    "The request carries a private key, but template '{}' does not archive keys.",
                    t.name
                ),
            )),
            (true, Some(env)) => {
                // Configuration checks come first: they do not depend on the key.
                check_transport_cipher(t, &env)?;
                let kras = self.choose_kras().await?;
                let (pkcs8, client_hash) = self.recover_client_key(inbound, &env).await?;
                let recipients: Vec<Recipient> =
                    kras.iter().map(Recipient::from_certificate).collect();
                let sealed = envelope(
                    &pkcs8,
                    &recipients,
                    self.content_cipher()?,
                    self.key_transport()?,
                )?;
                let kra_hashes = kras
                    .iter()
                    .map(|c| c.to_der().map(|d| to_hex(&sha1(&d))))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| EngineError::Config(e.to_string()))?
                    .join(",");
                Ok(Some(Archived {
                    envelope: sealed,
                    kra_hashes,
                    client_hash,
                    stripped_request: strip_archived_key(&inbound.der)?,
                }))
            }
        }
    }

    /// Opens the client's envelope with the exchange key and checks what it
    /// holds. Once the envelope names one of the CA's exchange certificates,
    /// every failure (RSA padding, content decryption, PRIVATEKEYBLOB or
    /// PKCS#8 parsing, a signature key, a key that is not the request's, an
    /// encrypted-key hash that does not bind the envelope) runs the same steps
    /// and ends in the one error [`archival_error`]: the answer reveals nothing
    /// about the plaintext, so the exchange key is no padding oracle.
    async fn recover_client_key(
        &self,
        inbound: &Inbound,
        envelope_der: &[u8],
    ) -> EngineResult<(Zeroizing<Vec<u8>>, Vec<u8>)> {
        let certs: Vec<Certificate> = self
            .exchange_certificates()
            .await?
            .iter()
            .map(|d| decode_certificate(d))
            .collect::<EngineResult<_>>()?;
        let mut keys = Vec::new();
        for c in &certs {
            keys.push(self.exchange_key(&to_hex(c.tbs_certificate().serial_number().as_bytes()))?);
        }
        let offered: Vec<OpeningKey<'_>> = certs
            .iter()
            .zip(keys.iter())
            .map(|(c, k)| OpeningKey {
                issuer: c.tbs_certificate().issuer(),
                serial: c.tbs_certificate().serial_number(),
                key: k.as_ref(),
            })
            .collect();
        // Verdicts that need no key come first: the requester already knows
        // them (it signed the hash and chose the key usage), and a request
        // that fails them never has its payload parsed or imported.
        let Some(hash) = check_key_hash(inbound, envelope_der) else {
            return Err(archival_error());
        };
        if !request_allows_encryption(inbound) {
            return Err(archival_error());
        }
        let (opened, plain) =
            match open_envelope(envelope_der, &offered) {
                Ok(p) => (true, p),
                Err(OpenError::NotForUs) => return Err(EngineError::bad_input(
                    CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL,
                    "The archived key is not encrypted to a valid exchange certificate of this CA.",
                )),
                Err(OpenError::Malformed(m)) => {
                    return Err(EngineError::bad_input(
                        CERTSRV_E_BAD_REQUEST_KEY_ARCHIVAL,
                        format!("Archived key envelope: {m}"),
                    ))
                }
                // Continue on random bytes of the ciphertext's length, so that a
                // decryption failure takes the same path as a plaintext that
                // does not parse.
                Err(OpenError::Decrypt) => (
                    false,
                    Zeroizing::new(random_bytes(envelope_der.len().min(8192))?),
                ),
            };
        let key = client_key_pkcs8(&plain)
            .filter(|pkcs8| claims_request_key(pkcs8, inbound))
            .filter(|pkcs8| key_matches_request(pkcs8, inbound));
        match (opened, key) {
            (true, Some(pkcs8)) => Ok((pkcs8, hash)),
            _ => Err(archival_error()),
        }
    }

    /// The archived-key envelope stored with a request.
    pub async fn archived_key(&self, request_id: i64) -> EngineResult<Vec<u8>> {
        self.store.archived_key(request_id).await?.ok_or_else(|| {
            EngineError::NotFound(format!("request {request_id} has no archived key"))
        })
    }

    /// SHA-1 thumbprints of the KRA certificates a request's key is encrypted to.
    pub async fn kra_hashes(&self, request_id: i64) -> EngineResult<Vec<String>> {
        Ok(self
            .store
            .kra_hashes(request_id)
            .await?
            .map(|s| {
                s.split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Builds the CMC Full PKI Response for an outcome (RFC 5272, MS-WCCE 3.2.1.4.2.1.4.8.2).
    pub async fn cmc_response(&self, outcome: &crate::ca::Outcome) -> EngineResult<Vec<u8>> {
        crate::cmcresponse::build(self, outcome).await
    }
}

/// The encrypted-key hash in the signed controls binds the envelope to the
/// request: same hash algorithm as the request signature, or SHA-1. None when
/// it is missing or does not match.
fn check_key_hash(inbound: &Inbound, envelope_der: &[u8]) -> Option<Vec<u8>> {
    let cmc = inbound.cmc.as_ref()?;
    let sent = cmc.encrypted_key_hash.clone()?;
    let request_hash = digest_by_oid(&cmc.signer.digest_alg.oid, envelope_der).ok();
    let sha1_hash = sha1(envelope_der).to_vec();
    (request_hash.as_deref() == Some(sent.as_slice()) || sha1_hash == sent).then_some(sent)
}

/// Keys whose request asks for signature use only are never archived.
fn request_allows_encryption(inbound: &Inbound) -> bool {
    match inbound
        .pkcs10
        .extension(&oids::CE_KEY_USAGE)
        .map(|e| KeyUsage::from_der(e.extn_value.as_bytes()))
    {
        None => true,
        Some(Err(_)) => false,
        Some(Ok(ku)) => {
            ku.0.contains(KeyUsages::KeyEncipherment)
                || ku.0.contains(KeyUsages::KeyAgreement)
                || ku.0.contains(KeyUsages::DataEncipherment)
        }
    }
}

/// The decrypted payload as PKCS#8: a Microsoft PRIVATEKEYBLOB (exchange
/// keys only; CALG_RSA_SIGN blobs are signature keys, never archived) or a
/// PKCS#8 structure. None for anything else.
fn client_key_pkcs8(plain: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if is_private_key_blob(plain) {
        let blob = parse_private_key_blob(plain).ok()?;
        let converted = blob_to_pkcs8(&blob).ok().map(Zeroizing::new);
        return converted.filter(|_| blob.key_alg != CALG_RSA_SIGN);
    }
    (plain.first() == Some(&0x30)).then(|| Zeroizing::new(plain.to_vec()))
}

/// `use_aes_for_key_transport`: the template refuses a key the client
/// encrypted to the CA with 3DES. Only the envelope's clear algorithm
/// identifier is read, before the exchange key is used, so the refusal says
/// nothing about the encrypted content.
fn check_transport_cipher(t: &Template, envelope_der: &[u8]) -> EngineResult<()> {
    if !t.use_aes_for_key_transport {
        return Ok(());
    }
    let alg = lockbox_crypto::cms::decode_envelope(envelope_der)
        .ok()
        .map(|e| e.encrypted_content.content_enc_alg.oid);
    if alg.and_then(|o| ContentCipher::from_oid(&o)) == Some(ContentCipher::DesEde3Cbc) {
        return Err(EngineError::denied(
            codes::NTE_BAD_ALGID,
            format!(
                "Template '{}' requires AES for the private key sent to the CA (use_aes_for_key_transport); the request used 3DES.",
                t.name
            ),
        ));
    }
    Ok(())
}

/// A cheap filter before the key is imported: the payload must claim the
/// request's public key — same algorithm (and curve), same RSA modulus and
/// exponent or EC point — read from the PKCS#8 without checking the key. A
/// forged payload (an envelope taken from someone else's request, whatever
/// the attacker's own key type) fails here, at the same early step as a
/// payload that does not parse, and never reaches the expensive import.
fn claims_request_key(pkcs8: &[u8], inbound: &Inbound) -> bool {
    let request_key = &inbound.pkcs10.cert_req.info.public_key;
    let Some(claimed) = pkcs8_claimed_public_key(pkcs8) else {
        return false;
    };
    let same_parameters = request_key.algorithm.oid == oids::RSA_ENCRYPTION
        || request_key
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.to_der().ok())
            == claimed.parameters;
    claimed.algorithm == request_key.algorithm.oid
        && same_parameters
        && Some(claimed.public_key.as_slice()) == request_key.subject_public_key.as_bytes()
}

/// The decrypted key must be the PKCS#10's key: it must load (aws-lc checks
/// the RSA/EC key's internal consistency), carry the same public key, and
/// produce a signature the request's public key verifies.
fn key_matches_request(pkcs8: &[u8], inbound: &Inbound) -> bool {
    let Ok(key) = SoftwareKey::from_pkcs8_der(pkcs8) else {
        return false;
    };
    let request_key = &inbound.pkcs10.cert_req.info.public_key;
    if key.public_key_info() != request_key {
        return false;
    }
    // RSA: importing the key ran AWS-LC's RSA_check_key (n = pq, CRT values,
    // d*e = 1), so equal public keys prove the pair. EC: prove it with a signature.
    if key.is_rsa() {
        return true;
    }
    let Ok(probe) = random_bytes(32) else {
        return false;
    };
    key.sign(&probe).is_ok_and(|sig| {
        verify_signature(request_key, &key.signature_algorithm(), &probe, &sig).is_ok()
    })
}

/// PEM of a certificate (helper for front ends).
pub fn cert_pem(der: &[u8]) -> String {
    encode_pem("CERTIFICATE", der)
}

/// Reads a CRL from a file path, `file://` or `http://` URL (bounded in size and time).
async fn fetch_crl(source: &str) -> Option<Vec<u8>> {
    if let Some(rest) = source.strip_prefix("http://") {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (host, path) = rest
            .split_once('/')
            .map(|(h, p)| (h.to_string(), format!("/{p}")))
            .unwrap_or((rest.to_string(), "/".into()));
        let addr = if host.contains(':') {
            host.clone()
        } else {
            format!("{host}:80")
        };
        let fut = async {
            let mut s = tokio::net::TcpStream::connect(&addr).await.ok()?;
            s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
                .await
                .ok()?;
            let mut buf = Vec::new();
            s.take(8 * 1024 * 1024).read_to_end(&mut buf).await.ok()?;
            let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
            let head = String::from_utf8_lossy(&buf[..split]).to_string();
            if head.split_whitespace().nth(1).is_none_or(|c| c != "200") {
                return None;
            }
            Some(buf[split + 4..].to_vec())
        };
        return tokio::time::timeout(std::time::Duration::from_secs(10), fut)
            .await
            .ok()
            .flatten();
    }
    let path = source.strip_prefix("file://").unwrap_or(source);
    std::fs::read(path).ok()
}

/// Some(true) revoked, Some(false) not revoked, None when the CRL is unusable
/// (undecodable, not signed by the issuer, or past its nextUpdate).
fn crl_status(bytes: &[u8], cert: &Certificate, issuer: &Certificate) -> Option<bool> {
    let der = decode_input(bytes).ok()?.der;
    let crl: x509_cert::crl::CertificateList =
        x509_cert::crl::CertificateList::from_der(&der).ok()?;
    let tbs = crl.tbs_cert_list.to_der().ok()?;
    verify_signature(
        issuer.tbs_certificate().subject_public_key_info(),
        &crl.signature_algorithm,
        &tbs,
        crl.signature.raw_bytes(),
    )
    .ok()?;
    if &crl.tbs_cert_list.issuer != issuer.tbs_certificate().subject() {
        return None;
    }
    if crl
        .tbs_cert_list
        .next_update
        .as_ref()
        .is_some_and(|n| unix_of(n) < now())
    {
        return None;
    }
    let serial = cert.tbs_certificate().serial_number();
    Some(
        crl.tbs_cert_list
            .revoked_certificates
            .unwrap_or_default()
            .iter()
            .any(|r| &r.serial_number == serial),
    )
}
