//! Local principals and groups, credentials (Argon2id-hashed passwords and
//! API tokens, client-certificate mappings), roles, template permissions and
//! manager restrictions. A directory source can replace the store-backed
//! lookups later without changing callers.

pub(crate) mod admin;
pub(crate) mod grants;
pub(crate) mod login;
pub(crate) mod throttle;

pub use crate::core::directory::Directory;
pub use login::Credential;

use std::time::Duration;

use lockbox_store::Principal;
use serde::Serialize;

use crate::{codes, EngineError, EngineResult};

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
