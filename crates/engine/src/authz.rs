//! Who may do what: roles, role separation, template permissions and
//! certificate-manager restrictions. [`Ca::authorize`] is the one function
//! that decides every operation, local or remote; refusals are audited.

use std::collections::HashMap;

use lockbox_store::RequestRecord;
use serde::{Deserialize, Serialize};

use crate::ca::Ca;
use crate::error::codes::{
    CERTSRV_E_RESTRICTEDOFFICER, CERTSRV_E_ROLECONFLICT, CERTSRV_E_TEMPLATE_DENIED,
};
use crate::error::{EngineError, EngineResult};
use crate::template::Template;

/// The group every authenticated principal belongs to.
pub const AUTHENTICATED_USERS: &str = "Authenticated Users";
/// The virtual group of CA administrators (template ACLs name it).
pub const ADMINISTRATORS: &str = "Administrators";
/// Setting: role separation on/off.
pub const ROLE_SEPARATION: &str = "role_separation";

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
    pub fn category(&self) -> &'static str {
        match self {
            Op::Configure | Op::EditTemplate(_) => "config",
            Op::Security => "security",
            Op::Enroll(_) | Op::EnrollOnBehalfOf { .. } | Op::Officer { .. } | Op::ReadDatabase => {
                "requests"
            }
            Op::RetrieveKey { .. } | Op::SearchKeys => "keys",
            Op::PublishCrl => "revocation",
            Op::Backup => "backup",
            Op::ReadAudit | Op::ConfigureAudit => "audit",
        }
    }

    fn name(&self) -> String {
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

fn denied(code: u32, msg: String) -> EngineError {
    EngineError::Denied { code, message: msg }
}

impl Ca {
    /// Whether role separation is on.
    pub async fn role_separation(&self) -> EngineResult<bool> {
        Ok(self
            .store
            .setting(ROLE_SEPARATION)
            .await?
            .is_some_and(|v| v == "true"))
    }

    /// Decides `op` for `actor`; a refusal is written to the audit trail and returned.
    pub async fn authorize(&self, actor: &Actor, op: Op<'_>) -> EngineResult<()> {
        match self.decide(actor, op).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.audit_refusal(actor, op.category(), &op.name(), "", &e)
                    .await?;
                Err(e)
            }
        }
    }

    /// Whether `op` would be allowed, without auditing (for filtering listings).
    pub async fn would_allow(&self, actor: &Actor, op: Op<'_>) -> bool {
        self.decide(actor, op).await.is_ok()
    }

    async fn decide(&self, actor: &Actor, op: Op<'_>) -> EngineResult<()> {
        if actor.local_admin {
            return Ok(());
        }
        let separation = self.role_separation().await?;
        if separation && actor.roles.len() > 1 {
            return Err(denied(
                CERTSRV_E_ROLECONFLICT,
                format!(
                    "{} holds several roles ({}) while role separation is enforced; every operation is refused",
                    actor.name,
                    actor.roles.iter().map(|r| r.name()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let admin = actor.has(Role::CaAdministrator);
        // As in AD CS, CA administrators are also certificate managers unless roles are separated.
        let manager = actor.has(Role::CertificateManager) || (admin && !separation);
        let need = |ok: bool, what: &str| -> EngineResult<()> {
            if ok {
                Ok(())
            } else {
                Err(EngineError::Forbidden(format!(
                    "{} may not {}: {what} required",
                    actor.name,
                    op.name()
                )))
            }
        };
        match op {
            Op::Configure | Op::Security => need(admin, "the CAAdministrator role"),
            Op::EditTemplate(t) => need(
                admin || self.template_allows(actor, t, "Write").await?,
                "CAAdministrator or Write permission",
            ),
            Op::Enroll(t) => {
                if actor.is_anonymous() {
                    let why = if t.archive_private_key {
                        Some("it archives private keys")
                    } else if t.allows_client_auth() {
                        Some("its certificates authenticate clients")
                    } else if !t.enrollee_supplies_subject {
                        Some("its names are built from the requester's principal record")
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        return Err(denied(
                            CERTSRV_E_TEMPLATE_DENIED,
                            format!("Anonymous callers may not enroll for certificate template '{}': {why}.", t.name),
                        ));
                    }
                }
                if self.template_allows(actor, t, "Enroll").await? {
                    Ok(())
                } else {
                    Err(denied(
                        CERTSRV_E_TEMPLATE_DENIED,
                        format!("The permissions on certificate template '{}' do not allow {} to enroll.", t.name, actor.name),
                    ))
                }
            }
            Op::EnrollOnBehalfOf { template, .. } => {
                if !actor.has(Role::EnrollmentAgent) {
                    return Err(denied(
                        CERTSRV_E_TEMPLATE_DENIED,
                        format!(
                            "{} may not enroll on behalf of another principal: the EnrollmentAgent role is required",
                            actor.name
                        ),
                    ));
                }
                if self.template_allows(actor, template, "Enroll").await? {
                    Ok(())
                } else {
                    Err(denied(
                        CERTSRV_E_TEMPLATE_DENIED,
                        format!("The permissions on certificate template '{}' do not allow {} to enroll.", template.name, actor.name),
                    ))
                }
            }
            Op::Officer {
                requester,
                template,
                ..
            }
            | Op::RetrieveKey {
                requester,
                template,
            } => {
                need(manager, "the CertificateManager role")?;
                self.check_restrictions(actor, requester, template).await
            }
            Op::SearchKeys => need(manager, "the CertificateManager role"),
            Op::ReadDatabase => need(
                admin || manager || actor.has(Role::Auditor),
                "CAAdministrator, CertificateManager or Auditor",
            ),
            Op::PublishCrl => need(admin || manager, "CAAdministrator or CertificateManager"),
            Op::Backup => need(
                actor.has(Role::BackupOperator) || (admin && !separation),
                "the BackupOperator role",
            ),
            Op::ReadAudit => need(
                actor.has(Role::Auditor) || (admin && !separation),
                "the Auditor role",
            ),
            Op::ConfigureAudit => need(actor.has(Role::Auditor), "the Auditor role"),
        }
    }

    /// Template ACL: the template's own enroll lists plus stored entries; deny wins.
    async fn template_allows(
        &self,
        actor: &Actor,
        t: &Template,
        right: &str,
    ) -> EngineResult<bool> {
        let names: Vec<&str> = std::iter::once(actor.name.as_str())
            .chain(actor.groups.iter().map(String::as_str))
            .collect();
        let matches = |who: &str| names.iter().any(|n| n.eq_ignore_ascii_case(who));
        let entries = self.store.permissions(&t.name).await?;
        if entries.iter().any(|p| {
            !p.allow
                && matches(&p.principal)
                && p.rights.iter().any(|r| r.eq_ignore_ascii_case(right))
        }) {
            return Ok(false);
        }
        if entries.iter().any(|p| {
            p.allow
                && matches(&p.principal)
                && p.rights.iter().any(|r| r.eq_ignore_ascii_case(right))
        }) {
            return Ok(true);
        }
        let builtin = match right {
            "Enroll" | "Read" => t
                .enroll
                .iter()
                .chain(t.autoenroll.iter())
                .any(|w| matches(w)),
            "Autoenroll" => t.autoenroll.iter().any(|w| matches(w)),
            _ => false,
        };
        Ok(builtin)
    }

    /// The restrictions that apply to `actor`: its own and those of every
    /// group it belongs to (a restriction on a group restricts its members,
    /// whether they hold CertificateManager through it or directly). Each
    /// entry: (restricted principal, groups, templates).
    async fn restriction_sets(&self, actor: &Actor) -> EngineResult<Vec<RestrictionSet>> {
        let mut out = Vec::new();
        for who in std::iter::once(&actor.name).chain(actor.groups.iter()) {
            let (groups, templates) = self.store.restrictions(who).await?;
            if !groups.is_empty() || !templates.is_empty() {
                out.push((who.clone(), groups, templates));
            }
        }
        Ok(out)
    }

    /// Certificate-manager restrictions by requester group and template:
    /// every restriction that applies to the manager must allow the row.
    async fn check_restrictions(
        &self,
        actor: &Actor,
        requester: &str,
        template: Option<&str>,
    ) -> EngineResult<()> {
        let sets = self.restriction_sets(actor).await?;
        if sets.is_empty() {
            return Ok(());
        }
        let subject = self.actor_for(requester).await?;
        restrictions_allow(actor, &sets, requester, &subject.groups, template)
    }

    /// The rows of `rows` the actor may read: all of them, except for a
    /// restricted certificate manager (not also a CA administrator or an
    /// auditor), who reads only the rows it may act on.
    pub async fn visible_rows(
        &self,
        actor: &Actor,
        rows: Vec<RequestRecord>,
    ) -> EngineResult<Vec<RequestRecord>> {
        if actor.local_admin || actor.has(Role::CaAdministrator) || actor.has(Role::Auditor) {
            return Ok(rows);
        }
        let sets = self.restriction_sets(actor).await?;
        if sets.is_empty() {
            return Ok(rows);
        }
        let mut groups_of: HashMap<String, Vec<String>> = HashMap::new();
        let mut out = Vec::new();
        for r in rows {
            let key = r.requester.to_ascii_lowercase();
            if !groups_of.contains_key(&key) {
                let g = self.actor_for(&r.requester).await?.groups;
                groups_of.insert(key.clone(), g);
            }
            let groups = groups_of.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            if restrictions_allow(actor, &sets, &r.requester, groups, r.template.as_deref()).is_ok()
            {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Whether the actor may act on the row as a certificate manager (issue,
    /// deny, revoke), without auditing: for showing or hiding buttons.
    pub async fn may_manage(&self, actor: &Actor, r: &RequestRecord) -> bool {
        self.would_allow(
            actor,
            Op::Officer {
                action: "issue",
                requester: &r.requester,
                template: r.template.as_deref(),
            },
        )
        .await
    }

    /// One request row for a reader of the CA database; a restricted manager
    /// gets 0x80094009 for a row outside its restrictions (audited).
    pub async fn read_request(&self, actor: &Actor, id: i64) -> EngineResult<RequestRecord> {
        self.authorize(actor, Op::ReadDatabase).await?;
        let r = self.request(id).await?;
        if self.visible_rows(actor, vec![r.clone()]).await?.is_empty() {
            let e = denied(
                CERTSRV_E_RESTRICTEDOFFICER,
                format!(
                    "{} may not read request {id} (outside its restrictions)",
                    actor.name
                ),
            );
            self.audit_refusal(
                actor,
                "requests",
                "read the CA database",
                &id.to_string(),
                &e,
            )
            .await?;
            return Err(e);
        }
        Ok(r)
    }
}

/// (restricted principal, groups, templates).
type RestrictionSet = (String, Vec<String>, Vec<String>);

fn restrictions_allow(
    actor: &Actor,
    sets: &[RestrictionSet],
    requester: &str,
    requester_groups: &[String],
    template: Option<&str>,
) -> EngineResult<()> {
    for (who, groups, templates) in sets {
        let via = if who.eq_ignore_ascii_case(&actor.name) {
            String::new()
        } else {
            format!(" (restriction on its group '{who}')")
        };
        if !templates.is_empty()
            && !template.is_some_and(|t| templates.iter().any(|x| x.eq_ignore_ascii_case(t)))
        {
            return Err(denied(
                CERTSRV_E_RESTRICTEDOFFICER,
                format!(
                    "{} may not manage certificates of template '{}'{via}",
                    actor.name,
                    template.unwrap_or("(none)")
                ),
            ));
        }
        if !groups.is_empty()
            && !requester_groups
                .iter()
                .any(|g| groups.iter().any(|x| x.eq_ignore_ascii_case(g)))
        {
            return Err(denied(
                CERTSRV_E_RESTRICTEDOFFICER,
                format!("{} may not manage certificates of requester '{requester}' (outside its groups){via}", actor.name),
            ));
        }
    }
    Ok(())
}
