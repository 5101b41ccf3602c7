//! PKCS#12 files for users and agents (through `p12-keystore`).

use p12_keystore::{
    EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, Pkcs12ImportPolicy, PrivateKey,
    PrivateKeyChain,
};
use zeroize::Zeroizing;

use crate::digest::sha1;
use crate::CryptoError;

/// Writes a PKCS#12 holding `pkcs8` and `certs` (the key's certificate
/// first). Default PBES2/AES-256-CBC with an HMAC-SHA-256 MAC; `legacy`
/// gives 3DES with an HMAC-SHA-1 MAC for old Windows.
pub fn write_pfx(
    pkcs8: &[u8],
    certs: &[Vec<u8>],
    password: &str,
    legacy: bool,
) -> Result<Vec<u8>, CryptoError> {
    write_pfx_with_iterations(
        pkcs8,
        certs,
        password,
        legacy,
        if legacy { 2048 } else { 100_000 },
    )
}

/// [`write_pfx`] with an explicit PBKDF2 iteration count (tests and benchmarks
/// use OpenSSL's 2048 to make many files quickly).
pub fn write_pfx_with_iterations(
    pkcs8: &[u8],
    certs: &[Vec<u8>],
    password: &str,
    legacy: bool,
    iterations: u32,
) -> Result<Vec<u8>, CryptoError> {
    let err = |e: p12_keystore::error::Error| CryptoError::Encoding(format!("PKCS#12: {e}"));
    let key = PrivateKey::from_der(pkcs8).map_err(err)?;
    let chain: Vec<p12_keystore::Certificate> = certs
        .iter()
        .map(|c| p12_keystore::Certificate::from_der(c).map_err(err))
        .collect::<Result<_, _>>()?;
    let local_id = certs
        .first()
        .map(|c| sha1(c).to_vec())
        .unwrap_or_else(|| vec![1]);
    let mut ks = KeyStore::new();
    ks.add_entry(
        "lockbox",
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_id, key, chain)),
    );
    let writer = ks.writer(password);
    let writer = if legacy {
        writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .mac_algorithm(MacAlgorithm::HmacSha1)
            .encryption_iterations(iterations)
            .mac_iterations(iterations)
    } else {
        writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
            .mac_algorithm(MacAlgorithm::HmacSha256)
            .encryption_iterations(iterations)
            .mac_iterations(iterations)
    };
    writer.write().map_err(err)
}

/// A private key (PKCS#8, zeroized on drop) and its certificates (DER).
pub type KeyAndCerts = (Zeroizing<Vec<u8>>, Vec<Vec<u8>>);

/// Reads a PKCS#12: the (first) private key as PKCS#8 and every certificate.
/// A file with a key but no certificate is accepted (its certificate is
/// then looked up by the caller).
pub fn read_pfx(data: &[u8], password: &str) -> Result<KeyAndCerts, CryptoError> {
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(data, password).map_err(|e| {
        CryptoError::InvalidKey(format!(
            "cannot read the PKCS#12 (wrong password or damaged file): {e}"
        ))
    })?;
    let key = archive
        .keys
        .first()
        .ok_or_else(|| CryptoError::InvalidKey("the PKCS#12 holds no private key".into()))?;
    Ok((
        Zeroizing::new(key.key.as_der().to_vec()),
        archive
            .certs
            .iter()
            .map(|c| c.cert.as_der().to_vec())
            .collect(),
    ))
}

/// Merges several PKCS#12 files (each with its password) into one holding
/// every key and its certificates.
pub fn merge_pfx(
    inputs: &[(Vec<u8>, String)],
    password: &str,
    legacy: bool,
) -> Result<Vec<u8>, CryptoError> {
    let err = |e: p12_keystore::error::Error| CryptoError::Encoding(format!("PKCS#12: {e}"));
    let mut out = KeyStore::new();
    let mut n = 0;
    for (i, (data, pass)) in inputs.iter().enumerate() {
        let ks = KeyStore::from_pkcs12(data, pass, Pkcs12ImportPolicy::Relaxed).map_err(|e| {
            CryptoError::InvalidKey(format!(
                "input {}: cannot read the PKCS#12 (wrong password or damaged file): {e}",
                i + 1
            ))
        })?;
        for (_, entry) in ks.entries() {
            if let KeyStoreEntry::PrivateKeyChain(chain) = entry {
                n += 1;
                let local_id = chain
                    .certs()
                    .first()
                    .map(|c| sha1(c.as_der()).to_vec())
                    .unwrap_or_else(|| vec![n as u8]);
                let key = PrivateKey::from_der(chain.key().as_der()).map_err(err)?;
                out.add_entry(
                    &format!("key{n}"),
                    KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
                        local_id,
                        key,
                        chain.certs().to_vec(),
                    )),
                );
            }
        }
    }
    if n == 0 {
        return Err(CryptoError::InvalidKey(
            "the inputs hold no private keys".into(),
        ));
    }
    let writer = out.writer(password);
    let writer = if legacy {
        writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .mac_algorithm(MacAlgorithm::HmacSha1)
            .encryption_iterations(2048)
            .mac_iterations(2048)
    } else {
        writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
            .mac_algorithm(MacAlgorithm::HmacSha256)
            .encryption_iterations(100_000)
            .mac_iterations(100_000)
    };
    writer.write().map_err(err)
}
