//! Request rows: disposition, certificate columns, new and stored rows, and the
//! columns and restrictions of `view`.

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
    /// Authority key identifier (lowercase hex): which CA key signed it.
    pub issuer_key_id: Option<String>,
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
    /// The request whose certificate this one renews (same subject and
    /// template, signed with the old certificate's key).
    pub renewal_of: Option<i64>,
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
    /// The request whose certificate this one renews.
    pub renewal_of: Option<i64>,
    /// The request whose issued certificate renewed this one (superseded).
    pub superseded_by: Option<i64>,
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
    /// The request whose certificate this one renews.
    RenewalOf,
    /// The request whose certificate renewed (superseded) this one.
    SupersededBy,
}

impl Column {
    /// Every column, in display order.
    pub const ALL: [Column; 22] = [
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
        Column::RenewalOf,
        Column::SupersededBy,
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
            Column::RenewalOf => "RenewalOf",
            Column::SupersededBy => "SupersededBy",
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
            "renewalof" | "renews" => Column::RenewalOf,
            "supersededby" | "renewedby" => Column::SupersededBy,
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
                    | Column::RenewalOf
                    | Column::SupersededBy
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
            Column::RenewalOf => "renewal_of",
            Column::SupersededBy => "superseded_by",
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

    /// The collation clause after the bound value (`COLLATE NOCASE` is
    /// SQLite syntax: a PostgreSQL backend compares `lower()` or uses `citext`).
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
