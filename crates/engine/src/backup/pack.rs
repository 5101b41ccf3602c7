//! Backup archives: packing a backup directory into a tar stream and unpacking one safely.

use std::fs;
use std::path::Path;

use crate::backup::{io, is_empty_dir, Manifest, MANIFEST};
use crate::{EngineError, EngineResult};

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

pub(crate) fn unpack_limited(
    r: impl std::io::Read,
    dest: &Path,
    max_total: u64,
) -> EngineResult<usize> {
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
pub(crate) fn remove_partial(dest: &Path, existed: bool) {
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

/// The refusal of a backup archive (0x80070057).
fn bad(m: String) -> EngineError {
    EngineError::bad_input(crate::codes::E_INVALIDARG, m)
}

/// Paths the manifest lists, with the size it states for each; each path may
/// be unpacked once (it is removed when unpacked).
type Expected = std::collections::BTreeMap<String, u64>;

pub(crate) fn unpack_into(
    r: impl std::io::Read,
    dest: &Path,
    max_total: u64,
) -> EngineResult<usize> {
    let mut archive = tar::Archive::new(r);
    let mut n = 0;
    let mut total = 0u64;
    // None until the manifest, which comes first, is read
    let mut expected: Option<Expected> = None;
    for entry in archive
        .entries()
        .map_err(|e| bad(format!("backup archive: {e}")))?
    {
        let mut entry = entry.map_err(|e| bad(format!("backup archive: {e}")))?;
        let (path, rel) = entry_path(&entry)?;
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                crate::config::create_private_dir(&dest.join(&path))?;
            }
            tar::EntryType::Regular => {
                let size = entry.size();
                let limit = size_limit(&mut expected, &rel)?;
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
                let written = write_entry(&mut entry, &target, limit)?;
                if expected.is_none() {
                    expected = Some(read_manifest_list(&target)?);
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

/// The entry's path, refused unless it is plain (relative, no `..`, not
/// empty) and UTF-8; with its text.
fn entry_path<R: std::io::Read>(
    entry: &tar::Entry<'_, R>,
) -> EngineResult<(std::path::PathBuf, String)> {
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
    Ok((path, rel))
}

/// The largest size a file may have: [`MAX_MANIFEST`] for the manifest (which
/// must come first), then the size the manifest states (each listed file once).
fn size_limit(expected: &mut Option<Expected>, rel: &str) -> EngineResult<u64> {
    match expected {
        None if rel == MANIFEST => Ok(MAX_MANIFEST),
        None => Err(bad(format!(
            "backup archive: {rel} comes before {MANIFEST}"
        ))),
        Some(files) => files.remove(rel).ok_or_else(|| {
            bad(format!(
                "backup archive: {rel} is not in the manifest (or appears twice)"
            ))
        }),
    }
}

/// Writes one entry to a new owner-only file, never more than `limit` bytes;
/// returns how many were written.
fn write_entry(entry: &mut impl std::io::Read, target: &Path, limit: u64) -> EngineResult<u64> {
    use std::io::Read;
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
        .open(target)
        .map_err(io(format!("creating {}", target.display())))?;
    // never more than the header (and the limit) allow
    let written = std::io::copy(&mut entry.take(limit), &mut f)
        .map_err(io(format!("writing {}", target.display())))?;
    f.sync_all()
        .map_err(io(format!("writing {}", target.display())))?;
    Ok(written)
}

/// Reads the unpacked manifest: the files it lists with their sizes (the
/// manifest itself or a path listed twice is refused).
fn read_manifest_list(target: &Path) -> EngineResult<Expected> {
    let raw = fs::read(target).map_err(io(format!("reading {MANIFEST}")))?;
    let manifest: Manifest = serde_json::from_slice(&raw)
        .map_err(|e| bad(format!("backup archive: {MANIFEST}: {e}")))?;
    let mut files = Expected::new();
    for f in manifest.files {
        if f.path == MANIFEST || files.insert(f.path.clone(), f.size).is_some() {
            return Err(bad(format!(
                "backup archive: {MANIFEST} lists {} twice",
                f.path
            )));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::{BackupFile, FORMAT};

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
            keys_on_token: vec![],
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
