//! SoftHSM2 tokens made on the spot, for tests and benchmarks: a token
//! directory under a given path, a `SOFTHSM2_CONF` naming it, tokens
//! initialised with `softhsm2-util`. Throwaway tokens only: the PINs given
//! here are passed on `softhsm2-util`'s command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::CryptoError;

/// Where Debian and others install the SoftHSM2 module.
const MODULE_PATHS: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// The SoftHSM2 module on this machine, if installed.
pub fn module_path() -> Option<PathBuf> {
    MODULE_PATHS.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// A SoftHSM2 token directory with its configuration file.
#[derive(Debug, Clone)]
pub struct SoftHsm {
    /// The module (`libsofthsm2.so`).
    pub module: PathBuf,
    /// The configuration file to export as `SOFTHSM2_CONF`.
    pub conf: PathBuf,
    /// The token directory.
    pub tokens: PathBuf,
}

impl SoftHsm {
    /// Makes `dir/tokens` and `dir/softhsm2.conf`; `None` when SoftHSM2 or
    /// `softhsm2-util` is not installed.
    pub fn create(dir: &Path) -> Result<Option<SoftHsm>, CryptoError> {
        let Some(module) = module_path() else {
            return Ok(None);
        };
        let io = |e: std::io::Error| CryptoError::TokenUnavailable(format!("SoftHSM2 setup: {e}"));
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).map_err(io)?;
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .map_err(io)?;
        Ok(Some(SoftHsm {
            module,
            conf,
            tokens,
        }))
    }

    /// Initialises a new token labelled `label` with user PIN `pin`.
    pub fn init_token(&self, label: &str, pin: &str) -> Result<(), CryptoError> {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &self.conf)
            .args(["--init-token", "--free", "--label", label, "--so-pin"])
            .arg(format!("so-{pin}"))
            .arg("--pin")
            .arg(pin)
            .output()
            .map_err(|e| CryptoError::TokenUnavailable(format!("running softhsm2-util: {e}")))?;
        if !out.status.success() {
            return Err(CryptoError::TokenUnavailable(format!(
                "softhsm2-util --init-token {label}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// The directory of the token labelled `label` (SoftHSM2 names it by a
    /// UUID; its `token.object` holds the label), for tests that take a
    /// token away and bring it back.
    pub fn token_dir(&self, label: &str) -> Option<PathBuf> {
        std::fs::read_dir(&self.tokens)
            .ok()?
            .flatten()
            .find_map(|e| {
                let data = std::fs::read(e.path().join("token.object")).ok()?;
                let padded = format!("{label:<32}");
                data.windows(32)
                    .any(|w| w == padded.as_bytes())
                    .then(|| e.path())
            })
    }
}
