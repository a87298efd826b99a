//! `lapse serve`: the file source, the inventory and the HTTP server,
//! wired together; SIGTERM and SIGINT drain cleanly.

use crate::check::{EXIT_UNKNOWN, default_kubeconfigs, load_config};
use crate::cli::ServeArgs;
use crate::credential::ErrorReason;
use crate::http::server::{self as web, App};
use crate::http::web_config::WebConfig;
use crate::inventory::Inventory;
use crate::notify::{self, Notifier};
use crate::source::files::{self, FileSource, Filter, ScanOptions};
use crate::source::kubernetes::{self, KubernetesSource};
use crate::source::supervisor::supervise;
use crate::telemetry::SelfMetrics;
use std::path::PathBuf;
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
    let Some(config) = load_config(args.config.as_deref()) else {
        return EXIT_UNKNOWN;
    };
    let web_config = match args
        .web_config_file
        .as_ref()
        .or(config.web_config_file.as_ref())
    {
        None => WebConfig::none(),
        Some(path) => match WebConfig::load(path) {
            Ok(w) => w,
            Err(problems) => {
                for p in problems {
                    eprintln!("lapse: {}: {p}", path.display());
                }
                return EXIT_UNKNOWN;
            }
        },
    };
    let filter = match Filter::new(&config.include, &config.exclude) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("lapse: {e}");
            return EXIT_UNKNOWN;
        }
    };
    let mut roots: Vec<PathBuf> = args.paths.clone();
    roots.extend(config.paths.iter().cloned());
    roots.extend(config.kubeconfigs.clone().unwrap_or_else(|| {
        // The user's kubeconfig when there is one; a container often has none.
        default_kubeconfigs()
            .into_iter()
            .filter(|p| p.exists())
            .collect()
    }));
    roots.sort();
    roots.dedup();
    // A Pod reading its cluster has no file to watch, and needs none.
    if roots.is_empty() && config.kubernetes.is_none() {
        eprintln!(
            "lapse: nothing to watch: pass paths, list files.paths in --config, or set KUBECONFIG"
        );
        return EXIT_UNKNOWN;
    }
    let listen = listen_address(args.listen.as_deref().unwrap_or(&config.listen));

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
        if config.kubernetes.is_some() {
            sources.push((kubernetes::SOURCE, ErrorReason::counted_by(false, true)));
        }
        let names: Vec<&'static str> = sources.iter().map(|(name, _)| *name).collect();
        let inventory = Arc::new(
            Inventory::new(&names).with_rescan_interval(files::SOURCE, config.rescan_interval),
        );
        let channels: &[&'static str] = if config.notify.is_some() { &[notify::CHANNEL] } else { &[] };
        let counted: Vec<(&'static str, &[ErrorReason])> =
            sources.iter().map(|(name, reasons)| (*name, reasons.as_slice())).collect();
        let metrics = Arc::new(SelfMetrics::new(&counted, channels));
        let (stop, stopped) = signal::channel(false);

        let files = FileSource {
            roots,
            options: ScanOptions {
                filter,
                max_file_size: config.max_file_size,
                token_rules: config.tokens.clone(),
                passwords: config.keystore_passwords.clone(),
                ..ScanOptions::default()
            },
            rescan_interval: Duration::from_secs(config.rescan_interval as u64),
        };
        let source = {
            let (inv, m, stop) = (inventory.clone(), metrics.clone(), stopped.clone());
            tokio::spawn(supervise(files::SOURCE, inventory.clone(), metrics.clone(), stopped.clone(), move || {
                files.clone().run(inv.clone(), m.clone(), stop.clone())
            }))
        };
        let mailer = config.notify.clone().map(|config| {
            let notifier = Notifier { config };
            tokio::spawn(notifier.run(inventory.clone(), metrics.clone(), stopped.clone()))
        });
        let cluster = config.kubernetes.clone().map(|config| {
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
            thresholds: config.thresholds,
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
