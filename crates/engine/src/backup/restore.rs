//! Verifying a backup and restoring it into a new home.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lockbox_codec::hexfmt::to_hex;
use lockbox_codec::pem::decode_input;
use lockbox_crypto::digest::sha256;
use lockbox_crypto::pkcs8enc::decrypt_pkcs8;
use lockbox_crypto::{default_provider, PrivateKey};
use lockbox_store::Store;
use serde::Serialize;

use crate::backup::{
    audit_head, files_in, io, is_empty_dir, open_copy, BackupCheck, Manifest, DB_FILE, FORMAT,
    MANIFEST,
};
use crate::category::{AuditAction, AuditCategory};
use crate::certbuild::decode_certificate;
use crate::config::{passphrase, Config, Home, CONFIG_FILE};
use crate::period::now;
use crate::{Actor, EngineError, EngineResult};

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

pub(crate) fn decrypt_key(dir: &Path, rel: &str, pass: &[u8]) -> EngineResult<Arc<dyn PrivateKey>> {
    let text = fs::read(dir.join(rel)).map_err(io(format!("reading {rel}")))?;
    let d = decode_input(&text).map_err(|e| EngineError::Config(format!("{rel}: {e}")))?;
    let pkcs8 = decrypt_pkcs8(&d.der, pass).map_err(|_| {
        EngineError::bad_input(
            crate::codes::E_INVALIDARG,
            format!("{rel}: cannot decrypt (wrong backup passphrase?)"),
        )
    })?;
    default_provider()
        .load_pkcs8_der(&pkcs8)
        .map_err(|e| EngineError::Config(format!("{rel}: {e}")))
}

pub(crate) fn cert_spki(dir: &Path, rel: &str) -> EngineResult<spki::SubjectPublicKeyInfoOwned> {
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
pub(crate) async fn key_checks(
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
        } else if f.path == crate::archival::exchange_keys::WRAP_KEY_FILE {
            None // seals the exchange keys in the database; no certificate
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
    // The configuration, not the manifest, says whether the CA key is on a
    // token; the manifest's entry must name the same key.
    if let Some(id) = &config.ca.key_id {
        let listed = manifest
            .keys_on_token
            .iter()
            .any(|k| k.role == "ca" && &k.key_id == id);
        if !listed {
            problems.push(format!(
                "the configuration keeps the CA key on a token (CKA_ID {id}) but the manifest does not list it"
            ));
        }
    }
    // A backup's module is vetted whether or not its keys are checked: the
    // restored home opens it.
    if let Some(section) = &config.pkcs11 {
        if let Err(e) = crate::keysource::check_foreign_token_config(section, dir) {
            problems.push(e.to_string());
            return Ok((ok, problems));
        }
    }
    if !manifest.keys_on_token.is_empty() || config.ca.key_id.is_some() {
        let (n, mut p) = token_checks(dir, &config, manifest, &store).await;
        ok += n;
        problems.append(&mut p);
    }
    Ok((ok, problems))
}

/// Keys the backup left on the token: the token the backed-up configuration
/// names must hold each, matching its certificate (the CA certificate file,
/// the exchange certificate in the snapshot).
async fn token_checks(
    dir: &Path,
    config: &Config,
    manifest: &Manifest,
    store: &dyn Store,
) -> (usize, Vec<String>) {
    let token = match crate::keysource::open_token(&Home::new(dir), config) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return (
                0,
                vec![
                "the backup lists keys on a token but its configuration has no [pkcs11] section"
                    .into(),
            ],
            )
        }
        Err(e) => return (0, vec![format!("the CA's token: {e}")]),
    };
    let (mut ok, mut problems) = (0, vec![]);
    for k in &manifest.keys_on_token {
        let what = match &k.serial {
            Some(s) => format!("{} key {s}", k.role),
            None => format!("{} key", k.role),
        };
        let expected = match (k.role.as_str(), &k.serial) {
            ("ca", _) => cert_spki(dir, &config.ca.cert_file).ok(),
            (_, Some(serial)) => store
                .get_by_serial(serial)
                .await
                .ok()
                .flatten()
                .and_then(|r| r.cert)
                .and_then(|c| decode_certificate(&c.cert_der).ok())
                .map(|c| c.tbs_certificate().subject_public_key_info().clone()),
            _ => None,
        };
        let Ok(id) = hex::decode(&k.key_id) else {
            problems.push(format!("{what}: CKA_ID '{}' is not hex", k.key_id));
            continue;
        };
        match (token.key_by_id(&id, &k.key_label), expected) {
            (Ok(key), Some(spki)) if lockbox_crypto::KeyHandle::public_key_info(&key) == &spki => {
                ok += 1
            }
            (Ok(_), Some(_)) => problems.push(format!(
                "{what}: the key with CKA_ID {} on token '{}' does not match its certificate",
                k.key_id, k.token_label
            )),
            (Ok(_), None) => problems.push(format!("{what}: no certificate to check it against")),
            (Err(e), _) => problems.push(format!(
                "{what}: token '{}' does not hold it ({e})",
                k.token_label
            )),
        }
    }
    (ok, problems)
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
/// home is moved aside, never deleted), then checks the result. The
/// database goes where the backed-up configuration names it (which, for
/// PostgreSQL, must be an empty database).
pub async fn restore(
    dir: &Path,
    home: &Path,
    backup_passphrase: &[u8],
    force: bool,
    who: &str,
) -> EngineResult<RestoreReport> {
    restore_into(dir, home, backup_passphrase, force, who, None).await
}

/// [`restore`], with the database the restored CA uses instead of the one
/// its backed-up configuration names: `sqlite:FILE` (inside the home) or an
/// empty PostgreSQL database.
pub async fn restore_into(
    dir: &Path,
    home: &Path,
    backup_passphrase: &[u8],
    force: bool,
    who: &str,
    database: Option<&str>,
) -> EngineResult<RestoreReport> {
    let check = verify_backup(dir, backup_passphrase).await?;
    if !check.problems.is_empty() {
        return Err(EngineError::bad_input(
            crate::codes::E_INVALIDARG,
            format!("the backup does not verify: {}", check.problems.join("; ")),
        ));
    }
    // Every check of the target database comes before anything in the home
    // moves: the backed-up configuration is read from the backup itself.
    let mut config: crate::config::Config = toml::from_str(
        &fs::read_to_string(dir.join(CONFIG_FILE)).map_err(io("reading lockbox.toml".into()))?,
    )
    .map_err(|e| EngineError::Config(format!("lockbox.toml: {e}")))?;
    // Under the test switch a restored PostgreSQL CA gets a new database, as
    // every CA a test creates does (the backed-up one is still in use).
    let database = match (database, lockbox_store::test_server()) {
        (Some(url), _) => Some(url.to_string()),
        (None, Some(server)) if config.database.url.starts_with("postgres") => {
            Some(lockbox_store::create_fresh_database(&server).await?)
        }
        (None, _) => None,
    };
    if let Some(url) = &database {
        config.database.url = url.clone();
    }
    // A PostgreSQL target is checked (reachable, empty) before anything is written.
    let pg_target = match crate::database::location(&Home::new(home), &config)? {
        crate::database::Location::Postgres(pg) => {
            let store =
                lockbox_store::SqlStore::connect_postgres(&pg, crate::audit::chain_hash).await?;
            if !store.is_empty().await? {
                return Err(EngineError::Conflict(format!(
                    "the database {pg} is not empty: a restore goes into an empty database"
                )));
            }
            Some(store)
        }
        crate::database::Location::Sqlite(_) => None,
    };
    // A home a running `lockbox serve` uses is not moved from under it (the
    // service holds serve.lock); the lock is held until the restore is done.
    let _service_lock = if home.join(CONFIG_FILE).is_file() {
        Some(Home::new(home).lock_service()?)
    } else {
        None
    };
    let moved = move_aside(home, force)?;
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
    if database.is_some() {
        target.save_config(&config)?;
    }
    write_keys(dir, &target, &config, &check.manifest, backup_passphrase)?;
    match pg_target {
        Some(store) => {
            let (_tmp, snapshot) = open_copy(&dir.join(DB_FILE)).await?;
            snapshot.copy_into(&store).await?;
            store.close().await;
        }
        None => write_database(dir, home, &target, &config)?,
    }

    // Open and check what was restored.
    let (audit_records, kras, problems) = check_restored(home, dir, who, &check.manifest).await?;
    Ok(RestoreReport {
        manifest: check.manifest,
        previous_home_moved_to: moved,
        audit_records,
        kras,
        problems,
    })
}

/// Moves a non-empty home aside (only with `force`); returns where it went.
fn move_aside(home: &Path, force: bool) -> EngineResult<Option<PathBuf>> {
    if !is_empty_dir(home) {
        if !force {
            return Err(EngineError::Conflict(format!(
                "{} is not empty: restore into a new directory, or give --force to move the existing home aside",
                home.display()
            )));
        }
        let aside = PathBuf::from(format!("{}.before-restore-{}", home.display(), now()));
        fs::rename(home, &aside).map_err(io(format!("moving {} aside", home.display())))?;
        return Ok(Some(aside));
    }
    Ok(None)
}

/// Writes the keys of the backup, decrypted with the backup passphrase and
/// re-encrypted with the CA passphrase where the CA keeps them encrypted.
fn write_keys(
    dir: &Path,
    target: &Home,
    config: &Config,
    manifest: &Manifest,
    backup_passphrase: &[u8],
) -> EngineResult<()> {
    let ca_pass = passphrase(target, config.ca.passphrase_file.as_deref())?;
    if config.ca.key_encrypted && ca_pass.is_none() {
        return Err(EngineError::Config(
            "the CA keys are kept encrypted: set LOCKBOX_CA_PASSPHRASE or LOCKBOX_CA_PASSPHRASE_FILE for the restore".into(),
        ));
    }
    for f in manifest.files.iter().filter(|f| f.kind == "key") {
        let key = decrypt_key(dir, &f.path, backup_passphrase)?;
        let pass = if config.ca.key_encrypted && f.path != "tls/server.key" {
            ca_pass.as_deref().map(|p| p.as_slice())
        } else {
            None
        };
        let pem = crate::certs::key_pem(&*key, pass)?;
        target.write_atomic(&f.path, pem.as_bytes(), true)?;
    }
    Ok(())
}

/// Writes the database where the configuration names it (inside the home).
fn write_database(dir: &Path, home: &Path, target: &Home, config: &Config) -> EngineResult<()> {
    let db_path = crate::init::database_path(target, config)?;
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

    Ok(())
}

/// Opens the restored CA and checks it: database integrity, the audit chain
/// (after recording the restore), the CA key, the KRAs. Returns the audit
/// record count, the KRAs with their status, and the problems found.
async fn check_restored(
    home: &Path,
    dir: &Path,
    who: &str,
    manifest: &Manifest,
) -> EngineResult<(i64, Vec<(String, String)>, Vec<String>)> {
    let core = crate::init::open(home).await?;
    let actor = Actor::local_admin(who);
    let mut problems = vec![];
    // Restored without the exchange keys: the sealed keys in the database
    // cannot be opened; forget them so a new exchange certificate is made.
    // (Exchange keys on the token stay there, and so do their references.)
    if !core.config.archival.exchange_on_token
        && !core
            .home
            .path(crate::archival::exchange_keys::WRAP_KEY_FILE)
            .is_file()
    {
        core.store
            .apply(&[lockbox_store::Change::ClearExchangeKeys], &[])
            .await?;
        // A new wrapping key now, so every node copied from this home has it.
        crate::archival::exchange_keys::ensure_wrap_key(&core.home, &core.config, &*core.keys)?;
    }
    if let Err(e) = core.store.integrity_check().await {
        problems.push(format!("database integrity: {e}"));
    }
    let detail = serde_json::json!({
        "backup_created_at": manifest.created_at,
        "backup_audit_records": manifest.audit_records,
        "backup_audit_head": manifest.audit_head,
    })
    .to_string();
    let audit = crate::audit::chain::success(
        &core,
        &actor,
        AuditCategory::Backup,
        AuditAction::Restore,
        &dir.display().to_string(),
        &detail,
    )
    .await;
    core.store.append_audit(&audit).await?;
    let report = crate::auditor::audit_verify(&core, &actor).await?;
    for p in &report.problems {
        problems.push(format!("audit record {}: {}", p.position, p.problem));
    }
    if core.cert.is_some() {
        if let Err(e) = core.signing_key() {
            problems.push(format!("CA key: {e}"));
        }
    }
    let kras: Vec<(String, String)> = crate::archival::kra::kra_list(&core, &actor)
        .await?
        .into_iter()
        .map(|k| (k.subject, k.status))
        .collect();
    for (s, st) in &kras {
        if st == "cannot be loaded" {
            problems.push(format!("KRA {s}: cannot be loaded"));
        }
    }
    Ok((report.records, kras, problems))
}
