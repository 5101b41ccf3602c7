//! The certification authority as the front ends see it: a thin facade.
//!
//! [`Ca`] owns the shared [`Core`] and every method delegates in one line to
//! the service that does the work: `init` and `tls_identity` (set-up),
//! `templates`, `enroll` (submit -> template -> names -> policy -> archive ->
//! issue), `officer` (issue, deny, revoke, view), `crl`, `archival`,
//! `recovery`, `import`, `export`, `principals`, `authz`, `audit` and
//! `auditor`, `backup`. Services depend on the core, never on this facade.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use lockbox_crypto::{KeyHandle, SoftwareKey};
use lockbox_store::{
    AuditHead, AuditRecord, CertificateMapping, EventRecord, Permission, Principal, RequestRecord,
    Store, TokenInfo,
};
use zeroize::Zeroizing;

use crate::actor::{Actor, Op};
use crate::archival::KraStatus;
use crate::audit::AuditReport;
use crate::backup::{BackupOptions, Manifest};
use crate::config::{Config, Home};
use crate::core::Core;
use crate::error::EngineResult;
use crate::export::{Export, Selection};
use crate::import::{ImportItem, ImportOptions};
use crate::principals::{Credential, NewPrincipal};
use crate::recovery::{Candidate, RecoveryBlob};
use crate::template::Template;
use crate::Role;

pub use crate::certs::{cert_fields, load_private_key, verify_issued_by};
pub use crate::crl::CrlInfo;
pub use crate::enroll::{Outcome, SubmitOptions};
pub use crate::init::{permission_findings, InitOptions, InitOutcome};

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

    /// Signs and stores a new CRL (CA administrator or certificate manager).
    pub async fn publish_crl(&self, actor: &Actor) -> EngineResult<CrlInfo> {
        crate::crl::publish_crl(&self.core, actor).await
    }

    /// The current CRL: the latest one if still valid and complete, else a new one.
    pub async fn current_crl(&self) -> EngineResult<Vec<u8>> {
        crate::crl::current_crl(&self.core).await
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

    /// Issues (or reuses) the TLS server certificate for `lockbox serve`.
    /// Returns (certificate chain PEM, private key PEM).
    pub async fn server_tls_identity(
        &self,
        hosts: &[String],
    ) -> EngineResult<(String, Zeroizing<String>)> {
        crate::tls_identity::server_tls_identity(&self.core, hosts).await
    }

    /// Exchange certificates still valid whose private key this CA holds
    /// (newest first), as DER. A home restored from a backup without exchange
    /// keys has the old certificates but not their keys: they are skipped, and
    /// a new exchange certificate is made when one is next needed.
    pub async fn exchange_certificates(&self) -> EngineResult<Vec<Vec<u8>>> {
        crate::archival::exchange::exchange_certificates(&self.core).await
    }

    /// The exchange certificate clients should encrypt to, creating one when
    /// none is valid or the newest is inside its overlap window.
    pub async fn current_exchange_certificate(&self) -> EngineResult<Vec<u8>> {
        crate::archival::exchange::current_exchange_certificate(&self.core).await
    }

    /// The configured KRA certificates with their status.
    pub async fn kra_list(&self, actor: &Actor) -> EngineResult<Vec<KraStatus>> {
        crate::archival::kra::kra_list(&self.core, actor).await
    }

    /// Validates the KRA configuration and records the seed's events: 84/85
    /// per unusable certificate, 82 when fewer than configured verify, 98 when
    /// fewer than required (archival stops), 127 when a certificate expires soon.
    /// Runs when the service starts and whenever the KRA configuration changes.
    pub async fn validate_kras(&self) -> EngineResult<(usize, usize)> {
        crate::archival::kra::validate_kras(&self.core).await
    }

    /// Adds a KRA certificate, given as PEM/DER or as the serial number of a
    /// certificate this CA issued. Certificates of other CAs need their chain
    /// (PEM, up to the root) and a CRL source (file path or http URL).
    pub async fn kra_add(
        &self,
        actor: &Actor,
        cert_or_serial: &[u8],
        chain_pem: Option<Vec<u8>>,
        crl_source: Option<String>,
    ) -> EngineResult<KraStatus> {
        crate::archival::kra_admin::kra_add(
            &self.core,
            actor,
            cert_or_serial,
            chain_pem,
            crl_source,
        )
        .await
    }

    /// Removes a KRA certificate by thumbprint or serial number. Refused
    /// (0x8007139F, listing them) when it is the last configured agent able to
    /// open some archived keys, unless `force`.
    pub async fn kra_remove(&self, actor: &Actor, id: &str, force: bool) -> EngineResult<String> {
        crate::archival::kra_admin::kra_remove(&self.core, actor, id, force).await
    }

    /// How many KRAs each archived key is encrypted to (0 = archival off).
    pub async fn kra_required(&self) -> EngineResult<usize> {
        crate::archival::kra::kra_required(&self.core).await
    }

    /// Sets how many KRAs each key is encrypted to; cannot exceed the configured count.
    pub async fn set_kra_required(&self, actor: &Actor, n: usize) -> EngineResult<()> {
        crate::archival::kra_admin::set_kra_required(&self.core, actor, n).await
    }

    /// Sets how many days before a KRA certificate expires the CA warns
    /// (event 127; `kra_expiry_warning_days`, default 30).
    pub async fn set_kra_expiry_warning_days(&self, actor: &Actor, days: u32) -> EngineResult<()> {
        crate::archival::kra_admin::set_kra_expiry_warning_days(&self.core, actor, days).await
    }

    /// The archived-key envelope stored with a request.
    pub async fn archived_key(&self, request_id: i64) -> EngineResult<Vec<u8>> {
        crate::archival::envelope::archived_key(&self.core, request_id).await
    }

    /// SHA-1 thumbprints of the KRA certificates a request's key is encrypted to.
    pub async fn kra_hashes(&self, request_id: i64) -> EngineResult<Vec<String>> {
        crate::archival::envelope::kra_hashes(&self.core, request_id).await
    }

    /// Builds the CMC Full PKI Response for an outcome (RFC 5272, MS-WCCE 3.2.1.4.2.1.4.8.2).
    pub async fn cmc_response(&self, outcome: &crate::ca::Outcome) -> EngineResult<Vec<u8>> {
        crate::reply::cmc_response(&self.core, outcome).await
    }

    /// Signs the current chain head with the CA key.
    pub async fn sign_audit_head(&self) -> EngineResult<Option<AuditHead>> {
        crate::audit::heads::sign_audit_head(&self.core).await
    }

    /// Audit records since a time (Auditor, or CA administrator without role separation).
    pub async fn audit_list(
        &self,
        actor: &Actor,
        since: Option<i64>,
        limit: i64,
    ) -> EngineResult<Vec<AuditRecord>> {
        crate::auditor::audit_list(&self.core, actor, since, limit).await
    }

    /// The latest `n` audit records, oldest first, and how many exist (one
    /// indexed read for the count, one range read for the records).
    pub async fn audit_latest(
        &self,
        actor: &Actor,
        n: i64,
    ) -> EngineResult<(i64, Vec<AuditRecord>)> {
        crate::auditor::audit_latest(&self.core, actor, n).await
    }

    /// Verifies the chain: every record's hash, its link to the previous one,
    /// contiguous positions, and every signed head.
    pub async fn audit_verify(&self, actor: &Actor) -> EngineResult<AuditReport> {
        crate::auditor::audit_verify(&self.core, actor).await
    }

    /// Sets the audited categories (Auditor only).
    pub async fn set_audit_categories(
        &self,
        actor: &Actor,
        categories: &[String],
    ) -> EngineResult<Vec<String>> {
        crate::auditor::set_audit_categories(&self.core, actor, categories).await
    }

    /// The audited categories.
    pub async fn audit_categories(&self) -> Vec<String> {
        crate::auditor::audit_categories(&self.core).await
    }

    /// Records a CA event (also through tracing).
    pub async fn event(&self, event_id: i64, level: &str, message: &str) -> EngineResult<()> {
        crate::audit::chain::event(&self.core, event_id, level, message).await
    }

    /// The latest CA events.
    pub async fn events(&self, actor: &Actor, limit: i64) -> EngineResult<Vec<EventRecord>> {
        crate::auditor::events(&self.core, actor, limit).await
    }

    /// Whether role separation is on.
    pub async fn role_separation(&self) -> EngineResult<bool> {
        crate::authz::role_separation(&self.core).await
    }

    /// Decides `op` for `actor`; a refusal is written to the audit trail and returned.
    pub async fn authorize(&self, actor: &Actor, op: Op<'_>) -> EngineResult<()> {
        crate::authz::authorize(&self.core, actor, op).await
    }

    /// Whether `op` would be allowed, without auditing (for filtering listings).
    pub async fn would_allow(&self, actor: &Actor, op: Op<'_>) -> bool {
        crate::authz::would_allow(&self.core, actor, op).await
    }

    /// The rows of `rows` the actor may read: all of them, except for a
    /// restricted certificate manager (not also a CA administrator or an
    /// auditor), who reads only the rows it may act on.
    pub async fn visible_rows(
        &self,
        actor: &Actor,
        rows: Vec<RequestRecord>,
    ) -> EngineResult<Vec<RequestRecord>> {
        crate::authz::visible_rows(&self.core, actor, rows).await
    }

    /// Whether the actor may act on the row as a certificate manager (issue,
    /// deny, revoke), without auditing: for showing or hiding buttons.
    pub async fn may_manage(&self, actor: &Actor, r: &RequestRecord) -> bool {
        crate::authz::may_manage(&self.core, actor, r).await
    }

    /// One request row for a reader of the CA database; a restricted manager
    /// gets 0x80094009 for a row outside its restrictions (audited).
    pub async fn read_request(&self, actor: &Actor, id: i64) -> EngineResult<RequestRecord> {
        crate::authz::read_request(&self.core, actor, id).await
    }

    /// Takes an online, consistent backup into `out` (absent or empty),
    /// without the CA exchange keys.
    pub async fn backup(
        &self,
        actor: &Actor,
        out: &Path,
        backup_passphrase: &[u8],
    ) -> EngineResult<Manifest> {
        crate::backup::backup(&self.core, actor, out, backup_passphrase).await
    }

    /// [`Ca::backup`] with options.
    pub async fn backup_with(
        &self,
        actor: &Actor,
        out: &Path,
        backup_passphrase: &[u8],
        options: BackupOptions,
    ) -> EngineResult<Manifest> {
        crate::backup::backup_with(&self.core, actor, out, backup_passphrase, options).await
    }

    /// Whether the CA accepts foreign certificates.
    pub async fn foreign_enabled(&self) -> EngineResult<bool> {
        crate::import::foreign_enabled(&self.core).await
    }

    /// Turns KRAF_ENABLEFOREIGN on or off.
    pub async fn set_foreign_enabled(&self, actor: &Actor, on: bool) -> EngineResult<()> {
        crate::import::set_foreign_enabled(&self.core, actor, on).await
    }

    /// Imports one PKCS#12 file (its key and certificates).
    pub async fn import_pkcs12(
        &self,
        actor: &Actor,
        data: &[u8],
        password: &str,
        source: &str,
        opts: &ImportOptions,
    ) -> EngineResult<Vec<ImportItem>> {
        crate::import::pkcs12::import_pkcs12(&self.core, actor, data, password, source, opts).await
    }

    /// Imports one certificate without a key (`importcert`).
    pub async fn import_certificate(
        &self,
        actor: &Actor,
        der: &[u8],
        source: &str,
        opts: &ImportOptions,
    ) -> EngineResult<ImportItem> {
        crate::import::pkcs12::import_certificate(&self.core, actor, der, source, opts).await
    }

    /// Imports many PKCS#12 files with one transaction (one durable commit)
    /// per call; if the batch cannot be written as a whole, each file is
    /// imported on its own so one bad file never stops the others.
    pub async fn import_pkcs12_many(
        &self,
        actor: &Actor,
        files: &[(String, Vec<u8>)],
        password: &str,
        opts: &ImportOptions,
    ) -> EngineResult<Vec<(String, EngineResult<Vec<ImportItem>>)>> {
        crate::import::pkcs12::import_pkcs12_many(&self.core, actor, files, password, opts).await
    }

    /// The actor for a principal name (or UPN / down-level name); unknown names
    /// get no groups or roles beyond Authenticated Users.
    pub async fn actor_for(&self, name: &str) -> EngineResult<Actor> {
        crate::core::directory::actor_for(&self.core, name).await
    }

    /// Authenticates a network caller. Every failure (bad password, unknown
    /// or revoked token, unmapped or revoked certificate) is written to the
    /// audit trail (category `security`, outcome `refused`) without the
    /// secret. Password logins (the guessable credential) are refused with
    /// [`EngineError::Throttled`] (0x80070775), unchecked, while the pair
    /// (principal, source) has [`LOGIN_FAILURES_PER_PAIR`] failed password
    /// logins, or the source [`LOGIN_FAILURES_PER_SOURCE`] failures of any
    /// kind, in the last [`LOGIN_WINDOW`]. A source is an IPv4 address or an
    /// IPv6 /64. The same principal from a source that is not itself over a
    /// limit is checked as usual, so a guesser slows only itself and cannot
    /// lock a victim out. Tokens (192 random bits) and TLS-verified
    /// certificates are never throttled, and once a source is over its limit
    /// its further token and certificate failures in that window are not
    /// recorded again (the record that crossed the limit says so).
    pub async fn login(
        &self,
        credential: Credential<'_>,
        source: Option<IpAddr>,
    ) -> EngineResult<Option<Actor>> {
        crate::principals::login::login(&self.core, credential, source).await
    }

    /// Authenticates an API token (`lbt_ID_SECRET`, or the administrator token).
    /// A verified token is remembered only while the database's credential
    /// version is unchanged: removing its principal or revoking it (from any
    /// process) takes effect on the next request.
    pub async fn authenticate_token(&self, token: &str) -> EngineResult<Option<Actor>> {
        crate::principals::login::authenticate_token(&self.core, token).await
    }

    /// Authenticates a name (principal, UPN or DOMAIN\name) and password (HTTP Basic).
    pub async fn authenticate_password(
        &self,
        name: &str,
        password: &str,
    ) -> EngineResult<Option<Actor>> {
        crate::principals::login::authenticate_password(&self.core, name, password).await
    }

    /// Authenticates a TLS client certificate by its SHA-1 thumbprint mapping.
    pub async fn authenticate_certificate(&self, cert_der: &[u8]) -> EngineResult<Option<Actor>> {
        crate::principals::login::authenticate_certificate(&self.core, cert_der).await
    }

    /// Authenticates a verified TLS client certificate given by thumbprint
    /// (hex SHA-1). A certificate this CA has revoked (its row in the CA
    /// database) no longer authenticates, checked at each use.
    pub async fn authenticate_certificate_thumbprint(
        &self,
        thumb: &str,
    ) -> EngineResult<Option<Actor>> {
        crate::principals::login::authenticate_certificate_thumbprint(&self.core, thumb).await
    }

    /// Adds a user (or group, `group = true`).
    #[allow(clippy::too_many_arguments)]
    pub async fn add_principal(
        &self,
        actor: &Actor,
        name: &str,
        group: bool,
        upn: Option<String>,
        email: Option<String>,
        downlevel: Option<String>,
        password: Option<Zeroizing<String>>,
        with_token: bool,
    ) -> EngineResult<NewPrincipal> {
        crate::principals::admin::add_principal(
            &self.core, actor, name, group, upn, email, downlevel, password, with_token,
        )
        .await
    }

    /// Issues another API token for a user.
    pub async fn add_token(&self, actor: &Actor, name: &str) -> EngineResult<String> {
        crate::principals::admin::add_token(&self.core, actor, name).await
    }

    /// Removes a principal and everything attached to it (tokens, certificate
    /// mappings, roles, memberships): every process stops accepting its
    /// credentials at the next request.
    pub async fn remove_principal(&self, actor: &Actor, name: &str) -> EngineResult<()> {
        crate::principals::admin::remove_principal(&self.core, actor, name).await
    }

    /// A user's API tokens (IDs and creation dates; secrets are never kept).
    pub async fn tokens(&self, actor: &Actor, name: &str) -> EngineResult<Vec<TokenInfo>> {
        crate::principals::admin::tokens(&self.core, actor, name).await
    }

    /// Revokes one API token of a user: refused at the next request of every process.
    pub async fn revoke_token(&self, actor: &Actor, name: &str, id: &str) -> EngineResult<()> {
        crate::principals::admin::revoke_token(&self.core, actor, name, id).await
    }

    /// A principal's client-certificate mappings.
    pub async fn certificate_mappings(
        &self,
        actor: &Actor,
        name: &str,
    ) -> EngineResult<Vec<CertificateMapping>> {
        crate::principals::admin::certificate_mappings(&self.core, actor, name).await
    }

    /// Removes the mapping of the client certificate with serial number
    /// `serial` (hex, any separators; or its SHA-1 thumbprint) from a principal.
    /// Returns the thumbprint removed.
    pub async fn unmap_certificate(
        &self,
        actor: &Actor,
        name: &str,
        serial: &str,
    ) -> EngineResult<String> {
        crate::principals::admin::unmap_certificate(&self.core, actor, name, serial).await
    }

    /// Every principal.
    pub async fn principals(&self, actor: &Actor) -> EngineResult<Vec<Principal>> {
        crate::principals::admin::principals(&self.core, actor).await
    }

    /// Adds `member` (a user or group) to `group`.
    pub async fn add_member(&self, actor: &Actor, group: &str, member: &str) -> EngineResult<()> {
        crate::principals::grants::add_member(&self.core, actor, group, member).await
    }

    /// Maps a client certificate (PEM/DER) to a principal for TLS client authentication.
    pub async fn map_certificate(
        &self,
        actor: &Actor,
        name: &str,
        cert: &[u8],
    ) -> EngineResult<String> {
        crate::principals::grants::map_certificate(&self.core, actor, name, cert).await
    }

    /// Grants or revokes a role.
    pub async fn set_role(
        &self,
        actor: &Actor,
        principal: &str,
        role: Role,
        grant: bool,
    ) -> EngineResult<()> {
        crate::principals::grants::set_role(&self.core, actor, principal, role, grant).await
    }

    /// Every role grant.
    pub async fn role_grants(&self, actor: &Actor) -> EngineResult<Vec<(String, String)>> {
        crate::principals::grants::role_grants(&self.core, actor).await
    }

    /// Sets a template permission entry (`allow` or deny) for a principal or group.
    pub async fn set_template_permission(
        &self,
        actor: &Actor,
        template: &str,
        who: &str,
        rights: &[String],
        allow: bool,
    ) -> EngineResult<Permission> {
        crate::principals::grants::set_template_permission(
            &self.core, actor, template, who, rights, allow,
        )
        .await
    }

    /// Permission entries of a template (stored ones; the template's own enroll lists apply too).
    pub async fn template_permissions(&self, template: &str) -> EngineResult<Vec<Permission>> {
        crate::principals::grants::template_permissions(&self.core, template).await
    }

    /// Replaces a certificate manager's restrictions (empty lists: unrestricted).
    pub async fn set_restrictions(
        &self,
        actor: &Actor,
        manager: &str,
        groups: Vec<String>,
        templates: Vec<String>,
    ) -> EngineResult<()> {
        crate::principals::grants::set_restrictions(&self.core, actor, manager, groups, templates)
            .await
    }

    /// A manager's own restrictions (groups, templates); those of the groups
    /// it belongs to apply as well (see `Ca::authorize`).
    pub async fn restrictions(&self, manager: &str) -> EngineResult<(Vec<String>, Vec<String>)> {
        crate::principals::grants::restrictions(&self.core, manager).await
    }

    /// Turns role separation on or off.
    pub async fn set_role_separation(&self, actor: &Actor, on: bool) -> EngineResult<()> {
        crate::principals::grants::set_role_separation(&self.core, actor, on).await
    }

    /// Recovery candidates for a token (CN, UPN, DOMAIN\user, e-mail, requester,
    /// serial, SHA-1 thumbprint or key ID). Only rows holding an archived key;
    /// expired certificates included. Certificate managers only; a restricted
    /// manager sees only the rows it may act on.
    pub async fn find_candidates(
        &self,
        actor: &Actor,
        token: &str,
    ) -> EngineResult<Vec<Candidate>> {
        crate::recovery::search::find_candidates(&self.core, actor, token).await
    }

    /// Produces the recovery blob of one candidate: CMS SignedData by the CA
    /// over the archived EnvelopedData, with the user certificate and chain.
    /// Several matches are refused (0x8002802C); every retrieval is audited.
    pub async fn get_key(&self, actor: &Actor, token: &str) -> EngineResult<RecoveryBlob> {
        crate::recovery::blob::get_key(&self.core, actor, token).await
    }

    /// Produces the recovery blob of a request.
    pub async fn get_key_by_request(
        &self,
        actor: &Actor,
        request_id: i64,
    ) -> EngineResult<RecoveryBlob> {
        crate::recovery::blob::get_key_by_request(&self.core, actor, request_id).await
    }

    /// Archived keys whose certificates match any recipient of an encrypted
    /// message (issuer + serial, or subject key identifier).
    pub async fn candidates_for_message(
        &self,
        actor: &Actor,
        message: &[u8],
    ) -> EngineResult<Vec<Candidate>> {
        crate::recovery::search::candidates_for_message(&self.core, actor, message).await
    }

    /// Builds a key-history export: retrieves each selected blob (audited, as a
    /// certificate manager), opens it with the agent's key, groups keys per
    /// user, locks the document to `dest_cert` and signs it with this CA.
    pub async fn export_keys(
        &self,
        actor: &Actor,
        selection: &Selection,
        dest_cert: &[u8],
        kra_key: &SoftwareKey,
        kra_cert: &[u8],
    ) -> EngineResult<Export> {
        crate::export::export_keys(&self.core, actor, selection, dest_cert, kra_key, kra_cert).await
    }

    /// Deletes exported archived keys from this CA (after the export file was written and verified).
    pub async fn remove_exported_keys(
        &self,
        actor: &Actor,
        request_ids: &[i64],
    ) -> EngineResult<()> {
        crate::export::remove_exported_keys(&self.core, actor, request_ids).await
    }

    /// Imports a key-history export: the signature must verify against
    /// `trusted_source`, the lock box must open with `dest_key`/`dest_cert`;
    /// nothing is written otherwise. Returns (source CA, users, items).
    #[allow(clippy::too_many_arguments)]
    pub async fn import_key_history(
        &self,
        actor: &Actor,
        file: &[u8],
        trusted_source: &[u8],
        dest_key: &SoftwareKey,
        dest_cert: &[u8],
        source: &str,
        opts: &ImportOptions,
    ) -> EngineResult<(String, usize, Vec<ImportItem>)> {
        crate::export::import_key_history(
            &self.core,
            actor,
            file,
            trusted_source,
            dest_key,
            dest_cert,
            source,
            opts,
        )
        .await
    }
}
