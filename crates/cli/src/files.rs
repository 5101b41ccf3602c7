//! Reading and writing the files commands name: bounded reads, owner-only
//! writes for secrets, secrets read from files.

use std::path::Path;

use anyhow::{bail, Context, Result};
use zeroize::Zeroizing;

/// Writes `data` to `path`.
pub fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))
}

/// Reads `path`, refusing files over 16 MiB.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > 16 * 1024 * 1024 {
        bail!("{} is too large ({} bytes)", path.display(), meta.len());
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Reads `path` whole.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Writes a file only its owner can read (keys, PKCS#12 files, recovery blobs).
pub fn write_secret(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // An existing file keeps its mode on open: restrict it before writing.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = f.metadata().map(|m| m.permissions().mode()).unwrap_or(0);
        if mode & 0o077 != 0 {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", path.display()))?;
        }
    }
    f.write_all(data)
        .with_context(|| format!("writing {}", path.display()))
}

/// A secret from a file (a trailing line break is not part of it).
pub fn read_secret_file(path: &Path) -> Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    Ok(Zeroizing::new(
        text.trim_end_matches(['\r', '\n']).to_string(),
    ))
}
