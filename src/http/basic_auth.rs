//! Basic authentication against the bcrypt hashes of `basic_auth_users`:
//! parsing the `Authorization` header, a bounded cache of verified logins
//! answered on the async thread (one SHA-256), and bcrypt work that is
//! bounded (a few at once, a short line, 503 beyond it) and cancellable
//! (a client that goes away gives up its place before bcrypt starts).
//!
//! Never log, keep or compare a password in the clear: the cache holds
//! salted digests of successes only. Every failed login costs the same
//! bcrypt work, whether the user exists or not and whatever its cost.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::header::HeaderValue;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::log_every::RateLimited;

/// The highest bcrypt cost accepted in `basic_auth_users`. One verification
/// at 14 takes about a second of a core; each step up doubles it, and at
/// 20 one login (and each decoy) takes a minute.
pub const MAX_COST: u32 = 14;

/// Remembered successful logins; only successes, so a client without a
/// password cannot fill it. Bounded: at most this many.
const VERIFIED_CACHE_ENTRIES: usize = 256;

/// bcrypt verifications running at once, each on a blocking-pool thread:
/// it is CPU-heavy by design, and serving must keep a core.
const VERIFYING_AT_ONCE: usize = 2;

/// Logins waiting for one of those, beyond which a login not in the cache
/// is answered 503 at once. Short, so that the work left when a flood
/// stops is a few verifications, not minutes of them.
const WAITING: usize = 16;

/// How often, at most, turning logins away is logged.
const BUSY_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// What a request's credentials earn it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Auth is off, or the user and password match.
    Allowed,
    /// No usable credentials, or they do not match: 401.
    Refused,
    /// Not in the cache of verified logins, and the line for bcrypt is
    /// full: 503, try again shortly. Says nothing about the credentials.
    Busy,
}

/// Basic authentication against bcrypt hashes. Cheap to clone; clones
/// share the cache and the limits.
#[derive(Clone)]
pub struct BasicAuth {
    inner: Option<Arc<Users>>,
}

struct User {
    /// SHA-256 of the name: fixed length, so comparing leaks no length.
    name_digest: [u8; 32],
    hash: String,
    cost: u32,
}

struct Users {
    users: Vec<User>,
    /// One hash no password matches for each distinct cost among the
    /// users, cheapest first: see [`Users::work`].
    decoys: Vec<(u32, String)>,
    /// Random; salts the cache keys.
    salt: [u8; 32],
    /// SHA-256 of (salt, user, password) for each recent success; never the password.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// Places for logins being verified or waiting to be.
    places: Arc<Semaphore>,
    /// Turns at bcrypt.
    verifying: Arc<Semaphore>,
    busy: BusyLog,
    /// bcrypt verifications done, decoys included.
    bcrypt_runs: AtomicU64,
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

/// A well-formed hash at `cost` that no password matches: a fresh salt
/// and the digest of a cost-4 hash under it. Verifying against it runs
/// the full 2^cost rounds, yet making it costs only the cost-4 hash.
fn decoy(cost: u32) -> Result<String, bcrypt::BcryptError> {
    let cheap = bcrypt::hash("lapse: decoy", 4)?;
    // `$2b$04$` then 53 characters of salt and digest.
    Ok(format!("$2b${cost:02}${}", &cheap[7..]))
}

impl BasicAuth {
    /// Every request is let through.
    pub fn disabled() -> BasicAuth {
        BasicAuth { inner: None }
    }

    /// `users` are (name, bcrypt hash) pairs, already checked to parse
    /// with a cost of at most [`MAX_COST`].
    pub fn new(users: Vec<(String, String)>) -> Result<BasicAuth, bcrypt::BcryptError> {
        let mut parsed = Vec::with_capacity(users.len());
        for (name, hash) in users {
            let cost = hash.parse::<bcrypt::HashParts>()?.get_cost();
            parsed.push(User {
                name_digest: sha256(&[name.as_bytes()]),
                hash,
                cost,
            });
        }
        let mut costs: Vec<u32> = parsed.iter().map(|u| u.cost).collect();
        costs.sort_unstable();
        costs.dedup();
        let decoys = costs
            .into_iter()
            .map(|cost| decoy(cost).map(|hash| (cost, hash)))
            .collect::<Result<Vec<_>, _>>()?;
        let salt_source: Vec<&[u8]> = decoys.iter().map(|(_, h)| h.as_bytes()).collect();
        Ok(BasicAuth {
            inner: Some(Arc::new(Users {
                users: parsed,
                salt: sha256(&salt_source),
                decoys,
                verified: Mutex::new(HashSet::new()),
                places: Arc::new(Semaphore::new(VERIFYING_AT_ONCE + WAITING)),
                verifying: Arc::new(Semaphore::new(VERIFYING_AT_ONCE)),
                busy: BusyLog::default(),
                bcrypt_runs: AtomicU64::new(0),
            })),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Judges `header`, the raw Authorization header value, if any.
    ///
    /// A login verified before is answered from the cache without waiting
    /// for anything. Otherwise it takes one of a few places in line at
    /// once (or is [`Verdict::Busy`]), waits for a turn at bcrypt, and is
    /// verified on the blocking pool. Dropping the future before its turn
    /// (hyper does when the client goes away) gives the place back and
    /// no bcrypt is run for it.
    pub async fn check(&self, header: Option<&HeaderValue>) -> Verdict {
        let Some(inner) = &self.inner else {
            return Verdict::Allowed;
        };
        let Some((user, password)) = header.and_then(credentials) else {
            return Verdict::Refused;
        };
        let key = sha256(&[&inner.salt, &user, &password]);
        if lock(&inner.verified).contains(&key) {
            return Verdict::Allowed;
        }
        let Ok(place) = inner.places.clone().try_acquire_owned() else {
            inner.busy.note();
            return Verdict::Busy;
        };
        let Ok(turn) = inner.verifying.clone().acquire_owned().await else {
            return Verdict::Busy;
        };
        let users = inner.clone();
        let verified = tokio::task::spawn_blocking(move || {
            // Held until bcrypt is done, even if the request is gone by then.
            let _held = (place, turn);
            let verified = users.verify(&user, &password);
            if verified {
                users.remember(key);
            }
            verified
        })
        .await
        .unwrap_or(false);
        if verified {
            Verdict::Allowed
        } else {
            Verdict::Refused
        }
    }

    /// [`BasicAuth::check`] to completion, on a runtime of its own.
    #[cfg(test)]
    pub(crate) fn authorize(&self, header: Option<&HeaderValue>) -> bool {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a test runtime");
        runtime.block_on(self.check(header)) == Verdict::Allowed
    }
}

impl Users {
    fn find(&self, user: &[u8]) -> Option<&User> {
        let digest = sha256(&[user]);
        // Every name is compared, so the time does not say which matched.
        let mut found = None;
        for candidate in &self.users {
            if same_digest(&candidate.name_digest, &digest) {
                found = Some(candidate);
            }
        }
        found
    }

    /// The hashes a login as `user` is verified against, and whether each
    /// is the user's own: one per distinct cost among the users, cheapest
    /// first — the user's own hash at its cost, a decoy at every other.
    /// An unknown user gets only decoys.
    ///
    /// So every failed login — an unknown user, or a wrong password for a
    /// user of any cost — runs the same bcrypt rounds in the same order,
    /// and the time to its 401 says nothing about which users exist. (A
    /// floor on the time to answer would hide it too, but only while the
    /// machine is idle enough to meet the floor; equal work holds under
    /// load.) The price: at most twice the work of the highest cost alone,
    /// since each cost doubles the one below; with one cost, no extra.
    fn work<'a>(&'a self, user: Option<&'a User>) -> impl Iterator<Item = (&'a str, bool)> {
        self.decoys.iter().map(move |(cost, decoy)| match user {
            Some(user) if user.cost == *cost => (user.hash.as_str(), true),
            _ => (decoy.as_str(), false),
        })
    }

    /// bcrypt, on a blocking thread.
    fn verify(&self, user: &[u8], password: &[u8]) -> bool {
        let mut matched = false;
        // No early exit on a match: successes cost the same work too.
        for (hash, own) in self.work(self.find(user)) {
            self.bcrypt_runs.fetch_add(1, Ordering::Relaxed);
            let ok = bcrypt::verify(password, hash).unwrap_or(false);
            matched |= own && ok;
        }
        matched
    }

    fn remember(&self, key: [u8; 32]) {
        let mut verified = lock(&self.verified);
        if verified.len() >= VERIFIED_CACHE_ENTRIES && !verified.contains(&key) {
            let evicted = verified.iter().next().copied();
            if let Some(evicted) = evicted {
                verified.remove(&evicted);
            }
        }
        verified.insert(key);
    }
}

/// Logs turned-away logins at most once per [`BUSY_LOG_INTERVAL`], with
/// how many there were since the last line: a flood must not flood the log.
struct BusyLog(RateLimited);

impl Default for BusyLog {
    fn default() -> Self {
        BusyLog(RateLimited::new(BUSY_LOG_INTERVAL))
    }
}

impl BusyLog {
    fn note(&self) {
        if let Some(left_out) = self.0.hit(tokio::time::Instant::now()) {
            tracing::warn!(
                turned_away = left_out + 1,
                "basic auth: {} logins checked or waiting; answering 503 to logins not verified before",
                VERIFYING_AT_ONCE + WAITING
            );
        }
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
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    fn basic(user: &str, password: &str) -> HeaderValue {
        let encoded = STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn from_yaml(yaml: &str) -> BasicAuth {
        let dir = tempfile::tempdir().unwrap();
        let config = load(dir.path(), yaml).unwrap();
        assert!(config.basic_auth.is_enabled());
        config.basic_auth
    }

    fn auth() -> BasicAuth {
        let alice = bcrypt::hash("s3cret:pw", 4).unwrap();
        let bob = bcrypt::hash("other", 4).unwrap();
        from_yaml(&format!(
            "basic_auth_users:\n  alice: '{alice}'\n  bob: '{bob}'\n"
        ))
    }

    fn users(auth: &BasicAuth) -> &Users {
        auth.inner.as_ref().unwrap()
    }

    fn cached(auth: &BasicAuth) -> usize {
        lock(&users(auth).verified).len()
    }

    fn runs(auth: &BasicAuth) -> u64 {
        users(auth).bcrypt_runs.load(Ordering::Relaxed)
    }

    /// Polls `future` once: `Some` if it finished without waiting.
    fn poll_once<F: Future>(future: &mut Pin<Box<F>>) -> Option<F::Output> {
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(out) => Some(out),
            Poll::Pending => None,
        }
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
        assert!(BasicAuth::disabled().authorize(None));
    }

    #[test]
    fn only_successes_are_cached_and_answers_do_not_change() {
        let auth = auth();
        assert_eq!(cached(&auth), 0);
        for _ in 0..3 {
            assert!(auth.authorize(Some(&basic("alice", "s3cret:pw"))));
            assert!(!auth.authorize(Some(&basic("alice", "wrong"))));
            assert!(!auth.authorize(Some(&basic("carol", "s3cret:pw"))));
            assert_eq!(cached(&auth), 1);
        }
        // One verification for the first success; every failure pays again.
        assert_eq!(runs(&auth), 1 + 3 * 2);
        // Clones share the cache.
        let clone = auth.clone();
        assert!(clone.authorize(Some(&basic("bob", "other"))));
        assert_eq!(cached(&auth), 2);
        assert_eq!(format!("{auth:?}"), "BasicAuth { users: 2 }");
        fn shared_across_tasks<T: Clone + Send + Sync>(_: &T) {}
        shared_across_tasks(&auth);
    }

    #[test]
    fn the_cache_is_bounded() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let auth = from_yaml(&format!("basic_auth_users:\n  u: '{hash}'\n"));
        let earlier = (0..VERIFIED_CACHE_ENTRIES as u32).map(|i| sha256(&[&i.to_be_bytes()]));
        lock(&users(&auth).verified).extend(earlier);
        assert!(auth.authorize(Some(&basic("u", "pw"))));
        assert_eq!(cached(&auth), VERIFIED_CACHE_ENTRIES);
        assert!(auth.authorize(Some(&basic("u", "pw"))));
        assert_eq!(cached(&auth), VERIFIED_CACHE_ENTRIES);
    }

    /// Hashes at costs 4, 5 and 6, for users `four`, `five` and `six`,
    /// whose passwords are their names.
    fn three_costs() -> BasicAuth {
        let yaml = ["four", "five", "six"]
            .iter()
            .zip([4, 5, 6])
            .map(|(name, cost)| format!("  {name}: '{}'\n", bcrypt::hash(name, cost).unwrap()))
            .collect::<String>();
        from_yaml(&format!("basic_auth_users:\n{yaml}"))
    }

    /// The cost of each hash a login as `user` is verified against.
    fn work_costs(auth: &BasicAuth, user: &str) -> Vec<u32> {
        let users = users(auth);
        users
            .work(users.find(user.as_bytes()))
            .map(|(hash, _)| hash.parse::<bcrypt::HashParts>().unwrap().get_cost())
            .collect()
    }

    #[test]
    fn an_unknown_user_costs_the_same_bcrypt_work_as_a_wrong_password() {
        let auth = three_costs();
        for user in ["nobody", "four", "five", "six"] {
            assert_eq!(work_costs(&auth, user), [4, 5, 6], "{user}");
        }
        // Each user's own hash is among its work, exactly once.
        let users = users(&auth);
        for user in ["four", "five", "six"] {
            let own: Vec<bool> = users
                .work(users.find(user.as_bytes()))
                .map(|w| w.1)
                .collect();
            assert_eq!(own.iter().filter(|own| **own).count(), 1, "{user}");
        }
        assert!(users.work(users.find(b"nobody")).all(|(_, own)| !own));
        // And what is verified is exactly that work: three rounds each.
        for (user, password) in [
            ("nobody", "x"),
            ("four", "x"),
            ("six", "x"),
            ("five", "five"),
        ] {
            let before = runs(&auth);
            let allowed = auth.authorize(Some(&basic(user, password)));
            assert_eq!(allowed, user == "five", "{user}");
            assert_eq!(runs(&auth) - before, 3, "{user}");
        }
    }

    #[test]
    fn a_verified_login_is_answered_while_bcrypt_is_busy() {
        let auth = auth();
        assert!(auth.authorize(Some(&basic("alice", "s3cret:pw"))));
        let users = users(&auth);
        // Every place in line and every turn at bcrypt taken.
        let _places = users
            .places
            .clone()
            .try_acquire_many_owned((VERIFYING_AT_ONCE + WAITING) as u32);
        let _turns = users
            .verifying
            .clone()
            .try_acquire_many_owned(VERIFYING_AT_ONCE as u32);
        let good = basic("alice", "s3cret:pw");
        let mut verified = Box::pin(auth.check(Some(&good)));
        assert_eq!(poll_once(&mut verified), Some(Verdict::Allowed));
        let bad = basic("alice", "wrong");
        let mut unverified = Box::pin(auth.check(Some(&bad)));
        assert_eq!(poll_once(&mut unverified), Some(Verdict::Busy));
        let uncached = basic("bob", "other");
        let mut first_login = Box::pin(auth.check(Some(&uncached)));
        assert_eq!(poll_once(&mut first_login), Some(Verdict::Busy));
        let mut none = Box::pin(auth.check(None));
        assert_eq!(poll_once(&mut none), Some(Verdict::Refused));
        assert_eq!(runs(&auth), 1);
    }

    #[test]
    fn the_line_is_bounded_and_logins_that_leave_it_are_never_verified() {
        let auth = auth();
        let users = users(&auth);
        // Every turn at bcrypt taken: logins wait in line.
        let turns = users
            .verifying
            .clone()
            .try_acquire_many_owned(VERIFYING_AT_ONCE as u32);
        let headers: Vec<HeaderValue> = (0..=VERIFYING_AT_ONCE + WAITING)
            .map(|i| basic("alice", &format!("wrong {i}")))
            .collect();
        let mut waiting: Vec<_> = headers[1..]
            .iter()
            .map(|h| Box::pin(auth.check(Some(h))))
            .collect();
        for login in &mut waiting {
            assert_eq!(poll_once(login), None);
        }
        assert_eq!(users.places.available_permits(), 0);
        let mut one_more = Box::pin(auth.check(Some(&headers[0])));
        assert_eq!(poll_once(&mut one_more), Some(Verdict::Busy));
        // Their clients go away: hyper drops the request futures.
        drop(waiting);
        assert_eq!(
            users.places.available_permits(),
            VERIFYING_AT_ONCE + WAITING
        );
        drop(turns);
        assert_eq!(users.verifying.available_permits(), VERIFYING_AT_ONCE);
        assert_eq!(runs(&auth), 0);
        // The next login is verified as usual.
        assert!(!auth.authorize(Some(&headers[0])));
        assert_eq!(runs(&auth), 1);
    }
}
