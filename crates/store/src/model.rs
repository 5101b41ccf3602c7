//! Row types shared by the store trait and its backends.

use serde::{Deserialize, Serialize};

/// The disposition of a request (AD CS: Request.Disposition).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    /// Waiting for a certificate manager.
    Pending,
    /// Certificate issued.
    Issued,
    /// Refused (by policy or by an officer).
    Denied,
    /// Issued, then revoked.
    Revoked,
}

impl Disposition {
    /// The column value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Disposition::Pending => "pending",
            Disposition::Issued => "issued",
            Disposition::Denied => "denied",
            Disposition::Revoked => "revoked",
        }
    }

    /// Parses a column value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "pending" => Disposition::Pending,
            "issued" => Disposition::Issued,
            "denied" => Disposition::Denied,
            "revoked" => Disposition::Revoked,
            _ => return None,
        })
    }
}

/// The certificate part of a row, with its searchable columns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertFields {
    /// DER certificate (not serialised; fetch certificates explicitly).
    #[serde(skip, default)]
    pub cert_der: Vec<u8>,
    /// Serial number, lowercase hex.
    pub serial: String,
    /// Subject DN (RFC 4514).
    pub subject: String,
    /// Common name.
    pub common_name: Option<String>,
    /// User principal name from the SAN.
    pub upn: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Subject key identifier, lowercase hex.
    pub key_id: String,
    /// SHA-1 thumbprint, lowercase hex.
    pub thumbprint: String,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// Public key algorithm (`rsa`, `p256`, ...).
    pub key_algorithm: String,
    /// Public key size in bits.
    pub key_length: i64,
}

/// A request to record.
#[derive(Clone, Debug)]
pub struct NewRequest {
    /// The request as received, DER.
    pub request_der: Vec<u8>,
    /// `pkcs10` or `cmc`.
    pub request_kind: String,
    /// Who submitted it.
    pub requester: String,
    /// Template name.
    pub template: Option<String>,
    /// Subject DN requested.
    pub request_subject: String,
    /// Searchable identities from the request (used until a certificate exists).
    pub request_common_name: Option<String>,
    /// UPN from the request.
    pub request_upn: Option<String>,
    /// E-mail from the request.
    pub request_email: Option<String>,
    /// Initial disposition.
    pub disposition: Disposition,
    /// Disposition message.
    pub disposition_message: String,
    /// HRESULT-style status code (0 for success).
    pub status_code: i64,
    /// Submission time, unix seconds.
    pub submitted_at: i64,
    /// The certificate, when issued at submission.
    pub cert: Option<CertFields>,
    /// Archived key envelope (CMS EnvelopedData), when archived.
    pub archived_key: Option<Vec<u8>>,
    /// Comma-separated SHA-1 hashes of the KRA certificates the key is encrypted to.
    pub kra_hashes: Option<String>,
}

/// One row of the CA database.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Request ID.
    pub request_id: i64,
    /// Disposition.
    pub disposition: Disposition,
    /// Disposition message.
    pub disposition_message: String,
    /// HRESULT-style status code.
    pub status_code: i64,
    /// Requester name.
    pub requester: String,
    /// Template name.
    pub template: Option<String>,
    /// `pkcs10` or `cmc`.
    pub request_kind: String,
    /// Subject DN requested.
    pub request_subject: String,
    /// Submitted, unix seconds.
    pub submitted_at: i64,
    /// Resolved (issued/denied), unix seconds.
    pub resolved_at: Option<i64>,
    /// Request DER.
    #[serde(skip)]
    pub request_der: Vec<u8>,
    /// Common name (certificate, else request).
    pub common_name: Option<String>,
    /// UPN (certificate, else request).
    pub upn: Option<String>,
    /// E-mail (certificate, else request).
    pub email: Option<String>,
    /// Certificate fields, when a certificate exists.
    pub cert: Option<CertFields>,
    /// Revocation time, unix seconds.
    pub revoked_at: Option<i64>,
    /// CRL reason code.
    pub revocation_reason: Option<i32>,
    /// Whether an archived key is stored.
    pub has_archived_key: bool,
}

/// A revoked certificate for the CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial, lowercase hex.
    pub serial: String,
    /// Revocation time, unix seconds.
    pub revoked_at: i64,
    /// CRL reason code.
    pub reason: i32,
}

/// A published CRL.
#[derive(Clone, Debug)]
pub struct CrlRecord {
    /// CRL number.
    pub crl_number: i64,
    /// thisUpdate, unix seconds.
    pub this_update: i64,
    /// nextUpdate, unix seconds.
    pub next_update: i64,
    /// DER.
    pub der: Vec<u8>,
}

/// Columns `view --restrict` and `view --out` may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// RequestID.
    RequestId,
    /// Disposition.
    Disposition,
    /// Requester name.
    Requester,
    /// Template.
    Template,
    /// Serial number.
    SerialNumber,
    /// Subject DN.
    Subject,
    /// Common name.
    CommonName,
    /// UPN.
    Upn,
    /// E-mail.
    Email,
    /// Key identifier.
    KeyId,
    /// SHA-1 thumbprint.
    Thumbprint,
    /// notBefore.
    NotBefore,
    /// notAfter.
    NotAfter,
    /// Submission time.
    SubmittedWhen,
    /// Resolution time.
    ResolvedWhen,
    /// Revocation time.
    RevokedWhen,
    /// Revocation reason.
    RevocationReason,
    /// Status code.
    StatusCode,
    /// Public key length.
    KeyLength,
    /// Whether an archived key is stored.
    ArchivedKey,
}

impl Column {
    /// Every column, in display order.
    pub const ALL: [Column; 20] = [
        Column::RequestId,
        Column::Disposition,
        Column::Requester,
        Column::Template,
        Column::SerialNumber,
        Column::Subject,
        Column::CommonName,
        Column::Upn,
        Column::Email,
        Column::KeyId,
        Column::Thumbprint,
        Column::NotBefore,
        Column::NotAfter,
        Column::SubmittedWhen,
        Column::ResolvedWhen,
        Column::RevokedWhen,
        Column::RevocationReason,
        Column::StatusCode,
        Column::KeyLength,
        Column::ArchivedKey,
    ];

    /// The operator-facing name (certutil style).
    pub fn name(&self) -> &'static str {
        match self {
            Column::RequestId => "RequestID",
            Column::Disposition => "Disposition",
            Column::Requester => "RequesterName",
            Column::Template => "CertificateTemplate",
            Column::SerialNumber => "SerialNumber",
            Column::Subject => "Subject",
            Column::CommonName => "CommonName",
            Column::Upn => "UPN",
            Column::Email => "EMail",
            Column::KeyId => "KeyId",
            Column::Thumbprint => "CertificateHash",
            Column::NotBefore => "NotBefore",
            Column::NotAfter => "NotAfter",
            Column::SubmittedWhen => "SubmittedWhen",
            Column::ResolvedWhen => "ResolvedWhen",
            Column::RevokedWhen => "RevokedWhen",
            Column::RevocationReason => "RevokedReason",
            Column::StatusCode => "StatusCode",
            Column::KeyLength => "PublicKeyLength",
            Column::ArchivedKey => "ArchivedKey",
        }
    }

    /// Looks a column up by name (case-insensitive; a few certutil aliases).
    pub fn parse(name: &str) -> Option<Column> {
        let n = name
            .trim()
            .to_ascii_lowercase()
            .replace(['.', '_', ' '], "");
        let alias = match n.as_str() {
            "requestid" | "id" => Column::RequestId,
            "disposition" | "requestdisposition" | "status" => Column::Disposition,
            "requestername" | "requester" => Column::Requester,
            "certificatetemplate" | "template" => Column::Template,
            "serialnumber" | "serial" => Column::SerialNumber,
            "subject" | "distinguishedname" => Column::Subject,
            "commonname" | "cn" => Column::CommonName,
            "upn" | "userprincipalname" => Column::Upn,
            "email" | "emailaddress" => Column::Email,
            "keyid" | "subjectkeyidentifier" => Column::KeyId,
            "certificatehash" | "thumbprint" | "certhash" => Column::Thumbprint,
            "notbefore" | "certificateeffectivedate" => Column::NotBefore,
            "notafter" | "certificateexpirationdate" => Column::NotAfter,
            "submittedwhen" | "requestsubmittedwhen" => Column::SubmittedWhen,
            "resolvedwhen" | "requestresolvedwhen" => Column::ResolvedWhen,
            "revokedwhen" | "requestrevokedwhen" => Column::RevokedWhen,
            "revokedreason" | "revocationreason" => Column::RevocationReason,
            "statuscode" | "requeststatuscode" => Column::StatusCode,
            "publickeylength" | "keylength" => Column::KeyLength,
            "archivedkey" => Column::ArchivedKey,
            _ => return None,
        };
        Some(alias)
    }

    /// Whether the column holds a time (unix seconds).
    pub fn is_time(&self) -> bool {
        matches!(
            self,
            Column::NotBefore
                | Column::NotAfter
                | Column::SubmittedWhen
                | Column::ResolvedWhen
                | Column::RevokedWhen
        )
    }

    /// Whether the column holds an integer.
    pub fn is_integer(&self) -> bool {
        self.is_time()
            || matches!(
                self,
                Column::RequestId
                    | Column::RevocationReason
                    | Column::StatusCode
                    | Column::KeyLength
                    | Column::ArchivedKey
            )
    }

    /// The SQL expression for this column (never user text).
    pub(crate) fn sql(&self) -> &'static str {
        match self {
            Column::RequestId => "request_id",
            Column::Disposition => "disposition",
            Column::Requester => "requester",
            Column::Template => "template",
            Column::SerialNumber => "serial",
            Column::Subject => "COALESCE(subject, request_subject)",
            Column::CommonName => "common_name",
            Column::Upn => "upn",
            Column::Email => "email",
            Column::KeyId => "key_id",
            Column::Thumbprint => "thumbprint",
            Column::NotBefore => "not_before",
            Column::NotAfter => "not_after",
            Column::SubmittedWhen => "submitted_at",
            Column::ResolvedWhen => "resolved_at",
            Column::RevokedWhen => "revoked_at",
            Column::RevocationReason => "revocation_reason",
            Column::StatusCode => "status_code",
            Column::KeyLength => "key_length",
            Column::ArchivedKey => "(CASE WHEN archived_key IS NULL THEN 0 ELSE 1 END)",
        }
    }
}

/// A comparison operator in a restriction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `=` ignoring ASCII case (`COLLATE NOCASE`): recovery searches by name.
    EqNoCase,
    /// `!=` / `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    pub(crate) fn sql(&self) -> &'static str {
        match self {
            Op::Eq | Op::EqNoCase => "=",
            Op::Ne => "<>",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    /// The collation clause after the bound value.
    pub(crate) fn collation(&self) -> &'static str {
        match self {
            Op::EqNoCase => " COLLATE NOCASE",
            _ => "",
        }
    }
}

/// A typed restriction value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Text.
    Text(String),
    /// Integer (times are unix seconds).
    Int(i64),
}

/// One `column op value` term of a `view --restrict`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restriction {
    /// Column.
    pub column: Column,
    /// Operator.
    pub op: Op,
    /// Value.
    pub value: Value,
}

/// An archived key and the KRA certificates it is encrypted to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedKeyAgents {
    /// Request ID of the certificate row (`None` for a key archived under its key ID only).
    pub request_id: Option<i64>,
    /// Serial number of the certificate (hex), when there is one.
    pub serial: Option<String>,
    /// Key ID (hex), for a key archived without a certificate.
    pub key_id: Option<String>,
    /// SHA-1 thumbprints of the KRAs the key is encrypted to (comma separated).
    pub kra_hashes: String,
}

/// A configured Key Recovery Agent certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KraEntry {
    /// Certificates chaining the KRA to a trusted root (DER, concatenated PEM-free list), for foreign KRAs.
    pub chain_der: Option<Vec<u8>>,
    /// CRL file path or URL for foreign KRAs.
    pub crl_source: Option<String>,
    /// SHA-1 thumbprint, lowercase hex.
    pub thumbprint: String,
    /// DER certificate.
    pub cert_der: Vec<u8>,
    /// When it was added, unix seconds.
    pub added_at: i64,
}

/// A local principal (user or group).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Unique name.
    pub name: String,
    /// `user` or `group`.
    pub kind: String,
    /// User principal name.
    pub upn: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Down-level logon name `DOMAIN\name`.
    pub downlevel: Option<String>,
    /// Password hash (Argon2id), never serialised.
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// Created, unix seconds.
    pub created_at: i64,
}

/// One audit event to append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, unix seconds.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// Category (the Auditor chooses which are recorded).
    pub category: String,
    /// What.
    pub action: String,
    /// On what (request ID, serial, principal, ...).
    pub target: String,
    /// `success` or `refused`.
    pub outcome: String,
    /// Details (JSON text).
    pub details: String,
}

/// A stored, chained audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain (1, 2, ...).
    pub seq: i64,
    /// The event.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// Hash of the previous record (hex; zeros for the first).
    pub prev_hash: String,
    /// Hash of this record (hex).
    pub hash: String,
}

/// Hash of the empty chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl AuditRecord {
    /// The bytes a record's hash covers: every field and the previous hash.
    pub fn chain_input(seq: i64, e: &AuditEntry, prev_hash: &str) -> Vec<u8> {
        serde_json::json!([
            seq, e.at, e.actor, e.category, e.action, e.target, e.outcome, e.details, prev_hash
        ])
        .to_string()
        .into_bytes()
    }
}

/// A signed audit chain head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Sequence number of the record signed.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// CA signature (hex) over `seq:hash`.
    pub signature: String,
    /// When, unix seconds.
    pub at: i64,
}

/// A CA event log record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Row id.
    pub id: i64,
    /// When, unix seconds.
    pub at: i64,
    /// AD CS event ID (82, 83, 84, 85, 98, 127, ...).
    pub event_id: i64,
    /// `error`, `warning` or `info`.
    pub level: String,
    /// Text.
    pub message: String,
}

/// A template permission entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// Template.
    pub template: String,
    /// Principal or group.
    pub principal: String,
    /// Allow (true) or deny (false) entry.
    pub allow: bool,
    /// Rights: Read, Enroll, Autoenroll, Write.
    pub rights: Vec<String>,
}

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

/// An API token as listed (never its secret or hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Token ID (the part after `lbt_`).
    pub id: String,
    /// Principal name.
    pub principal: String,
    /// Created, unix seconds.
    pub created_at: i64,
}

/// A TLS client certificate mapped to a principal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateMapping {
    /// SHA-1 thumbprint (hex).
    pub thumbprint: String,
    /// Principal name.
    pub principal: String,
    /// Serial number (lowercase hex), when recorded.
    pub serial: Option<String>,
}
