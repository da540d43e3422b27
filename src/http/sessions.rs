//! Dashboard login sessions: random ids handed out as the `pushgate_session` cookie after
//! an admin token was checked. Only the SHA-256 of each id is kept, in memory, with its
//! expiry; the admin token itself never goes into a cookie. Sessions end on logout, after
//! [`SESSION_LIFETIME`], or when the process restarts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::crypto::{random_bytes, token_hash};

/// How long a login lasts (the cookie's `Max-Age` says the same).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// Sessions kept at once. Only admins can create sessions, so this bounds memory against
/// a script logging in in a loop rather than against strangers.
pub const MAX_SESSIONS: usize = 1024;

/// The live sessions, by the hash of their id.
#[derive(Default)]
pub struct Sessions {
    expiries: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sessions({} live)", self.lock().len())
    }
}

impl Sessions {
    /// Starts a session and returns its id, the cookie value.
    pub fn create(&self) -> String {
        self.create_at(Instant::now())
    }

    /// Whether `id` names a live session.
    pub fn is_valid(&self, id: &str) -> bool {
        self.is_valid_at(id, Instant::now())
    }

    /// Ends the session `id` names, if any.
    pub fn revoke(&self, id: &str) {
        self.lock().remove(&token_hash(id));
    }

    fn create_at(&self, now: Instant) -> String {
        let id = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let mut expiries = self.lock();
        if expiries.len() >= MAX_SESSIONS {
            expiries.retain(|_, expiry| *expiry > now);
        }
        if expiries.len() >= MAX_SESSIONS {
            // Still full of live sessions: the one closest to expiring makes room.
            let soonest = expiries.iter().min_by_key(|(_, expiry)| **expiry).map(|(hash, _)| hash.clone());
            if let Some(hash) = soonest {
                expiries.remove(&hash);
            }
        }
        expiries.insert(token_hash(&id), now + SESSION_LIFETIME);
        id
    }

    fn is_valid_at(&self, id: &str, now: Instant) -> bool {
        // The map is keyed by a hash of the id, so lookup timing reveals nothing usable
        // about the ids themselves.
        let hash = token_hash(id);
        let mut expiries = self.lock();
        match expiries.get(&hash) {
            Some(expiry) if *expiry > now => true,
            Some(_) => {
                expiries.remove(&hash);
                false
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // The map stays consistent even if a holder panicked: every update is one call.
        self.expiries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_random_and_end_on_revoke_or_expiry() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let first = sessions.create_at(now);
        let second = sessions.create_at(now);
        assert_ne!(first, second);
        assert!(first.len() >= 43, "256 bits of randomness: {first}");
        assert!(sessions.is_valid_at(&first, now));
        assert!(!sessions.is_valid_at("not-a-session", now));
        sessions.revoke(&first);
        assert!(!sessions.is_valid_at(&first, now));
        assert!(sessions.is_valid_at(&second, now + SESSION_LIFETIME - Duration::from_secs(1)));
        assert!(!sessions.is_valid_at(&second, now + SESSION_LIFETIME));
        assert_eq!(sessions.lock().len(), 0, "an expired session is dropped when seen");
    }

    #[test]
    fn the_number_of_sessions_is_bounded() {
        let sessions = Sessions::default();
        let start = Instant::now();
        let oldest = sessions.create_at(start);
        for i in 1..=MAX_SESSIONS {
            sessions.create_at(start + Duration::from_secs(i as u64));
        }
        assert_eq!(sessions.lock().len(), MAX_SESSIONS);
        assert!(!sessions.is_valid_at(&oldest, start), "the session closest to expiry made room");
    }
}
