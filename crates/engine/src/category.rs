//! Audit categories (the AD CS audit filter), typed.
//!
//! Every audit record names one; [`AuditCategory::as_str`] gives the exact
//! string stored in the record and matched by the audited-categories setting.

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
