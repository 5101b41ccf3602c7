//! Importing PKCS#12 files, one or many, and single certificates.

use lockbox_crypto::pkcs12::read_pfx;
use lockbox_crypto::{KeyProvider, PrivateKey};
use std::sync::Arc;
use zeroize::Zeroizing;

use crate::certbuild::decode_certificate;
use crate::core::state::ImportBatch;
use crate::core::Core;
use crate::import::{ImportItem, ImportOptions};
use crate::{codes, Actor, EngineError, EngineResult, Op};

/// A PKCS#12 file once opened: its key (PKCS#8, loaded) and certificates.
pub(crate) struct ParsedPfx {
    pkcs8: Zeroizing<Vec<u8>>,
    certs: Vec<Vec<u8>>,
    key: Arc<dyn PrivateKey>,
}

/// Opens a PKCS#12 file and loads its key.
pub(crate) fn parse_pfx(
    keys: &dyn KeyProvider,
    data: &[u8],
    password: &str,
) -> EngineResult<ParsedPfx> {
    let (pkcs8, certs) = read_pfx(data, password)
        .map_err(|e| EngineError::bad_input(codes::E_INVALIDARG, e.to_string()))?;
    let key = keys.load_pkcs8_der(&pkcs8).map_err(|e| {
        EngineError::bad_input(codes::E_INVALIDARG, format!("the key does not load: {e}"))
    })?;
    Ok(ParsedPfx { pkcs8, certs, key })
}

/// Opens many PKCS#12 files on all available cores, keeping their order.
pub(crate) fn parse_many(
    keys: &dyn KeyProvider,
    files: &[(String, Vec<u8>)],
    password: &str,
) -> Vec<EngineResult<ParsedPfx>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    if threads == 1 || files.len() < 2 {
        return files
            .iter()
            .map(|(_, d)| parse_pfx(keys, d, password))
            .collect();
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                let h = scope.spawn(move || {
                    part.iter()
                        .map(|(_, d)| parse_pfx(keys, d, password))
                        .collect::<Vec<_>>()
                });
                (part.len(), h)
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(len, h)| {
                // A panicking worker fails its own files, never drops them.
                h.join().unwrap_or_else(|_| {
                    (0..len)
                        .map(|_| Err(EngineError::Config("PKCS#12 reader failed".into())))
                        .collect()
                })
            })
            .collect()
    })
}

/// Imports one PKCS#12 file (its key and certificates).
pub(crate) async fn import_pkcs12(
    core: &Core,
    actor: &Actor,
    data: &[u8],
    password: &str,
    source: &str,
    opts: &ImportOptions,
) -> EngineResult<Vec<ImportItem>> {
    crate::authz::authorize(core, actor, Op::Configure).await?;
    let parsed = parse_pfx(&*core.keys, data, password)?;
    import_parsed(core, actor, parsed, source, opts).await
}

/// Imports a PKCS#12 file already opened by [`parse_pfx`].
pub(crate) async fn import_parsed(
    core: &Core,
    actor: &Actor,
    parsed: ParsedPfx,
    source: &str,
    opts: &ImportOptions,
) -> EngineResult<Vec<ImportItem>> {
    let ParsedPfx { pkcs8, certs, key } = parsed;
    let mut items = Vec::new();
    let mut matched = false;
    for der in &certs {
        let cert = decode_certificate(der)?;
        if cert.tbs_certificate().subject_public_key_info() == key.public_key_info() {
            matched = true;
            items.push(
                crate::import::one::import_one(
                    core,
                    actor,
                    der,
                    &cert,
                    opts.keys.then_some(&pkcs8[..]),
                    source,
                    opts,
                    None,
                )
                .await?,
            );
        }
    }
    if !matched && opts.keys {
        items.push(
            crate::import::one::import_unmatched(core, actor, &*key, &pkcs8, source, None).await?,
        );
    }
    Ok(items)
}

/// Imports one certificate without a key (`importcert`).
pub(crate) async fn import_certificate(
    core: &Core,
    actor: &Actor,
    der: &[u8],
    source: &str,
    opts: &ImportOptions,
) -> EngineResult<ImportItem> {
    crate::authz::authorize(core, actor, Op::Configure).await?;
    let cert = decode_certificate(der)?;
    crate::import::one::import_one(core, actor, der, &cert, None, source, opts, None).await
}

/// Imports many PKCS#12 files with one transaction (one durable commit)
/// per call; if the batch cannot be written as a whole, each file is
/// imported on its own so one bad file never stops the others.
pub(crate) async fn import_pkcs12_many(
    core: &Core,
    actor: &Actor,
    files: &[(String, Vec<u8>)],
    password: &str,
    opts: &ImportOptions,
) -> EngineResult<Vec<(String, EngineResult<Vec<ImportItem>>)>> {
    crate::authz::authorize(core, actor, Op::Configure).await?;
    // The KRA choice is made once per batch (round robin continues across keys).
    let kras = crate::archival::kra::valid_kras_for_batch(core).await?;
    let foreign = crate::import::foreign_enabled(core).await?;
    {
        let mut guard = core
            .import_batch
            .lock()
            .map_err(|_| EngineError::Config("import batch lock".into()))?;
        *guard = Some(ImportBatch {
            changes: vec![],
            audit: vec![],
            kras: Some(kras),
            foreign: Some(foreign),
        });
    }
    // Opening the files (password derivation, decryption, key checks) is the
    // costly part and needs no store: it runs on all cores first.
    let parsed = parse_many(&*core.keys, files, password);
    let mut results = Vec::new();
    for ((source, _), opened) in files.iter().zip(parsed) {
        let outcome = match opened {
            Ok(p) => import_parsed(core, actor, p, source, opts).await,
            Err(e) => Err(e),
        };
        results.push((source.clone(), outcome));
    }
    let batch = core
        .import_batch
        .lock()
        .map_err(|_| EngineError::Config("import batch lock".into()))?
        .take();
    if let Some(b) = batch {
        if let Err(e) = core.store.apply(&b.changes, &b.audit).await {
            tracing::warn!(error = %e, "batch import failed as a whole; importing file by file");
            let mut one_by_one = Vec::new();
            for (source, data) in files {
                one_by_one.push((
                    source.clone(),
                    import_pkcs12(core, actor, data, password, source, opts).await,
                ));
            }
            return Ok(one_by_one);
        }
    }
    Ok(results)
}
