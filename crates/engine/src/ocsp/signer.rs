//! The OCSP responders' signing certificates: delegated responders
//! (RFC 6960 4.2.2.2), one per CA key (a responder answers only for what
//! the key that issued its certificate issued), each issued by that key to
//! the CA itself with id-kp-OCSPSigning and id-pkix-ocsp-nocheck, renewed
//! once two thirds of its life have passed, when revoked, or when it no
//! longer matches its CA certificate.
//!
//! The key is a software key of the CA key's family (RSA-2048, or the CA's
//! curve) in `keys/ocsp.key` (`keys/ocsp-K.key` for CA key K > 0; 0600;
//! encrypted under the CA passphrase when the CA key is), the certificate
//! in `certs/ocsp.pem` (`certs/ocsp-K.pem`). Each node of a scaled-out CA
//! keeps its own; every one is an issued row in the database (template
//! `OCSPResponseSigning`), audited like any issuance.

use std::str::FromStr;
use std::sync::Arc;

use der::asn1::Null;
use der::{Decode, Encode};
use lockbox_codec::ocsp::{ID_KP_OCSP_SIGNING, ID_PKIX_OCSP_NOCHECK};
use lockbox_codec::pem::{decode_input, encode_pem};
use lockbox_crypto::keyinfo::key_identifier;
use lockbox_crypto::random::serial_number;
use lockbox_crypto::{KeySpec, PrivateKey};
use lockbox_store::{CertFields, Disposition, NewRequest};
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::name::Name;

use crate::category::{AuditAction, AuditCategory};
use crate::certbuild::{aki, extension, sign_certificate, sign_request, ski, CertSpec};
use crate::certs::{cert_fields, key_pem, load_home_key};
use crate::config::passphrase;
use crate::core::Core;
use crate::period::{now, unix_of};
use crate::{EngineError, EngineResult};

/// The signing key's file in the home (of the first CA key; `ocsp-K.key`
/// for CA key K after renewals with a new key).
pub(crate) const KEY_FILE: &str = "keys/ocsp.key";
/// The signing certificate's file in the home (likewise `ocsp-K.pem`).
pub(crate) const CERT_FILE: &str = "certs/ocsp.pem";

/// The key and certificate files of the responder for CA key `k`.
fn files(k: u32) -> (String, String) {
    if k == 0 {
        (KEY_FILE.to_string(), CERT_FILE.to_string())
    } else {
        (format!("keys/ocsp-{k}.key"), format!("certs/ocsp-{k}.pem"))
    }
}
/// The template name its database row carries.
pub(crate) const TEMPLATE: &str = "OCSPResponseSigning";

/// A loaded OCSP signing certificate and key.
pub(crate) struct OcspSigner {
    /// The certificate (sent in every response).
    pub(crate) cert: Certificate,
    /// Its key.
    pub(crate) key: Arc<dyn PrivateKey>,
    /// SHA-1 of its public key: the responder ID by key.
    pub(crate) key_hash: Vec<u8>,
    /// notBefore and notAfter, unix seconds.
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    /// Its serial (lowercase hex), to look up its own status.
    serial: String,
}

impl OcspSigner {
    /// Whether it should be replaced now: two thirds of its life have
    /// passed, or the CA certificate is another key's.
    fn due(&self, ca: &Certificate) -> bool {
        let renew_at = self.not_before + (self.not_after - self.not_before) * 2 / 3;
        now() >= renew_at || !issued_by(&self.cert, ca)
    }
}

/// Whether `cert` names `ca` as its issuer, by name and key identifier.
pub(crate) fn issued_by(cert: &Certificate, ca: &Certificate) -> bool {
    let want = key_identifier(ca.tbs_certificate().subject_public_key_info());
    let aki = cert
        .tbs_certificate()
        .get_extension::<AuthorityKeyIdentifier>()
        .ok()
        .flatten()
        .and_then(|(_, a)| a.key_identifier)
        .map(|k| k.as_bytes().to_vec());
    cert.tbs_certificate().issuer() == ca.tbs_certificate().subject() && aki == Some(want)
}

/// Whether the signer's own certificate is still issued in the database
/// (one indexed read per response): a revoked responder certificate is
/// replaced at once, never used (it carries no-check, so relying parties
/// would not notice).
async fn still_issued(core: &Core, s: &OcspSigner) -> EngineResult<bool> {
    Ok(core
        .store
        .get_by_serial(&s.serial)
        .await?
        .is_some_and(|r| r.disposition == lockbox_store::Disposition::Issued))
}

/// Whether `s` may sign now.
async fn usable(core: &Core, s: &OcspSigner, ca: &Certificate) -> EngineResult<bool> {
    Ok(!s.due(ca) && still_issued(core, s).await?)
}

/// The responder for what CA key `k` issued (each CA key delegates to its
/// own, so an earlier key signs once per responder certificate, not per
/// answer): the cached one, the one in the home, or a new one.
pub(crate) async fn signer_for(core: &Core, k: u32) -> EngineResult<Arc<OcspSigner>> {
    let ca = &core
        .generations
        .for_key(k)
        .ok_or_else(|| EngineError::Config(format!("no CA certificate for key {k}")))?
        .cert;
    if let Some(s) = cached(core, k) {
        if usable(core, &s, ca).await? {
            return Ok(s);
        }
    }
    let _guard = core.ocsp.renewing.lock().await;
    if let Some(s) = cached(core, k) {
        if usable(core, &s, ca).await? {
            return Ok(s);
        }
    }
    let loaded = load(core, k).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the OCSP signer in the home does not load: issuing a new one");
        None
    });
    let signer = match loaded {
        Some(s) if usable(core, &s, ca).await? => s,
        _ => match issue(core, ca, k).await {
            Ok(s) => s,
            Err(e) => {
                // Renewal failed: a signer still valid (not expired, not
                // revoked, the CA's) keeps answering; the next request tries again.
                if let Some(s) = cached(core, k) {
                    if s.not_after > now() + 60
                        && issued_by(&s.cert, ca)
                        && still_issued(core, &s).await?
                    {
                        tracing::warn!(error = %e, "OCSP signer renewal failed: the current one keeps signing");
                        return Ok(s);
                    }
                }
                return Err(e);
            }
        },
    };
    let signer = Arc::new(signer);
    if let Ok(mut slots) = core.ocsp.signer.lock() {
        slots.insert(k, signer.clone());
    }
    Ok(signer)
}

fn cached(core: &Core, k: u32) -> Option<Arc<OcspSigner>> {
    core.ocsp
        .signer
        .lock()
        .ok()
        .and_then(|s| s.get(&k).cloned())
}

fn signer_of(cert: Certificate, key: Arc<dyn PrivateKey>) -> OcspSigner {
    let validity = cert.tbs_certificate().validity();
    OcspSigner {
        serial: lockbox_codec::hexfmt::to_hex(cert.tbs_certificate().serial_number().as_bytes()),
        key_hash: key_identifier(cert.tbs_certificate().subject_public_key_info()),
        not_before: unix_of(&validity.not_before),
        not_after: unix_of(&validity.not_after),
        cert,
        key,
    }
}

/// The signer of CA key `k` kept in the home, if both files are there and
/// belong together.
fn load(core: &Core, k: u32) -> EngineResult<Option<OcspSigner>> {
    let (key_file, cert_file) = files(k);
    if !core.home.path(&key_file).is_file() || !core.home.path(&cert_file).is_file() {
        return Ok(None);
    }
    let cert_der = decode_input(&core.home.read(&cert_file)?)
        .map_err(|e| EngineError::Config(format!("{cert_file}: {e}")))?
        .der;
    let cert = Certificate::from_der(&cert_der)
        .map_err(|e| EngineError::Config(format!("{cert_file}: {e}")))?;
    let key = load_home_key(
        &*core.keys,
        &core.home,
        &key_file,
        core.config.ca.passphrase_file.as_deref(),
    )?;
    if key.public_key_info() != cert.tbs_certificate().subject_public_key_info() {
        tracing::warn!("{key_file} does not match {cert_file}: issuing a new OCSP certificate");
        return Ok(None);
    }
    Ok(Some(signer_of(cert, key)))
}

/// The OCSP key type: RSA-2048 for an RSA CA, the CA's curve for an EC CA.
fn key_spec(core: &Core) -> KeySpec {
    match KeySpec::from_str(&core.config.ca.key) {
        Ok(s @ (KeySpec::P256 | KeySpec::P384)) => s,
        _ => KeySpec::Rsa2048,
    }
}

/// `CN=<CA common name> OCSP Responder`.
fn subject(ca: &Name) -> EngineResult<Name> {
    let cn = lockbox_codec::names::common_name(ca).unwrap_or_else(|| "Lockbox CA".into());
    Name::from_str(&format!("CN={} OCSP Responder", rfc4514_value(&cn)))
        .map_err(|e| EngineError::Config(format!("OCSP certificate subject: {e}")))
}

/// An attribute value escaped for an RFC 4514 string: the specials, a
/// leading `#` or space (the value is followed by more text here, so a
/// trailing space needs nothing).
fn rfc4514_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 4);
    for (i, c) in v.chars().enumerate() {
        if matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=')
            || (i == 0 && matches!(c, '#' | ' '))
        {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Issues a new signing certificate, records it, then writes key and
/// certificate to the home (the key first: a certificate on disk always has
/// its key).
async fn issue(core: &Core, ca: &Certificate, k: u32) -> EngineResult<OcspSigner> {
    let signer = core.signing_key_for(k)?;
    let (key_file, cert_file) = files(k);
    let (keys, spec) = (core.keys.clone(), key_spec(core));
    let key = tokio::task::spawn_blocking(move || keys.generate(spec, "ocsp"))
        .await
        .map_err(|e| EngineError::Config(format!("OCSP key task: {e}")))??;
    let subject = subject(ca.tbs_certificate().subject())?;
    let issued_at = now();
    let not_after = core
        .config
        .ocsp
        .signing_validity
        .add_to(issued_at)?
        .min(unix_of(&ca.tbs_certificate().validity().not_after));
    if not_after <= issued_at {
        return Err(EngineError::Config(
            "the CA certificate has expired; renew the CA".into(),
        ));
    }
    let exts = vec![
        extension(
            lockbox_codec::oids::CE_KEY_USAGE,
            true,
            &KeyUsage(KeyUsages::DigitalSignature.into()),
        )?,
        extension(
            const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE,
            false,
            &ExtendedKeyUsage(vec![ID_KP_OCSP_SIGNING]),
        )?,
        extension(ID_PKIX_OCSP_NOCHECK, false, &Null)?,
        ski(key.public_key_info())?,
        aki(ca.tbs_certificate().subject_public_key_info())?,
    ];
    let cert = sign_certificate(
        signer.as_ref(),
        CertSpec {
            issuer: ca.tbs_certificate().subject().clone(),
            subject: subject.clone(),
            spki: key.public_key_info().clone(),
            serial: serial_number(16)?,
            // Back-dated as leaf certificates are, for clients with slow clocks.
            not_before: issued_at - core.config.issuance.backdate_seconds.clamp(60, 86_400),
            not_after,
            extensions: exts,
        },
    )?;
    let der = cert
        .to_der()
        .map_err(|e| EngineError::Config(e.to_string()))?;
    let fields = cert_fields(&der)?;
    let csr = sign_request(&*key, subject, vec![])?;
    let pass = if core.config.ca.key_encrypted {
        passphrase(&core.home, core.config.ca.passphrase_file.as_deref())?
    } else {
        None
    };
    // PBKDF2 when encrypted: off the async workers.
    let pem_key = key.clone();
    let pem = tokio::task::spawn_blocking(move || {
        key_pem(&*pem_key, pass.as_deref().map(|p| p.as_slice()))
    })
    .await
    .map_err(|e| EngineError::Config(format!("OCSP key task: {e}")))??;
    // Recorded first: a crash before the files are written leaves an
    // issued row whose key was never kept (harmless: a new one is made
    // next time), never a key without its audited row.
    record(core, csr, &fields, issued_at).await?;
    core.home.write_atomic(&key_file, pem.as_bytes(), true)?;
    core.home.write_atomic(
        &cert_file,
        encode_pem("CERTIFICATE", &der).as_bytes(),
        false,
    )?;
    let _ = crate::audit::heads::maybe_sign_head(core).await;
    tracing::info!(serial = %fields.serial, "OCSP signing certificate issued");
    Ok(signer_of(cert, key))
}

/// The issued row of the signing certificate, audited like any issuance.
async fn record(
    core: &Core,
    csr: Vec<u8>,
    fields: &CertFields,
    issued_at: i64,
) -> EngineResult<()> {
    let actor = format!("{} (OCSP responder)", core.config.ca.name);
    let audit = crate::audit::chain::audited(
        core,
        vec![lockbox_store::AuditEntry {
            at: issued_at,
            actor: actor.clone(),
            category: AuditCategory::Requests.as_str().into(),
            action: AuditAction::OcspCertificateIssued.as_str().into(),
            target: "{request_id}".into(),
            outcome: "success".into(),
            details: serde_json::json!({
                "template": TEMPLATE,
                "serial": fields.serial,
                "not_after": fields.not_after,
            })
            .to_string(),
        }],
    )
    .await;
    core.store
        .insert_request(
            &NewRequest {
                request_der: csr,
                request_kind: "pkcs10".into(),
                requester: actor,
                template: Some(TEMPLATE.into()),
                request_subject: fields.subject.clone(),
                request_common_name: fields.common_name.clone(),
                request_upn: None,
                request_email: None,
                disposition: Disposition::Issued,
                disposition_message: "Issued (OCSP signing certificate)".into(),
                status_code: 0,
                submitted_at: issued_at,
                cert: Some(fields.clone()),
                archived_key: None,
                kra_hashes: None,
                renewal_of: None,
            },
            &audit,
        )
        .await?;
    Ok(())
}
