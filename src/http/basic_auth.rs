//! Basic authentication against the bcrypt hashes of `basic_auth_users`:
//! parsing the `Authorization` header, one bcrypt at a time, and a bounded
//! cache of verified logins so a scraper does not pay bcrypt per request.
//!
//! Never log, keep or compare a password in the clear: the cache holds
//! salted digests of successes only, and unknown users cost a full bcrypt.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::header::HeaderValue;
use sha2::{Digest, Sha256};

/// Remembered successful logins; only successes, so a client without a
/// password cannot fill it. Bounded: at most this many.
const VERIFIED_CACHE_ENTRIES: usize = 256;

/// Basic authentication against bcrypt hashes. Cheap to clone.
#[derive(Clone)]
pub struct BasicAuth {
    inner: Option<Arc<Users>>,
}

struct User {
    /// SHA-256 of the name: fixed length, so comparing leaks no length.
    name_digest: [u8; 32],
    hash: String,
}

struct Users {
    users: Vec<User>,
    /// Verified against when the user is unknown, so that an unknown user
    /// costs as much time as a wrong password. Its random salt also salts
    /// the cache keys.
    decoy_hash: String,
    /// SHA-256 of (salt, user, password) for each recent success; never the password.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// One bcrypt at a time, as exporter-toolkit does: it is CPU-heavy by design.
    bcrypt: Mutex<()>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users = self.inner.as_ref().map_or(0, |inner| inner.users.len());
        f.debug_struct("BasicAuth").field("users", &users).finish()
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Equality that does not stop at the first differing byte.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The user and password of a `Basic` Authorization header.
fn credentials(header: &HeaderValue) -> Option<(Vec<u8>, Vec<u8>)> {
    let text = header.to_str().ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

impl BasicAuth {
    /// Every request is let through.
    pub fn disabled() -> BasicAuth {
        BasicAuth { inner: None }
    }

    /// `users` are (name, bcrypt hash) pairs, already checked. The decoy
    /// hash for unknown users is made at `decoy_cost`, the highest cost
    /// among them, so an unknown user is never the fast case.
    pub fn new(
        users: Vec<(String, String)>,
        decoy_cost: u32,
    ) -> Result<BasicAuth, bcrypt::BcryptError> {
        let decoy_hash = bcrypt::hash("lapse: no such user", decoy_cost)?;
        let users = users
            .into_iter()
            .map(|(name, hash)| User {
                name_digest: sha256(&[name.as_bytes()]),
                hash,
            })
            .collect();
        Ok(BasicAuth {
            inner: Some(Arc::new(Users {
                users,
                decoy_hash,
                verified: Mutex::new(HashSet::new()),
                bcrypt: Mutex::new(()),
            })),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// `header` is the raw Authorization header value, if any. True when
    /// auth is disabled or the credentials match.
    ///
    /// A first login per (user, password) runs bcrypt, which takes tens of
    /// milliseconds at usual costs: call it off the async executor
    /// (`tokio::task::spawn_blocking`). Repeats are answered from a cache.
    pub fn authorize(&self, header: Option<&HeaderValue>) -> bool {
        let Some(inner) = &self.inner else {
            return true;
        };
        let Some((user, password)) = header.and_then(credentials) else {
            return false;
        };
        let key = sha256(&[inner.decoy_hash.as_bytes(), &user, &password]);
        if lock(&inner.verified).contains(&key) {
            return true;
        }
        let user_digest = sha256(&[&user]);
        let mut found = None;
        for candidate in &inner.users {
            if same_digest(&candidate.name_digest, &user_digest) {
                found = Some(candidate);
            }
        }
        let hash = found.map_or(inner.decoy_hash.as_str(), |u| u.hash.as_str());
        let matches = {
            let _one_at_a_time = lock(&inner.bcrypt);
            bcrypt::verify(&password, hash).unwrap_or(false)
        };
        let authorized = matches && found.is_some();
        if authorized {
            let mut verified = lock(&inner.verified);
            if verified.len() >= VERIFIED_CACHE_ENTRIES {
                let evicted = verified.iter().next().copied();
                if let Some(evicted) = evicted {
                    verified.remove(&evicted);
                }
            }
            verified.insert(key);
        }
        authorized
    }

    #[cfg(test)]
    fn cached(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(0, |inner| lock(&inner.verified).len())
    }
}

/// A panic while holding these locks leaves nothing half-written worth refusing.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::load;

    fn basic(user: &str, password: &str) -> HeaderValue {
        let encoded = STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn auth() -> BasicAuth {
        let dir = tempfile::tempdir().unwrap();
        let alice = bcrypt::hash("s3cret:pw", 4).unwrap();
        let bob = bcrypt::hash("other", 4).unwrap();
        let yaml = format!("basic_auth_users:\n  alice: '{alice}'\n  bob: '{bob}'\n");
        let config = load(dir.path(), &yaml).unwrap();
        assert!(config.basic_auth.is_enabled());
        config.basic_auth
    }

    #[test]
    fn basic_auth_accepts_only_the_right_user_and_password() {
        let auth = auth();
        assert!(auth.authorize(Some(&basic("alice", "s3cret:pw"))));
        assert!(auth.authorize(Some(&basic("bob", "other"))));
        assert!(!auth.authorize(Some(&basic("alice", "other"))));
        assert!(!auth.authorize(Some(&basic("alice", "s3cret"))));
        assert!(!auth.authorize(Some(&basic("carol", "s3cret:pw"))));
        assert!(!auth.authorize(Some(&basic("", ""))));
        assert!(!auth.authorize(None));
        let encoded = STANDARD.encode("alice:s3cret:pw");
        let malformed = [
            format!("Bearer {encoded}"),
            "Basic".to_string(),
            "Basic !!!notbase64".to_string(),
            format!("Basic {}", STANDARD.encode("alice-no-colon")),
        ];
        for header in malformed {
            let value = HeaderValue::from_str(&header).unwrap();
            assert!(!auth.authorize(Some(&value)), "{header}");
        }
        let lower = HeaderValue::from_str(&format!("basic {encoded}")).unwrap();
        assert!(auth.authorize(Some(&lower)));
    }

    #[test]
    fn only_successes_are_cached_and_answers_do_not_change() {
        let auth = auth();
        assert_eq!(auth.cached(), 0);
        for _ in 0..3 {
            assert!(auth.authorize(Some(&basic("alice", "s3cret:pw"))));
            assert!(!auth.authorize(Some(&basic("alice", "wrong"))));
            assert!(!auth.authorize(Some(&basic("carol", "s3cret:pw"))));
            assert_eq!(auth.cached(), 1);
        }
        // Clones share the cache.
        let clone = auth.clone();
        assert!(clone.authorize(Some(&basic("bob", "other"))));
        assert_eq!(auth.cached(), 2);
        assert_eq!(format!("{auth:?}"), "BasicAuth { users: 2 }");
        fn shared_across_tasks<T: Clone + Send + Sync>(_: &T) {}
        shared_across_tasks(&auth);
    }

    #[test]
    fn the_cache_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let hash = bcrypt::hash("pw", 4).unwrap();
        let auth = load(dir.path(), &format!("basic_auth_users:\n  u: '{hash}'\n"))
            .unwrap()
            .basic_auth;
        let inner = auth.inner.as_ref().unwrap();
        let earlier = (0..VERIFIED_CACHE_ENTRIES as u32).map(|i| sha256(&[&i.to_be_bytes()]));
        lock(&inner.verified).extend(earlier);
        assert!(auth.authorize(Some(&basic("u", "pw"))));
        assert_eq!(auth.cached(), VERIFIED_CACHE_ENTRIES);
        assert!(auth.authorize(Some(&basic("u", "pw"))));
        assert_eq!(auth.cached(), VERIFIED_CACHE_ENTRIES);
    }
}
