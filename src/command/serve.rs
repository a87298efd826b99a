//! `lapse serve`: the sources (each supervised), the inventory, the
//! notifier and the HTTP server, wired together from one
//! [`Settings`]; SIGTERM and SIGINT drain cleanly.

use super::EXIT_UNKNOWN;
use crate::cli::ServeArgs;
use crate::credential::ErrorReason;
use crate::http::server::{self as web, App};
use crate::inventory::Inventory;
use crate::notify::{self, Notifier};
use crate::settings::Settings;
use crate::source::files::{self, FileSource};
use crate::source::kubernetes::{self, KubernetesSource};
use crate::source::supervisor::supervise;
use crate::telemetry::SelfMetrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch as signal;

/// `:10070` → `0.0.0.0:10070`, as Go's exporters accept it.
fn listen_address(listen: &str) -> String {
    if listen.starts_with(':') {
        format!("[::]{listen}")
    } else {
        listen.to_string()
    }
}

pub fn run(args: &ServeArgs) -> i32 {
    let Some(settings) = Settings::serve(args) else {
        return EXIT_UNKNOWN;
    };
    let listen = listen_address(&settings.listen);
    let Settings {
        roots,
        scan,
        thresholds,
        kubernetes: cluster_config,
        notify: notify_config,
        web: web_config,
        http: limits,
        rescan_interval,
        ..
    } = settings;

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
        let listener = match tokio::net::TcpListener::bind(&listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("lapse: cannot listen on {listen}: {e}");
                return EXIT_UNKNOWN;
            }
        };
        let tls = if web_config.tls.is_some() { "https" } else { "http" };
        tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or(listen.clone()), tls, roots = roots.len(), "listening");
        let mut sources = vec![(files::SOURCE, ErrorReason::counted_by(true, false))];
        if cluster_config.is_some() {
            sources.push((kubernetes::SOURCE, ErrorReason::counted_by(false, true)));
        }
        let names: Vec<&'static str> = sources.iter().map(|(name, _)| *name).collect();
        let inventory = Arc::new(
            Inventory::new(&names)
                .with_rescan_interval(files::SOURCE, rescan_interval)
                .with_rescan_interval(kubernetes::SOURCE, kubernetes::HEARTBEAT.as_secs() as i64),
        );
        let channels: &[&'static str] = if notify_config.is_some() { &[notify::CHANNEL] } else { &[] };
        let counted: Vec<(&'static str, &[ErrorReason])> =
            sources.iter().map(|(name, reasons)| (*name, reasons.as_slice())).collect();
        let metrics = Arc::new(SelfMetrics::new(&counted, channels));
        let (stop, stopped) = signal::channel(false);

        let files = FileSource {
            roots,
            options: scan,
            rescan_interval: Duration::from_secs(rescan_interval as u64),
        };
        let source = {
            let (inv, m, stop) = (inventory.clone(), metrics.clone(), stopped.clone());
            tokio::spawn(supervise(files::SOURCE, inventory.clone(), metrics.clone(), stopped.clone(), move || {
                files.clone().run(inv.clone(), m.clone(), stop.clone())
            }))
        };
        let mailer = notify_config.map(|config| {
            let notifier = Notifier { config };
            tokio::spawn(notifier.run(inventory.clone(), metrics.clone(), stopped.clone()))
        });
        let cluster = cluster_config.map(|config| {
            let (inv, m, stop) = (inventory.clone(), metrics.clone(), stopped.clone());
            tokio::spawn(supervise(kubernetes::SOURCE, inventory.clone(), metrics.clone(), stopped.clone(), move || {
                KubernetesSource { config: config.clone() }.run(inv.clone(), m.clone(), stop.clone())
            }))
        });
        let app = Arc::new(App {
            inventory,
            metrics,
            labels: Default::default(),
            web: web_config,
            thresholds,
            limits,
            pages: Default::default(),
        });
        let server = tokio::spawn(web::serve(listener, app, stopped));

        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
        let _ = server.await;
        let _ = source.await;
        if let Some(cluster) = cluster {
            let _ = cluster.await;
        }
        if let Some(mailer) = mailer {
            let _ = mailer.await;
        }
        0
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
