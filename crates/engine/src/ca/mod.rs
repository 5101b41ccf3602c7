//! The certification authority as the front ends see it: a thin facade.
//!
//! [`Ca`] owns the shared [`Core`] and every method delegates in one line to
//! the service that does the work: `init` and `tls_identity` (set-up),
//! `templates`, `enroll` (submit -> template -> names -> policy -> archive ->
//! issue), `officer` (issue, deny, revoke, view), `crl`, `archival`,
//! `recovery`, `import`, `export`, `principals`, `authz`, `audit` and
//! `auditor`, `backup`. Services depend on the core, never on this facade.
//!
//! The methods are grouped as the services are: set-up, enrollment and the
//! officer here, key archival and recovery in `keys.rs`, principals, roles
//! and audit in `security.rs`.

mod keys;
mod security;

use std::path::Path;
use std::sync::Arc;

use lockbox_crypto::KeyHandle;
use lockbox_store::{RequestRecord, Store};
use zeroize::Zeroizing;

use crate::actor::Actor;
use crate::config::{Config, Home};
use crate::core::Core;
use crate::error::EngineResult;
use crate::template::Template;

pub use crate::crl::CrlInfo;
pub use crate::enroll::{Outcome, SubmitOptions};
pub use crate::init::{InitOptions, InitOutcome, InitToken};
pub use crate::ocsp::OcspAnswer;

/// The CA.
pub struct Ca {
    core: Core,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("home", &self.core.home.root())
            .field("name", &self.core.config.ca.name)
            .finish()
    }
}

impl Ca {
    /// Creates a new CA in an empty (or new) home directory.
    pub async fn init(opts: InitOptions) -> EngineResult<InitOutcome> {
        crate::init::init(opts).await
    }

    /// Opens an existing CA.
    pub async fn open(root: &Path) -> EngineResult<Ca> {
        Ok(Ca {
            core: crate::init::open(root).await?,
        })
    }

    /// The shared state, for the few public helpers that take a `&Ca`.
    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        self.core.config()
    }

    /// The home directory.
    pub fn home(&self) -> &Home {
        self.core.home()
    }

    /// The store (for front ends that need raw access in tests and benchmarks).
    pub fn store(&self) -> &Arc<dyn Store> {
        self.core.store()
    }

    /// DER of the CA certificate.
    pub fn ca_certificate_der(&self) -> EngineResult<Vec<u8>> {
        self.core.ca_certificate_der()
    }

    /// The CA certificate followed by its parents up to the root (DER).
    pub fn chain_der(&self) -> EngineResult<Vec<Vec<u8>>> {
        self.core.chain_der()
    }

    /// Renewals of the CA certificate so far (`nRenewals`).
    pub fn renewals(&self) -> u32 {
        self.core.config.ca.renewal
    }

    /// The CA certificate with renewal index `n` (DER), if there is one.
    pub fn ca_certificate_of_renewal(&self, n: u32) -> Option<Vec<u8>> {
        self.core.generations.by_renewal(n).map(|g| g.der.clone())
    }

    /// The cross-certificates renewals with a new key made (DER).
    pub fn cross_certificates(&self) -> EngineResult<Vec<Vec<u8>>> {
        self.core.cross_certificates()
    }

    /// Renews the CA certificate (`lockbox ca renew`; local administrator,
    /// service stopped). The renewed CA is in effect when the home is next
    /// opened.
    pub async fn renew(
        &self,
        actor: &Actor,
        opts: &crate::ca_renewal::RenewOptions,
    ) -> EngineResult<crate::ca_renewal::RenewOutcome> {
        Ok(crate::ca_renewal::renew(&self.core, actor, opts).await?.0)
    }

    /// A subordinate CA's renewal request for its parent (PEM), with the
    /// current key or a new one; `install_certificate` then installs the
    /// parent's certificate as the next renewal.
    pub async fn request_renewal(
        &self,
        actor: &Actor,
        opts: &crate::ca_renewal::RenewOptions,
    ) -> EngineResult<String> {
        crate::ca_renewal::request_renewal(&self.core, actor, opts).await
    }

    /// The signing key, loaded (and decrypted) on first use.
    pub fn signing_key(&self) -> EngineResult<Arc<dyn KeyHandle>> {
        self.core.signing_key()
    }

    /// Checks an administrator token (constant-time comparison of SHA-256 digests).
    pub fn verify_admin_token(&self, token: &str) -> bool {
        self.core.verify_admin_token(token)
    }

    /// Installs the parent-signed certificate of a subordinate CA.
    ///
    /// Checks: it is a CA certificate, its public key is this CA's key, and it
    /// chains through `chain` (issuer first) to a self-signed root.
    pub async fn install_certificate(
        &mut self,
        cert_bytes: &[u8],
        chain_bytes: Option<&[u8]>,
    ) -> EngineResult<String> {
        crate::init::install_certificate(&mut self.core, cert_bytes, chain_bytes).await
    }

    /// All templates.
    pub async fn templates(&self) -> EngineResult<Vec<Template>> {
        crate::templates::templates(&self.core).await
    }

    /// One template by name.
    pub async fn template(&self, name: &str) -> EngineResult<Template> {
        crate::templates::template(&self.core, name).await
    }

    /// Duplicates a template under a new name (editable, version 2+).
    pub async fn duplicate_template(
        &self,
        actor: &Actor,
        name: &str,
        new_name: &str,
    ) -> EngineResult<Template> {
        crate::templates::duplicate_template(&self.core, actor, name, new_name).await
    }

    /// Sets one property of an editable template.
    pub async fn set_template(
        &self,
        actor: &Actor,
        name: &str,
        key: &str,
        value: &str,
    ) -> EngineResult<Template> {
        crate::templates::set_template(&self.core, actor, name, key, value).await
    }

    /// Templates this CA issues.
    pub async fn ca_templates(&self) -> EngineResult<Vec<String>> {
        crate::templates::ca_templates(&self.core).await
    }

    /// Adds a template to (or removes it from) the CA's issue list.
    pub async fn set_ca_template(
        &self,
        actor: &Actor,
        name: &str,
        enabled: bool,
    ) -> EngineResult<String> {
        crate::templates::set_ca_template(&self.core, actor, name, enabled).await
    }

    /// Submits a PKCS#10 or CMC request (PEM, base64 or DER).
    ///
    /// Input that cannot be decoded or authenticated, and requests the policy
    /// refuses, return an error and change nothing. Accepted requests are
    /// recorded in one transaction, issued or pending.
    pub async fn submit(&self, input: &[u8], opts: &SubmitOptions) -> EngineResult<Outcome> {
        crate::enroll::submit(&self.core, input, opts).await
    }

    /// The caller's earlier submission of exactly `input` that is pending or
    /// issued, if any (EST clients repeat a request after "pending").
    pub async fn earlier_submission(
        &self,
        actor: &Actor,
        input: &[u8],
    ) -> EngineResult<Option<Outcome>> {
        crate::enroll::earlier_submission(&self.core, actor, input).await
    }

    /// Requests waiting for a certificate manager.
    pub async fn pending(&self, actor: &Actor) -> EngineResult<Vec<RequestRecord>> {
        crate::officer::pending(&self.core, actor).await
    }

    /// Issues a pending request (certificate manager, within its restrictions).
    pub async fn issue(&self, id: i64, actor: &Actor) -> EngineResult<Outcome> {
        crate::officer::issue(&self.core, id, actor).await
    }

    /// Denies a pending request (any archived key is deleted with it).
    pub async fn deny(&self, id: i64, actor: &Actor) -> EngineResult<Outcome> {
        crate::officer::deny(&self.core, id, actor).await
    }

    /// One request row (callers authorize reading first).
    pub async fn request(&self, id: i64) -> EngineResult<RequestRecord> {
        self.core.request(id).await
    }

    /// The certificate (DER) of an issued or revoked request (certificates are public).
    pub async fn certificate(&self, id: i64) -> EngineResult<Vec<u8>> {
        crate::officer::certificate(&self.core, id).await
    }

    /// Revokes by serial number (hex, spaces allowed).
    pub async fn revoke(
        &self,
        serial: &str,
        reason: i32,
        actor: &Actor,
    ) -> EngineResult<RequestRecord> {
        crate::officer::revoke(&self.core, serial, reason, actor).await
    }

    /// Signs and stores a new CRL of the current CA key (CA administrator or
    /// certificate manager).
    pub async fn publish_crl(&self, actor: &Actor) -> EngineResult<CrlInfo> {
        crate::crl::publish_crl(&self.core, actor, false, None).await
    }

    /// Signs and stores a new delta CRL over the current key's latest base
    /// CRL (CA administrator or certificate manager).
    pub async fn publish_delta_crl(&self, actor: &Actor) -> EngineResult<CrlInfo> {
        crate::crl::publish_crl(&self.core, actor, true, None).await
    }

    /// Signs and stores a base (or `delta`) CRL of CA key `key_index`
    /// (default the current one): an earlier key signs the CRLs of the
    /// certificates it issued.
    pub async fn publish_crl_of_key(
        &self,
        actor: &Actor,
        delta: bool,
        key_index: Option<u32>,
    ) -> EngineResult<CrlInfo> {
        crate::crl::publish_crl(&self.core, actor, delta, key_index).await
    }

    /// The current key's current delta CRL (a new one when the latest is
    /// stale or incomplete).
    pub async fn current_delta_crl(&self) -> EngineResult<Vec<u8>> {
        crate::crl::current_delta_crl(&self.core, self.core.config.ca.key_index).await
    }

    /// The CRL served as `/crl/NAME` (`ca.crl`, `ca+.crl`, `ca(K).crl`,
    /// `ca(K)+.crl`: key index K, `+` for the delta); None for another name.
    pub async fn crl_file(&self, name: &str) -> EngineResult<Option<Vec<u8>>> {
        let Some((k, delta)) = crate::crl::parse_crl_name(name) else {
            return Ok(None);
        };
        if self.core.generations.for_key(k).is_none() {
            return Ok(None);
        }
        Ok(Some(if delta {
            crate::crl::current_delta_crl(&self.core, k).await?
        } else {
            crate::crl::current_crl(&self.core, k).await?
        }))
    }

    /// Publishes the base and delta CRLs the `[crl]` schedule says are due.
    pub async fn publish_due_crls(&self) -> EngineResult<Vec<CrlInfo>> {
        crate::crl::publish_due(&self.core).await
    }

    /// Releases a certificate on hold (`revoke --unrevoke`): it is valid again,
    /// and the next delta CRL lists it as removeFromCRL.
    pub async fn unrevoke(&self, serial: &str, actor: &Actor) -> EngineResult<RequestRecord> {
        crate::officer::unrevoke(&self.core, serial, actor).await
    }

    /// Answers a DER OCSP request (never an error: failures are OCSP statuses).
    pub async fn ocsp(&self, request: &[u8]) -> crate::ocsp::OcspAnswer {
        crate::ocsp::respond(&self.core, request).await
    }

    /// Whether `serve` answers OCSP (`ocsp.enabled`; by default when issued
    /// certificates name an OCSP URL).
    pub fn ocsp_enabled(&self) -> bool {
        let c = &self.core.config;
        c.ocsp.enabled.unwrap_or(!c.issuance.ocsp_urls.is_empty())
    }

    /// The current key's CRL: the latest one if still valid and complete,
    /// else a new one.
    pub async fn current_crl(&self) -> EngineResult<Vec<u8>> {
        crate::crl::current_crl(&self.core, self.core.config.ca.key_index).await
    }

    /// Rows matching a `--restrict` expression.
    pub async fn view(
        &self,
        actor: &Actor,
        restrict: &str,
        limit: i64,
    ) -> EngineResult<Vec<RequestRecord>> {
        crate::officer::view(&self.core, actor, restrict, limit).await
    }

    /// Where each CA key lives (file, database or token) and whether it
    /// matches its certificate (CA administrator).
    pub async fn key_status(
        &self,
        actor: &Actor,
    ) -> EngineResult<Vec<crate::keysource::KeyReport>> {
        crate::keysource::key_status(&self.core, actor).await
    }

    /// The database backend, schema version and row counts (CA administrator).
    pub async fn db_status(&self, actor: &Actor) -> EngineResult<lockbox_store::DatabaseStatus> {
        crate::database::status(&self.core, actor).await
    }

    /// Issues (or reuses) the TLS server certificate for `lockbox serve`.
    /// Returns (certificate chain PEM, private key PEM).
    pub async fn server_tls_identity(
        &self,
        hosts: &[String],
    ) -> EngineResult<(String, Zeroizing<String>)> {
        crate::tls_identity::server_tls_identity(&self.core, hosts).await
    }

    /// Builds the CMC Full PKI Response for an outcome (RFC 5272, MS-WCCE 3.2.1.4.2.1.4.8.2).
    pub async fn cmc_response(&self, outcome: &crate::ca::Outcome) -> EngineResult<Vec<u8>> {
        crate::reply::cmc_response(&self.core, outcome).await
    }

    /// The actor for a principal name (or UPN / down-level name); unknown names
    /// get no groups or roles beyond Authenticated Users.
    pub async fn actor_for(&self, name: &str) -> EngineResult<Actor> {
        crate::core::directory::actor_for(&self.core, name).await
    }
}
