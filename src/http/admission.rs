//! Who may be connected: at most `max_connections` at once, a bound kept
//! below the process's file-descriptor limit with room left for the scans
//! (the soft limit is first raised to the hard one, as Go does). At the
//! bound a new connection takes the place of the one stalled longest (no
//! byte either way for [`STALL`]), so clients that never read or never
//! send cannot lock a scraper out; when none is stalled, the newcomer is
//! answered 503 at once and closed, never queued.
//!
//! Never logs more than once per [`LOG_EVERY`] for one kind of trouble:
//! the lines say how many were left out.

use super::conn::Conn;
use super::log_every::RateLimited;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A connection with no progress for this long may be closed for a newcomer.
pub const STALL: Duration = Duration::from_secs(1);
/// File descriptors kept for everything but connections, at most.
const RESERVE_FDS: u64 = 128;
/// Refusals being written at once; more are closed without an answer.
const MAX_REFUSING: usize = 32;
/// Evicted connections still closing at once. An evicted connection's
/// descriptor is closed by its own task, a moment later: without this
/// bound a burst of newcomers could each evict one and, together, pass
/// the descriptor limit before the evicted ones have gone.
const MAX_CLOSING: usize = 32;
pub const LOG_EVERY: Duration = Duration::from_secs(10);

const REFUSAL_BODY: &str = "too many open connections; try again\n";

/// The open connections.
pub struct Admission {
    max: usize,
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    refusing: AtomicUsize,
    /// Evicted, their descriptors not closed yet (changed under `open`'s lock).
    closing: AtomicUsize,
    pub evicted_log: RateLimited,
    pub refused_log: RateLimited,
}

/// A connection's place; given back on drop.
pub struct Ticket {
    id: u64,
    pub conn: Arc<Conn>,
    admission: Arc<Admission>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if open
            .get(&self.id)
            .is_some_and(|c| Arc::ptr_eq(c, &self.conn))
        {
            open.remove(&self.id);
        } else {
            // Not open any more: evicted, and now really closed.
            self.admission.closing.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// What [`Admission::admit`] decided.
pub enum Admit {
    In(Ticket),
    /// In, in the place of a stalled connection, now asked to close.
    InForStalled(Ticket),
    Full,
}

impl Admission {
    pub fn new(max: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max: max.max(1),
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            refusing: AtomicUsize::new(0),
            closing: AtomicUsize::new(0),
            evicted_log: RateLimited::new(LOG_EVERY),
            refused_log: RateLimited::new(LOG_EVERY),
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    pub fn admit(self: &Arc<Self>) -> Admit {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mut evicted = false;
        if open.len() >= self.max {
            let now = Instant::now();
            let stalled = open
                .iter()
                .map(|(id, c)| (*id, c.stalled_for(now)))
                .filter(|(_, s)| *s >= STALL)
                .max_by_key(|(_, s)| *s);
            let Some((id, _)) = stalled else {
                return Admit::Full;
            };
            if self.closing.load(Ordering::Relaxed) >= MAX_CLOSING {
                return Admit::Full;
            }
            if let Some(c) = open.remove(&id) {
                self.closing.fetch_add(1, Ordering::Relaxed);
                c.close();
            }
            evicted = true;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::new(self.epoch));
        open.insert(id, conn.clone());
        let ticket = Ticket {
            id,
            conn,
            admission: self.clone(),
        };
        if evicted {
            Admit::InForStalled(ticket)
        } else {
            Admit::In(ticket)
        }
    }

    /// Answers 503 and closes, without waiting for the request; a plain
    /// close when `answer` is false (TLS) or too many refusals are being
    /// written already.
    pub fn refuse(self: &Arc<Self>, mut stream: TcpStream, answer: bool) {
        if !answer || self.refusing.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSING {
            if answer {
                self.refusing.fetch_sub(1, Ordering::Relaxed);
            }
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let response = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
                 content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{REFUSAL_BODY}",
                REFUSAL_BODY.len()
            );
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                stream.write_all(response.as_bytes()).await?;
                stream.shutdown().await?;
                // Read what the client sent, so closing does not reset the
                // connection before it has read the answer.
                let mut sink = [0u8; 4096];
                let mut left = 64 * 1024usize;
                while left > 0 {
                    let n = stream.read(&mut sink).await?;
                    if n == 0 {
                        break;
                    }
                    left = left.saturating_sub(n);
                }
                Ok::<_, std::io::Error>(())
            })
            .await;
            this.refusing.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// The connection bound for `configured`: below the file-descriptor limit
/// (raised to its hard maximum first) by a reserve for everything else.
pub fn connection_bound(configured: usize) -> usize {
    match raise_fd_limit() {
        Some(limit) => bound_below(configured, limit),
        None => configured,
    }
}

fn bound_below(configured: usize, fd_limit: u64) -> usize {
    let reserve = RESERVE_FDS.min(fd_limit / 2);
    let room = fd_limit.saturating_sub(reserve).max(1);
    configured.min(usize::try_from(room).unwrap_or(usize::MAX))
}

/// Raises the soft `RLIMIT_NOFILE` to the hard one; the soft limit now.
fn raise_fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit through a valid pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    Some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_leaves_room_below_the_fd_limit() {
        assert_eq!(bound_below(1024, 1_048_576), 1024);
        assert_eq!(bound_below(1024, 1024), 896);
        assert_eq!(bound_below(1024, 256), 128);
        assert_eq!(bound_below(1024, 64), 32);
        assert_eq!(bound_below(1024, 1), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_bound_the_longest_stalled_makes_room_else_full() {
        let admission = Admission::new(2);
        let Admit::In(first) = admission.admit() else {
            panic!("room for the first")
        };
        tokio::time::advance(Duration::from_millis(500)).await;
        let Admit::In(second) = admission.admit() else {
            panic!("room for the second")
        };
        assert!(matches!(admission.admit(), Admit::Full), "none stalled yet");
        tokio::time::advance(Duration::from_millis(700)).await;
        // The first has stalled 1.2 s, the second 0.7 s.
        let Admit::InForStalled(third) = admission.admit() else {
            panic!("the first makes room")
        };
        tokio::time::timeout(Duration::from_secs(1), first.conn.closed())
            .await
            .expect("the first is asked to close");
        assert!(matches!(admission.admit(), Admit::Full));
        drop(second);
        assert!(matches!(admission.admit(), Admit::In(_)));
        drop((first, third));
    }

    /// An evicted connection's place is given back only when its ticket is
    /// dropped (its descriptor closed): at most MAX_CLOSING wait so.
    #[tokio::test(start_paused = true)]
    async fn evictions_still_closing_are_bounded() {
        let admission = Admission::new(MAX_CLOSING + 1);
        let mut open: Vec<Ticket> = (0..=MAX_CLOSING)
            .map(|_| match admission.admit() {
                Admit::In(t) => t,
                _ => panic!("room"),
            })
            .collect();
        tokio::time::advance(STALL).await;
        // Each newcomer evicts one; the evicted keep their tickets (their
        // tasks have not closed them yet).
        for _ in 0..MAX_CLOSING {
            match admission.admit() {
                Admit::InForStalled(t) => open.push(t),
                _ => panic!("a stalled one makes room"),
            }
        }
        assert_eq!(admission.closing.load(Ordering::Relaxed), MAX_CLOSING);
        assert!(matches!(admission.admit(), Admit::Full), "too many closing");
        // An evicted one really closes: room for one more eviction. (Which
        // of the equally stalled ones were evicted is the map's order.)
        let evicted = {
            let still_open = admission.open.lock().unwrap();
            open.iter()
                .position(|t| !still_open.contains_key(&t.id))
                .expect("an evicted ticket")
        };
        drop(open.remove(evicted));
        assert_eq!(admission.closing.load(Ordering::Relaxed), MAX_CLOSING - 1);
        assert!(matches!(admission.admit(), Admit::InForStalled(_)));
    }
}
