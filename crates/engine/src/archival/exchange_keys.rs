//! Where the CA exchange private keys live: in the database, each sealed
//! (CMS EnvelopedData, AES-256) to the home's **exchange wrapping key**, a
//! P-256 key in `keys/xchg-wrap.key` (encrypted under the CA passphrase when
//! the CA key is). Every node of a CA on one database has a copy of the home,
//! so any node opens the exchange key any other node made; the database alone
//! (a DBA, a stolen dump, a backup without exchange keys) opens none.
//!
//! The envelope's content encryption (CBC) has no integrity of its own, so
//! each sealed key carries an HMAC-SHA-256 tag, keyed from the wrapping key,
//! over the exchange certificate's serial and hash and the envelope. The tag
//! is checked (constant time) before anything is decrypted, and every failure
//! to open is one error: someone who can write the database gets no padding
//! oracle on the wrapping key, and cannot move a sealed key to another
//! certificate.
//!
//! The wrapping key is made with the CA (`lockbox init`, `db migrate`,
//! `restore`), before homes are copied to other nodes; an SQLite home from
//! before it existed gets one when it first needs it, while a PostgreSQL node
//! without it refuses (a key of its own would differ from the other nodes').
//! Exchange keys kept as files (`keys/xchg-SERIAL.key`, the earlier layout)
//! are still read.
//!
//! With `archival.exchange_on_token`, exchange keys are generated on the
//! `[pkcs11]` token instead and never leave it: the database then holds a
//! reference (`lockbox-pkcs11-ref-v1`, then the key's `CKA_ID`), and opening
//! it finds that key on the token and checks it against the certificate, so
//! a reference changed in the database names no key that would be used.
//! Keys of expired exchange certificates are removed from the token.

use std::sync::Arc;

use der::Encode;
use lockbox_codec::hexfmt::to_hex;
use lockbox_crypto::cms::{envelope, open_envelope, OpeningKey, Recipient};
use lockbox_crypto::digest::{hmac_sha256, hmac_sha256_verify, sha256};
use lockbox_crypto::keytransport::KeyTransport;
use lockbox_crypto::symmetric::ContentCipher;
use lockbox_crypto::{KeyHandle, KeyProvider, KeySpec, PrivateKey};
use x509_cert::certificate::Certificate;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use zeroize::Zeroizing;

use crate::certs::{key_pem, load_home_key};
use crate::config::{passphrase, Config, Home};
use crate::core::Core;
use crate::{EngineError, EngineResult};

/// The wrapping key's file in the home. Its name marks it as an exchange
/// key: backups leave it out unless the local administrator asks.
pub(crate) const WRAP_KEY_FILE: &str = "keys/xchg-wrap.key";

/// The recipient name the sealed keys are addressed to (the wrapping key has
/// no certificate; the name only matches envelope and key).
fn wrap_recipient_id() -> EngineResult<(Name, SerialNumber)> {
    let name: Name = std::str::FromStr::from_str("CN=Lockbox exchange key wrap")
        .map_err(|e| EngineError::Config(format!("wrap recipient: {e}")))?;
    let serial = SerialNumber::new(&[1]).map_err(|e| EngineError::Config(e.to_string()))?;
    Ok((name, serial))
}

/// Makes the home's wrapping key when it has none (at `init`, and for homes
/// from before exchange keys moved to the database).
pub(crate) fn ensure_wrap_key(
    home: &Home,
    config: &Config,
    keys: &dyn KeyProvider,
) -> EngineResult<()> {
    if home.path(WRAP_KEY_FILE).is_file() {
        return Ok(());
    }
    let key = keys.generate(KeySpec::P256, "exchange-wrap")?;
    let pass = if config.ca.key_encrypted {
        passphrase(home, config.ca.passphrase_file.as_deref())?
    } else {
        None
    };
    if config.ca.key_encrypted && pass.is_none() {
        return Err(EngineError::Config(
            "the CA keys are kept encrypted: set LOCKBOX_CA_PASSPHRASE to make the exchange wrapping key".into(),
        ));
    }
    let pem = key_pem(&*key, pass.as_deref().map(|p| p.as_slice()))?;
    home.write_atomic(WRAP_KEY_FILE, pem.as_bytes(), true)?;
    Ok(())
}

fn wrap_key(core: &Core) -> EngineResult<Arc<dyn PrivateKey>> {
    if let Some(k) = core.archival.wrap_key.lock().ok().and_then(|k| k.clone()) {
        return Ok(k);
    }
    if !core.home.path(WRAP_KEY_FILE).is_file() {
        if core.store.backend() != lockbox_store::Backend::Sqlite {
            // Nodes share the database: a key made here would differ from
            // every other node's, and their sealed keys would not open.
            return Err(EngineError::Config(format!(
                "this home has no exchange wrapping key ({WRAP_KEY_FILE}); every node of a CA on \
                 PostgreSQL needs the same one: copy it from the home it was made in \
                 (init, db migrate or restore) with the rest of the home"
            )));
        }
        // One home, one database: a home from before the wrapping key existed.
        ensure_wrap_key(&core.home, &core.config, &*core.keys)?;
    }
    let key = load_home_key(
        &*core.keys,
        &core.home,
        WRAP_KEY_FILE,
        core.config.ca.passphrase_file.as_deref(),
    )?;
    if let Ok(mut slot) = core.archival.wrap_key.lock() {
        *slot = Some(key.clone());
    }
    Ok(key)
}

/// Length of the tag in front of a sealed key.
const TAG_LEN: usize = 32;

/// The one error of every failure to open a sealed exchange key.
fn unopenable() -> EngineError {
    EngineError::Config(
        "a stored exchange key does not open with this home's exchange wrapping key".into(),
    )
}

/// The tag key, derived from the wrapping key (HMAC-SHA-256 as a KDF).
fn tag_key(wrap: &dyn PrivateKey) -> EngineResult<Zeroizing<[u8; 32]>> {
    let material = wrap.export_pkcs8()?;
    Ok(Zeroizing::new(hmac_sha256(
        &material,
        b"lockbox exchange key seal: tag key v1",
    )))
}

/// What the tag covers: a label, the certificate's serial and hash, the envelope.
fn tagged(cert_der: &[u8], serial: &str, envelope: &[u8]) -> Vec<u8> {
    let mut m = b"lockbox-xchg-seal-v1\0".to_vec();
    m.extend_from_slice(serial.as_bytes());
    m.push(0);
    m.extend_from_slice(&sha256(cert_der));
    m.extend_from_slice(envelope);
    m
}

/// What a stored exchange key starts with when the key is on the token.
const TOKEN_REF: &[u8] = b"lockbox-pkcs11-ref-v1\0";

/// The token key's `CKA_ID` when a stored exchange key is a reference to a
/// key on the token.
pub(crate) fn token_reference(stored: &[u8]) -> Option<&[u8]> {
    stored.strip_prefix(TOKEN_REF)
}

/// The `CKA_LABEL` of exchange keys generated on the token.
pub(crate) const TOKEN_LABEL: &str = "lockbox-xchg";

/// The token of `[pkcs11]`, for exchange keys on it.
fn token(core: &Core) -> EngineResult<&Arc<lockbox_crypto::pkcs11::Token>> {
    core.token.as_ref().ok_or_else(|| {
        EngineError::Config(
            "archival.exchange_on_token is set (or an exchange key is on a token) but the \
             configuration has no [pkcs11] section"
                .into(),
        )
    })
}

/// A new exchange key: on the token with `archival.exchange_on_token`
/// (decrypt, and sign its own request), else in software.
pub(crate) fn generate(core: &Core, spec: KeySpec) -> EngineResult<Arc<dyn PrivateKey>> {
    if core.config.archival.exchange_on_token {
        let key =
            token(core)?.generate(spec, TOKEN_LABEL, lockbox_crypto::pkcs11::KeyUse::Exchange)?;
        return Ok(Arc::new(key));
    }
    Ok(core.keys.generate(spec, "exchange")?)
}

/// Removes a key made by [`generate`] that was not recorded (another node
/// recorded its exchange certificate first); a software key just goes.
pub(crate) fn discard(core: &Core, key: &dyn PrivateKey) {
    if let (Some(id), Some(token)) = (key.token_id(), core.token.as_ref()) {
        if let Ok(k) = token.key_by_id(&id, TOKEN_LABEL) {
            let _ = k.destroy();
        }
    }
}

/// The exchange key a database reference names on the token, once every
/// check passes: `cert` is an exchange certificate this CA signed (the CA
/// exchange EKU, not the CA's own key), the token key is labelled
/// [`TOKEN_LABEL`], is not the CA key, and is the certificate's key.
/// Someone who can write the database can name only a real exchange key.
/// A check that fails is [`unopenable`]; a token that is away is reported.
fn token_exchange_key(
    core: &Core,
    cert: &Certificate,
    id: &[u8],
) -> EngineResult<lockbox_crypto::pkcs11::TokenKey> {
    let (_, ca) = core.ca_cert()?;
    let spki = cert.tbs_certificate().subject_public_key_info();
    let is_exchange = crate::certs::first_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>(cert)
        .is_some_and(|eku| eku.0.contains(&lockbox_codec::oids::MS_KP_CA_EXCHANGE));
    let ca_id = core
        .config
        .ca
        .key_id
        .as_deref()
        .and_then(|h| hex::decode(h).ok());
    if !is_exchange
        || crate::certs::verify_issued_by(cert, ca).is_err()
        || spki == ca.tbs_certificate().subject_public_key_info()
        || ca_id.as_deref() == Some(id)
    {
        return Err(unopenable());
    }
    let key = token(core)?.key_by_id(id, TOKEN_LABEL)?;
    if key.label() != TOKEN_LABEL || key.public_key_info() != spki {
        return Err(unopenable());
    }
    Ok(key)
}

/// Removes from the token the keys of exchange certificates that have
/// expired (`certs`: serial and DER of every exchange certificate row),
/// each only after [`token_exchange_key`] vouched for it and the
/// certificate's own notAfter has passed; returns the serials removed.
pub(crate) async fn remove_expired_from_token(
    core: &Core,
    certs: &[(String, Vec<u8>)],
) -> EngineResult<Vec<String>> {
    if core.token.is_none() {
        return Ok(vec![]);
    }
    let mut removed = vec![];
    let t = crate::period::now();
    for (serial, der) in certs {
        let Ok(cert) = crate::certbuild::decode_certificate(der) else {
            continue;
        };
        let expired = cert
            .tbs_certificate()
            .validity()
            .not_after
            .to_unix_duration()
            .as_secs() as i64
            <= t;
        if !expired {
            continue;
        }
        let Some(stored) = core.store.exchange_key(serial).await? else {
            continue;
        };
        let Some(id) = stored.strip_prefix(TOKEN_REF) else {
            continue;
        };
        // Gone already (an earlier run, another node), or not a key this
        // reference may name: nothing is removed.
        let Ok(key) = token_exchange_key(core, &cert, id) else {
            continue;
        };
        key.destroy()?;
        if let Ok(mut c) = core.archival.exchange_keys.lock() {
            c.remove(serial);
        }
        removed.push(serial.clone());
    }
    Ok(removed)
}

/// Seals the private key of exchange certificate `cert_der` (serial
/// `serial`, lowercase hex) for the database: tag || envelope; for a key on
/// the token, the reference to it.
pub(crate) fn seal(
    core: &Core,
    key: &dyn PrivateKey,
    cert_der: &[u8],
    serial: &str,
) -> EngineResult<Vec<u8>> {
    if let Some(id) = key.token_id() {
        // It has signed its own request: from now on it only decrypts.
        if let Ok(k) = token(core)?.key_by_id(&id, TOKEN_LABEL) {
            if let Err(e) = k.stop_signing() {
                tracing::warn!(error = %e, "the exchange key on the token keeps CKA_SIGN");
            }
        }
        let mut reference = TOKEN_REF.to_vec();
        reference.extend_from_slice(&id);
        return Ok(reference);
    }
    let wrap = wrap_key(core)?;
    let (issuer, rid_serial) = wrap_recipient_id()?;
    let pkcs8 = key.export_pkcs8()?;
    let env = envelope(
        &pkcs8,
        &[Recipient {
            issuer,
            serial: rid_serial,
            spki: wrap.public_key_info().clone(),
        }],
        ContentCipher::Aes256Cbc,
        KeyTransport::RsaOaepSha256,
    )?;
    let tag = hmac_sha256(&*tag_key(&*wrap)?, &tagged(cert_der, serial, &env));
    let mut sealed = tag.to_vec();
    sealed.extend_from_slice(&env);
    Ok(sealed)
}

/// Opens a sealed exchange key and checks it is the key of `cert`: the tag
/// first (nothing is decrypted under a bad tag), then the envelope, then the
/// key against the certificate; every failure is [`unopenable`].
fn open(
    core: &Core,
    sealed: &[u8],
    cert: &Certificate,
    serial: &str,
) -> EngineResult<Arc<dyn PrivateKey>> {
    if let Some(id) = sealed.strip_prefix(TOKEN_REF) {
        // Token failures are reported as they are (503 when it is away);
        // a key the reference may not name is the one error.
        return Ok(Arc::new(token_exchange_key(core, cert, id)?));
    }
    let wrap = wrap_key(core)?;
    let cert_der = cert.to_der().map_err(|_| unopenable())?;
    if sealed.len() <= TAG_LEN {
        return Err(unopenable());
    }
    let (tag, env) = sealed.split_at(TAG_LEN);
    if !hmac_sha256_verify(&*tag_key(&*wrap)?, &tagged(&cert_der, serial, env), tag) {
        return Err(unopenable());
    }
    let (issuer, rid_serial) = wrap_recipient_id()?;
    let pkcs8 = open_envelope(
        env,
        &[OpeningKey {
            issuer: &issuer,
            serial: &rid_serial,
            key: wrap.as_ref(),
        }],
    )
    .map_err(|_| unopenable())?;
    let key = core.keys.load_pkcs8_der(&pkcs8).map_err(|_| unopenable())?;
    if key.public_key_info() != cert.tbs_certificate().subject_public_key_info() {
        return Err(unopenable());
    }
    Ok(key)
}

/// The private key of exchange certificate `cert`: cached, else from the
/// database, else from a key file of the earlier layout.
pub(crate) async fn exchange_key(
    core: &Core,
    cert: &Certificate,
) -> EngineResult<Arc<dyn PrivateKey>> {
    let serial = to_hex(cert.tbs_certificate().serial_number().as_bytes());
    if let Some(k) = core
        .archival
        .exchange_keys
        .lock()
        .ok()
        .and_then(|c| c.get(&serial).cloned())
    {
        return Ok(k);
    }
    let key = match core.store.exchange_key(&serial).await? {
        Some(sealed) => open(core, &sealed, cert, &serial)?,
        None => load_home_key(
            &*core.keys,
            &core.home,
            &legacy_file(&serial),
            core.config.ca.passphrase_file.as_deref(),
        )?,
    };
    if let Ok(mut c) = core.archival.exchange_keys.lock() {
        c.insert(serial, key.clone());
    }
    Ok(key)
}

/// The key file of an exchange key kept in the home (the earlier layout).
pub(crate) fn legacy_file(serial: &str) -> String {
    format!("keys/xchg-{serial}.key")
}

/// Serials of exchange certificates whose key this CA holds (database or file).
pub(crate) async fn held(core: &Core) -> EngineResult<std::collections::HashSet<String>> {
    let mut serials: std::collections::HashSet<String> = core
        .store
        .exchange_key_serials()
        .await?
        .into_iter()
        .collect();
    if let Ok(rd) = std::fs::read_dir(core.home.path("keys")) {
        for e in rd.flatten() {
            if let Some(serial) = e
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("xchg-"))
                .and_then(|n| n.strip_suffix(".key"))
            {
                serials.insert(serial.to_string());
            }
        }
    }
    Ok(serials)
}

/// Moves exchange keys kept as files (the earlier layout) into the database,
/// sealed; the files stay (a backup or an older build may want them).
pub(crate) async fn seal_key_files(core: &Core) -> EngineResult<usize> {
    let stored: std::collections::HashSet<String> = core
        .store
        .exchange_key_serials()
        .await?
        .into_iter()
        .collect();
    let mut changes = vec![];
    for serial in held(core).await? {
        if stored.contains(&serial) {
            continue;
        }
        let Some(row) = core.store.get_by_serial(&serial).await? else {
            continue;
        };
        let Some(cert) = row.cert else { continue };
        let key = load_home_key(
            &*core.keys,
            &core.home,
            &legacy_file(&serial),
            core.config.ca.passphrase_file.as_deref(),
        )?;
        let cert = crate::certbuild::decode_certificate(&cert.cert_der)?;
        if key.public_key_info() != cert.tbs_certificate().subject_public_key_info() {
            continue;
        }
        let cert_der = cert
            .to_der()
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let sealed_key = seal(core, &*key, &cert_der, &serial)?;
        changes.push(lockbox_store::Change::PutExchangeKey {
            serial,
            sealed_key,
            at: crate::period::now(),
        });
    }
    if !changes.is_empty() {
        core.store.apply(&changes, &[]).await?;
    }
    Ok(changes.len())
}

/// The private key of the current exchange certificate (or of the one with
/// `serial`), as PEM (encrypted under the CA passphrase when the CA key is),
/// for offline diagnosis of archival requests (`lockbox dump --key`). Only
/// the local administrator may have it: whoever holds it opens captured
/// archival requests without a KRA. Audited.
pub(crate) async fn export(
    core: &Core,
    actor: &crate::Actor,
    serial: Option<&str>,
) -> EngineResult<zeroize::Zeroizing<String>> {
    crate::authz::authorize(core, actor, crate::Op::Configure).await?;
    if !actor.local_admin {
        let e = EngineError::Forbidden(
            "only the local administrator (lockbox --home) may export a CA exchange key".into(),
        );
        let _ = crate::audit::chain::audit_refusal(
            core,
            actor,
            crate::category::AuditCategory::Keys,
            crate::category::AuditAction::ExportExchangeKey,
            serial.unwrap_or("current"),
            &e,
        )
        .await;
        return Err(e);
    }
    let der = match serial {
        Some(s) => core
            .store
            .get_by_serial(&s.to_ascii_lowercase())
            .await?
            .filter(|r| r.template.as_deref() == Some("CAExchange"))
            .and_then(|r| r.cert)
            .map(|c| c.cert_der)
            .ok_or_else(|| {
                EngineError::NotFound(format!("no exchange certificate with serial {s}"))
            })?,
        None => crate::archival::exchange::current_exchange_certificate(core).await?,
    };
    let cert = crate::certbuild::decode_certificate(&der)?;
    let key = exchange_key(core, &cert).await?;
    let pass = if core.config.ca.key_encrypted {
        passphrase(&core.home, core.config.ca.passphrase_file.as_deref())?
    } else {
        None
    };
    let pem = key_pem(&*key, pass.as_deref().map(|p| p.as_slice()))?;
    let audit = crate::audit::chain::audit_entry(
        core,
        actor,
        crate::category::AuditCategory::Keys,
        crate::category::AuditAction::ExportExchangeKey,
        &to_hex(cert.tbs_certificate().serial_number().as_bytes()),
        "{}",
    );
    core.store.append_audit(&audit).await?;
    Ok(pem)
}
