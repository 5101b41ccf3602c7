//! The token's session pool: at most `max` sessions, idle ones kept for the
//! next caller, a caller beyond `max` waits for one to come back. Each
//! session remembers the module generation it was opened in; one from an
//! older generation (the module was re-initialised since) is forgotten, not
//! closed: its handle number may now belong to another session.

use std::sync::{Condvar, Mutex};

use cryptoki::session::Session;

use crate::error::CryptoError;

struct State {
    idle: Vec<(u64, Session)>,
    /// Sessions open (idle or leased).
    open: usize,
}

/// Sessions of one token.
pub(super) struct Pool {
    state: Mutex<State>,
    returned: Condvar,
    max: usize,
}

/// A session taken from the pool; give it back or discard it. A lease
/// dropped otherwise (a panic in the operation) frees its place in the pool
/// and forgets the session.
pub(super) struct Lease<'a> {
    pool: &'a Pool,
    generation: u64,
    session: Option<Session>,
}

impl Lease<'_> {
    pub(super) fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            std::mem::forget(s);
            if let Ok(mut state) = self.pool.state.lock() {
                state.open = state.open.saturating_sub(1);
                self.pool.returned.notify_one();
            }
        }
    }
}

/// How long a caller waits for a session when all are in use.
const WAIT_FOR_SESSION: std::time::Duration = std::time::Duration::from_secs(30);

/// Drops a session of the current generation (closing it) and forgets one of
/// an older generation.
fn retire(generation: u64, lease_generation: u64, session: Session) {
    if lease_generation == generation {
        drop(session);
    } else {
        std::mem::forget(session);
    }
}

impl Pool {
    pub(super) fn new(max: usize) -> Pool {
        Pool {
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
            max: max.max(1),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, CryptoError> {
        self.state
            .lock()
            .map_err(|_| CryptoError::Operation("PKCS#11 session pool"))
    }

    /// An idle session of `generation`, a new one from `open` while fewer
    /// than `max` are open, or the next one given back.
    pub(super) fn take(
        &self,
        generation: u64,
        open: impl FnOnce() -> Result<Session, CryptoError>,
    ) -> Result<Lease<'_>, CryptoError> {
        let lease = |g, s| Lease {
            pool: self,
            generation: g,
            session: Some(s),
        };
        let mut state = self.lock()?;
        loop {
            while let Some((g, s)) = state.idle.pop() {
                if g == generation {
                    return Ok(lease(g, s));
                }
                state.open = state.open.saturating_sub(1);
                retire(generation, g, s);
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match open() {
                    Ok(s) => Ok(lease(generation, s)),
                    Err(e) => {
                        let mut state = self.lock()?;
                        state.open = state.open.saturating_sub(1);
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            let (next, waited) = self
                .returned
                .wait_timeout(state, WAIT_FOR_SESSION)
                .map_err(|_| CryptoError::Operation("PKCS#11 session pool"))?;
            if waited.timed_out() {
                return Err(CryptoError::TokenUnavailable(
                    "every session of the token is busy (waited 30 s)".into(),
                ));
            }
            state = next;
        }
    }

    /// Returns a session for the next caller.
    pub(super) fn give_back(&self, mut lease: Lease<'_>, generation: u64) {
        let Some(session) = lease.session.take() else {
            return;
        };
        if let Ok(mut state) = self.state.lock() {
            if lease.generation == generation {
                state.idle.push((lease.generation, session));
            } else {
                state.open = state.open.saturating_sub(1);
                retire(generation, lease.generation, session);
            }
            self.returned.notify_one();
        }
    }

    /// Closes a session that failed because the token went away, and every
    /// idle one with it (they went with the token): the next caller opens a
    /// session afresh, looking for the token again.
    pub(super) fn discard(&self, mut lease: Lease<'_>, generation: u64) {
        let Some(session) = lease.session.take() else {
            return;
        };
        let stale = match self.state.lock() {
            Ok(mut state) => {
                let stale: Vec<(u64, Session)> = state.idle.drain(..).collect();
                state.open = state.open.saturating_sub(1 + stale.len());
                self.returned.notify_all();
                stale
            }
            Err(_) => Vec::new(),
        };
        // Closing may fail on a dead token; nothing to do about it.
        for (g, s) in stale {
            retire(generation, g, s);
        }
        retire(generation, lease.generation, session);
    }
}
