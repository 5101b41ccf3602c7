//! Renewing the CA certificate (`lockbox ca renew`), with the same key or a
//! new one, as AD CS does it.
//!
//! The renewal index counts CA certificates (`nRenewals`); the key index
//! counts CA keys. With a new key, the two keys certify each other
//! (cross-certificates: the old key signs a certificate for the new key and
//! the new key one for the old), so relying parties holding either CA
//! certificate reach the other; the old key keeps signing the CRLs
//! (`ca.crl`) of what it issued, the new key signs `ca(K).crl`.
//!
//! The service must be stopped (the home's service lock is taken): every
//! node reads its CA certificates when it starts. Files are written first
//! (the earlier certificate copied to `certs/ca-N.pem`, the new key, the
//! cross-certificates), the configuration last: until it is saved the
//! CA is unchanged.

use std::str::FromStr;
use std::sync::Arc;

use der::Encode;
use lockbox_codec::hexfmt::to_hex;
use lockbox_codec::pem::encode_pem;
use lockbox_crypto::random::serial_number;
use lockbox_crypto::{KeyHandle, KeySpec, PrivateKey};
use serde::Serialize;
use x509_cert::certificate::Certificate;

use crate::category::{AuditAction, AuditCategory};
use crate::certbuild::{ca_extensions_for, sign_certificate, CertSpec};
use crate::certs::key_pem;
use crate::config::{passphrase, CaGeneration, Config};
use crate::core::Core;
use crate::period::{now, unix_of, Period};
use crate::{codes, Actor, EngineError, EngineResult, Op};

/// Options of `lockbox ca renew`.
#[derive(Clone, Debug, Default)]
pub struct RenewOptions {
    /// Generate a new CA key.
    pub new_key: bool,
    /// The new key's type (default: the current key's).
    pub key: Option<KeySpec>,
    /// The new certificate's validity (default: `ca.validity`).
    pub validity: Option<Period>,
}

/// What `lockbox ca renew` made.
#[derive(Clone, Debug, Serialize)]
pub struct RenewOutcome {
    /// The new certificate's renewal index (`nRenewals`).
    pub renewal: u32,
    /// The index of the key it certifies.
    pub key_index: u32,
    /// Whether a new key was made.
    pub new_key: bool,
    /// The new CA certificate (PEM).
    pub certificate_pem: String,
    /// The new certificate's serial (hex) and notAfter (unix).
    pub serial: String,
    /// notAfter of the new certificate.
    pub not_after: i64,
    /// Cross-certificate files (relative to the home), with a new key.
    pub cross_certificates: Vec<String>,
}

/// The file of the CA certificate with renewal index `n` (n > 0; the
/// first is `certs/ca.pem`).
fn cert_file(n: u32) -> String {
    format!("certs/ca-{n}.pem")
}

/// The key file of key index `k` (k > 0; the first is `keys/ca.key`).
fn key_file(k: u32) -> String {
    format!("keys/ca-{k}.key")
}

/// The `CKA_LABEL` of key index `k` generated on the token.
fn token_label(k: u32) -> String {
    format!("{}-{k}", crate::init::GENERATED_KEY_LABEL)
}

/// A self-signed certificate (signer key = subject key) or a
/// cross-certificate for the CA's name, with the Microsoft CA version
/// `version`.
fn ca_certificate(
    signer: &dyn KeyHandle,
    ca: &Certificate,
    subject_key: &spki::SubjectPublicKeyInfoOwned,
    version: u32,
    (not_before, not_after): (i64, i64),
) -> EngineResult<Certificate> {
    let name = ca.tbs_certificate().subject().clone();
    let issuer_key = signer.public_key_info();
    let type_name = if issuer_key == subject_key {
        "CA"
    } else {
        "CrossCA"
    };
    let extensions = ca_extensions_for(subject_key, Some(issuer_key), version, type_name)?;
    sign_certificate(
        signer,
        CertSpec {
            issuer: name.clone(),
            subject: name,
            spki: subject_key.clone(),
            serial: serial_number(16)?,
            not_before,
            not_after,
            extensions,
        },
    )
}

/// The type of the new key (`--key`, or the current key's), or None when
/// the key is kept.
fn new_key_spec(config: &Config, opts: &RenewOptions) -> EngineResult<Option<KeySpec>> {
    match (opts.key, opts.new_key) {
        (Some(_), false) => Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "--key chooses the type of a new key: add --new-key",
        )),
        (Some(s), true) => Ok(Some(s)),
        (None, true) => {
            Ok(Some(KeySpec::from_str(&config.ca.key).map_err(|e| {
                EngineError::Config(format!("ca.key: {e}"))
            })?))
        }
        (None, false) => Ok(None),
    }
}

fn der_of(c: &Certificate) -> EngineResult<Vec<u8>> {
    c.to_der().map_err(|e| EngineError::Config(e.to_string()))
}

/// Renews the root CA certificate (local CA administrator, service stopped).
pub(crate) async fn renew(
    core: &Core,
    actor: &Actor,
    opts: &RenewOptions,
) -> EngineResult<(RenewOutcome, Config)> {
    crate::authz::authorize(core, actor, Op::Configure).await?;
    if !actor.local_admin {
        return Err(EngineError::denied(
            codes::E_ACCESSDENIED,
            "the CA certificate is renewed by the local administrator of the CA home",
        ));
    }
    if core.config.ca.subordinate {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "a subordinate CA renews through its parent: use --csr-out FILE, have the parent \
             sign the request, then 'lockbox ca install'",
        ));
    }
    let (_, old) = core.ca_cert()?;
    let old_key = core.signing_key()?;
    let mut config = core.config.clone();
    let spec = new_key_spec(&config, opts)?;
    let validity = opts.validity.unwrap_or(config.ca.validity);
    let renewal = config.ca.renewal + 1;
    let key_index = config.ca.key_index + u32::from(opts.new_key);

    // The earlier certificate stays in its file; the new one gets its own.
    let earlier = CaGeneration {
        renewal: config.ca.renewal,
        key_index: config.ca.key_index,
        cert_file: config.ca.cert_file.clone(),
        key_file: config.ca.key_file.clone(),
        key_label: config.ca.key_label.clone(),
        key_id: config.ca.key_id.clone(),
    };

    let new_key: Arc<dyn KeyHandle> = match spec {
        Some(spec) => new_ca_key(core, &mut config, spec, key_index)?,
        None => old_key.clone(),
    };
    let not_before = now() - 600;
    let not_after = validity.add_to(not_before)?;
    let version = (key_index << 16) | renewal;
    let cert = ca_certificate(
        new_key.as_ref(),
        old,
        new_key.public_key_info(),
        version,
        (not_before, not_after),
    )?;
    let der = der_of(&cert)?;
    let mut cross_files = Vec::new();
    let old_until = unix_of(&old.tbs_certificate().validity().not_after);
    // Each key certifies the other for as long as the old certificate lasts
    // (none once it has expired).
    if opts.new_key && old_until > not_before {
        let old_to_new = ca_certificate(
            old_key.as_ref(),
            old,
            new_key.public_key_info(),
            version,
            (not_before, old_until.min(not_after)),
        )?;
        let new_to_old = ca_certificate(
            new_key.as_ref(),
            old,
            old_key.public_key_info(),
            version,
            (not_before, old_until.min(not_after)),
        )?;
        for (name, c) in [
            (
                format!("certs/cross-{}-{}.pem", config.ca.key_index, key_index),
                &old_to_new,
            ),
            (
                format!("certs/cross-{}-{}.pem", key_index, config.ca.key_index),
                &new_to_old,
            ),
        ] {
            core.home.write_atomic(
                &name,
                encode_pem("CERTIFICATE", &der_of(c)?).as_bytes(),
                false,
            )?;
            cross_files.push(name);
        }
    }
    let pem = encode_pem("CERTIFICATE", &der);
    // The configuration, saved last, makes the new certificate current.
    config.ca.history.push(earlier);
    config.ca.cert_file = cert_file(renewal);
    config.ca.renewal = renewal;
    config.ca.key_index = key_index;
    if let Some(spec) = spec {
        config.ca.key = spec.to_string();
    }
    config.ca.validity = validity;
    config
        .ca
        .cross_certificates
        .extend(cross_files.iter().cloned());
    core.home
        .write_atomic(&config.ca.cert_file, pem.as_bytes(), false)?;
    let fields = crate::certs::cert_fields(&der)?;
    let audit = crate::audit::chain::success(
        core,
        actor,
        AuditCategory::Config,
        AuditAction::CaRenewed,
        &config.ca.subject,
        &serde_json::json!({
            "renewal": renewal,
            "key_index": key_index,
            "new_key": opts.new_key,
            "serial": fields.serial,
            "not_after": fields.not_after,
            "previous_serial": to_hex(old.tbs_certificate().serial_number().as_bytes()),
            "key_location": config.ca.key_label.clone().unwrap_or_else(|| config.ca.key_file.clone()),
            "cross_certificates": cross_files,
        })
        .to_string(),
    )
    .await;
    core.store.append_audit(&audit).await?;
    core.home.save_config(&config)?;
    Ok((
        RenewOutcome {
            renewal,
            key_index,
            new_key: opts.new_key,
            certificate_pem: pem,
            serial: fields.serial,
            not_after: fields.not_after,
            cross_certificates: cross_files,
        },
        config,
    ))
}

/// Makes the new CA key: on the `[pkcs11]` token when the current key is
/// there, else a key file (encrypted under the CA passphrase when the
/// current one is). Records where it is in `config`.
fn new_ca_key(
    core: &Core,
    config: &mut Config,
    spec: KeySpec,
    k: u32,
) -> EngineResult<Arc<dyn KeyHandle>> {
    if config.ca.key_label.is_some() {
        let token = core.token.as_ref().ok_or_else(|| {
            EngineError::Config("the CA key is on a token but no [pkcs11] module is open".into())
        })?;
        let label = token_label(k);
        if token.has_key(&label)? {
            return Err(EngineError::Conflict(format!(
                "the token already holds a key labelled '{label}'"
            )));
        }
        let key = token.generate(spec, &label, lockbox_crypto::pkcs11::KeyUse::Sign)?;
        config.ca.key_label = Some(key.label().to_string());
        config.ca.key_id = Some(to_hex(key.id()));
        config.ca.key_file = String::new();
        return Ok(Arc::new(key));
    }
    let key: Arc<dyn PrivateKey> = core.keys.generate(spec, "ca")?;
    let pass = if config.ca.key_encrypted {
        passphrase(&core.home, config.ca.passphrase_file.as_deref())?
    } else {
        None
    };
    if config.ca.key_encrypted && pass.is_none() {
        return Err(EngineError::Config(
            "the CA key is kept encrypted: set LOCKBOX_CA_PASSPHRASE for the new key".into(),
        ));
    }
    let pem = key_pem(&*key, pass.as_deref().map(|p| p.as_slice()))?;
    let file = key_file(k);
    core.home.write_atomic(&file, pem.as_bytes(), true)?;
    config.ca.key_file = file;
    Ok(key)
}

/// A subordinate CA's renewal: the request for its parent (PEM), signed by
/// the new key or the current one; the key is kept and named in
/// `ca.pending_renewal` until `ca install` brings the certificate. The CA
/// keeps issuing with its current certificate meanwhile.
pub(crate) async fn request_renewal(
    core: &Core,
    actor: &Actor,
    opts: &RenewOptions,
) -> EngineResult<String> {
    crate::authz::authorize(core, actor, Op::Configure).await?;
    if !actor.local_admin || !core.config.ca.subordinate {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "--csr-out is for a subordinate CA, by the local administrator of its home",
        ));
    }
    if core.config.ca.pending_renewal.is_some() {
        return Err(EngineError::Conflict(
            "a renewal request is already waiting for the parent's certificate: install it \
             with 'lockbox ca install' first"
                .into(),
        ));
    }
    let (_, current) = core.ca_cert()?;
    let mut config = core.config.clone();
    let spec = new_key_spec(&config, opts)?;
    let key_index = config.ca.key_index + u32::from(opts.new_key);
    let key: Arc<dyn KeyHandle> = match spec {
        Some(spec) => new_ca_key(core, &mut config, spec, key_index)?,
        None => core.signing_key()?,
    };
    let csr = crate::certbuild::sign_request(
        key.as_ref(),
        current.tbs_certificate().subject().clone(),
        vec![],
    )?;
    config.ca.pending_renewal = Some(crate::config::PendingRenewal {
        key_index,
        key: spec.map_or_else(|| core.config.ca.key.clone(), |s| s.to_string()),
        key_file: config.ca.key_file.clone(),
        key_label: config.ca.key_label.clone(),
        key_id: config.ca.key_id.clone(),
    });
    // The current key stays the current one until the certificate comes.
    config.ca.key_file = core.config.ca.key_file.clone();
    config.ca.key_label = core.config.ca.key_label.clone();
    config.ca.key_id = core.config.ca.key_id.clone();
    let audit = crate::audit::chain::success(
        core,
        actor,
        AuditCategory::Config,
        AuditAction::CaRenewed,
        &config.ca.subject,
        &serde_json::json!({ "requested": true, "key_index": key_index, "new_key": opts.new_key })
            .to_string(),
    )
    .await;
    core.store.append_audit(&audit).await?;
    core.home.save_config(&config)?;
    Ok(encode_pem("CERTIFICATE REQUEST", &csr))
}

/// Installs the parent's certificate for a pending subordinate renewal: a
/// CA certificate for this CA's name and the pending key, chaining to a
/// root through `parents` (already ordered and verified).
pub(crate) async fn install_renewal(
    core: &mut Core,
    leaf_der: &[u8],
    leaf: &Certificate,
    parents: &[Vec<u8>],
) -> EngineResult<String> {
    let pending = core
        .config
        .ca
        .pending_renewal
        .clone()
        .ok_or_else(|| EngineError::Config("no renewal is pending".into()))?;
    let (_, current) = core.ca_cert()?;
    if !crate::trust::is_signing_ca_certificate(leaf)
        || leaf.tbs_certificate().subject() != current.tbs_certificate().subject()
    {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "the certificate is not a CA certificate for this CA's name (cA, keyCertSign)",
        ));
    }
    let mut c = core.config.clone();
    c.ca.key_file = pending.key_file.clone();
    c.ca.key_label = pending.key_label.clone();
    c.ca.key_id = pending.key_id.clone();
    let source = crate::keysource::CaKeySource::for_config(
        &core.home,
        &c,
        core.keys.clone(),
        core.token.as_ref(),
    )?;
    let key = source.load()?;
    if leaf.tbs_certificate().subject_public_key_info() != key.public_key_info() {
        return Err(EngineError::bad_input(
            codes::E_INVALIDARG,
            "the certificate's public key is not the key of the pending renewal request",
        ));
    }
    let renewal = c.ca.renewal + 1;
    let chain_file = format!("certs/chain-{renewal}.pem");
    let chain_pem: String = parents
        .iter()
        .map(|d| encode_pem("CERTIFICATE", d))
        .collect();
    c.ca.history.push(CaGeneration {
        renewal: core.config.ca.renewal,
        key_index: core.config.ca.key_index,
        cert_file: core.config.ca.cert_file.clone(),
        key_file: core.config.ca.key_file.clone(),
        key_label: core.config.ca.key_label.clone(),
        key_id: core.config.ca.key_id.clone(),
    });
    c.ca.cert_file = cert_file(renewal);
    c.ca.chain_file = chain_file.clone();
    c.ca.renewal = renewal;
    c.ca.key_index = pending.key_index;
    c.ca.key = pending.key.clone();
    c.ca.pending_renewal = None;
    core.home.write_atomic(
        &c.ca.cert_file,
        encode_pem("CERTIFICATE", leaf_der).as_bytes(),
        false,
    )?;
    core.home
        .write_atomic(&chain_file, chain_pem.as_bytes(), false)?;
    let fields = crate::certs::cert_fields(leaf_der)?;
    let audit = crate::audit::chain::audited(
        core,
        vec![lockbox_store::AuditEntry {
            at: now(),
            actor: "lockbox ca install".into(),
            category: AuditCategory::Config.as_str().into(),
            action: AuditAction::CaRenewed.as_str().into(),
            target: c.ca.subject.clone(),
            outcome: "success".into(),
            details: serde_json::json!({
                "renewal": renewal,
                "key_index": pending.key_index,
                "serial": fields.serial,
                "not_after": fields.not_after,
            })
            .to_string(),
        }],
    )
    .await;
    core.store.append_audit(&audit).await?;
    core.home.save_config(&c)?;
    Ok(format!(
        "{} (renewal {renewal}, key {})",
        lockbox_codec::names::dn_string(leaf.tbs_certificate().subject()),
        pending.key_index
    ))
}
