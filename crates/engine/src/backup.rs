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

use std::fs;
use std::path::{Path, PathBuf};

use lockbox_codec::hexfmt::to_hex;
use lockbox_codec::pem::{decode_input, encode_pem};
use lockbox_crypto::digest::sha256;
use lockbox_crypto::pkcs8enc::{decrypt_pkcs8, encrypt_pkcs8};
use lockbox_crypto::{KeyHandle, SoftwareKey};
use lockbox_store::{SqliteStore, Store};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::authz::{Actor, Op};
use crate::ca::{load_private_key, Ca};
use crate::certbuild::decode_certificate;
use crate::config::{passphrase, Home, CONFIG_FILE};
use crate::error::{EngineError, EngineResult};
use crate::period::now;

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

impl Ca {
    /// Takes an online, consistent backup into `out` (absent or empty),
    /// without the CA exchange keys.
    pub async fn backup(
        &self,
        actor: &Actor,
        out: &Path,
        backup_passphrase: &[u8],
    ) -> EngineResult<Manifest> {
        self.backup_with(actor, out, backup_passphrase, BackupOptions::default())
            .await
    }

    /// [`Ca::backup`] with options.
    pub async fn backup_with(
        &self,
        actor: &Actor,
        out: &Path,
        backup_passphrase: &[u8],
        options: BackupOptions,
    ) -> EngineResult<Manifest> {
        self.authorize(actor, Op::Backup).await?;
        if options.include_exchange_keys && !actor.local_admin {
            let e = EngineError::Forbidden(
                "only the local administrator (lockbox --home) may include the CA exchange keys in a backup".into(),
            );
            self.audit_refusal(actor, "backup", "backup", &out.display().to_string(), &e)
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
        crate::config::create_private_dir(out)?;
        crate::config::make_dir_private(out)?;
        let dest = Home::new(out);
        // The backup's own record goes in first, so the snapshot carries it.
        let details =
            serde_json::json!({ "exchange_keys": options.include_exchange_keys }).to_string();
        let audit = self
            .audited(self.audit_entry(
                actor,
                "backup",
                "backup",
                &out.display().to_string(),
                &details,
            ))
            .await;
        self.store.append_audit(&audit).await?;
        // The signed heads kept outside the database are read before the
        // snapshot, so every head in the copy names a record the copy holds.
        let heads_file = self.home.path(crate::audit::HEADS_FILE);
        let heads = match fs::read(&heads_file) {
            Ok(d) => Some(d),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(format!("reading {}", heads_file.display()))(e)),
        };
        self.store.snapshot(&out.join(DB_FILE)).await?;
        let mut files = vec![entry(out, DB_FILE, "database")?];
        // Keys after the database (see the module documentation).
        let home = self.home.root().to_path_buf();
        let ca_pass = passphrase(&self.home, self.config.ca.passphrase_file.as_deref())?;
        let mut key_files = files_in(&home, "keys")?;
        if !options.include_exchange_keys {
            key_files.retain(|rel| !is_exchange_key(rel));
        }
        if home.join("tls/server.key").is_file() {
            key_files.push("tls/server.key".into());
        }
        for rel in &key_files {
            let bytes =
                Zeroizing::new(fs::read(home.join(rel)).map_err(io(format!("reading {rel}")))?);
            let key = load_private_key(&bytes, ca_pass.as_deref().map(|p| p.as_slice()))
                .map_err(|e| EngineError::Config(format!("{rel}: {e}")))?;
            let enc = encrypt_pkcs8(key.pkcs8_der(), backup_passphrase)?;
            dest.write_atomic(
                rel,
                encode_pem("ENCRYPTED PRIVATE KEY", &enc).as_bytes(),
                true,
            )?;
            files.push(entry(out, rel, "key")?);
        }
        let mut plain = vec![CONFIG_FILE.to_string()];
        plain.extend(files_in(&home, "certs")?);
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
        if let Some(data) = heads {
            dest.write_atomic(crate::audit::HEADS_FILE, &data, true)?;
            files.push(entry(out, crate::audit::HEADS_FILE, "file")?);
        }
        let (records, head) = audit_head(&out.join(DB_FILE)).await?;
        let manifest = Manifest {
            format: FORMAT.into(),
            created_at: now(),
            ca_name: self.config.ca.name.clone(),
            ca_certificate_sha256: self.ca_certificate_der().ok().map(|d| to_hex(&sha256(&d))),
            audit_records: records,
            audit_head: head,
            files,
        };
        let json =
            serde_json::to_vec_pretty(&manifest).map_err(|e| EngineError::Config(e.to_string()))?;
        dest.write_atomic(MANIFEST, &json, false)?;
        Ok(manifest)
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

/// Checks a backup without restoring it: manifest format, every file's hash and
/// size, no unlisted file, database integrity, and (with the passphrase) that
/// every key decrypts and matches its certificate.
pub async fn verify_backup(dir: &Path, backup_passphrase: &[u8]) -> EngineResult<BackupCheck> {
    let raw = fs::read(dir.join(MANIFEST))
        .map_err(io(format!("reading {}", dir.join(MANIFEST).display())))?;
    let manifest: Manifest = serde_json::from_slice(&raw).map_err(|e| {
        EngineError::bad_input(crate::codes::E_INVALIDARG, format!("manifest.json: {e}"))
    })?;
    if manifest.format != FORMAT {
        return Err(EngineError::bad_input(
            crate::codes::E_INVALIDARG,
            format!("unknown backup format '{}'", manifest.format),
        ));
    }
    let mut problems = vec![];
    let mut files_ok = 0;
    let mut listed = std::collections::BTreeSet::new();
    for f in &manifest.files {
        if f.path.contains("..") || f.path.starts_with('/') {
            problems.push(format!("{}: path leaves the backup directory", f.path));
            continue;
        }
        listed.insert(f.path.clone());
        match fs::read(dir.join(&f.path)) {
            Ok(d) if d.len() as u64 == f.size && to_hex(&sha256(&d)) == f.sha256 => files_ok += 1,
            Ok(_) => problems.push(format!("{}: content differs from the manifest", f.path)),
            Err(_) => problems.push(format!("{}: missing", f.path)),
        }
    }
    for sub in ["keys", "certs", "tls"] {
        for rel in files_in(dir, sub)? {
            if !listed.contains(&rel) {
                problems.push(format!("{rel}: not in the manifest"));
            }
        }
    }
    let mut keys_ok = 0;
    if problems.is_empty() {
        let checks = key_checks(dir, &manifest, backup_passphrase).await;
        match checks {
            Ok((n, mut p)) => {
                keys_ok = n;
                problems.append(&mut p);
            }
            Err(e) => problems.push(e.to_string()),
        }
        match audit_head(&dir.join(DB_FILE)).await {
            Ok((n, h)) if n == manifest.audit_records && h == manifest.audit_head => {}
            Ok((n, _)) => problems.push(format!(
                "the database's audit chain ({n} records) differs from the manifest ({})",
                manifest.audit_records
            )),
            Err(e) => problems.push(format!("database: {e}")),
        }
    }
    Ok(BackupCheck {
        manifest,
        files_ok,
        keys_ok,
        problems,
    })
}

fn decrypt_key(dir: &Path, rel: &str, pass: &[u8]) -> EngineResult<SoftwareKey> {
    let text = fs::read(dir.join(rel)).map_err(io(format!("reading {rel}")))?;
    let d = decode_input(&text).map_err(|e| EngineError::Config(format!("{rel}: {e}")))?;
    let pkcs8 = decrypt_pkcs8(&d.der, pass).map_err(|_| {
        EngineError::bad_input(
            crate::codes::E_INVALIDARG,
            format!("{rel}: cannot decrypt (wrong backup passphrase?)"),
        )
    })?;
    SoftwareKey::from_pkcs8_der(&pkcs8).map_err(|e| EngineError::Config(format!("{rel}: {e}")))
}

fn cert_spki(dir: &Path, rel: &str) -> EngineResult<spki::SubjectPublicKeyInfoOwned> {
    let pem = fs::read(dir.join(rel)).map_err(io(format!("reading {rel}")))?;
    let der = decode_input(&pem)
        .map_err(|e| EngineError::Config(format!("{rel}: {e}")))?
        .der;
    Ok(decode_certificate(&der)?
        .tbs_certificate()
        .subject_public_key_info()
        .clone())
}

/// Every key decrypts; the CA and TLS keys match their certificate files and
/// each exchange key matches its certificate in the snapshot.
async fn key_checks(
    dir: &Path,
    manifest: &Manifest,
    pass: &[u8],
) -> EngineResult<(usize, Vec<String>)> {
    let config: crate::config::Config = toml::from_str(
        &fs::read_to_string(dir.join(CONFIG_FILE)).map_err(io("reading lockbox.toml".into()))?,
    )
    .map_err(|e| EngineError::Config(format!("lockbox.toml: {e}")))?;
    let (_tmp, store) = open_copy(&dir.join(DB_FILE)).await?;
    let (mut ok, mut problems) = (0, vec![]);
    for f in manifest.files.iter().filter(|f| f.kind == "key") {
        let key = match decrypt_key(dir, &f.path, pass) {
            Ok(k) => k,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        let expected = if f.path == config.ca.key_file {
            if dir.join(&config.ca.cert_file).is_file() {
                Some(cert_spki(dir, &config.ca.cert_file)?)
            } else {
                None // a subordinate CA still waiting for its certificate
            }
        } else if f.path == "tls/server.key" {
            Some(cert_spki(dir, "tls/server.pem")?)
        } else if let Some(serial) = f
            .path
            .strip_prefix("keys/xchg-")
            .and_then(|s| s.strip_suffix(".key"))
        {
            match store.get_by_serial(serial).await? {
                Some(rec) => match rec.cert {
                    Some(c) => Some(
                        decode_certificate(&c.cert_der)?
                            .tbs_certificate()
                            .subject_public_key_info()
                            .clone(),
                    ),
                    None => None,
                },
                None => {
                    // written just after the snapshot: harmless, but say so
                    problems.push(format!(
                        "{}: no exchange certificate in the snapshot",
                        f.path
                    ));
                    continue;
                }
            }
        } else {
            None
        };
        match expected {
            Some(spki) if &spki != key.public_key_info() => {
                problems.push(format!("{}: does not match its certificate", f.path))
            }
            _ => ok += 1,
        }
    }
    Ok((ok, problems))
}

/// What a restore did.
#[derive(Clone, Debug, Serialize)]
pub struct RestoreReport {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// Where an existing home was moved (with `--force`).
    pub previous_home_moved_to: Option<PathBuf>,
    /// Audit records after the restore (the restore's own is the last).
    pub audit_records: i64,
    /// KRA certificates and their status after the restore.
    pub kras: Vec<(String, String)>,
    /// Post-restore findings (empty: database, audit chain, keys and KRAs are sound).
    pub problems: Vec<String>,
}

/// Restores a backup into `home` (absent or empty; with `force`, an existing
/// home is moved aside, never deleted), then checks the result.
pub async fn restore(
    dir: &Path,
    home: &Path,
    backup_passphrase: &[u8],
    force: bool,
    who: &str,
) -> EngineResult<RestoreReport> {
    let check = verify_backup(dir, backup_passphrase).await?;
    if !check.problems.is_empty() {
        return Err(EngineError::bad_input(
            crate::codes::E_INVALIDARG,
            format!("the backup does not verify: {}", check.problems.join("; ")),
        ));
    }
    let mut moved = None;
    if !is_empty_dir(home) {
        if !force {
            return Err(EngineError::Conflict(format!(
                "{} is not empty: restore into a new directory, or give --force to move the existing home aside",
                home.display()
            )));
        }
        let aside = PathBuf::from(format!("{}.before-restore-{}", home.display(), now()));
        fs::rename(home, &aside).map_err(io(format!("moving {} aside", home.display())))?;
        moved = Some(aside);
    }
    crate::config::create_private_dir(home)?;
    crate::config::make_dir_private(home)?;
    let target = Home::new(home);
    for f in check.manifest.files.iter().filter(|f| f.kind == "file") {
        let data = fs::read(dir.join(&f.path)).map_err(io(format!("reading {}", f.path)))?;
        target.write_atomic(
            &f.path,
            &data,
            f.path == CONFIG_FILE || f.path == crate::audit::HEADS_FILE,
        )?;
    }
    let config = target.load_config()?;
    let ca_pass = passphrase(&target, config.ca.passphrase_file.as_deref())?;
    if config.ca.key_encrypted && ca_pass.is_none() {
        return Err(EngineError::Config(
            "the CA keys are kept encrypted: set LOCKBOX_CA_PASSPHRASE or LOCKBOX_CA_PASSPHRASE_FILE for the restore".into(),
        ));
    }
    for f in check.manifest.files.iter().filter(|f| f.kind == "key") {
        let key = decrypt_key(dir, &f.path, backup_passphrase)?;
        let pass = if config.ca.key_encrypted && f.path != "tls/server.key" {
            ca_pass.as_deref().map(|p| p.as_slice())
        } else {
            None
        };
        let pem = crate::ca::key_pem(&key, pass)?;
        target.write_atomic(&f.path, pem.as_bytes(), true)?;
    }
    let db_path = crate::ca::database_path(&target, &config)?;
    if !db_path.starts_with(home) {
        return Err(EngineError::Config(format!(
            "the database path {} is outside the home: restore needs it inside (database.url = \"sqlite:ca.db\")",
            db_path.display()
        )));
    }
    let db = fs::read(dir.join(DB_FILE)).map_err(io("reading the database".into()))?;
    let db_rel = db_path
        .strip_prefix(home)
        .ok()
        .and_then(|p| p.to_str())
        .ok_or_else(|| EngineError::Config("the database path is not UTF-8".into()))?;
    target.write_atomic(db_rel, &db, true)?;

    // Open and check what was restored.
    let ca = Ca::open(home).await?;
    let actor = Actor::local_admin(who);
    let mut problems = vec![];
    if let Err(e) = ca.store.integrity_check().await {
        problems.push(format!("database integrity: {e}"));
    }
    let detail = serde_json::json!({
        "backup_created_at": check.manifest.created_at,
        "backup_audit_records": check.manifest.audit_records,
        "backup_audit_head": check.manifest.audit_head,
    })
    .to_string();
    let audit = ca
        .audited(ca.audit_entry(
            &actor,
            "backup",
            "restore",
            &dir.display().to_string(),
            &detail,
        ))
        .await;
    ca.store.append_audit(&audit).await?;
    let report = ca.audit_verify(&actor).await?;
    for p in &report.problems {
        problems.push(format!("audit record {}: {}", p.position, p.problem));
    }
    if ca.cert.is_some() {
        if let Err(e) = ca.signing_key() {
            problems.push(format!("CA key: {e}"));
        }
    }
    let kras: Vec<(String, String)> = ca
        .kra_list(&actor)
        .await?
        .into_iter()
        .map(|k| (k.subject, k.status))
        .collect();
    for (s, st) in &kras {
        if st == "cannot be loaded" {
            problems.push(format!("KRA {s}: cannot be loaded"));
        }
    }
    Ok(RestoreReport {
        manifest: check.manifest,
        previous_home_moved_to: moved,
        audit_records: report.records,
        kras,
        problems,
    })
}

/// Largest total accepted when unpacking a downloaded backup (4 GiB).
pub const MAX_UNPACKED_TOTAL: u64 = 4 * 1024 * 1024 * 1024;
/// Largest `manifest.json` accepted when unpacking (the first entry).
pub const MAX_MANIFEST: u64 = 16 * 1024 * 1024;

/// Packs a backup directory (as [`Ca::backup`] wrote it) into a tar stream:
/// the manifest first, then every file it lists. Keys stay encrypted.
pub fn pack(dir: &Path, w: impl std::io::Write) -> EngineResult<()> {
    let raw = fs::read(dir.join(MANIFEST)).map_err(io(format!("reading {MANIFEST}")))?;
    let manifest: Manifest = serde_json::from_slice(&raw)
        .map_err(|e| EngineError::Config(format!("{MANIFEST}: {e}")))?;
    let mut t = tar::Builder::new(w);
    t.mode(tar::HeaderMode::Deterministic);
    let tar_err =
        |what: String| move |e: std::io::Error| EngineError::Config(format!("{what}: {e}"));
    t.append_path_with_name(dir.join(MANIFEST), MANIFEST)
        .map_err(tar_err(format!("packing {MANIFEST}")))?;
    for f in &manifest.files {
        t.append_path_with_name(dir.join(&f.path), &f.path)
            .map_err(tar_err(format!("packing {}", f.path)))?;
    }
    t.into_inner()
        .map_err(tar_err("finishing the archive".into()))?
        .flush()
        .map_err(tar_err("writing the archive".into()))?;
    Ok(())
}

/// Unpacks a backup tar stream into `dest` (absent or empty). The manifest
/// comes first (at most [`MAX_MANIFEST`]); every later entry must be a regular
/// file the manifest lists, no larger than the size it states, with at most
/// [`MAX_UNPACKED_TOTAL`] in all. Links, devices, absolute paths, `..`,
/// unlisted and duplicate files are refused. On any refusal or error nothing
/// is left behind: what was written is removed (and `dest` too when this call
/// created it). Check the result with [`verify_backup`].
pub fn unpack(r: impl std::io::Read, dest: &Path) -> EngineResult<usize> {
    unpack_limited(r, dest, MAX_UNPACKED_TOTAL)
}

fn unpack_limited(r: impl std::io::Read, dest: &Path, max_total: u64) -> EngineResult<usize> {
    if !is_empty_dir(dest) {
        return Err(EngineError::Conflict(format!(
            "{} exists and is not empty: unpack into a new directory",
            dest.display()
        )));
    }
    let existed = dest.is_dir();
    crate::config::create_private_dir(dest)?;
    let result = unpack_into(r, dest, max_total);
    if result.is_err() {
        remove_partial(dest, existed);
    }
    result
}

/// Removes what a failed unpack wrote: `dest` itself when it did not exist
/// before, else everything inside it.
fn remove_partial(dest: &Path, existed: bool) {
    if !existed {
        let _ = fs::remove_dir_all(dest);
        return;
    }
    if let Ok(rd) = fs::read_dir(dest) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = fs::remove_dir_all(&p);
            } else {
                let _ = fs::remove_file(&p);
            }
        }
    }
}

fn unpack_into(r: impl std::io::Read, dest: &Path, max_total: u64) -> EngineResult<usize> {
    use std::io::Read;
    let bad = |m: String| EngineError::bad_input(crate::codes::E_INVALIDARG, m);
    let mut archive = tar::Archive::new(r);
    let mut n = 0;
    let mut total = 0u64;
    // path -> size the manifest states; each may appear once
    let mut expected: Option<std::collections::BTreeMap<String, u64>> = None;
    for entry in archive
        .entries()
        .map_err(|e| bad(format!("backup archive: {e}")))?
    {
        let mut entry = entry.map_err(|e| bad(format!("backup archive: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad(format!("backup archive: {e}")))?
            .into_owned();
        let plain = path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain || path.as_os_str().is_empty() {
            return Err(bad(format!(
                "backup archive: refusing the path {}",
                path.display()
            )));
        }
        let rel = path
            .to_str()
            .ok_or_else(|| bad(format!("backup archive: {} is not UTF-8", path.display())))?
            .to_string();
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                crate::config::create_private_dir(&dest.join(&path))?;
            }
            tar::EntryType::Regular => {
                let size = entry.size();
                let limit = match &mut expected {
                    None if rel == MANIFEST => MAX_MANIFEST,
                    None => {
                        return Err(bad(format!(
                            "backup archive: {rel} comes before {MANIFEST}"
                        )))
                    }
                    Some(files) => files.remove(&rel).ok_or_else(|| {
                        bad(format!(
                            "backup archive: {rel} is not in the manifest (or appears twice)"
                        ))
                    })?,
                };
                if size > limit {
                    return Err(bad(format!(
                        "backup archive: {rel} is too large ({size} bytes, at most {limit})"
                    )));
                }
                total = total.saturating_add(size);
                if total > max_total {
                    return Err(bad(format!(
                        "backup archive: more than {max_total} bytes in all"
                    )));
                }
                let target = dest.join(&path);
                if let Some(parent) = target.parent() {
                    crate::config::create_private_dir(parent)?;
                }
                let mut opts = fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts
                    .open(&target)
                    .map_err(io(format!("creating {}", target.display())))?;
                // never more than the header (and the limit) allow
                let written = std::io::copy(&mut (&mut entry).take(limit), &mut f)
                    .map_err(io(format!("writing {}", target.display())))?;
                f.sync_all()
                    .map_err(io(format!("writing {}", target.display())))?;
                if expected.is_none() {
                    let raw = fs::read(&target).map_err(io(format!("reading {MANIFEST}")))?;
                    let manifest: Manifest = serde_json::from_slice(&raw)
                        .map_err(|e| bad(format!("backup archive: {MANIFEST}: {e}")))?;
                    let mut files = std::collections::BTreeMap::new();
                    for f in manifest.files {
                        if f.path == MANIFEST || files.insert(f.path.clone(), f.size).is_some() {
                            return Err(bad(format!(
                                "backup archive: {MANIFEST} lists {} twice",
                                f.path
                            )));
                        }
                    }
                    expected = Some(files);
                } else if written != size {
                    return Err(bad(format!("backup archive: {rel} is truncated")));
                }
                n += 1;
            }
            other => {
                return Err(bad(format!(
                    "backup archive: {} is a {other:?}, not a file",
                    path.display()
                )))
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_entry(name: &str, kind: tar::EntryType, body: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_ustar();
        h.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(body.len() as u64);
        h.set_entry_type(kind);
        h.set_mode(0o600);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(body);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    #[test]
    fn unpack_refuses_escaping_paths_and_links() {
        for (name, kind) in [
            ("../evil", tar::EntryType::Regular),
            ("/etc/evil", tar::EntryType::Regular),
            ("keys/../../evil", tar::EntryType::Regular),
            ("link", tar::EntryType::Symlink),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut archive = raw_entry(name, kind, b"x");
            archive.extend_from_slice(&[0u8; 1024]);
            let dest = dir.path().join("out");
            assert!(unpack(&archive[..], &dest).is_err(), "{name}");
            assert!(!dir.path().join("evil").exists());
        }
    }

    fn manifest_json(files: &[(&str, u64)]) -> Vec<u8> {
        let m = Manifest {
            format: FORMAT.into(),
            created_at: 0,
            ca_name: "CA".into(),
            ca_certificate_sha256: None,
            audit_records: 0,
            audit_head: String::new(),
            files: files
                .iter()
                .map(|(p, size)| BackupFile {
                    path: p.to_string(),
                    kind: "file".into(),
                    sha256: String::new(),
                    size: *size,
                })
                .collect(),
        };
        serde_json::to_vec(&m).unwrap()
    }

    fn archive_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut a = vec![];
        for (name, body) in entries {
            a.extend(raw_entry(name, tar::EntryType::Regular, body));
        }
        a.extend_from_slice(&[0u8; 1024]);
        a
    }

    #[test]
    fn unpack_writes_plain_files() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = manifest_json(&[("keys/a.key", 1)]);
        let archive = archive_of(&[("manifest.json", &manifest), ("keys/a.key", b"k")]);
        let dest = dir.path().join("out");
        assert_eq!(unpack(&archive[..], &dest).unwrap(), 2);
        assert_eq!(fs::read(dest.join("keys/a.key")).unwrap(), b"k");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dest), 0o700);
            assert_eq!(mode(&dest.join("keys")), 0o700);
            assert_eq!(mode(&dest.join("keys/a.key")), 0o600);
        }
        // not into a directory that holds something
        assert!(unpack(&archive[..], &dest).is_err());
    }

    /// Issue 12: each file is capped at its manifest size, the whole at a total,
    /// files the manifest does not list are refused, and a refusal leaves nothing.
    #[test]
    fn unpack_caps_sizes_and_leaves_nothing_after_a_refusal() {
        let manifest = manifest_json(&[("ca.db", 4), ("keys/a.key", 4)]);
        let cases: Vec<(&str, Vec<u8>, u64)> = vec![
            // larger than the manifest says
            (
                "oversized file",
                archive_of(&[("manifest.json", &manifest), ("ca.db", b"12345678")]),
                MAX_UNPACKED_TOTAL,
            ),
            // not listed in the manifest
            (
                "unlisted file",
                archive_of(&[
                    ("manifest.json", &manifest),
                    ("ca.db", b"1234"),
                    ("extra.bin", b"x"),
                ]),
                MAX_UNPACKED_TOTAL,
            ),
            // the same file twice
            (
                "duplicate",
                archive_of(&[
                    ("manifest.json", &manifest),
                    ("ca.db", b"1234"),
                    ("ca.db", b"1234"),
                ]),
                MAX_UNPACKED_TOTAL,
            ),
            // a file before the manifest
            (
                "no manifest first",
                archive_of(&[("ca.db", b"1234"), ("manifest.json", &manifest)]),
                MAX_UNPACKED_TOTAL,
            ),
            // every file within its size, but over the total
            (
                "total",
                archive_of(&[
                    ("manifest.json", &manifest),
                    ("ca.db", b"1234"),
                    ("keys/a.key", b"1234"),
                ]),
                manifest.len() as u64 + 6,
            ),
        ];
        for (what, archive, total) in cases {
            let dir = tempfile::tempdir().unwrap();
            // a destination this call creates disappears
            let dest = dir.path().join("out");
            assert!(
                unpack_limited(&archive[..], &dest, total).is_err(),
                "{what}"
            );
            assert!(!dest.exists(), "{what}: partial output left behind");
            // an empty directory given beforehand is left empty
            let given = dir.path().join("given");
            fs::create_dir(&given).unwrap();
            assert!(
                unpack_limited(&archive[..], &given, total).is_err(),
                "{what}"
            );
            assert!(is_empty_dir(&given), "{what}: partial output left behind");
        }
        // within every limit it unpacks
        let dir = tempfile::tempdir().unwrap();
        let ok = archive_of(&[
            ("manifest.json", &manifest),
            ("ca.db", b"1234"),
            ("keys/a.key", b"1234"),
        ]);
        let total = manifest.len() as u64 + 8;
        assert_eq!(
            unpack_limited(&ok[..], &dir.path().join("out"), total).unwrap(),
            3
        );
    }
}
