//! Local principals and groups, credentials (Argon2id-hashed passwords and
//! API tokens, client-certificate mappings), roles, template permissions and
//! manager restrictions. A directory source can replace the store-backed
//! lookups later without changing callers.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lockbox_codec::hexfmt::{normalize_hex, to_hex};
use lockbox_crypto::digest::sha256;
use lockbox_crypto::password::{hash_secret, verify_secret};
use lockbox_crypto::random::random_bytes;
use lockbox_store::{
    AuditEntry, CertificateMapping, Change, Disposition, Permission, Principal, TokenInfo,
};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::authz::{Actor, Op, Role, ADMINISTRATORS, AUTHENTICATED_USERS};
use crate::ca::Ca;
use crate::error::{codes, EngineError, EngineResult};
use crate::period::now;

/// Failed password logins allowed per (principal, source) pair within
/// [`LOGIN_WINDOW`]; further password logins of that principal from that
/// source are refused without being checked. The same principal from another
/// source is not affected, so a guesser cannot lock a victim out.
pub const LOGIN_FAILURES_PER_PAIR: u32 = 5;
/// Failed logins (of any kind) allowed per source within [`LOGIN_WINDOW`]
/// (an IPv4 address, or an IPv6 /64).
pub const LOGIN_FAILURES_PER_SOURCE: u32 = 20;
/// The window failed logins are counted in.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// (Principal, source) pairs, and sources, tracked at most per table
/// (bounded memory under a spray).
const THROTTLE_ENTRIES: usize = 4096;
/// Verified tokens remembered at most.
const CACHE_ENTRIES: usize = 10_000;
/// How long a verified token is remembered (and only while the credential version holds).
const CACHE_TTL: Duration = Duration::from_secs(300);
/// Argon2 verifications running at once (each takes ~19 MiB and tens of ms).
const ARGON2_SLOTS: usize = 4;
/// A hash that matches nothing, verified for unknown names so timing does not tell them apart.
const DUMMY_HASH: &str = "argon2id$19456$2$1$00000000000000000000000000000000$0000000000000000000000000000000000000000000000000000000000000000";

/// A throttling key (principal, or the name as sent) and the source group it
/// was sent from.
type Pair = (String, Option<IpAddr>);

/// Per-process authentication state: verified tokens (valid only while the
/// database's credential version is unchanged, so a revocation made by any
/// process takes effect on the next request), failed-login counters, and the
/// slots Argon2 verifications run in (on the blocking pool, never on the
/// request threads).
pub struct AuthState {
    cache: Mutex<HashMap<String, (String, i64, Instant)>>,
    by_pair: Mutex<HashMap<Pair, (Instant, u32)>>,
    by_source: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    argon2: tokio::sync::Semaphore,
}

impl Default for AuthState {
    fn default() -> Self {
        AuthState {
            cache: Mutex::default(),
            by_pair: Mutex::default(),
            by_source: Mutex::default(),
            argon2: tokio::sync::Semaphore::new(ARGON2_SLOTS),
        }
    }
}

/// The source failed logins are counted for: an IPv4 address (also when it
/// arrives IPv4-mapped on a dual-stack socket), or the /64 an IPv6 address
/// belongs to (one host or site usually holds a whole /64). `None`: a caller
/// without a peer address (only in-process; `serve` always knows it).
fn source_group(source: Option<IpAddr>) -> Option<IpAddr> {
    source.map(|ip| match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from_bits(
            v6.to_bits() & !u128::from(u64::MAX),
        )),
    })
}

/// Whether `key` has `limit` failures or more in the current window.
fn over_limit<K: Hash + Eq>(map: &Mutex<HashMap<K, (Instant, u32)>>, key: &K, limit: u32) -> bool {
    map.lock().ok().is_some_and(|m| {
        m.get(key)
            .is_some_and(|(start, n)| start.elapsed() < LOGIN_WINDOW && *n >= limit)
    })
}

/// Counts one failure for `key`; returns the count in the current window.
fn count_failure<K: Hash + Eq + Clone>(map: &Mutex<HashMap<K, (Instant, u32)>>, key: K) -> u32 {
    let Ok(mut m) = map.lock() else {
        return 0;
    };
    if m.len() >= THROTTLE_ENTRIES && !m.contains_key(&key) {
        m.retain(|_, (start, _)| start.elapsed() < LOGIN_WINDOW);
        if m.len() >= THROTTLE_ENTRIES {
            // Still full: forget the oldest window.
            let oldest = m
                .iter()
                .min_by_key(|(_, (start, _))| *start)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                m.remove(&k);
            }
        }
    }
    let e = m.entry(key).or_insert((Instant::now(), 0));
    if e.0.elapsed() >= LOGIN_WINDOW {
        *e = (Instant::now(), 0);
    }
    e.1 = e.1.saturating_add(1);
    e.1
}

/// A name as sent by a client, fit for the audit trail: at most 128
/// characters, control characters (terminal escapes) replaced.
fn shown_name(name: &str) -> String {
    name.chars()
        .take(128)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// A credential presented over the network.
#[derive(Clone, Copy, Debug)]
pub enum Credential<'a> {
    /// `Authorization: Bearer`: an API token or the administrator token.
    Token(&'a str),
    /// HTTP Basic: a principal name, UPN or `DOMAIN\name`, and a password.
    Password {
        /// The name as sent.
        name: &'a str,
        /// The password as sent.
        password: &'a str,
    },
    /// A TLS client certificate the connection layer verified (SHA-1 thumbprint, hex).
    Certificate(&'a str),
}

impl Credential<'_> {
    /// The method name recorded in the audit trail.
    fn method(&self) -> &'static str {
        match self {
            Credential::Token(_) => "token",
            Credential::Password { .. } => "password",
            Credential::Certificate(_) => "certificate",
        }
    }

    /// The per-name throttling key and what the audit record may show (never a secret).
    fn subject(&self) -> (String, serde_json::Value) {
        match self {
            Credential::Token(t) => {
                let id = t
                    .strip_prefix("lbt_")
                    .and_then(|r| r.split_once('_'))
                    .map(|(id, _)| id)
                    .filter(|id| id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit()));
                match id {
                    Some(id) => (
                        format!("token:{}", id.to_ascii_lowercase()),
                        serde_json::json!({ "token_id": id }),
                    ),
                    None => ("token:".into(), serde_json::json!({ "token_id": null })),
                }
            }
            Credential::Password { name, .. } => {
                let shown = shown_name(name);
                (
                    format!("name:{}", shown.to_ascii_lowercase()),
                    serde_json::json!({ "name": shown }),
                )
            }
            Credential::Certificate(thumb) => {
                let t: String = thumb
                    .chars()
                    .take(64)
                    .collect::<String>()
                    .to_ascii_lowercase();
                (format!("cert:{t}"), serde_json::json!({ "thumbprint": t }))
            }
        }
    }
}

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
        let (mut key, shown) = credential.subject();
        let password = matches!(credential, Credential::Password { .. });
        if let Credential::Password { name, .. } = credential {
            // One counter per principal and source, whichever of its names
            // (any case, UPN, DOMAIN\name) the guesser sends.
            if let Some(p) = self.find_principal(name).await? {
                key = format!("name:{}", p.name.to_ascii_lowercase());
            }
        }
        let group = source_group(source);
        let pair = (key, group);
        let source_over = group
            .is_some_and(|ip| over_limit(&self.auth.by_source, &ip, LOGIN_FAILURES_PER_SOURCE));
        if password
            && (source_over || over_limit(&self.auth.by_pair, &pair, LOGIN_FAILURES_PER_PAIR))
        {
            return Err(EngineError::Throttled(format!(
                "too many failed logins from this address; try again in {} seconds",
                LOGIN_WINDOW.as_secs()
            )));
        }
        let actor = match credential {
            Credential::Token(t) => self.authenticate_token(t).await?,
            Credential::Password { name, password } => {
                self.authenticate_password(name, password).await?
            }
            Credential::Certificate(t) => self.authenticate_certificate_thumbprint(t).await?,
        };
        if actor.is_some() {
            if password {
                if let Ok(mut m) = self.auth.by_pair.lock() {
                    m.remove(&pair);
                }
            }
            return Ok(actor);
        }
        let by_pair = if password {
            count_failure(&self.auth.by_pair, pair)
        } else {
            0
        };
        let by_source = group.map_or(0, |ip| count_failure(&self.auth.by_source, ip));
        if source_over {
            return Ok(None);
        }
        let throttled =
            by_pair >= LOGIN_FAILURES_PER_PAIR || by_source >= LOGIN_FAILURES_PER_SOURCE;
        let mut details = shown;
        details["method"] = credential.method().into();
        details["source"] = source.map(|ip| ip.to_string()).into();
        details["throttled"] = throttled.into();
        let entry = AuditEntry {
            at: now(),
            actor: match credential {
                Credential::Password { name, .. } => shown_name(name),
                _ => "anonymous".into(),
            },
            category: "security".into(),
            action: "login".into(),
            target: credential.method().into(),
            outcome: "refused".into(),
            details: details.to_string(),
        };
        if let Err(e) = self.store.append_audit(&[entry]).await {
            tracing::warn!(error = %e, "could not record a failed login");
        }
        Ok(None)
    }

    /// Argon2 verification on the blocking pool, at most [`ARGON2_SLOTS`] at once.
    async fn verify_off_thread(&self, secret: &str, hash: &str) -> EngineResult<bool> {
        let _slot = self
            .auth
            .argon2
            .acquire()
            .await
            .map_err(|_| EngineError::Config("password verification is shut down".into()))?;
        let secret = Zeroizing::new(secret.as_bytes().to_vec());
        let hash = hash.to_string();
        tokio::task::spawn_blocking(move || verify_secret(&secret, &hash))
            .await
            .map_err(|e| EngineError::Config(format!("password verification failed: {e}")))
    }

    /// Authenticates an API token (`lbt_ID_SECRET`, or the administrator token).
    /// A verified token is remembered only while the database's credential
    /// version is unchanged: removing its principal or revoking it (from any
    /// process) takes effect on the next request.
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
        let version = self.store.credential_version().await?;
        let cache_key = to_hex(&sha256(token.as_bytes()));
        let cached = self.auth.cache.lock().ok().and_then(|m| {
            m.get(&cache_key)
                .filter(|(_, v, t)| *v == version && t.elapsed() < CACHE_TTL)
                .map(|(n, _, _)| n.clone())
        });
        if let Some(name) = cached {
            return Ok(Some(self.actor_for(&name).await?));
        }
        let Some((principal, hash)) = self.store.token(id).await? else {
            return Ok(None);
        };
        if !self.verify_off_thread(secret, &hash).await? {
            return Ok(None);
        }
        let Some(p) = self.directory.principal(&principal).await? else {
            return Ok(None);
        };
        if let Ok(mut m) = self.auth.cache.lock() {
            if m.len() >= CACHE_ENTRIES {
                m.clear();
            }
            m.insert(cache_key, (p.name.clone(), version, Instant::now()));
        }
        Ok(Some(self.actor_for(&p.name).await?))
    }

    /// Authenticates a name (principal, UPN or DOMAIN\name) and password (HTTP Basic).
    pub async fn authenticate_password(
        &self,
        name: &str,
        password: &str,
    ) -> EngineResult<Option<Actor>> {
        let Some(p) = self.find_principal(name).await? else {
            // Spend the same time as a real check, so unknown names are not revealed by timing.
            let _ = self.verify_off_thread(password, DUMMY_HASH).await?;
            return Ok(None);
        };
        let Some(hash) = p.password_hash.as_deref() else {
            return Ok(None);
        };
        if !self.verify_off_thread(password, hash).await? {
            return Ok(None);
        }
        Ok(Some(self.actor_for(&p.name).await?))
    }

    /// Authenticates a TLS client certificate by its SHA-1 thumbprint mapping.
    pub async fn authenticate_certificate(&self, cert_der: &[u8]) -> EngineResult<Option<Actor>> {
        self.authenticate_certificate_thumbprint(&to_hex(&lockbox_crypto::digest::sha1(cert_der)))
            .await
    }

    /// Authenticates a verified TLS client certificate given by thumbprint
    /// (hex SHA-1). A certificate this CA has revoked (its row in the CA
    /// database) no longer authenticates, checked at each use.
    pub async fn authenticate_certificate_thumbprint(
        &self,
        thumb: &str,
    ) -> EngineResult<Option<Actor>> {
        let thumb = thumb.to_ascii_lowercase();
        let Some(name) = self.store.principal_for_certificate(&thumb).await? else {
            return Ok(None);
        };
        if let Some(r) = self.store.get_by_thumbprint(&thumb).await? {
            if r.disposition == Disposition::Revoked || r.revoked_at.is_some() {
                return Ok(None);
            }
        }
        let Some(p) = self.directory.principal(&name).await? else {
            return Ok(None);
        };
        Ok(Some(self.actor_for(&p.name).await?))
    }

    /// A principal by name (case-insensitive), or not found.
    async fn existing(&self, name: &str) -> EngineResult<Principal> {
        self.store
            .principal(name)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no principal named '{name}'")))
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
        // Names are case-insensitive, like Windows accounts: `MGR` beside `mgr` is refused.
        if let Some(p) = self.store.principal(name).await? {
            return Err(EngineError::Conflict(format!(
                "a principal named '{}' already exists (principal names are case-insensitive)",
                p.name
            )));
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
        let p = self.existing(name).await?;
        if p.kind == "group" {
            return Err(bad(format!(
                "'{}' is a group; tokens are for users",
                p.name
            )));
        }
        let id = to_hex(&random_bytes(6)?);
        let secret = to_hex(&random_bytes(24)?);
        let audit = self.audit_entry(
            actor,
            "security",
            "add token",
            &p.name,
            &serde_json::json!({ "token_id": id }).to_string(),
        );
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

    /// Removes a principal and everything attached to it (tokens, certificate
    /// mappings, roles, memberships): every process stops accepting its
    /// credentials at the next request.
    pub async fn remove_principal(&self, actor: &Actor, name: &str) -> EngineResult<()> {
        self.authorize(actor, Op::Security).await?;
        let name = self.existing(name).await?.name;
        let audit = self.audit_entry(actor, "security", "remove principal", &name, "{}");
        self.store
            .apply(&[Change::RemovePrincipal { name }], &audit)
            .await?;
        Ok(())
    }

    /// A user's API tokens (IDs and creation dates; secrets are never kept).
    pub async fn tokens(&self, actor: &Actor, name: &str) -> EngineResult<Vec<TokenInfo>> {
        self.authorize(actor, Op::Security).await?;
        let p = self.existing(name).await?;
        Ok(self.store.tokens(&p.name).await?)
    }

    /// Revokes one API token of a user: refused at the next request of every process.
    pub async fn revoke_token(&self, actor: &Actor, name: &str, id: &str) -> EngineResult<()> {
        self.authorize(actor, Op::Security).await?;
        let p = self.existing(name).await?;
        let id = id.trim().trim_start_matches("lbt_").to_ascii_lowercase();
        let audit = self.audit_entry(
            actor,
            "security",
            "revoke token",
            &p.name,
            &serde_json::json!({ "token_id": id }).to_string(),
        );
        self.store
            .apply(
                &[Change::RevokeToken {
                    principal: p.name,
                    id,
                }],
                &audit,
            )
            .await?;
        Ok(())
    }

    /// A principal's client-certificate mappings.
    pub async fn certificate_mappings(
        &self,
        actor: &Actor,
        name: &str,
    ) -> EngineResult<Vec<CertificateMapping>> {
        self.authorize(actor, Op::Security).await?;
        let p = self.existing(name).await?;
        Ok(self.store.certificate_mappings(&p.name).await?)
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
        self.authorize(actor, Op::Security).await?;
        let p = self.existing(name).await?;
        let wanted = normalize_hex(serial)
            .ok_or_else(|| bad(format!("'{serial}' is not a hex serial number")))?;
        let mut thumbs = Vec::new();
        for m in self.store.certificate_mappings(&p.name).await? {
            let serial = match &m.serial {
                Some(s) => Some(s.clone()),
                None => self
                    .store
                    .get_by_thumbprint(&m.thumbprint)
                    .await?
                    .and_then(|r| r.cert.map(|c| c.serial)),
            };
            let same_serial = serial
                .as_deref()
                .is_some_and(|s| s.trim_start_matches("00") == wanted.trim_start_matches("00"));
            if same_serial || m.thumbprint == wanted {
                thumbs.push(m.thumbprint);
            }
        }
        let thumbprint = match thumbs.len() {
            0 => {
                return Err(EngineError::NotFound(format!(
                    "no certificate with serial number {wanted} is mapped to '{}'",
                    p.name
                )))
            }
            1 => thumbs.remove(0),
            _ => {
                return Err(bad(format!(
                    "several certificates mapped to '{}' have serial number {wanted} (certificates of different issuers); give the thumbprint instead: {}",
                    p.name,
                    thumbs.join(", ")
                )))
            }
        };
        let audit = self.audit_entry(
            actor,
            "security",
            "unmap certificate",
            &p.name,
            &serde_json::json!({ "serial": wanted, "thumbprint": thumbprint }).to_string(),
        );
        self.store
            .apply(
                &[Change::UnmapCertificate {
                    principal: p.name,
                    thumbprint: thumbprint.clone(),
                }],
                &audit,
            )
            .await?;
        Ok(thumbprint)
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
        let (group, member) = (g.name, self.existing(member).await?.name);
        let (group, member) = (group.as_str(), member.as_str());
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
        let name = self.existing(name).await?.name;
        let name = name.as_str();
        let der = lockbox_codec::pem::decode_input(cert)?.der;
        let parsed = crate::certbuild::decode_certificate(&der)?;
        let serial = to_hex(parsed.tbs_certificate().serial_number().as_bytes());
        let thumb = to_hex(&lockbox_crypto::digest::sha1(&der));
        let audit = self.audit_entry(
            actor,
            "security",
            "map certificate",
            name,
            &serde_json::json!({ "thumbprint": thumb, "serial": serial }).to_string(),
        );
        self.store
            .apply(
                &[Change::MapCertificate {
                    thumbprint: thumb.clone(),
                    principal: name.into(),
                    serial: Some(serial),
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
        let canonical = match self.store.principal(principal).await? {
            Some(p) => p.name,
            None if grant && !principal.eq_ignore_ascii_case("admin") => {
                return Err(EngineError::NotFound(format!(
                    "no principal named '{principal}'"
                )))
            }
            None => principal.to_string(),
        };
        let principal = canonical.as_str();
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
        let who = match self.store.principal(who).await? {
            Some(p) => p.name,
            None => [AUTHENTICATED_USERS, ADMINISTRATORS]
                .into_iter()
                .find(|b| b.eq_ignore_ascii_case(who))
                .map_or_else(|| who.to_string(), str::to_string),
        };
        let p = Permission {
            template: t.name.clone(),
            principal: who,
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
        // Restrictions that name nobody would never apply (fail open): the
        // manager must be an existing principal or group (a UPN or DOMAIN\name
        // resolves to it), the groups existing groups, the templates existing
        // templates; names are stored in their canonical form.
        let manager = self
            .find_principal(manager)
            .await?
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "no principal or group named '{manager}': restrictions must name an existing principal or group"
                ))
            })?
            .name;
        let manager = manager.as_str();
        let mut canonical_groups = Vec::new();
        for g in &groups {
            let found = match self.store.principal(g.trim()).await? {
                Some(p) if p.kind == "group" => p.name,
                Some(p) => return Err(bad(format!("'{}' is a user, not a group", p.name))),
                None => [AUTHENTICATED_USERS, ADMINISTRATORS]
                    .into_iter()
                    .find(|b| b.eq_ignore_ascii_case(g.trim()))
                    .map(str::to_string)
                    .ok_or_else(|| EngineError::NotFound(format!("no group named '{g}'")))?,
            };
            if !canonical_groups.contains(&found) {
                canonical_groups.push(found);
            }
        }
        let mut canonical_templates = Vec::new();
        for t in &templates {
            let name = self.template(t.trim()).await?.name;
            if !canonical_templates.contains(&name) {
                canonical_templates.push(name);
            }
        }
        let (groups, templates) = (canonical_groups, canonical_templates);
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

    /// A manager's own restrictions (groups, templates); those of the groups
    /// it belongs to apply as well (see `Ca::authorize`).
    pub async fn restrictions(&self, manager: &str) -> EngineResult<(Vec<String>, Vec<String>)> {
        let name = match self.find_principal(manager).await? {
            Some(p) => p.name,
            None => manager.to_string(),
        };
        Ok(self.store.restrictions(&name).await?)
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
