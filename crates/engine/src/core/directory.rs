//! The principal directory the CA reads (the store today, LDAP later) and actor resolution.

use std::collections::BTreeSet;
use std::time::Instant;

use lockbox_store::Principal;

use crate::actor::{ADMINISTRATORS, AUTHENTICATED_USERS};
use crate::core::state::{CACHE_ENTRIES, CACHE_TTL};
use crate::core::Core;
use crate::{Actor, EngineResult, Role};

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

/// The actor for a principal name (or UPN / down-level name); unknown names
/// get no groups or roles beyond Authenticated Users. Resolved actors are
/// remembered while the database's credential version holds (any change to
/// principals, memberships or roles, from any process, moves it) and at most
/// [`CACHE_TTL`].
pub(crate) async fn actor_for(core: &Core, name: &str) -> EngineResult<Actor> {
    let version = core.store.credential_version().await?;
    // The exact name as given: two spellings that the directory keeps
    // apart (`kate` and a look-alike with non-ASCII letters) never share an
    // entry, whatever case folding would say.
    let key = name.to_string();
    let cached = core.auth.actors.lock().ok().and_then(|m| {
        m.get(&key)
            .filter(|(v, t, _)| *v == version && t.elapsed() < CACHE_TTL)
            .map(|(_, _, a)| a.clone())
    });
    if let Some(actor) = cached {
        return Ok(actor);
    }
    let actor = resolve_actor(core, name).await?;
    if let Ok(mut m) = core.auth.actors.lock() {
        if m.len() >= CACHE_ENTRIES {
            m.clear();
        }
        m.insert(key, (version, Instant::now(), actor.clone()));
    }
    Ok(actor)
}

/// Resolves an actor from the directory: the principal, its groups
/// (transitively, 16 levels at most) and the roles granted to either.
async fn resolve_actor(core: &Core, name: &str) -> EngineResult<Actor> {
    let principal = find_principal(core, name).await?;
    let canonical = principal
        .map(|p| p.name)
        .unwrap_or_else(|| name.to_string());
    let mut groups: BTreeSet<String> = BTreeSet::new();
    let mut frontier = vec![canonical.clone()];
    for _ in 0..16 {
        let mut next = Vec::new();
        for n in &frontier {
            for g in core.directory.groups_of(n).await? {
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
    let grants = core.store.roles().await?;
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

pub(crate) async fn find_principal(core: &Core, name: &str) -> EngineResult<Option<Principal>> {
    if let Some(p) = core.directory.principal(name).await? {
        return Ok(Some(p));
    }
    Ok(core.directory.principals().await?.into_iter().find(|p| {
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
