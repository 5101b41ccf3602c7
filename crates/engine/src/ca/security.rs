//! The facade over principals, authentication, roles, authorisation and audit.

use std::net::IpAddr;

use lockbox_store::{
    AuditHead, AuditRecord, CertificateMapping, EventRecord, Permission, Principal, RequestRecord,
    TokenInfo,
};
use zeroize::Zeroizing;

use crate::actor::{Actor, Op};
use crate::audit::AuditReport;
use crate::error::EngineResult;
use crate::principals::{Credential, NewPrincipal};
use crate::Role;

use super::Ca;

impl Ca {
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
}
