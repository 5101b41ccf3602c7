//! Local principals and groups, credentials (Argon2id-hashed passwords and
//! API tokens, client-certificate mappings), roles, template permissions and
//! manager restrictions. A directory source can replace the store-backed
//! lookups later without changing callers.

use std::collections::BTreeSet;

use lockbox_codec::hexfmt::to_hex;
use lockbox_crypto::digest::sha256;
use lockbox_crypto::password::{hash_secret, verify_secret};
use lockbox_crypto::random::random_bytes;
use lockbox_store::{Change, Permission, Principal};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::authz::{Actor, Op, Role, ADMINISTRATORS, AUTHENTICATED_USERS};
use crate::ca::Ca;
use crate::error::{codes, EngineError, EngineResult};
use crate::period::now;

/// Where principals and group memberships come from. The local store is the
/// source today; an LDAP directory can implement this without touching callers.
#[async_trait::async_trait]
pub trait Directory: Send + Sync {
    /// One principal by name.
    async fn principal(&self, name: &str) -> EngineResult<Option<Principal>>;
    /// Every principal.
    async fn principals(&self) -> EngineResult<Vec<Principal>>;
    /// Groups `name` is a direct member of.
    async fn groups_of(&self, name: &str) -> EngineResult<Vec<String>>;
}

/// The CA database as the principal directory.
pub struct StoreDirectory(pub std::sync::Arc<dyn lockbox_store::Store>);

#[async_trait::async_trait]
impl Directory for StoreDirectory {
    async fn principal(&self, name: &str) -> EngineResult<Option<Principal>> {
        Ok(self.0.principal(name).await?)
    }
    async fn principals(&self) -> EngineResult<Vec<Principal>> {
        Ok(self.0.principals().await?)
    }
    async fn groups_of(&self, name: &str) -> EngineResult<Vec<String>> {
        Ok(self.0.groups_of(name).await?)
    }
}

/// What `principal add` returns.
#[derive(Clone, Debug, Serialize)]
pub struct NewPrincipal {
    /// The principal.
    pub principal: Principal,
    /// The API token, shown once (only its hash is stored).
    pub token: Option<String>,
}

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::bad_input(codes::E_INVALIDARG, msg)
}

fn valid_name(name: &str) -> EngineResult<()> {
    if name.is_empty()
        || name.len() > 128
        || name.chars().any(|c| c.is_control() || c == ',' || c == ':')
    {
        return Err(bad(format!("invalid principal name '{name}'")));
    }
    Ok(())
}

impl Ca {
    /// The actor for a principal name (or UPN / down-level name); unknown names
    /// get no groups or roles beyond Authenticated Users.
    pub async fn actor_for(&self, name: &str) -> EngineResult<Actor> {
        let principal = self.find_principal(name).await?;
        let canonical = principal
            .map(|p| p.name)
            .unwrap_or_else(|| name.to_string());
        let mut groups: BTreeSet<String> = BTreeSet::new();
        let mut frontier = vec![canonical.clone()];
        for _ in 0..16 {
            let mut next = Vec::new();
            for n in &frontier {
                for g in self.directory.groups_of(n).await? {
                    if groups.insert(g.clone()) {
                        next.push(g);
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        let grants = self.store.roles().await?;
        let mut roles: BTreeSet<Role> = BTreeSet::new();
        for (who, role) in grants {
            if who.eq_ignore_ascii_case(&canonical)
                || groups.iter().any(|g| g.eq_ignore_ascii_case(&who))
            {
                if let Ok(r) = Role::parse(&role) {
                    roles.insert(r);
                }
            }
        }
        groups.insert(AUTHENTICATED_USERS.to_string());
        if roles.contains(&Role::CaAdministrator) {
            groups.insert(ADMINISTRATORS.to_string());
        }
        Ok(Actor {
            name: canonical,
            groups: groups.into_iter().collect(),
            roles: roles.into_iter().collect(),
            local_admin: false,
        })
    }

    async fn find_principal(&self, name: &str) -> EngineResult<Option<Principal>> {
        if let Some(p) = self.directory.principal(name).await? {
            return Ok(Some(p));
        }
        Ok(self.directory.principals().await?.into_iter().find(|p| {
            p.upn
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(name))
                || p.downlevel
                    .as_deref()
                    .is_some_and(|d| d.eq_ignore_ascii_case(name))
                || p.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(name))
        }))
    }

    /// Authenticates an API token (`lbt_ID_SECRET`, or the administrator token).
    pub async fn authenticate_token(&self, token: &str) -> EngineResult<Option<Actor>> {
        if self.verify_admin_token(token) {
            let mut a = self.actor_for("admin").await?;
            if !a.roles.contains(&Role::CaAdministrator) {
                a.roles.insert(0, Role::CaAdministrator);
                a.groups.push(ADMINISTRATORS.into());
            }
            return Ok(Some(a));
        }
        let Some(rest) = token.strip_prefix("lbt_") else {
            return Ok(None);
        };
        let Some((id, secret)) = rest.split_once('_') else {
            return Ok(None);
        };
        let cache_key = to_hex(&sha256(token.as_bytes()));
        if let Some(name) = self.auth_cache_get(&cache_key) {
            return Ok(Some(self.actor_for(&name).await?));
        }
        let Some((principal, hash)) = self.store.token(id).await? else {
            return Ok(None);
        };
        if !verify_secret(secret.as_bytes(), &hash) {
            return Ok(None);
        }
        if self.directory.principal(&principal).await?.is_none() {
            return Ok(None);
        }
        self.auth_cache_put(cache_key, principal.clone());
        Ok(Some(self.actor_for(&principal).await?))
    }

    /// Authenticates a name (principal, UPN or DOMAIN\name) and password (HTTP Basic).
    pub async fn authenticate_password(
        &self,
        name: &str,
        password: &str,
    ) -> EngineResult<Option<Actor>> {
        let Some(p) = self.find_principal(name).await? else {
            // Spend the same time as a real check, so unknown names are not revealed by timing.
            let _ = verify_secret(password.as_bytes(), "argon2id$19456$2$1$00000000000000000000000000000000$0000000000000000000000000000000000000000000000000000000000000000");
            return Ok(None);
        };
        let Some(hash) = p.password_hash.as_deref() else {
            return Ok(None);
        };
        if !verify_secret(password.as_bytes(), hash) {
            return Ok(None);
        }
        Ok(Some(self.actor_for(&p.name).await?))
    }

    /// Authenticates a TLS client certificate by its SHA-1 thumbprint mapping.
    pub async fn authenticate_certificate(&self, cert_der: &[u8]) -> EngineResult<Option<Actor>> {
        self.authenticate_certificate_thumbprint(&to_hex(&lockbox_crypto::digest::sha1(cert_der)))
            .await
    }

    /// Authenticates a verified TLS client certificate given by thumbprint (hex SHA-1).
    pub async fn authenticate_certificate_thumbprint(
        &self,
        thumb: &str,
    ) -> EngineResult<Option<Actor>> {
        match self
            .store
            .principal_for_certificate(&thumb.to_ascii_lowercase())
            .await?
        {
            Some(p) => Ok(Some(self.actor_for(&p).await?)),
            None => Ok(None),
        }
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
        self.authorize(actor, Op::Security).await?;
        valid_name(name)?;
        if name.eq_ignore_ascii_case(AUTHENTICATED_USERS)
            || name.eq_ignore_ascii_case(ADMINISTRATORS)
        {
            return Err(bad(format!("'{name}' is a built-in group")));
        }
        let password_hash = match &password {
            Some(p) if p.len() < 8 => return Err(bad("passwords must have at least 8 characters")),
            Some(p) => Some(hash_secret(p.as_bytes())?),
            None => None,
        };
        let principal = Principal {
            name: name.to_string(),
            kind: if group { "group" } else { "user" }.into(),
            upn,
            email,
            downlevel,
            password_hash,
            created_at: now(),
        };
        let mut changes = vec![Change::AddPrincipal(principal.clone())];
        let token = if with_token && !group {
            let id = to_hex(&random_bytes(6)?);
            let secret = to_hex(&random_bytes(24)?);
            changes.push(Change::AddToken {
                id: id.clone(),
                principal: name.into(),
                secret_hash: hash_secret(secret.as_bytes())?,
                at: now(),
            });
            Some(format!("lbt_{id}_{secret}"))
        } else {
            None
        };
        let audit = self.audit_entry(
            actor,
            "security",
            if group { "add group" } else { "add principal" },
            name,
            "{}",
        );
        self.store.apply(&changes, &audit).await?;
        Ok(NewPrincipal { principal, token })
    }

    /// Issues another API token for a user.
    pub async fn add_token(&self, actor: &Actor, name: &str) -> EngineResult<String> {
        self.authorize(actor, Op::Security).await?;
        let p = self
            .store
            .principal(name)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no principal named '{name}'")))?;
        let id = to_hex(&random_bytes(6)?);
        let secret = to_hex(&random_bytes(24)?);
        let audit = self.audit_entry(actor, "security", "add token", &p.name, "{}");
        self.store
            .apply(
                &[Change::AddToken {
                    id: id.clone(),
                    principal: p.name,
                    secret_hash: hash_secret(secret.as_bytes())?,
                    at: now(),
                }],
                &audit,
            )
            .await?;
        Ok(format!("lbt_{id}_{secret}"))
    }

    /// Removes a principal and everything attached to it.
    pub async fn remove_principal(&self, actor: &Actor, name: &str) -> EngineResult<()> {
        self.authorize(actor, Op::Security).await?;
        let audit = self.audit_entry(actor, "security", "remove principal", name, "{}");
        self.store
            .apply(&[Change::RemovePrincipal { name: name.into() }], &audit)
            .await?;
        self.auth_cache_clear();
        Ok(())
    }

    /// Every principal.
    pub async fn principals(&self, actor: &Actor) -> EngineResult<Vec<Principal>> {
        self.authorize(actor, Op::Security).await?;
        Ok(self.store.principals().await?)
    }

    /// Adds `member` (a user or group) to `group`.
    pub async fn add_member(&self, actor: &Actor, group: &str, member: &str) -> EngineResult<()> {
        self.authorize(actor, Op::Security).await?;
        let g = self
            .store
            .principal(group)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no group named '{group}'")))?;
        if g.kind != "group" {
            return Err(bad(format!("'{group}' is not a group")));
        }
        if self.store.principal(member).await?.is_none() {
            return Err(EngineError::NotFound(format!(
                "no principal named '{member}'"
            )));
        }
        let audit = self.audit_entry(
            actor,
            "security",
            "add group member",
            group,
            &serde_json::json!({ "member": member }).to_string(),
        );
        self.store
            .apply(
                &[Change::AddMember {
                    group: group.into(),
                    member: member.into(),
                }],
                &audit,
            )
            .await?;
        Ok(())
    }

    /// Maps a client certificate (PEM/DER) to a principal for TLS client authentication.
    pub async fn map_certificate(
        &self,
        actor: &Actor,
        name: &str,
        cert: &[u8],
    ) -> EngineResult<String> {
        self.authorize(actor, Op::Security).await?;
        if self.store.principal(name).await?.is_none() {
            return Err(EngineError::NotFound(format!(
                "no principal named '{name}'"
            )));
        }
        let der = lockbox_codec::pem::decode_input(cert)?.der;
        crate::certbuild::decode_certificate(&der)?;
        let thumb = to_hex(&lockbox_crypto::digest::sha1(&der));
        let audit = self.audit_entry(
            actor,
            "security",
            "map certificate",
            name,
            &serde_json::json!({ "thumbprint": thumb }).to_string(),
        );
        self.store
            .apply(
                &[Change::MapCertificate {
                    thumbprint: thumb.clone(),
                    principal: name.into(),
                }],
                &audit,
            )
            .await?;
        Ok(thumb)
    }

    /// Grants or revokes a role.
    pub async fn set_role(
        &self,
        actor: &Actor,
        principal: &str,
        role: Role,
        grant: bool,
    ) -> EngineResult<()> {
        self.authorize(actor, Op::Security).await?;
        if grant && self.store.principal(principal).await?.is_none() && principal != "admin" {
            return Err(EngineError::NotFound(format!(
                "no principal named '{principal}'"
            )));
        }
        let change = if grant {
            Change::GrantRole {
                principal: principal.into(),
                role: role.name().into(),
            }
        } else {
            Change::RevokeRole {
                principal: principal.into(),
                role: role.name().into(),
            }
        };
        let action = if grant { "grant role" } else { "revoke role" };
        let audit = self.audit_entry(
            actor,
            "security",
            action,
            principal,
            &serde_json::json!({ "role": role.name() }).to_string(),
        );
        self.store.apply(&[change], &audit).await?;
        Ok(())
    }

    /// Every role grant.
    pub async fn role_grants(&self, actor: &Actor) -> EngineResult<Vec<(String, String)>> {
        self.authorize(actor, Op::Security).await?;
        Ok(self.store.roles().await?)
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
        self.authorize(actor, Op::Security).await?;
        let t = self.template(template).await?;
        let mut norm = Vec::new();
        for r in rights {
            let r = ["Read", "Enroll", "Autoenroll", "Write"]
                .into_iter()
                .find(|x| x.eq_ignore_ascii_case(r.trim()))
                .ok_or_else(|| {
                    bad(format!(
                        "unknown right '{r}' (Read, Enroll, Autoenroll, Write)"
                    ))
                })?;
            norm.push(r.to_string());
        }
        let p = Permission {
            template: t.name.clone(),
            principal: who.into(),
            allow,
            rights: norm,
        };
        let audit = self.audit_entry(
            actor,
            "security",
            if allow {
                "permit template"
            } else {
                "deny template permission"
            },
            &t.name,
            &serde_json::to_string(&p).unwrap_or_default(),
        );
        self.store
            .apply(&[Change::SetPermission(p.clone())], &audit)
            .await?;
        Ok(p)
    }

    /// Permission entries of a template (stored ones; the template's own enroll lists apply too).
    pub async fn template_permissions(&self, template: &str) -> EngineResult<Vec<Permission>> {
        Ok(self.store.permissions(template).await?)
    }

    /// Replaces a certificate manager's restrictions (empty lists: unrestricted).
    pub async fn set_restrictions(
        &self,
        actor: &Actor,
        manager: &str,
        groups: Vec<String>,
        templates: Vec<String>,
    ) -> EngineResult<()> {
        self.authorize(actor, Op::Security).await?;
        let details = serde_json::json!({ "groups": groups, "templates": templates }).to_string();
        let audit = self.audit_entry(
            actor,
            "security",
            "set manager restrictions",
            manager,
            &details,
        );
        self.store
            .apply(
                &[Change::SetRestrictions {
                    manager: manager.into(),
                    groups,
                    templates,
                }],
                &audit,
            )
            .await?;
        Ok(())
    }

    /// A manager's restrictions (groups, templates).
    pub async fn restrictions(&self, manager: &str) -> EngineResult<(Vec<String>, Vec<String>)> {
        Ok(self.store.restrictions(manager).await?)
    }

    /// Turns role separation on or off.
    pub async fn set_role_separation(&self, actor: &Actor, on: bool) -> EngineResult<()> {
        self.authorize(actor, Op::Security).await?;
        let audit = self.audit_entry(
            actor,
            "security",
            "set role separation",
            &on.to_string(),
            "{}",
        );
        self.store
            .apply(
                &[Change::SetSetting {
                    name: crate::authz::ROLE_SEPARATION.into(),
                    value: on.to_string(),
                }],
                &audit,
            )
            .await?;
        Ok(())
    }
}
