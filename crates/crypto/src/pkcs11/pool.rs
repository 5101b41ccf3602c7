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

/// A session taken from the pool; give it back or discard it.
pub(super) struct Lease(u64, Session);

impl Lease {
    pub(super) fn session(&self) -> &Session {
        &self.1
    }
}

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
    ) -> Result<Lease, CryptoError> {
        let mut state = self.lock()?;
        loop {
            while let Some((g, s)) = state.idle.pop() {
                if g == generation {
                    return Ok(Lease(g, s));
                }
                state.open = state.open.saturating_sub(1);
                retire(generation, g, s);
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match open() {
                    Ok(s) => Ok(Lease(generation, s)),
                    Err(e) => {
                        let mut state = self.lock()?;
                        state.open = state.open.saturating_sub(1);
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            state = self
                .returned
                .wait(state)
                .map_err(|_| CryptoError::Operation("PKCS#11 session pool"))?;
        }
    }

    /// Returns a session for the next caller.
    pub(super) fn give_back(&self, lease: Lease, generation: u64) {
        if let Ok(mut state) = self.state.lock() {
            if lease.0 == generation {
                state.idle.push((lease.0, lease.1));
            } else {
                state.open = state.open.saturating_sub(1);
                retire(generation, lease.0, lease.1);
            }
            self.returned.notify_one();
        }
    }

    /// Closes a session that failed because the token went away, and every
    /// idle one with it (they went with the token): the next caller opens a
    /// session afresh, looking for the token again.
    pub(super) fn discard(&self, lease: Lease, generation: u64) {
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
        retire(generation, lease.0, lease.1);
    }
}
