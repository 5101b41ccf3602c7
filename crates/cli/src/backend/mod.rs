//! One interface, two transports: the engine in-process (`--home`, [`Local`])
//! or the HTTP API (`--server`, [`Remote`]). Both end in the same engine
//! methods. This module also opens the one the global options name.

mod local;
mod remote;

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use async_trait::async_trait;
use lockbox_engine::recovery::{Candidate, HistoryEntry, RecoveryBlob};
use lockbox_engine::template::Template;
use lockbox_engine::KraStatus;
use lockbox_engine::{CrlInfo, EngineResult, Outcome, RequestRecord};
use serde_json::Value;

pub use local::{local_who, Local};
pub use remote::Remote;

use crate::global::Global;

/// Operations every CLI command may call.
#[async_trait]
pub trait Backend: Send + Sync {
    /// CA certificate (DER).
    async fn ca_cert(&self) -> EngineResult<Vec<u8>>;
    /// The CA certificate with renewal index `n` (DER).
    async fn ca_cert_of_renewal(&self, n: u32) -> EngineResult<Vec<u8>>;
    /// The cross-certificates between CA keys (DER).
    async fn cross_certs(&self) -> EngineResult<Vec<Vec<u8>>>;
    /// CA certificate and parents (DER).
    async fn ca_chain(&self) -> EngineResult<Vec<Vec<u8>>>;
    /// Submit a request (for `on_behalf_of`, an enrollment agent's request).
    async fn submit(
        &self,
        req: Vec<u8>,
        template: Option<String>,
        on_behalf_of: Option<String>,
    ) -> EngineResult<Outcome>;
    /// Pending requests.
    async fn pending(&self) -> EngineResult<Vec<RequestRecord>>;
    /// Issue a pending request.
    async fn issue(&self, id: i64) -> EngineResult<Outcome>;
    /// Deny a pending request.
    async fn deny(&self, id: i64) -> EngineResult<Outcome>;
    /// Revoke.
    async fn revoke(&self, serial: &str, reason: &str) -> EngineResult<RequestRecord>;
    /// Publish a CRL.
    async fn publish_crl(&self) -> EngineResult<CrlInfo>;
    /// Release a certificate on hold.
    async fn unrevoke(&self, serial: &str) -> EngineResult<RequestRecord>;
    /// Publish a delta CRL.
    async fn publish_delta_crl(&self) -> EngineResult<CrlInfo>;
    /// Publish a base or delta CRL of CA key `key_index`.
    async fn publish_crl_of_key(
        &self,
        delta: bool,
        key_index: Option<u32>,
    ) -> EngineResult<CrlInfo>;
    /// Query rows.
    async fn view(&self, restrict: &str, limit: i64) -> EngineResult<Vec<RequestRecord>>;
    /// One row.
    async fn request(&self, id: i64) -> EngineResult<RequestRecord>;
    /// Certificate of a request (DER).
    async fn certificate(&self, id: i64) -> EngineResult<Vec<u8>>;
    /// All templates.
    async fn templates(&self) -> EngineResult<Vec<Template>>;
    /// One template.
    async fn template(&self, name: &str) -> EngineResult<Template>;
    /// Duplicate a template.
    async fn duplicate_template(&self, name: &str, new_name: &str) -> EngineResult<Template>;
    /// Set a template property.
    async fn set_template(&self, name: &str, key: &str, value: &str) -> EngineResult<Template>;
    /// Templates the CA issues.
    async fn ca_templates(&self) -> EngineResult<Vec<String>>;
    /// Enable or disable a template on the CA.
    async fn set_ca_template(&self, name: &str, enabled: bool) -> EngineResult<String>;
    /// The current CA exchange certificate (DER).
    async fn exchange_cert(&self) -> EngineResult<Vec<u8>>;
    /// Configured KRA certificates with status.
    async fn kra_list(&self) -> EngineResult<Vec<KraStatus>>;
    /// Add a KRA certificate (PEM/DER bytes or a serial number).
    async fn kra_add(
        &self,
        cert_or_serial: Vec<u8>,
        chain: Option<Vec<u8>>,
        crl: Option<String>,
    ) -> EngineResult<KraStatus>;
    /// Remove a KRA certificate.
    async fn kra_remove(&self, id: &str, force: bool) -> EngineResult<String>;
    /// Read (None) or set (Some) the number of KRAs per key.
    async fn kra_required(&self, set: Option<usize>) -> EngineResult<usize>;
    /// Key history of a token (`getkey --history`).
    async fn key_history(&self, token: &str) -> EngineResult<Vec<HistoryEntry>>;
    /// Recovery candidates for a token.
    async fn find_candidates(&self, token: &str) -> EngineResult<Vec<Candidate>>;
    /// The recovery blob of the one candidate a token names.
    async fn get_key(&self, token: &str) -> EngineResult<RecoveryBlob>;
    /// The recovery blob of a request.
    async fn get_key_by_request(&self, id: i64) -> EngineResult<RecoveryBlob>;
    /// Candidates whose certificates are recipients of an encrypted message.
    async fn candidates_for_message(&self, message: Vec<u8>) -> EngineResult<Vec<Candidate>>;
}

/// The CA home given by --home / LOCKBOX_HOME.
pub fn home_of(g: &Global) -> Result<PathBuf> {
    g.home.clone().ok_or_else(|| {
        anyhow!("no CA home: give --home DIR or set LOCKBOX_HOME (or --server URL for a remote CA)")
    })
}

/// The backend the global options name: the server (--server) or the local CA home.
pub async fn open(g: &Global) -> Result<Box<dyn Backend>> {
    if let Some(server) = &g.server {
        return Ok(Box::new(Remote::new(
            server,
            g.ca_cert.as_ref(),
            g.token.clone(),
        )?));
    }
    Ok(Box::new(Local::open(&home_of(g)?).await?))
}

/// Refuses `what` with --server: it works on the local CA home only.
pub fn local_only(g: &Global, what: &str) -> Result<()> {
    if g.server.is_some() {
        bail!("'{what}' works on the local CA home (--home) only; it is not offered over --server");
    }
    Ok(())
}

/// The local CA home (--home), opened as its administrator.
pub async fn local(g: &Global) -> Result<Local> {
    let home = g
        .home
        .clone()
        .ok_or_else(|| anyhow!("no CA home: give --home DIR or set LOCKBOX_HOME"))?;
    Ok(Local::open(&home).await?)
}

/// GET a JSON document from the server named by --server.
pub async fn remote_json(g: &Global, path: &str) -> Result<Value> {
    let server = g.server.as_deref().unwrap_or_default();
    let remote = Remote::new(server, g.ca_cert.as_ref(), g.token.clone())?;
    Ok(remote.get_json(path).await?)
}
