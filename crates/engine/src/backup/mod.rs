//! Backup and restore of a CA home: database, keys and configuration in one
//! consistent set (seed 004: the CA and the key store are backed up together,
//! or revocation and archive state diverge).
//!
//! Layout of a backup directory:
//! - `ca.db`: an online snapshot of the database (`VACUUM INTO`, one read transaction);
//! - `keys/*.key`, `tls/server.key`: every private key, re-encrypted as PKCS#8
//!   PBES2 (PBKDF2-SHA256, AES-256-CBC) under the backup passphrase, except the
//!   CA exchange keys (`keys/xchg-*.key`): whoever holds them could open captured
//!   archival requests without a KRA, so they stay out unless the local
//!   administrator asks for them ([`BackupOptions::include_exchange_keys`]); a
//!   restored CA makes a new exchange certificate;
//! - `lockbox.toml`, `certs/*`, `tls/server.pem`, `tls/hosts`: copied;
//! - `audit-heads.log`: the signed audit heads kept outside the database,
//!   read before the snapshot (so every head it holds is in the copy);
//! - `manifest.json`: format, time, CA, audit head at the snapshot and the
//!   SHA-256 and size of every file above.
//!
//! The database is copied before the keys: the CA writes a key file before
//! the row that refers to it, so every key the snapshot names is in the set.

pub(crate) mod pack;
pub(crate) mod restore;

pub use pack::{pack, unpack};
pub use restore::{restore, restore_into, verify_backup, RestoreReport};

use std::fs;
use std::path::Path;

use lockbox_codec::hexfmt::to_hex;
use lockbox_codec::pem::encode_pem;
use lockbox_crypto::digest::sha256;
use lockbox_crypto::pkcs8enc::encrypt_pkcs8;
use lockbox_store::{SqliteStore, Store};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::category::{AuditAction, AuditCategory};
use crate::certs::load_key;
use crate::config::{passphrase, Home, CONFIG_FILE};
use crate::core::Core;
use crate::period::now;
use crate::{Actor, EngineError, EngineResult, Op};

/// The manifest's format marker.
pub const FORMAT: &str = "lockbox-backup/1";

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";

const DB_FILE: &str = "ca.db";

/// One file of a backup.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackupFile {
    /// Path inside the backup directory.
    pub path: String,
    /// `database`, `key` (encrypted under the backup passphrase) or `file`.
    pub kind: String,
    /// SHA-256 of the content (hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// What a backup holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// When the snapshot was taken (unix seconds).
    pub created_at: i64,
    /// CA name.
    pub ca_name: String,
    /// SHA-256 of the CA certificate (hex), if the CA has one.
    pub ca_certificate_sha256: Option<String>,
    /// Number of audit records in the snapshot (the backup's own record is the last).
    pub audit_records: i64,
    /// Hash of the last audit record in the snapshot.
    pub audit_head: String,
    /// Every file, with its hash.
    pub files: Vec<BackupFile>,
    /// Keys on a PKCS#11 token, which a backup does not (cannot) copy: the
    /// token itself has to be kept (its own backup, a second HSM); verify
    /// and restore check that the configured token holds each of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys_on_token: Vec<TokenKeyEntry>,
}

/// A key left on its token by a backup.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenKeyEntry {
    /// `ca`, or `exchange` (with the certificate serial).
    pub role: String,
    /// The exchange certificate's serial (exchange keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// The token's label.
    pub token_label: String,
    /// The key's `CKA_LABEL`.
    pub key_label: String,
    /// The key's `CKA_ID` (hex).
    pub key_id: String,
    /// Why it is not in the backup.
    pub note: String,
}

/// The CA's keys on its token (CA key, exchange keys), for the manifest.
async fn keys_on_token(core: &Core) -> EngineResult<Vec<TokenKeyEntry>> {
    let mut out = vec![];
    let note = "kept on the token, not copied: back up the token itself".to_string();
    if let crate::keysource::KeyLocation::Token {
        token_label,
        key_label,
        key_id,
        ..
    } = core.ca_key.location(&core.config)
    {
        out.push(TokenKeyEntry {
            role: "ca".into(),
            serial: None,
            token_label,
            key_label,
            key_id,
            note: note.clone(),
        });
    }
    if let Some(token) = &core.token {
        for serial in core.store.exchange_key_serials().await? {
            let Some(stored) = core.store.exchange_key(&serial).await? else {
                continue;
            };
            if let Some(id) = crate::archival::exchange_keys::token_reference(&stored) {
                out.push(TokenKeyEntry {
                    role: "exchange".into(),
                    serial: Some(serial),
                    token_label: token.label().to_string(),
                    key_label: crate::archival::exchange_keys::TOKEN_LABEL.into(),
                    key_id: to_hex(id),
                    note: note.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Options of [`Ca::backup_with`].
#[derive(Clone, Copy, Debug, Default)]
pub struct BackupOptions {
    /// Also copy the CA exchange private keys (`keys/xchg-*.key`). Only the
    /// local administrator may ask for them: a Backup Operator holding them
    /// could decrypt captured archival requests without a KRA.
    pub include_exchange_keys: bool,
}

/// Whether a home-relative key path is a CA exchange key.
fn is_exchange_key(rel: &str) -> bool {
    rel.strip_prefix("keys/xchg-")
        .is_some_and(|r| r.ends_with(".key"))
}

/// The result of checking a backup.
#[derive(Clone, Debug, Serialize)]
pub struct BackupCheck {
    /// The manifest.
    pub manifest: Manifest,
    /// Files whose hash and size match.
    pub files_ok: usize,
    /// Keys decrypted and matched to their certificates.
    pub keys_ok: usize,
    /// Findings (empty: the backup is sound).
    pub problems: Vec<String>,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> EngineError {
    EngineError::io(what)
}

fn entry(dir: &Path, rel: &str, kind: &str) -> EngineResult<BackupFile> {
    let data = fs::read(dir.join(rel)).map_err(io(format!("reading {rel}")))?;
    Ok(BackupFile {
        path: rel.to_string(),
        kind: kind.into(),
        sha256: to_hex(&sha256(&data)),
        size: data.len() as u64,
    })
}

/// Relative names of the regular files in `home/sub`, sorted.
fn files_in(root: &Path, sub: &str) -> EngineResult<Vec<String>> {
    let dir = root.join(sub);
    let mut out = vec![];
    match fs::read_dir(&dir) {
        Ok(rd) => {
            for e in rd {
                let e = e.map_err(io(format!("listing {}", dir.display())))?;
                if e.file_type().map(|t| t.is_file()).unwrap_or(false) {
                    if let Some(n) = e.file_name().to_str() {
                        out.push(format!("{sub}/{n}"));
                    }
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(EngineError::io(format!("listing {}", dir.display()))(e)),
    }
    out.sort();
    Ok(out)
}

/// A directory that is absent or empty.
fn is_empty_dir(p: &Path) -> bool {
    match fs::read_dir(p) {
        Ok(mut rd) => rd.next().is_none(),
        Err(_) => !p.exists(),
    }
}

/// Opens a throw-away copy of a database file (the original stays untouched:
/// opening runs migrations and creates WAL files).
async fn open_copy(db: &Path) -> EngineResult<(tempfile::TempDir, SqliteStore)> {
    let tmp = tempfile::tempdir().map_err(io("creating a temporary directory".into()))?;
    let copy = tmp.path().join(DB_FILE);
    fs::copy(db, &copy).map_err(io(format!("copying {}", db.display())))?;
    let store = SqliteStore::open(&copy, crate::audit::chain_hash).await?;
    Ok((tmp, store))
}

/// Count and last hash of the audit chain in a database file (opened on a copy).
async fn audit_head(db: &Path) -> EngineResult<(i64, String)> {
    let (_tmp, store) = open_copy(db).await?;
    store.integrity_check().await?;
    let (mut n, mut head, mut from) = (0i64, lockbox_store::GENESIS_HASH.to_string(), 0i64);
    loop {
        let page = store.audit_records(from, 1000).await?;
        let Some(last) = page.last() else { break };
        n += page.len() as i64;
        head = last.hash.clone();
        from = last.seq + 1;
    }
    Ok((n, head))
}

/// Takes an online, consistent backup into `out` (absent or empty),
/// without the CA exchange keys.
pub(crate) async fn backup(
    core: &Core,
    actor: &Actor,
    out: &Path,
    backup_passphrase: &[u8],
) -> EngineResult<Manifest> {
    backup_with(
        core,
        actor,
        out,
        backup_passphrase,
        BackupOptions::default(),
    )
    .await
}

/// [`Ca::backup`] with options.
pub(crate) async fn backup_with(
    core: &Core,
    actor: &Actor,
    out: &Path,
    backup_passphrase: &[u8],
    options: BackupOptions,
) -> EngineResult<Manifest> {
    check_backup_request(core, actor, out, backup_passphrase, &options).await?;
    crate::config::create_private_dir(out)?;
    crate::config::make_dir_private(out)?;
    let dest = Home::new(out);
    // The backup's own record goes in first, so the snapshot carries it.
    record_backup(core, actor, out, &options).await?;
    // The signed heads kept outside the database are read before the
    // snapshot, so every head in the copy names a record the copy holds.
    let heads = read_heads_file(core)?;
    core.store.snapshot(&out.join(DB_FILE)).await?;
    let mut files = vec![entry(out, DB_FILE, "database")?];
    // Keys after the database (see the module documentation).
    let home = core.home.root().to_path_buf();
    files.extend(copy_keys(
        core,
        &home,
        out,
        &dest,
        backup_passphrase,
        &options,
    )?);
    files.extend(copy_plain_files(&home, out, &dest)?);
    if let Some(data) = heads {
        dest.write_atomic(crate::audit::HEADS_FILE, &data, true)?;
        files.push(entry(out, crate::audit::HEADS_FILE, "file")?);
    }
    write_manifest(core, out, &dest, files).await
}

/// The checks before a backup starts, in order: the caller may back up; only
/// the local administrator may include the exchange keys (refusal audited);
/// the passphrase has at least 8 characters; `out` is absent or empty.
async fn check_backup_request(
    core: &Core,
    actor: &Actor,
    out: &Path,
    backup_passphrase: &[u8],
    options: &BackupOptions,
) -> EngineResult<()> {
    crate::authz::authorize(core, actor, Op::Backup).await?;
    if options.include_exchange_keys && !actor.local_admin {
        let e = EngineError::Forbidden(
            "only the local administrator (lockbox --home) may include the CA exchange keys in a backup".into(),
        );
        crate::audit::chain::audit_refusal(
            core,
            actor,
            AuditCategory::Backup,
            AuditAction::Backup,
            &out.display().to_string(),
            &e,
        )
        .await?;
        return Err(e);
    }
    if backup_passphrase.len() < 8 {
        return Err(EngineError::bad_input(
            crate::codes::E_INVALIDARG,
            "the backup passphrase must have at least 8 characters",
        ));
    }
    if !is_empty_dir(out) {
        return Err(EngineError::Conflict(format!(
            "{} exists and is not empty: back up into a new directory",
            out.display()
        )));
    }
    Ok(())
}

/// Appends the backup's own audit record.
async fn record_backup(
    core: &Core,
    actor: &Actor,
    out: &Path,
    options: &BackupOptions,
) -> EngineResult<()> {
    let details = serde_json::json!({ "exchange_keys": options.include_exchange_keys }).to_string();
    let audit = crate::audit::chain::success(
        core,
        actor,
        AuditCategory::Backup,
        AuditAction::Backup,
        &out.display().to_string(),
        &details,
    )
    .await;
    core.store.append_audit(&audit).await?;
    Ok(())
}

/// The signed-heads file kept outside the database, when there is one.
fn read_heads_file(core: &Core) -> EngineResult<Option<Vec<u8>>> {
    let heads_file = core.home.path(crate::audit::HEADS_FILE);
    match fs::read(&heads_file) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(format!("reading {}", heads_file.display()))(e)),
    }
}

/// Writes the manifest last: the files copied and the copied database's audit head.
async fn write_manifest(
    core: &Core,
    out: &Path,
    dest: &Home,
    files: Vec<BackupFile>,
) -> EngineResult<Manifest> {
    let (records, head) = audit_head(&out.join(DB_FILE)).await?;
    let manifest = Manifest {
        format: FORMAT.into(),
        created_at: now(),
        ca_name: core.config.ca.name.clone(),
        ca_certificate_sha256: core.ca_certificate_der().ok().map(|d| to_hex(&sha256(&d))),
        audit_records: records,
        audit_head: head,
        files,
        keys_on_token: keys_on_token(core).await?,
    };
    let json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| EngineError::Config(e.to_string()))?;
    dest.write_atomic(MANIFEST, &json, false)?;
    Ok(manifest)
}

/// Copies the key files (the exchange keys only when asked), re-encrypted
/// with the backup passphrase.
fn copy_keys(
    core: &Core,
    home: &Path,
    out: &Path,
    dest: &Home,
    backup_passphrase: &[u8],
    options: &BackupOptions,
) -> EngineResult<Vec<BackupFile>> {
    let mut files = Vec::new();
    let ca_pass = passphrase(&core.home, core.config.ca.passphrase_file.as_deref())?;
    let mut key_files = files_in(home, "keys")?;
    if !options.include_exchange_keys {
        key_files.retain(|rel| !is_exchange_key(rel));
    }
    if home.join("tls/server.key").is_file() {
        key_files.push("tls/server.key".into());
    }
    for rel in &key_files {
        let bytes = Zeroizing::new(fs::read(home.join(rel)).map_err(io(format!("reading {rel}")))?);
        let key = load_key(
            &*core.keys,
            &bytes,
            ca_pass.as_deref().map(|p| p.as_slice()),
        )
        .map_err(|e| EngineError::Config(format!("{rel}: {e}")))?;
        let enc = encrypt_pkcs8(&key.export_pkcs8()?, backup_passphrase)?;
        dest.write_atomic(
            rel,
            encode_pem("ENCRYPTED PRIVATE KEY", &enc).as_bytes(),
            true,
        )?;
        files.push(entry(out, rel, "key")?);
    }
    Ok(files)
}

/// Copies the configuration, the certificates and the TLS identity's public
/// files as they are.
fn copy_plain_files(home: &Path, out: &Path, dest: &Home) -> EngineResult<Vec<BackupFile>> {
    let mut files = Vec::new();
    let mut plain = vec![CONFIG_FILE.to_string()];
    plain.extend(files_in(home, "certs")?);
    for rel in ["tls/server.pem", "tls/hosts"] {
        if home.join(rel).is_file() {
            plain.push(rel.into());
        }
    }
    for rel in &plain {
        let data = fs::read(home.join(rel)).map_err(io(format!("reading {rel}")))?;
        dest.write_atomic(rel, &data, rel == CONFIG_FILE)?;
        files.push(entry(out, rel, "file")?);
    }
    Ok(files)
}
