//! Who is calling and what they ask for: roles, actors, operations.

/// The group every authenticated principal belongs to.
pub const AUTHENTICATED_USERS: &str = "Authenticated Users";

/// The virtual group of CA administrators (template ACLs name it).
pub const ADMINISTRATORS: &str = "Administrators";

use serde::{Deserialize, Serialize};

use crate::category::AuditCategory;
use crate::template::Template;
use crate::{EngineError, EngineResult};

/// The CA roles (the KRA role is holding a KRA private key; the CA grants nothing for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Configures the CA.
    CaAdministrator,
    /// Approves, denies, revokes; retrieves recovery blobs.
    CertificateManager,
    /// Backs up and restores.
    BackupOperator,
    /// Reads and verifies the audit trail; chooses what is audited.
    Auditor,
    /// Submits requests on behalf of other principals (`submit --on-behalf-of`);
    /// the certificate names come from that principal's record.
    EnrollmentAgent,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::CaAdministrator,
        Role::CertificateManager,
        Role::BackupOperator,
        Role::Auditor,
        Role::EnrollmentAgent,
    ];

    /// The name used on the command line and in the database.
    pub fn name(&self) -> &'static str {
        match self {
            Role::CaAdministrator => "CAAdministrator",
            Role::CertificateManager => "CertificateManager",
            Role::BackupOperator => "BackupOperator",
            Role::Auditor => "Auditor",
            Role::EnrollmentAgent => "EnrollmentAgent",
        }
    }

    /// Parses a role name (case-insensitive).
    pub fn parse(s: &str) -> EngineResult<Role> {
        Role::ALL.into_iter().find(|r| r.name().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
            EngineError::bad_input(
                crate::codes::E_INVALIDARG,
                format!("unknown role '{s}' (CAAdministrator, CertificateManager, BackupOperator, Auditor, EnrollmentAgent)"),
            )
        })
    }
}

/// The caller of an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Principal name (or `LOCAL\user`, `anonymous`).
    pub name: String,
    /// Groups, transitively, including Authenticated Users.
    pub groups: Vec<String>,
    /// Roles held.
    pub roles: Vec<Role>,
    /// The local administrator acting directly on the CA home (like certutil on the CA).
    pub local_admin: bool,
}

impl Actor {
    /// The local administrator (CLI on `--home`).
    pub fn local_admin(name: impl Into<String>) -> Actor {
        Actor {
            name: name.into(),
            groups: vec![AUTHENTICATED_USERS.into(), ADMINISTRATORS.into()],
            roles: vec![Role::CaAdministrator, Role::CertificateManager],
            local_admin: true,
        }
    }

    /// An unauthenticated caller.
    pub fn anonymous() -> Actor {
        Actor {
            name: "anonymous".into(),
            groups: vec![],
            roles: vec![],
            local_admin: false,
        }
    }

    /// Whether the caller is unauthenticated.
    pub fn is_anonymous(&self) -> bool {
        !self.local_admin && self.name == "anonymous" && self.roles.is_empty()
    }

    /// Whether the caller holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// How the caller appears in the audit trail.
    pub fn audit_name(&self) -> String {
        if self.local_admin {
            format!("{} (local administrator)", self.name)
        } else {
            self.name.clone()
        }
    }
}

/// An operation to authorize.
#[derive(Clone, Copy, Debug)]
pub enum Op<'a> {
    /// Change CA configuration: templates on the CA, KRAs, settings, CRL settings.
    Configure,
    /// Change security: principals, groups, roles, permissions, restrictions.
    Security,
    /// Edit a template (CA administrator, or Write permission on it).
    EditTemplate(&'a Template),
    /// Enroll for a template.
    Enroll(&'a Template),
    /// Submit a request on behalf of another principal (EnrollmentAgent).
    EnrollOnBehalfOf {
        /// The template.
        template: &'a Template,
        /// The principal the certificate is for.
        subject: &'a str,
    },
    /// Issue, deny or revoke a request / certificate of `requester` for `template`.
    Officer {
        /// `issue`, `deny` or `revoke`.
        action: &'a str,
        /// Who made the request.
        requester: &'a str,
        /// Its template, when it has one.
        template: Option<&'a str>,
    },
    /// Retrieve an archived key (recovery blob) of `requester` for `template`.
    RetrieveKey {
        /// Who made the request.
        requester: &'a str,
        /// Its template, when it has one.
        template: Option<&'a str>,
    },
    /// Search recovery candidates (certificate managers).
    SearchKeys,
    /// Read the CA database (view, pending, request status).
    ReadDatabase,
    /// Publish a CRL.
    PublishCrl,
    /// Back up or restore.
    Backup,
    /// Read or verify the audit trail.
    ReadAudit,
    /// Choose the audited categories.
    ConfigureAudit,
}

impl Op<'_> {
    /// The audit category the operation belongs to.
    pub fn category(&self) -> AuditCategory {
        match self {
            Op::Configure | Op::EditTemplate(_) => AuditCategory::Config,
            Op::Security => AuditCategory::Security,
            Op::Enroll(_) | Op::EnrollOnBehalfOf { .. } | Op::Officer { .. } | Op::ReadDatabase => {
                AuditCategory::Requests
            }
            Op::RetrieveKey { .. } | Op::SearchKeys => AuditCategory::Keys,
            Op::PublishCrl => AuditCategory::Revocation,
            Op::Backup => AuditCategory::Backup,
            Op::ReadAudit | Op::ConfigureAudit => AuditCategory::Audit,
        }
    }

    pub(crate) fn name(&self) -> String {
        match self {
            Op::Configure => "configure".into(),
            Op::Security => "change security".into(),
            Op::EditTemplate(t) => format!("edit template {}", t.name),
            Op::Enroll(t) => format!("enroll for {}", t.name),
            Op::EnrollOnBehalfOf { template, subject } => {
                format!("enroll for {} on behalf of {subject}", template.name)
            }
            Op::Officer { action, .. } => action.to_string(),
            Op::RetrieveKey { .. } => "retrieve archived key".into(),
            Op::SearchKeys => "search recovery candidates".into(),
            Op::ReadDatabase => "read the CA database".into(),
            Op::PublishCrl => "publish CRL".into(),
            Op::Backup => "backup/restore".into(),
            Op::ReadAudit => "read audit trail".into(),
            Op::ConfigureAudit => "configure auditing".into(),
        }
    }
}
