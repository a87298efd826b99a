//! The HTTP server: `/metrics`, `/healthz`, `/readyz` and `/` (the page),
//! with optional TLS and basic auth on every endpoint (see
//! [`super::web_config`]), and a clean drain on shutdown. Handlers read
//! snapshots only: they never parse or read files, and never log a
//! request's credentials.

use super::basic_auth::Verdict;
use super::live::Live;
use super::web_config::WebConfig;
use crate::credential::Thresholds;
use crate::inventory::Inventory;
use crate::output::metrics::{self, LabelCache};
use crate::output::page::page;
use crate::telemetry::SelfMetrics;
use crate::timefmt::now;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

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
        match req.uri().path() {
            "/metrics" => {
                let openmetrics = metrics::wants_openmetrics(
                    req.headers()
                        .get(header::ACCEPT)
                        .and_then(|v| v.to_str().ok()),
                );
                let self_metrics = self.metrics.clone();
                let labels = self.labels.clone();
                // Rendered on the blocking pool and streamed as it is written:
                // a page of 100,000 credentials is never held whole.
                let (mut tx, body) = http_body_util::channel::Channel::<Bytes>::new(4);
                let runtime = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    let mut open = true;
                    metrics::render_chunks(
                        &snapshot,
                        &labels,
                        &self_metrics,
                        now(),
                        openmetrics,
                        &mut |chunk| {
                            if open {
                                // A client that went away stops the sending, not the process.
                                open = runtime.block_on(tx.send_data(Bytes::from(chunk))).is_ok();
                            }
                        },
                    );
                });
                let content_type = if openmetrics {
                    metrics::OPENMETRICS_CONTENT_TYPE
                } else {
                    metrics::TEXT_CONTENT_TYPE
                };
                with_body(StatusCode::OK, content_type, body.boxed())
            }
            "/healthz" => respond(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
            "/readyz" if snapshot.ready => {
                respond(StatusCode::OK, "text/plain; charset=utf-8", "ready\n")
            }
            "/readyz" => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "not ready: the first scan has not finished\n",
            ),
            "/" => respond(
                StatusCode::OK,
                "text/html; charset=utf-8",
                page(&snapshot, &self.thresholds.current(), now()),
            ),
            _ => respond(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "Not found\n",
            ),
        }
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
    let graceful = GracefulShutdown::new();
    let builder = hyper::server::conn::http1::Builder::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let tls = app
            .web
            .current()
            .tls
            .clone()
            .map(tokio_rustls::TlsAcceptor::from);
        let app = app.clone();
        let service = hyper::service::service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, std::convert::Infallible>(app.handle(req).await) }
        });
        match &tls {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(
                        Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN:?}; closing");
    }
}
