//! The machine's limits the benchmarks are compared with: RSA-2048
//! operations per second on every core, measured in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use lockbox_crypto::{KeyHandle, KeySpec, SoftwareKey};

/// Operations per second of `op`, run on every core for `seconds`.
fn rate_on_all_cores<F>(seconds: f64, op: F) -> Result<f64>
where
    F: Fn() -> bool + Send + Sync + 'static,
{
    let op = Arc::new(op);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let deadline = Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let op = op.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut n = 0u64;
                while start.elapsed() < deadline && op() {
                    n += 1;
                }
                n as f64 / start.elapsed().as_secs_f64()
            })
        })
        .collect();
    let mut total = 0.0;
    for h in handles {
        total += h
            .join()
            .map_err(|_| anyhow::anyhow!("benchmark thread panicked"))?;
    }
    Ok(total)
}

/// RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second using every core.
pub fn rsa2048_sign_rate(seconds: f64) -> Result<f64> {
    let key = SoftwareKey::generate(KeySpec::Rsa2048)?;
    rate_on_all_cores(seconds, move || key.sign(&[0x5au8; 512]).is_ok())
}

/// RSA-2048 PKCS#1 v1.5 decryptions per second using every core.
pub fn rsa2048_decrypt_rate(seconds: f64) -> Result<f64> {
    use lockbox_crypto::keytransport::{encrypt_key, DecryptionKey, KeyTransport};
    let key = SoftwareKey::generate(KeySpec::Rsa2048)?;
    let ct = encrypt_key(key.public_key_info(), KeyTransport::RsaPkcs1v15, &[7u8; 32])?;
    rate_on_all_cores(seconds, move || {
        key.decrypt_key(KeyTransport::RsaPkcs1v15, &ct).is_ok()
    })
}

/// The RSA-2048 sign rate, measured for `seconds` off the async runtime.
pub(crate) async fn sign_rate(seconds: f64) -> Result<f64> {
    tokio::task::spawn_blocking(move || rsa2048_sign_rate(seconds)).await?
}

/// The machine's RSA-2048 limits for archival enrollment, measured in this run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ArchivalLimit {
    /// PKCS#1 v1.5 SHA-256 signatures per second on all cores.
    pub sign_rate: f64,
    /// PKCS#1 v1.5 decryptions per second on all cores.
    pub decrypt_rate: f64,
}

impl ArchivalLimit {
    /// Measures both rates for `seconds` each, off the async runtime.
    pub(crate) async fn measure(seconds: f64) -> Result<Self> {
        let sign_rate = sign_rate(seconds).await?;
        let decrypt_rate =
            tokio::task::spawn_blocking(move || rsa2048_decrypt_rate(seconds)).await??;
        Ok(ArchivalLimit {
            sign_rate,
            decrypt_rate,
        })
    }

    /// Enrollments per second when each costs `decrypts` exchange-key
    /// decryptions and `signs` CA signatures and nothing else, on all cores.
    fn rate(&self, decrypts: f64, signs: f64) -> f64 {
        1.0 / (decrypts / self.decrypt_rate + signs / self.sign_rate)
    }

    /// The honest limit: what one archival enrollment needs — 1 exchange-key
    /// decrypt, 1 certificate signature, 1 CMC response signature.
    pub(crate) fn honest(&self) -> f64 {
        self.rate(1.0, 2.0)
    }

    /// The earlier figure: 1 decrypt + 1 signature (no CMC response).
    pub(crate) fn decrypt_and_sign(&self) -> f64 {
        self.rate(1.0, 1.0)
    }

    /// CPU seconds (summed over cores) that one enrollment's private-key
    /// operations cost: each rate was measured on every core at once.
    pub(crate) fn key_cpu_seconds(&self, cores: usize) -> f64 {
        cores as f64 / self.honest()
    }
}

/// The bench CA's token (its `[pkcs11]` section), when its keys are on one.
fn bench_token(ca: &lockbox_engine::Ca) -> Result<Option<Arc<lockbox_crypto::pkcs11::Token>>> {
    let Some(section) = &ca.config().pkcs11 else {
        return Ok(None);
    };
    let pin_file = section
        .pin_file
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("the bench token has no PIN file"))?;
    let pin = lockbox_engine::keysource::read_pin_file(std::path::Path::new(pin_file))?;
    Ok(Some(lockbox_crypto::pkcs11::Token::open(
        lockbox_crypto::pkcs11::TokenConfig {
            module: section.module.clone().into(),
            token_label: section.token_label.clone(),
            pin,
            max_sessions: 0,
            token_serial: section.token_serial.clone(),
        },
    )?))
}

/// The token's own RSA-2048 limits (signatures and raw-RSA PKCS#1
/// decryptions per second on every core, through the token as the CA uses
/// it), measured for `seconds` each with a probe key made on the bench
/// token and removed afterwards; None when the CA's keys are in software.
pub(crate) async fn token_limit(
    ca: &lockbox_engine::Ca,
    seconds: f64,
) -> Result<Option<ArchivalLimit>> {
    use lockbox_crypto::keytransport::{encrypt_key, DecryptionKey, KeyTransport};
    use lockbox_crypto::pkcs11::KeyUse;
    let Some(token) = bench_token(ca)? else {
        return Ok(None);
    };
    tokio::task::spawn_blocking(move || -> Result<Option<ArchivalLimit>> {
        let key = Arc::new(token.generate(KeySpec::Rsa2048, "bench-probe", KeyUse::Exchange)?);
        let signer = key.clone();
        let sign_rate = rate_on_all_cores(seconds, move || signer.sign(&[0x5au8; 512]).is_ok())?;
        let ct = encrypt_key(key.public_key_info(), KeyTransport::RsaPkcs1v15, &[7u8; 32])?;
        let decrypter = key.clone();
        let decrypt_rate = rate_on_all_cores(seconds, move || {
            decrypter
                .decrypt_key(KeyTransport::RsaPkcs1v15, &ct)
                .is_ok()
        })?;
        key.destroy()?;
        Ok(Some(ArchivalLimit {
            sign_rate,
            decrypt_rate,
        }))
    })
    .await?
}
