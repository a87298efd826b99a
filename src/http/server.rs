//! The HTTP server: `/metrics` (or `--web.telemetry-path`), `/healthz`,
//! `/readyz` and `/` (the page), gzip-encoded for clients that ask
//! ([`super::gzip`]), with optional TLS and basic auth on every endpoint (see
//! [`super::web_config`]), and a clean drain on shutdown. Handlers read
//! snapshots only: they never parse or read files, and never log a
//! request's credentials.
//!
//! Every connection is bounded (see [`super::limits`]): its request
//! header must arrive within the header timeout (the idle timeout between
//! requests), its response be written within the write timeout, and no
//! more than `max_connections` be open ([`super::admission`]). Pages are
//! rendered once and shared by every client ([`super::pages`]), so slow
//! clients cost a connection each, not a page each.

use super::admission::{self, Admission, Admit, Ticket};
use super::basic_auth::Verdict;
use super::conn::{Guarded, PhaseTimer};
use super::gzip::{self, Coding};
use super::limits::HttpLimits;
use super::live::Live;
use super::log_every::RateLimited;
use super::pages::Pages;
use super::web_config::WebConfig;
use crate::credential::Thresholds;
use crate::inventory::Inventory;
use crate::output::metrics::{self, LabelCache};
use crate::telemetry::SelfMetrics;
use crate::timefmt::now;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The kernel's send buffer per connection (it doubles this for its own
/// bookkeeping). Left to autotuning, a client that never reads is given
/// about 1 MiB of kernel memory each, and a thousand of them put every
/// socket under memory pressure; this much still sends a page at over
/// 100 MB/s to a client 1 ms away.
const SEND_BUFFER: usize = 64 * 1024;

/// How long open connections get to finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(5);

/// What every request handler shares; built once by `lapse serve`.
pub struct App {
    pub inventory: Arc<Inventory>,
    pub metrics: Arc<SelfMetrics>,
    /// The `/metrics` reader's label sets, kept between scrapes.
    pub labels: Arc<LabelCache>,
    /// TLS, basic auth and headers; a reload replaces them for new connections.
    pub web: Live<WebConfig>,
    pub thresholds: Live<Thresholds>,
    /// Timeouts and the connection bound.
    pub limits: HttpLimits,
    /// Pages rendered once and shared, kept between requests.
    pub pages: Pages,
    /// Where `/metrics` is served (`--web.telemetry-path`).
    pub telemetry_path: String,
}

type Body = BoxBody<Bytes, std::convert::Infallible>;

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    with_body(status, content_type, Full::new(body.into()).boxed())
}

fn with_body(status: StatusCode, content_type: &str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

impl App {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let mut response = self.route(&req).await;
        for (name, value) in &self.web.current().headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
        if req.method() == Method::HEAD {
            *response.body_mut() = Full::new(Bytes::new()).boxed();
        }
        response
    }

    async fn route(&self, req: &Request<Incoming>) -> Response<Body> {
        if let Some(refusal) = self.authorized(req).await {
            return refusal;
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "GET only\n",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let snapshot = self.inventory.snapshot();
        let path = req.uri().path();
        let coding = gzip::negotiate(
            req.headers()
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok()),
        );
        let paged = path == self.telemetry_path || path == "/";
        let coding = match coding {
            Some(coding) => coding,
            None if paged => {
                let mut r = respond(
                    StatusCode::NOT_ACCEPTABLE,
                    "text/plain; charset=utf-8",
                    "no acceptable content coding: lapse sends gzip or identity\n",
                );
                vary(&mut r);
                return r;
            }
            // Short answers are sent as they are.
            None => Coding::Identity,
        };
        if path == self.telemetry_path {
            return self.metrics_page(req, &snapshot, coding).await;
        }
        match path {
            "/healthz" => respond(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
            "/readyz" if snapshot.ready => {
                respond(StatusCode::OK, "text/plain; charset=utf-8", "ready\n")
            }
            "/readyz" => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "not ready: the first scan has not finished\n",
            ),
            "/" => {
                let (html, coding) = self
                    .pages
                    .html(
                        &snapshot,
                        &self.thresholds.current(),
                        now(),
                        self.metrics.notifications_owed(),
                        coding,
                    )
                    .await;
                let mut r = respond(StatusCode::OK, "text/html; charset=utf-8", html);
                encoded(&mut r, coding);
                r
            }
            _ => respond(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "Not found\n",
            ),
        }
    }
}

impl App {
    async fn metrics_page(
        &self,
        req: &Request<Incoming>,
        snapshot: &Arc<crate::inventory::Snapshot>,
        coding: Coding,
    ) -> Response<Body> {
        let openmetrics = metrics::wants_openmetrics(
            req.headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        );
        let page = self
            .pages
            .metrics(
                snapshot,
                &self.labels,
                &self.metrics,
                now(),
                openmetrics,
                coding,
            )
            .await;
        let (len, coding) = (page.len, page.coding);
        let frames = page.into_frames().map(|b| Ok(Frame::data(b)));
        let body = StreamBody::new(futures::stream::iter(frames));
        let content_type = if openmetrics {
            metrics::OPENMETRICS_CONTENT_TYPE
        } else {
            metrics::TEXT_CONTENT_TYPE
        };
        let mut r = with_body(StatusCode::OK, content_type, body.boxed());
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        encoded(&mut r, coding);
        r
    }
}

/// Says the answer depends on `Accept-Encoding`, so a cache between lapse
/// and a client keeps one per coding.
fn vary(r: &mut Response<Body>) {
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
}

/// `Vary`, and `Content-Encoding` when the body is gzip.
fn encoded(r: &mut Response<Body>, coding: Coding) {
    vary(r);
    if coding == Coding::Gzip {
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
}

impl App {
    /// Basic auth, when configured: `None` lets the request through,
    /// otherwise this is the answer. A login verified before is answered
    /// from a cache at once; others wait for bcrypt in a short line, and
    /// when it is full get 503 with `Retry-After: 1` rather than a 401
    /// (their password may well be right) or a place in a queue that
    /// would outlive the flood filling it.
    async fn authorized(&self, req: &Request<Incoming>) -> Option<Response<Body>> {
        let header = req.headers().get(header::AUTHORIZATION);
        let (status, body, name, value) = match self.web.current().basic_auth.check(header).await {
            Verdict::Allowed => return None,
            Verdict::Refused => (
                StatusCode::UNAUTHORIZED,
                "Unauthorized\n",
                header::WWW_AUTHENTICATE,
                "Basic realm=\"lapse\"",
            ),
            Verdict::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many logins are being checked; retry shortly\n",
                header::RETRY_AFTER,
                "1",
            ),
        };
        let mut r = respond(status, "text/plain; charset=utf-8", body);
        r.headers_mut()
            .insert(name, HeaderValue::from_static(value));
        Some(r)
    }
}

/// Accepts connections until `shutdown` fires, then lets open ones finish.
pub async fn serve(listener: TcpListener, app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let limits = app.limits.clone();
    let bound = admission::connection_bound(limits.max_connections);
    if bound < limits.max_connections {
        tracing::warn!(
            max_connections = bound,
            configured = limits.max_connections,
            "max_connections lowered to stay below the file-descriptor limit"
        );
    }
    let admission = Admission::new(bound);
    let graceful = GracefulShutdown::new();
    let accept_log = RateLimited::new(admission::LOG_EVERY);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    if let Some(left_out) = accept_log.hit(tokio::time::Instant::now()) {
                        tracing::warn!(error = %e, left_out, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Read per connection: a reload replaces the TLS settings for new ones.
        let tls = app
            .web
            .current()
            .tls
            .clone()
            .map(tokio_rustls::TlsAcceptor::from);
        let ticket = match admission.admit() {
            Admit::In(t) => t,
            Admit::InForStalled(t) => {
                if let Some(left_out) = admission.evicted_log.hit(tokio::time::Instant::now()) {
                    tracing::info!(
                        max_connections = admission.max(),
                        left_out,
                        "closed a stalled connection to make room for a new one"
                    );
                }
                t
            }
            Admit::Full => {
                if let Some(left_out) = admission.refused_log.hit(tokio::time::Instant::now()) {
                    tracing::warn!(
                        max_connections = admission.max(),
                        left_out,
                        "connection refused: max_connections open and none stalled"
                    );
                }
                admission.refuse(stream, tls.is_none());
                continue;
            }
        };
        let watcher = graceful.watcher();
        let connection = Connection {
            app: app.clone(),
            limits: limits.clone(),
            tls: tls.clone(),
            peer,
        };
        tokio::spawn(connection.run(stream, ticket, watcher));
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN:?}; closing");
    }
}

/// One accepted connection, served until it ends, times out or is asked
/// to close for a newcomer.
struct Connection {
    app: Arc<App>,
    limits: HttpLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    peer: std::net::SocketAddr,
}

impl Connection {
    async fn run(
        self,
        stream: TcpStream,
        ticket: Ticket,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        let conn = ticket.conn.clone();
        if let Err(e) = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER) {
            tracing::debug!(peer = %self.peer, error = %e, "cannot set the send buffer");
        }
        let io = Guarded::new(stream, conn.clone());
        tokio::select! {
            _ = self.serve(io, watcher) => {}
            _ = conn.closed() => {}
        }
        drop(ticket);
    }

    async fn serve(&self, io: Guarded<TcpStream>, watcher: hyper_util::server::graceful::Watcher) {
        let peer = self.peer;
        let conn = {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(PhaseTimer::new(
                    io.conn(),
                    self.limits.header_timeout,
                    self.limits.idle_timeout,
                ))
                .header_read_timeout(self.limits.header_timeout);
            builder
        };
        let app = self.app.clone();
        let state = io.conn();
        let write_timeout = self.limits.write_timeout;
        let service = hyper::service::service_fn(move |req| {
            let (app, state) = (app.clone(), state.clone());
            async move {
                let response = state.respond(write_timeout, app.handle(req)).await;
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let result = match &self.tls {
            None => {
                watcher
                    .watch(conn.serve_connection(TokioIo::new(io), service))
                    .await
            }
            Some(acceptor) => {
                let handshake =
                    tokio::time::timeout(self.limits.header_timeout, acceptor.accept(io)).await;
                let stream = match handshake {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                watcher
                    .watch(conn.serve_connection(TokioIo::new(stream), service))
                    .await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}
