//! Configuration changes applied with their audit record in one transaction.

use super::{NewRequest, Permission, Principal};

/// A configuration change, applied with its audit record in one transaction.
#[derive(Clone, Debug)]
pub enum Change {
    /// Insert or replace a template definition.
    PutTemplate {
        /// Name.
        name: String,
        /// Definition (JSON).
        json: String,
    },
    /// Add/remove a template from the CA's issue list.
    SetCaTemplate {
        /// Name.
        name: String,
        /// Whether the CA issues it.
        enabled: bool,
    },
    /// Add a KRA certificate (idempotent).
    AddKra {
        /// SHA-1 thumbprint (hex).
        thumbprint: String,
        /// Certificate (DER).
        cert_der: Vec<u8>,
        /// Chain up to its root, PEM, when issued by another CA.
        chain_der: Option<Vec<u8>>,
        /// Its issuer's CRL (file or http URL), when issued by another CA.
        crl_source: Option<String>,
        /// When (unix seconds).
        at: i64,
    },
    /// Remove a KRA certificate.
    RemoveKra {
        /// SHA-1 thumbprint (hex).
        thumbprint: String,
    },
    /// Write a setting.
    SetSetting {
        /// Name.
        name: String,
        /// Value.
        value: String,
    },
    /// Add a principal.
    AddPrincipal(Principal),
    /// Remove a principal with its tokens, roles, memberships and mappings.
    RemovePrincipal {
        /// Name.
        name: String,
    },
    /// Add a member to a group.
    AddMember {
        /// Group name.
        group: String,
        /// Member name.
        member: String,
    },
    /// Attach an archived key to an existing certificate row (manual archival).
    AttachArchivedKey {
        /// Request ID.
        request_id: i64,
        /// The EnvelopedData to the KRAs (DER).
        archived_key: Vec<u8>,
        /// SHA-1 thumbprints of the KRAs used (comma separated).
        kra_hashes: String,
        /// Owner principal, when known.
        owner: Option<String>,
        /// Where the key came from (file, system).
        source: Option<String>,
    },
    /// Record the names an imported key's owner is known by (principal name,
    /// UPN, down-level name, e-mail), searchable case-insensitively, for the
    /// row holding the certificate with this SHA-1 thumbprint.
    SetOwnerNames {
        /// SHA-1 thumbprint (hex) of the certificate row.
        thumbprint: String,
        /// The names.
        names: Vec<String>,
    },
    /// Store a CA exchange private key, sealed to the exchange wrapping key
    /// (an exchange key kept as a file before keys moved to the database).
    PutExchangeKey {
        /// Serial number (lowercase hex) of its exchange certificate.
        serial: String,
        /// The sealed key (CMS EnvelopedData).
        sealed_key: Vec<u8>,
        /// When (unix seconds).
        at: i64,
    },
    /// Forget every stored exchange key (a restore without the exchange
    /// keys: the CA makes a new exchange certificate when one is needed).
    ClearExchangeKeys,
    /// Delete an archived key (after a verified export with --remove).
    ClearArchivedKey {
        /// Request ID.
        request_id: i64,
    },
    /// Record an imported certificate row (foreign or this CA's), with or without a key.
    InsertImported {
        /// The row to insert.
        request: Box<NewRequest>,
        /// Issued by another CA.
        foreign: bool,
        /// Owner principal, when known.
        owner: Option<String>,
        /// Where the key came from (file, system).
        source: Option<String>,
    },
    /// Archive a key that matches no certificate, under its key ID.
    InsertUnmatchedKey {
        /// Subject key identifier (hex).
        key_id: String,
        /// The EnvelopedData to the KRAs (DER).
        archived_key: Vec<u8>,
        /// SHA-1 thumbprints of the KRAs used (comma separated).
        kra_hashes: String,
        /// Owner principal, when known.
        owner: Option<String>,
        /// Where the key came from (file, system).
        source: Option<String>,
        /// Who imported it.
        imported_by: String,
        /// When (unix seconds).
        at: i64,
    },
    /// Add an API token.
    AddToken {
        /// Token ID.
        id: String,
        /// Principal name.
        principal: String,
        /// SHA-256 of the secret (hex).
        secret_hash: String,
        /// When (unix seconds).
        at: i64,
    },
    /// Map a client certificate to a principal.
    MapCertificate {
        /// SHA-1 thumbprint (hex).
        thumbprint: String,
        /// Principal name.
        principal: String,
        /// The certificate's serial number (lowercase hex).
        serial: Option<String>,
    },
    /// Grant a role.
    GrantRole {
        /// Principal name.
        principal: String,
        /// Role name.
        role: String,
    },
    /// Revoke a role.
    RevokeRole {
        /// Principal name.
        principal: String,
        /// Role name.
        role: String,
    },
    /// Set (replace) a permission entry; empty rights remove it.
    SetPermission(Permission),
    /// Replace a manager's restrictions.
    SetRestrictions {
        /// Certificate manager.
        manager: String,
        /// Groups it may act for (empty: any).
        groups: Vec<String>,
        /// Templates it may act on (empty: any).
        templates: Vec<String>,
    },
    /// Delete one API token of a principal (not found if it has no such token).
    RevokeToken {
        /// Principal name.
        principal: String,
        /// Token ID.
        id: String,
    },
    /// Remove a client-certificate mapping of a principal (not found if absent).
    UnmapCertificate {
        /// Principal name.
        principal: String,
        /// SHA-1 thumbprint (hex).
        thumbprint: String,
    },
}
