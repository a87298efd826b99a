//! `lapse serve`: the sources (each supervised), the inventory, the
//! notifier and the HTTP server, wired together from one [`Settings`].
//!
//! SIGTERM and SIGINT drain cleanly. SIGHUP reloads lapse.yaml and the web
//! config through the same [`Settings::serve`] as start-up: a good new
//! configuration is applied — each source and the notifier whose settings
//! changed is stopped and started again with the new ones (the last
//! credentials stay exported until the new scan replaces them), and TLS,
//! basic auth, headers and thresholds apply to new connections and
//! requests — while a bad one is refused, every problem logged as at
//! start-up, and the running configuration kept. The listen address
//! changes only on restart. `lapse_config_last_reload_successful` and
//! `lapse_config_last_reload_success_timestamp_seconds` tell how it went.

use super::EXIT_UNKNOWN;
use crate::cli::ServeArgs;
use crate::credential::{ErrorReason, Thresholds};
use crate::http::live::Live;
use crate::http::server::{self as web, App};
use crate::http::web_config::WebConfig;
use crate::inventory::Inventory;
use crate::logging::plain::plain;
use crate::notify::{self, Notifier, NotifyConfig};
use crate::output::metrics::LabelCache;
use crate::settings::Settings;
use crate::source::files::{self, FileSource};
use crate::source::kubernetes::{self, KubernetesConfig, KubernetesSource};
use crate::source::supervisor::supervise;
use crate::telemetry::{ReloadMetrics, SelfMetrics};
use crate::timefmt::now;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

/// `:10070` → `0.0.0.0:10070`, as Go's exporters accept it.
fn listen_address(listen: &str) -> String {
    if listen.starts_with(':') {
        format!("[::]{listen}")
    } else {
        listen.to_string()
    }
}

/// What the sources and the notifier run with; compared on reload.
struct Plan {
    files: FileSource,
    cluster: Option<KubernetesConfig>,
    mailer: Option<NotifyConfig>,
}

/// The plan, and what the server reads per connection.
fn split(settings: Settings) -> (Plan, WebConfig, Thresholds) {
    let plan = Plan {
        files: FileSource {
            roots: settings.roots,
            options: settings.scan,
            rescan_interval: Duration::from_secs(settings.rescan_interval as u64),
        },
        cluster: settings.kubernetes,
        mailer: settings.notify,
    };
    (plan, settings.web, settings.thresholds)
}

pub fn run(args: &ServeArgs) -> i32 {
    crate::telemetry::tune_allocator();
    let reload = ReloadMetrics::default();
    let settings = match Settings::serve(args, reload.certificate_failures.clone()) {
        Ok(s) => s,
        Err(problems) => {
            for p in problems {
                eprintln!("lapse: {}", plain(&p));
            }
            return EXIT_UNKNOWN;
        }
    };
    let listen = listen_address(&settings.listen);
    let roots = settings.roots.len();
    let limits = settings.http.clone();
    let metrics_config = settings.metrics.clone();
    let (plan, web_config, thresholds) = split(settings);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lapse: cannot start: {e}");
            return EXIT_UNKNOWN;
        }
    };
    runtime.block_on(async move {
        // Before anything listens: a SIGHUP to a server that answers must
        // never be the default action (exit).
        let mut signals = Signals::new();
        let listener = match tokio::net::TcpListener::bind(&listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("lapse: cannot listen on {}: {e}", plain(&listen));
                return EXIT_UNKNOWN;
            }
        };
        let tls = if web_config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            revision = env!("LAPSE_REVISION"),
            address = %listener.local_addr().map(|a| a.to_string()).unwrap_or(listen.clone()),
            tls,
            roots,
            "listening"
        );
        let mut sources = vec![(files::SOURCE, ErrorReason::counted_by(true, false))];
        if plan.cluster.is_some() {
            sources.push((kubernetes::SOURCE, ErrorReason::counted_by(false, true)));
        }
        let names: Vec<&'static str> = sources.iter().map(|(name, _)| *name).collect();
        let inventory = Arc::new(
            Inventory::new(&names)
                .with_rescan_interval(files::SOURCE, plan.files.rescan_interval.as_secs() as i64)
                .with_rescan_interval(kubernetes::SOURCE, kubernetes::HEARTBEAT.as_secs() as i64),
        );
        let channels: &[&'static str] = if plan.mailer.is_some() {
            &[notify::CHANNEL]
        } else {
            &[]
        };
        let counted: Vec<(&'static str, &[ErrorReason])> = sources
            .iter()
            .map(|(name, reasons)| (*name, reasons.as_slice()))
            .collect();
        let metrics = Arc::new(
            SelfMetrics::new(&counted, channels)
                .with_reload(&reload)
                .with_process(),
        );
        reload.succeeded(now());

        let mut running = Running::start(plan, inventory.clone(), metrics.clone());
        let app = Arc::new(App {
            inventory,
            metrics,
            labels: Arc::new(LabelCache::new(metrics_config)),
            web: Live::new(web_config),
            thresholds: Live::new(thresholds),
            limits,
            pages: Default::default(),
            telemetry_path: args.telemetry_path.clone(),
        });
        let (stop, stopped) = signal::channel(false);
        let server = tokio::spawn(web::serve(listener, app.clone(), stopped));

        while let Signal::Reload = signals.next().await {
            apply_reload(args, &listen, &app, &mut running, &reload).await;
        }
        tracing::info!("shutting down");
        let _ = stop.send(true);
        let _ = tokio::join!(server, running.stop());
        0
    })
}

/// SIGHUP: the configuration read again as at start-up, and applied or
/// refused whole.
async fn apply_reload(
    args: &ServeArgs,
    listen: &str,
    app: &App,
    running: &mut Running,
    reload: &ReloadMetrics,
) {
    let settings = match Settings::serve(args, reload.certificate_failures.clone()) {
        Ok(s) => s,
        Err(problems) => {
            for p in &problems {
                tracing::error!("configuration not reloaded: {p}");
            }
            reload.failed();
            return;
        }
    };
    if listen_address(&settings.listen) != listen {
        tracing::warn!(
            "listen address {} not applied: it changes only on restart; still listening on {listen}",
            settings.listen
        );
    }
    if settings.http != app.limits {
        tracing::warn!(
            "http: timeouts and max_connections not applied: they change only on restart"
        );
    }
    if &settings.metrics != app.labels.config() {
        tracing::warn!("metrics: families and labels not applied: they change only on restart");
    }
    let roots = settings.roots.len();
    let (plan, web_config, thresholds) = split(settings);
    app.web.replace(web_config);
    app.thresholds.replace(thresholds);
    let restarted = running.apply(plan).await;
    reload.succeeded(now());
    tracing::info!(roots, restarted = ?restarted, "configuration reloaded");
}

/// A task with its own stop signal, so a reload can end it alone.
struct Task {
    stop: signal::Sender<bool>,
    handle: JoinHandle<()>,
}

impl Task {
    fn spawn<F>(task: impl FnOnce(signal::Receiver<bool>) -> F) -> Task
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = signal::channel(false);
        Task {
            stop,
            handle: tokio::spawn(task(stopped)),
        }
    }

    /// Asks the task to stop and waits for it (a scan under way finishes).
    async fn stop(&mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.handle).await;
    }
}

/// The sources and the notifier, each running with the settings beside it.
struct Running {
    inventory: Arc<Inventory>,
    metrics: Arc<SelfMetrics>,
    files: (FileSource, Task),
    cluster: Option<(KubernetesConfig, Task)>,
    mailer: Option<(NotifyConfig, Task)>,
}

/// Settings compared by what they hold. `Debug` shows every field but the
/// SMTP password, which is compared on its own; nothing here is logged.
fn same<T: Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

fn same_mailer(a: &NotifyConfig, b: &NotifyConfig) -> bool {
    same(a, b) && a.smtp.password == b.smtp.password
}

impl Running {
    fn start(plan: Plan, inventory: Arc<Inventory>, metrics: Arc<SelfMetrics>) -> Running {
        let mut running = Running {
            files: (
                plan.files.clone(),
                start_files(&plan.files, &inventory, &metrics),
            ),
            cluster: None,
            mailer: None,
            inventory,
            metrics,
        };
        running.cluster = plan.cluster.map(|c| {
            let task = running.start_cluster(&c);
            (c, task)
        });
        running.mailer = plan.mailer.map(|m| {
            let task = running.start_mailer(&m);
            (m, task)
        });
        running
    }

    fn start_cluster(&self, config: &KubernetesConfig) -> Task {
        let (inv, m, config) = (self.inventory.clone(), self.metrics.clone(), config.clone());
        Task::spawn(move |stopped| {
            let stop = stopped.clone();
            let (inv2, m2) = (inv.clone(), m.clone());
            supervise(kubernetes::SOURCE, inv, m, stopped, move || {
                KubernetesSource {
                    config: config.clone(),
                }
                .run(inv2.clone(), m2.clone(), stop.clone())
            })
        })
    }

    fn start_mailer(&self, config: &NotifyConfig) -> Task {
        let (inv, m) = (self.inventory.clone(), self.metrics.clone());
        let notifier = Notifier {
            config: config.clone(),
        };
        Task::spawn(move |stopped| notifier.run(inv, m, stopped))
    }

    /// Stops what `plan` changes and starts it again with the new settings;
    /// returns the names of what was restarted, started or stopped.
    async fn apply(&mut self, plan: Plan) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if !same(&plan.files, &self.files.0) {
            // Stopped first, so the old task never publishes after the
            // new one; its credentials stay exported until the new scan.
            self.files.1.stop().await;
            let seconds = plan.files.rescan_interval.as_secs() as i64;
            self.inventory.set_rescan_interval(files::SOURCE, seconds);
            let task = start_files(&plan.files, &self.inventory, &self.metrics);
            self.files = (plan.files, task);
            changed.push(files::SOURCE);
        }
        let cluster_same = match (&plan.cluster, &self.cluster) {
            (Some(new), Some((old, _))) => same(new, old),
            (None, None) => true,
            _ => false,
        };
        if !cluster_same {
            if let Some((_, mut old)) = self.cluster.take() {
                old.stop().await;
            }
            match plan.cluster {
                Some(config) => {
                    let reasons = ErrorReason::counted_by(false, true);
                    self.metrics.declare_source(kubernetes::SOURCE, &reasons);
                    let task = self.start_cluster(&config);
                    self.cluster = Some((config, task));
                }
                None => self.inventory.retire(kubernetes::SOURCE),
            }
            changed.push(kubernetes::SOURCE);
        }
        let mailer_same = match (&plan.mailer, &self.mailer) {
            (Some(new), Some((old, _))) => same_mailer(new, old),
            (None, None) => true,
            _ => false,
        };
        if !mailer_same {
            if let Some((_, mut old)) = self.mailer.take() {
                old.stop().await;
                self.metrics.notifier_stopped();
            }
            self.mailer = plan.mailer.map(|config| {
                let task = self.start_mailer(&config);
                (config, task)
            });
            changed.push(notify::CHANNEL);
        }
        changed
    }

    /// Every task asked at once, then waited for.
    async fn stop(mut self) {
        let mut tasks = vec![&mut self.files.1];
        tasks.extend(self.cluster.as_mut().map(|(_, task)| task));
        tasks.extend(self.mailer.as_mut().map(|(_, task)| task));
        for task in &tasks {
            let _ = task.stop.send(true);
        }
        for task in tasks {
            task.stop().await;
        }
    }
}

fn start_files(files: &FileSource, inventory: &Arc<Inventory>, metrics: &Arc<SelfMetrics>) -> Task {
    let (inv, m, files) = (inventory.clone(), metrics.clone(), files.clone());
    Task::spawn(move |stopped| {
        let stop = stopped.clone();
        let (inv2, m2) = (inv.clone(), m.clone());
        supervise(files::SOURCE, inv, m, stopped, move || {
            files.clone().run(inv2.clone(), m2.clone(), stop.clone())
        })
    })
}

enum Signal {
    Reload,
    Stop,
}

/// SIGTERM, SIGINT and, on Unix, SIGHUP.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let hup = signal(SignalKind::hangup())
                .map_err(|e| tracing::warn!(error = %e, "cannot handle SIGHUP; it will stop lapse"))
                .ok();
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                hup,
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            let Signals { term, hup } = self;
            let term = async {
                match term {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            let hup = async {
                match hup {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = term => Signal::Stop,
                _ = tokio::signal::ctrl_c() => Signal::Stop,
                _ = hup => Signal::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop
        }
    }
}
