//! Audit categories (the AD CS audit filter) and audit actions, typed.
//!
//! Every audit record names one; [`AuditCategory::as_str`] gives the exact
//! string stored in the record and matched by the audited-categories setting;
//! [`AuditAction::as_str`] the record's action text.

use std::borrow::Cow;

/// The category of an audited action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditCategory {
    /// Backup and restore.
    Backup,
    /// CA configuration and templates.
    Config,
    /// Principals, roles, credentials and permissions.
    Security,
    /// Requests and issuance.
    Requests,
    /// Revocation and CRLs.
    Revocation,
    /// Archived keys: recovery, import, export, KRAs.
    Keys,
    /// The audit trail itself.
    Audit,
    /// Service start and stop.
    Service,
}

impl AuditCategory {
    /// Every category, in the order `audit categories` lists them.
    pub const ALL: [AuditCategory; 8] = [
        AuditCategory::Backup,
        AuditCategory::Config,
        AuditCategory::Security,
        AuditCategory::Requests,
        AuditCategory::Revocation,
        AuditCategory::Keys,
        AuditCategory::Audit,
        AuditCategory::Service,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditCategory::Backup => "backup",
            AuditCategory::Config => "config",
            AuditCategory::Security => "security",
            AuditCategory::Requests => "requests",
            AuditCategory::Revocation => "revocation",
            AuditCategory::Keys => "keys",
            AuditCategory::Audit => "audit",
            AuditCategory::Service => "service",
        }
    }
}

impl std::fmt::Display for AuditCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an audit record says was done, typed.
///
/// [`AuditAction::as_str`] gives the exact string stored in the record's
/// `action` column (shown by `lockbox audit` and `/console/`, matched by
/// tests); the strings are today's, so stored rows do not change.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// The CA was created (`lockbox init`). (`CA created`)
    CaCreated,
    /// The CA issued its own exchange certificate. (`exchange certificate issued`)
    ExchangeCertificateIssued,
    /// The CA issued the service's TLS server certificate. (`TLS server certificate issued`)
    TlsServerCertificateIssued,
    /// The CA certificate was renewed (`lockbox ca renew`). (`CA certificate renewed`)
    CaRenewed,
    /// The CA issued its OCSP responder's signing certificate. (`OCSP signing certificate issued`)
    OcspCertificateIssued,
    /// A certificate on hold was released. (`certificate released from hold`)
    CertificateUnrevoked,
    /// A login (recorded when refused). (`login`)
    Login,
    /// A request was submitted (recorded when refused). (`submit request`)
    SubmitRequest,
    /// A certificate was issued. (`certificate issued`)
    CertificateIssued,
    /// A request was left pending for an officer. (`request pended`)
    RequestPended,
    /// A key was archived at enrollment. (`key archived`)
    KeyArchived,
    /// An officer denied a request. (`request denied`)
    RequestDenied,
    /// A certificate was revoked. (`certificate revoked`)
    CertificateRevoked,
    /// A CRL was published. (`CRL published`)
    CrlPublished,
    /// A request was read (recorded when refused by the manager's restrictions). (`read the CA database`)
    ReadDatabase,
    /// A recovery blob was handed out. (`retrieved an archived key`)
    RetrievedArchivedKey,
    /// Archived keys were exported as a key history. (`key history exported`)
    KeyHistoryExported,
    /// Exported keys were removed from the CA. (`exported keys removed`)
    ExportedKeysRemoved,
    /// A key was archived by import. (`key archived (import)`)
    KeyArchivedImport,
    /// A certificate was imported without a key. (`certificate imported`)
    CertificateImported,
    /// A key without a certificate was archived by import. (`unmatched key archived (import)`)
    UnmatchedKeyArchivedImport,
    /// The foreign-certificate import setting changed. (`set kra.enable_foreign`)
    SetEnableForeign,
    /// A key recovery agent was added. (`KRA added`)
    KraAdded,
    /// A key recovery agent was removed. (`KRA removed`)
    KraRemoved,
    /// The number of KRAs per key changed. (`KRA count required`)
    KraCountRequired,
    /// The KRA expiry warning changed. (`set kra_expiry_warning_days`)
    SetKraExpiryWarningDays,
    /// A KRA certificate this CA issued joined the KRA store. (`KRA certificate issued into the KRA store`)
    KraCertificateIssued,
    /// A template was added to the CA's issue list. (`add CA template`)
    AddCaTemplate,
    /// A template was removed from the CA's issue list. (`remove CA template`)
    RemoveCaTemplate,
    /// A principal was added. (`add principal`)
    AddPrincipal,
    /// A group was added. (`add group`)
    AddGroup,
    /// A token was issued to a principal. (`add token`)
    AddToken,
    /// A principal was removed. (`remove principal`)
    RemovePrincipal,
    /// A token was revoked. (`revoke token`)
    RevokeToken,
    /// A client certificate was mapped to a principal. (`map certificate`)
    MapCertificate,
    /// A client certificate mapping was removed. (`unmap certificate`)
    UnmapCertificate,
    /// A member was added to a group. (`add group member`)
    AddGroupMember,
    /// A role was granted. (`grant role`)
    GrantRole,
    /// A role was revoked. (`revoke role`)
    RevokeRole,
    /// A template permission was granted. (`permit template`)
    PermitTemplate,
    /// A template permission was denied. (`deny template permission`)
    DenyTemplatePermission,
    /// A certificate manager's restrictions changed. (`set manager restrictions`)
    SetManagerRestrictions,
    /// Role separation was switched on or off. (`set role separation`)
    SetRoleSeparation,
    /// The audited categories changed. (`set audit categories`)
    SetAuditCategories,
    /// A backup was taken (or refused). (`backup`)
    Backup,
    /// A backup was restored. (`restore`)
    Restore,
    /// The CA's database moved to another backend (`db migrate`). (`migrate database`)
    MigrateDatabase,
    /// A CA exchange private key was written out for offline diagnosis
    /// (`ca exchange-key`). (`export exchange key`)
    ExportExchangeKey,
    /// A template was duplicated under this name (`duplicate template <name>`).
    DuplicateTemplate(String),
    /// A template setting changed (`set <key>=<value>`).
    SetTemplate {
        /// The setting.
        key: String,
        /// Its new value.
        value: String,
    },
    /// An operation the single decision point refused, by the name
    /// [`crate::Op`] gives it (`configure`, `enroll for <template>`, ...).
    Operation(String),
}

impl AuditAction {
    /// The stored string (borrowed for the fixed actions).
    pub fn as_str(&self) -> Cow<'_, str> {
        Cow::Borrowed(match self {
            AuditAction::CaCreated => "CA created",
            AuditAction::ExchangeCertificateIssued => "exchange certificate issued",
            AuditAction::TlsServerCertificateIssued => "TLS server certificate issued",
            AuditAction::OcspCertificateIssued => "OCSP signing certificate issued",
            AuditAction::CaRenewed => "CA certificate renewed",
            AuditAction::CertificateUnrevoked => "certificate released from hold",
            AuditAction::Login => "login",
            AuditAction::SubmitRequest => "submit request",
            AuditAction::CertificateIssued => "certificate issued",
            AuditAction::RequestPended => "request pended",
            AuditAction::KeyArchived => "key archived",
            AuditAction::RequestDenied => "request denied",
            AuditAction::CertificateRevoked => "certificate revoked",
            AuditAction::CrlPublished => "CRL published",
            AuditAction::ReadDatabase => "read the CA database",
            AuditAction::RetrievedArchivedKey => "retrieved an archived key",
            AuditAction::KeyHistoryExported => "key history exported",
            AuditAction::ExportedKeysRemoved => "exported keys removed",
            AuditAction::KeyArchivedImport => "key archived (import)",
            AuditAction::CertificateImported => "certificate imported",
            AuditAction::UnmatchedKeyArchivedImport => "unmatched key archived (import)",
            AuditAction::SetEnableForeign => "set kra.enable_foreign",
            AuditAction::KraAdded => "KRA added",
            AuditAction::KraRemoved => "KRA removed",
            AuditAction::KraCountRequired => "KRA count required",
            AuditAction::SetKraExpiryWarningDays => "set kra_expiry_warning_days",
            AuditAction::KraCertificateIssued => "KRA certificate issued into the KRA store",
            AuditAction::AddCaTemplate => "add CA template",
            AuditAction::RemoveCaTemplate => "remove CA template",
            AuditAction::AddPrincipal => "add principal",
            AuditAction::AddGroup => "add group",
            AuditAction::AddToken => "add token",
            AuditAction::RemovePrincipal => "remove principal",
            AuditAction::RevokeToken => "revoke token",
            AuditAction::MapCertificate => "map certificate",
            AuditAction::UnmapCertificate => "unmap certificate",
            AuditAction::AddGroupMember => "add group member",
            AuditAction::GrantRole => "grant role",
            AuditAction::RevokeRole => "revoke role",
            AuditAction::PermitTemplate => "permit template",
            AuditAction::DenyTemplatePermission => "deny template permission",
            AuditAction::SetManagerRestrictions => "set manager restrictions",
            AuditAction::SetRoleSeparation => "set role separation",
            AuditAction::SetAuditCategories => "set audit categories",
            AuditAction::Backup => "backup",
            AuditAction::Restore => "restore",
            AuditAction::MigrateDatabase => "migrate database",
            AuditAction::ExportExchangeKey => "export exchange key",
            AuditAction::DuplicateTemplate(name) => {
                return Cow::Owned(format!("duplicate template {name}"))
            }
            AuditAction::SetTemplate { key, value } => {
                return Cow::Owned(format!("set {key}={value}"))
            }
            AuditAction::Operation(name) => name,
        })
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str())
    }
}
