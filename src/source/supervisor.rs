//! Keeps a source running. A source's task that ends before shutdown, or
//! panics, is reported — `lapse_source_up 0`, an error entry saying so
//! (reason `stopped`) on the page and in `lapse check`-style listings,
//! `lapse_errors_total{reason="stopped"}` — and started again with
//! backoff. Its last credentials stay exported meanwhile.
//!
//! Without this, a dead task left its last snapshot reporting
//! `lapse_source_up 1` forever and nothing alerted.

use crate::credential::{ErrorEntry, ErrorReason};
use crate::inventory::Inventory;
use crate::telemetry::SelfMetrics;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The first wait before a restart; doubled after each quick failure.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A task that ran this long before it ended starts again after the first backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Runs `start()`'s task until shutdown, starting it again whenever it
/// ends or panics.
pub async fn supervise<F, Fut>(
    source: &'static str,
    inventory: Arc<Inventory>,
    metrics: Arc<SelfMetrics>,
    mut shutdown: watch::Receiver<bool>,
    start: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let outcome = tokio::spawn(start()).await;
        if *shutdown.borrow() {
            return;
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        let how = match outcome {
            Ok(()) => "ended",
            Err(e) if e.is_panic() => "panicked",
            Err(_) => "was cancelled",
        };
        // The panic's own message went to stderr through the panic hook;
        // it is not repeated here, where it would reach the page.
        let message = format!(
            "the {source} source's task {how}; restarting it in {}s",
            backoff.as_secs()
        );
        tracing::error!(source, "{message}");
        metrics.count_error(source, ErrorReason::Stopped);
        inventory.mark_down(
            source,
            ErrorEntry {
                path: source.to_string(),
                entry: None,
                reason: ErrorReason::Stopped,
                message,
            },
        );
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::SourceReport;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn up(inventory: &Inventory) -> Option<bool> {
        inventory.snapshot().sources.get("files").map(|s| s.up)
    }

    /// The task panics after its first scan, then ends, then runs; each
    /// death shows as `up = false` with a `stopped` entry, and the next
    /// run's report brings it back.
    #[tokio::test(start_paused = true)]
    async fn a_dead_source_is_reported_down_and_restarted() {
        let inventory = Arc::new(Inventory::new(&["files"]));
        let metrics = Arc::new(SelfMetrics::new(&[("files", &[ErrorReason::Stopped])], &[]));
        let (stop, stopped) = watch::channel(false);
        let runs = Arc::new(AtomicUsize::new(0));
        let (inv, r) = (inventory.clone(), runs.clone());
        let supervisor = tokio::spawn(supervise(
            "files",
            inventory.clone(),
            metrics.clone(),
            stopped.clone(),
            move || {
                let (inv, run) = (inv.clone(), r.fetch_add(1, Ordering::SeqCst));
                let mut stopped = stopped.clone();
                async move {
                    inv.publish(
                        "files",
                        SourceReport {
                            up: true,
                            last_scan: Some(run as i64),
                            ..Default::default()
                        },
                    );
                    match run {
                        0 => panic!("scan task failed"),
                        1 => {}
                        _ => {
                            let _ = stopped.changed().await;
                        }
                    }
                }
            },
        ));
        // Run 0 published, then panicked: down, with the entry, after the first backoff wait begins.
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(up(&inventory), Some(false));
        let snap = inventory.snapshot();
        let errors: Vec<(&str, ErrorReason, &str)> = snap
            .errors
            .iter()
            .map(|(s, e)| (*s, e.reason, e.message.as_str()))
            .collect();
        assert_eq!(
            errors,
            [(
                "files",
                ErrorReason::Stopped,
                "the files source's task panicked; restarting it in 1s"
            )]
        );
        // Run 1 starts after 1 s, publishes up, and ends: down again, next wait 2 s.
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        assert_eq!(up(&inventory), Some(false));
        assert_eq!(
            inventory.snapshot().errors[0].1.message,
            "the files source's task ended; restarting it in 2s"
        );
        // Run 2 stays: up, no error entry, last_scan from its own report.
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        assert_eq!(up(&inventory), Some(true));
        assert!(inventory.snapshot().errors.is_empty());
        assert_eq!(inventory.snapshot().sources["files"].last_scan, Some(2));
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        let page = metrics.encode();
        assert!(
            page.contains("lapse_errors_total{source=\"files\",reason=\"stopped\"} 2\n"),
            "{page}"
        );
        let _ = stop.send(true);
        supervisor.await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
