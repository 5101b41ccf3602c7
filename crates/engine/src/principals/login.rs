//! Authentication: tokens, passwords and client certificates, with throttling and caching.

use std::net::IpAddr;
use std::time::Instant;

use lockbox_codec::hexfmt::to_hex;
use lockbox_crypto::digest::sha256;
use lockbox_crypto::password::verify_secret;
use lockbox_store::{AuditEntry, Disposition};
use zeroize::Zeroizing;

use crate::authz::ADMINISTRATORS;
use crate::category::{AuditAction, AuditCategory};
use crate::core::state::{CACHE_ENTRIES, CACHE_TTL};
use crate::core::Core;
use crate::period::now;
use crate::principals::throttle::{count_failure, over_limit, source_group};
use crate::principals::{LOGIN_FAILURES_PER_PAIR, LOGIN_FAILURES_PER_SOURCE, LOGIN_WINDOW};
use crate::{Actor, EngineError, EngineResult, Role};

/// A hash that matches nothing, verified for unknown names so timing does not tell them apart.
pub(crate) const DUMMY_HASH: &str = "argon2id$19456$2$1$00000000000000000000000000000000$0000000000000000000000000000000000000000000000000000000000000000";

/// A name as sent by a client, fit for the audit trail: at most 128
/// characters, control characters (terminal escapes) replaced.
pub(crate) fn shown_name(name: &str) -> String {
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
pub(crate) async fn login(
    core: &Core,
    credential: Credential<'_>,
    source: Option<IpAddr>,
) -> EngineResult<Option<Actor>> {
    let (mut key, shown) = credential.subject();
    let password = matches!(credential, Credential::Password { .. });
    if let Credential::Password { name, .. } = credential {
        // One counter per principal and source, whichever of its names
        // (any case, UPN, DOMAIN\name) the guesser sends.
        if let Some(p) = crate::core::directory::find_principal(core, name).await? {
            key = format!("name:{}", p.name.to_ascii_lowercase());
        }
    }
    let group = source_group(source);
    let pair = (key, group);
    let source_over =
        group.is_some_and(|ip| over_limit(&core.auth.by_source, &ip, LOGIN_FAILURES_PER_SOURCE));
    if password && (source_over || over_limit(&core.auth.by_pair, &pair, LOGIN_FAILURES_PER_PAIR)) {
        return Err(EngineError::Throttled(format!(
            "too many failed logins from this address; try again in {} seconds",
            LOGIN_WINDOW.as_secs()
        )));
    }
    let actor = match credential {
        Credential::Token(t) => authenticate_token(core, t).await?,
        Credential::Password { name, password } => {
            authenticate_password(core, name, password).await?
        }
        Credential::Certificate(t) => authenticate_certificate_thumbprint(core, t).await?,
    };
    if actor.is_some() {
        if password {
            if let Ok(mut m) = core.auth.by_pair.lock() {
                m.remove(&pair);
            }
        }
        return Ok(actor);
    }
    let by_pair = if password {
        count_failure(&core.auth.by_pair, pair)
    } else {
        0
    };
    let by_source = group.map_or(0, |ip| count_failure(&core.auth.by_source, ip));
    if source_over {
        return Ok(None);
    }
    let throttled = by_pair >= LOGIN_FAILURES_PER_PAIR || by_source >= LOGIN_FAILURES_PER_SOURCE;
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
        category: AuditCategory::Security.as_str().into(),
        action: AuditAction::Login.as_str().into(),
        target: credential.method().into(),
        outcome: "refused".into(),
        details: details.to_string(),
    };
    if let Err(e) = core.store.append_audit(&[entry]).await {
        tracing::warn!(error = %e, "could not record a failed login");
    }
    Ok(None)
}

/// Argon2 verification on the blocking pool, at most [`ARGON2_SLOTS`] at once.
pub(crate) async fn verify_off_thread(core: &Core, secret: &str, hash: &str) -> EngineResult<bool> {
    let _slot = core
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
pub(crate) async fn authenticate_token(core: &Core, token: &str) -> EngineResult<Option<Actor>> {
    if core.verify_admin_token(token) {
        let mut a = crate::core::directory::actor_for(core, "admin").await?;
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
    let version = core.store.credential_version().await?;
    let cache_key = to_hex(&sha256(token.as_bytes()));
    let cached = core.auth.cache.lock().ok().and_then(|m| {
        m.get(&cache_key)
            .filter(|(_, v, t)| *v == version && t.elapsed() < CACHE_TTL)
            .map(|(n, _, _)| n.clone())
    });
    if let Some(name) = cached {
        return Ok(Some(crate::core::directory::actor_for(core, &name).await?));
    }
    let Some((principal, hash)) = core.store.token(id).await? else {
        return Ok(None);
    };
    if !verify_off_thread(core, secret, &hash).await? {
        return Ok(None);
    }
    let Some(p) = core.directory.principal(&principal).await? else {
        return Ok(None);
    };
    if let Ok(mut m) = core.auth.cache.lock() {
        if m.len() >= CACHE_ENTRIES {
            m.clear();
        }
        m.insert(cache_key, (p.name.clone(), version, Instant::now()));
    }
    Ok(Some(
        crate::core::directory::actor_for(core, &p.name).await?,
    ))
}

/// Authenticates a name (principal, UPN or DOMAIN\name) and password (HTTP Basic).
pub(crate) async fn authenticate_password(
    core: &Core,
    name: &str,
    password: &str,
) -> EngineResult<Option<Actor>> {
    let Some(p) = crate::core::directory::find_principal(core, name).await? else {
        // Spend the same time as a real check, so unknown names are not revealed by timing.
        let _ = verify_off_thread(core, password, DUMMY_HASH).await?;
        return Ok(None);
    };
    let Some(hash) = p.password_hash.as_deref() else {
        return Ok(None);
    };
    if !verify_off_thread(core, password, hash).await? {
        return Ok(None);
    }
    Ok(Some(
        crate::core::directory::actor_for(core, &p.name).await?,
    ))
}

/// Authenticates a TLS client certificate by its SHA-1 thumbprint mapping.
pub(crate) async fn authenticate_certificate(
    core: &Core,
    cert_der: &[u8],
) -> EngineResult<Option<Actor>> {
    authenticate_certificate_thumbprint(core, &to_hex(&lockbox_crypto::digest::sha1(cert_der)))
        .await
}

/// Authenticates a verified TLS client certificate given by thumbprint
/// (hex SHA-1). A certificate this CA has revoked (its row in the CA
/// database) no longer authenticates, checked at each use.
pub(crate) async fn authenticate_certificate_thumbprint(
    core: &Core,
    thumb: &str,
) -> EngineResult<Option<Actor>> {
    let thumb = thumb.to_ascii_lowercase();
    let Some(name) = core.store.principal_for_certificate(&thumb).await? else {
        return Ok(None);
    };
    if let Some(r) = core.store.get_by_thumbprint(&thumb).await? {
        if r.disposition == Disposition::Revoked || r.revoked_at.is_some() {
            return Ok(None);
        }
    }
    let Some(p) = core.directory.principal(&name).await? else {
        return Ok(None);
    };
    Ok(Some(
        crate::core::directory::actor_for(core, &p.name).await?,
    ))
}
