//! One connection's clock: when it last made progress (a byte read or
//! written), when its current response must be written by, and how many
//! requests it has served. [`Guarded`] keeps these for the stream under
//! TLS and HTTP, and fails a write that passes its deadline, so a client
//! that never reads, or reads a byte now and then, is closed after the
//! write timeout whatever it does. [`PhaseTimer`] gives hyper's header
//! timeout the idle timeout once a connection has served a request.
//!
//! Never reads or keeps what passes through: only counts and times.

use hyper::rt::{Sleep, Timer};
use hyper_util::rt::TokioTimer;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// What the server and the stream share about one connection.
#[derive(Debug)]
pub struct Conn {
    /// Times below are milliseconds since this.
    epoch: Instant,
    last_progress: AtomicU64,
    /// 0: no response being written.
    write_deadline: AtomicU64,
    served: AtomicU64,
    closing: AtomicBool,
    close: Notify,
}

impl Conn {
    pub fn new(epoch: Instant) -> Conn {
        let conn = Conn {
            epoch,
            last_progress: AtomicU64::new(0),
            write_deadline: AtomicU64::new(0),
            served: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        };
        conn.progress();
        conn
    }

    fn millis(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn progress(&self) {
        self.last_progress
            .store(self.millis(Instant::now()), Ordering::Relaxed);
    }

    /// How long since a byte last moved either way.
    pub fn stalled_for(&self, now: Instant) -> Duration {
        let last = self.last_progress.load(Ordering::Relaxed);
        Duration::from_millis(self.millis(now).saturating_sub(last))
    }

    /// A request's header is in: its response must be written within `limit`.
    pub fn begin_response(&self, limit: Duration) {
        self.served.fetch_add(1, Ordering::Relaxed);
        let deadline = self.millis(Instant::now() + limit).max(1);
        self.write_deadline.store(deadline, Ordering::Relaxed);
    }

    /// Waits for `handling`, the response to a request, then gives the
    /// client `limit` to take it: the time a page takes to render (over
    /// ten seconds at 1,000,000 credentials) is not the client's doing.
    pub async fn respond<R>(&self, limit: Duration, handling: impl Future<Output = R>) -> R {
        let response = handling.await;
        self.begin_response(limit);
        response
    }

    fn write_deadline(&self) -> Option<Instant> {
        match self.write_deadline.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.epoch + Duration::from_millis(ms)),
        }
    }

    pub fn has_served(&self) -> bool {
        self.served.load(Ordering::Relaxed) > 0
    }

    /// Asks the connection's task to close it.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Relaxed);
        self.close.notify_one();
    }

    /// Resolves once [`Conn::close`] was called.
    pub async fn closed(&self) {
        while !self.closing.load(Ordering::Relaxed) {
            self.close.notified().await;
        }
    }
}

/// A stream that records progress into its [`Conn`] and fails writes past
/// the response's deadline.
pub struct Guarded<S> {
    inner: S,
    conn: Arc<Conn>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, conn: Arc<Conn>) -> Self {
        Guarded {
            inner,
            conn,
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
        }
    }

    /// The connection this stream reports to.
    pub fn conn(&self) -> Arc<Conn> {
        self.conn.clone()
    }

    /// Pending until the deadline, when there is one; then the error.
    fn wait_or_fail<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let Some(deadline) = self.conn.write_deadline() else {
            return Poll::Pending;
        };
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        ready!(self.sleep.as_mut().poll(cx));
        Poll::Ready(Err(timed_out()))
    }

    fn past_deadline(&self) -> bool {
        self.conn
            .write_deadline()
            .is_some_and(|d| Instant::now() >= d)
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "response not written in time")
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.progress();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> Guarded<S> {
    fn guard_write(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if self.past_deadline() {
            return Poll::Ready(Err(timed_out()));
        }
        match write(Pin::new(&mut self.inner), cx) {
            Poll::Pending => self.wait_or_fail(cx),
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.conn.progress();
                }
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.guard_write(cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.guard_write(cx, |s, cx| s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.past_deadline() {
            return Poll::Ready(Err(timed_out()));
        }
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.wait_or_fail(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// hyper's timer for one connection. hyper starts its header timeout
/// whenever it waits for a request; this one lasts `header` on a new
/// connection and `idle` once the connection has served a request.
#[derive(Clone)]
pub struct PhaseTimer {
    inner: TokioTimer,
    conn: Arc<Conn>,
    header: Duration,
    idle: Duration,
}

impl PhaseTimer {
    /// Use with `header_read_timeout(header)`.
    pub fn new(conn: Arc<Conn>, header: Duration, idle: Duration) -> Self {
        PhaseTimer {
            inner: TokioTimer::new(),
            conn,
            header,
            idle,
        }
    }

    fn adjust(&self, deadline: std::time::Instant) -> std::time::Instant {
        if !self.conn.has_served() {
            return deadline;
        }
        deadline
            .checked_sub(self.header)
            .map(|start| start + self.idle)
            .unwrap_or(deadline)
    }
}

impl Timer for PhaseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(std::time::Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn Sleep>> {
        self.inner.sleep_until(self.adjust(deadline))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: std::time::Instant) {
        self.inner.reset(sleep, self.adjust(new_deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_write_that_cannot_finish_fails_at_the_deadline() {
        // A peer that reads nothing: a 64-byte pipe fills at once.
        let (near, _far) = tokio::io::duplex(64);
        let conn = Arc::new(Conn::new(Instant::now()));
        let mut stream = Guarded::new(near, conn.clone());
        conn.begin_response(Duration::from_secs(2));
        let started = Instant::now();
        let err = stream.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert_eq!(conn.stalled_for(Instant::now()), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_write_timeout_starts_when_the_response_is_ready() {
        let conn = Arc::new(Conn::new(Instant::now()));
        let started = Instant::now();
        let rendering = async {
            assert_eq!(conn.write_deadline(), None);
            tokio::time::sleep(Duration::from_secs(30)).await;
            "page"
        };
        let page = conn.respond(Duration::from_secs(10), rendering).await;
        assert_eq!(page, "page");
        assert_eq!(
            conn.write_deadline(),
            Some(started + Duration::from_secs(40))
        );
        assert!(conn.has_served());
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_response_a_full_pipe_just_waits() {
        let (near, _far) = tokio::io::duplex(64);
        let conn = Arc::new(Conn::new(Instant::now()));
        let mut stream = Guarded::new(near, conn);
        let write = stream.write_all(&[0u8; 1024]);
        assert!(
            tokio::time::timeout(Duration::from_secs(3600), write)
                .await
                .is_err()
        );
    }

    #[test]
    fn the_idle_timeout_applies_once_a_request_was_served() {
        let conn = Arc::new(Conn::new(Instant::now()));
        let timer = PhaseTimer::new(conn.clone(), Duration::from_secs(5), Duration::from_secs(8));
        let at = std::time::Instant::now() + Duration::from_secs(5);
        assert_eq!(timer.adjust(at), at);
        conn.begin_response(Duration::from_secs(1));
        assert_eq!(timer.adjust(at), at + Duration::from_secs(3));
    }
}
