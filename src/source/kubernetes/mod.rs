//! Secrets and ConfigMaps from the Kubernetes API: paginated LIST, then
//! WATCH with bookmarks (kube-runtime's watcher, with backoff), for
//! `lapse serve`; or one paginated LIST per scope and no WATCH
//! ([`list_once`]), for `lapse check`.
//!
//! Helm release payloads are filtered on the server. Each object's values
//! go through the same parsers as files, and only the derived credentials
//! are kept: never a payload. A re-list (after 410 Gone or a dropped
//! connection) replaces its scope wholesale, so objects deleted meanwhile
//! disappear. Given namespaces, lapse watches each one with namespaced
//! requests only and never calls a cluster-scoped endpoint. While a scope
//! fails, the source is down and its last good credentials stay exported.
//!
//! This module holds what talks to the API server: the client, one task
//! per scope, the batching of publishes. What an event does to the state
//! is [`store`]'s, what an object yields is [`derive`]'s, and the
//! `kubernetes:` section is [`config`]'s. It never logs a value, a token
//! or a password: only endpoints, reasons and counts.

pub mod config;
mod derive;
#[cfg(test)]
mod list_tests;
mod store;

pub use config::{DEFAULT_EXCLUDED_TYPES, KubernetesConfig};

use crate::credential::{ErrorEntry, ErrorReason};
use crate::inventory::{Inventory, SourceReport};
use crate::telemetry::SelfMetrics;
use crate::timefmt::now;
use derive::{Derive, ObjectKey, ObjectKind};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::ListParams;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::{Api, Client};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{Effect, Event, Scope, Store};
use tokio::sync::{Notify, watch};

pub const SOURCE: &str = "kubernetes";

/// While nothing changes, the source still reports this often that its
/// watches are alive (`lapse_source_rescan_interval_seconds`).
pub const HEARTBEAT: Duration = Duration::from_secs(60);

/// Changes closer together than this are published together.
const BATCH: Duration = Duration::from_millis(100);

/// Objects per LIST page. kube-runtime's watcher asks for 500; lapse reads
/// each page whole before decoding it, so a page of 500 Secrets of
/// 100 KiB is 68 MB of JSON in memory at once. Measured, 20,000 Secrets
/// of which 5,000 are 100 KiB Opaque: peak RSS 212 MiB at 500, 183 at 50
/// (glibc's default heap), the same time to ready (3.0-3.6 s).
const PAGE: u32 = 50;

/// A one-shot LIST retries a 410 (its continue token expired) or a 429
/// this many times before it reports the scope as failed.
const LIST_ATTEMPTS: usize = 5;

pub struct KubernetesSource {
    pub config: KubernetesConfig,
}

impl KubernetesSource {
    pub async fn run(
        self,
        inventory: Arc<Inventory>,
        metrics: Arc<SelfMetrics>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let client = loop {
            match client(&self.config).await {
                Ok(c) => break c,
                Err(message) => {
                    tracing::warn!(%message, "cannot reach the Kubernetes API; retrying in 30 s");
                    metrics.count_error(SOURCE, ErrorReason::Unreachable);
                    inventory.publish(SOURCE, unreachable(message));
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                    }
                }
            }
        };
        let config = Arc::new(self.config);
        let scopes = Scope::all(&config);
        let store = Arc::new(Mutex::new(Store::new(config.clone())));
        let changed = Arc::new(Notify::new());
        let mut tasks = tokio::task::JoinSet::new();
        for scope in scopes.clone() {
            let shared = Shared {
                client: client.clone(),
                store: store.clone(),
                changed: changed.clone(),
                metrics: metrics.clone(),
            };
            let config = config.clone();
            tasks.spawn(async move {
                match scope.kind {
                    ObjectKind::Secret => watch_scope::<Secret>(scope, &config, &shared).await,
                    ObjectKind::ConfigMap => {
                        watch_scope::<ConfigMap>(scope, &config, &shared).await
                    }
                }
            });
        }
        // Publish batches of changes once every scope has settled, and a
        // heartbeat while all is quiet: a watch delivers nothing when
        // nothing changes, so its liveness is the tasks still running.
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.tick().await;
        loop {
            let beat = tokio::select! {
                _ = shutdown.changed() => break,
                _ = changed.notified() => false,
                _ = heartbeat.tick() => true,
                ended = tasks.join_next() => {
                    // A scope's watch task ended or panicked: end the source,
                    // so it is reported down and started again.
                    let how = match ended {
                        Some(Err(e)) if e.is_panic() => "panicked",
                        _ => "ended",
                    };
                    tracing::error!("a Kubernetes watch task {how}");
                    break;
                }
            };
            if !beat {
                tokio::time::sleep(BATCH).await;
            }
            let report = lock(&store).report(&scopes);
            if let Some(mut report) = report {
                if beat && report.up {
                    report.last_scan = Some(now());
                }
                inventory.publish(SOURCE, report);
            }
        }
        tasks.abort_all();
    }
}

/// What every scope's task shares.
struct Shared {
    client: Client,
    store: Arc<Mutex<Store>>,
    changed: Arc<Notify>,
    metrics: Arc<SelfMetrics>,
}

fn lock(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

/// The report of a source that cannot build a client at all.
fn unreachable(message: String) -> SourceReport {
    SourceReport {
        parts: Vec::new(),
        errors: vec![ErrorEntry {
            path: "kubernetes".into(),
            entry: None,
            reason: ErrorReason::Unreachable,
            message,
        }],
        up: false,
        last_scan: None,
    }
}

/// Every Secret and ConfigMap the configuration covers, read once: one
/// paginated LIST per scope (per namespace in namespace-scoped mode), with
/// the watcher's server-side filters and derivation, password Secrets
/// honoured (a keystore listed before its password is fetched again by
/// GET); then it returns, with no WATCH. For `lapse check`.
///
/// A scope that fails (401, 403, unreachable) is an error entry described
/// as the watcher describes it, and the report is `up: false`; its other
/// scopes still count. A 410 (the continue token expired) starts that
/// scope's LIST over, and a 429 waits what the server asks, then asks for
/// the same page again; after [`LIST_ATTEMPTS`] of either, the scope fails
/// too. Nothing is counted in lapse's own metrics: `lapse check` has none.
pub async fn list_once(config: &KubernetesConfig) -> SourceReport {
    let client = match client(config).await {
        Ok(c) => c,
        Err(message) => {
            tracing::warn!(%message, "cannot reach the Kubernetes API");
            return unreachable(message);
        }
    };
    let config = Arc::new(config.clone());
    let scopes = Scope::all(&config);
    let mut store = Store::new(config.clone());
    for scope in &scopes {
        let effect = match scope.kind {
            ObjectKind::Secret => list_scope::<Secret>(&client, scope, &config, &mut store).await,
            ObjectKind::ConfigMap => {
                list_scope::<ConfigMap>(&client, scope, &config, &mut store).await
            }
        };
        for key in effect.refetch {
            if let Ok(obj) = Api::<Secret>::namespaced(client.clone(), &key.namespace)
                .get(&key.name)
                .await
            {
                store.refetched(&obj);
            }
        }
    }
    // Every scope either listed or failed, so the report is complete.
    store.report(&scopes).unwrap_or_default()
}

/// One scope's LIST, page by page, into `store`; the effect of its end.
async fn list_scope<K>(
    client: &Client,
    scope: &Scope,
    config: &KubernetesConfig,
    store: &mut Store,
) -> Effect
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Derive
        + serde::de::DeserializeOwned,
    <K as kube::Resource>::DynamicType: Default,
{
    let api: Api<K> = api(client.clone(), scope);
    let mut params = ListParams::default().limit(PAGE);
    if let Some(fields) = scope.field_selector(config) {
        params = params.fields(&fields);
    }
    if let Some(labels) = &config.label_selector {
        params = params.labels(labels);
    }
    let mut attempt = 0;
    'list: loop {
        store.apply::<K>(scope, Event::Init, now());
        let mut page = params.clone();
        loop {
            match api.list(&page).await {
                Ok(list) => {
                    for obj in list.items {
                        store.apply(scope, Event::InitApply(obj), now());
                    }
                    match list.metadata.continue_.filter(|c| !c.is_empty()) {
                        Some(token) => page = page.continue_token(&token),
                        None => break 'list,
                    }
                }
                Err(e) => {
                    let e = watcher::Error::InitialListFailed(e);
                    let (reason, message) = describe(&e, scope);
                    attempt += 1;
                    let again = matches!(reason, ErrorReason::Expired | ErrorReason::Throttled);
                    if again && attempt < LIST_ATTEMPTS {
                        tracing::info!(endpoint = %scope.endpoint(), reason = reason.as_str(), "{message}");
                        match retry_after(&e) {
                            // Throttled: the same page again, once the wait is over.
                            Some(wait) => {
                                tokio::time::sleep(wait).await;
                                continue;
                            }
                            // Gone: the continue token is no good, start over.
                            None => continue 'list,
                        }
                    }
                    // Given up on a 410 or 429: the scope's list is incomplete.
                    let message = if again {
                        gave_up(reason, scope)
                    } else {
                        message
                    };
                    tracing::warn!(endpoint = %scope.endpoint(), reason = reason.as_str(), "{message}");
                    return store.apply::<K>(scope, Event::GaveUp(reason, message), now());
                }
            }
        }
    }
    let effect = store.apply::<K>(scope, Event::InitDone, now());
    tracing::info!(endpoint = %scope.endpoint(), objects = effect.listed.unwrap_or_default(), "listed");
    effect
}

async fn client(config: &KubernetesConfig) -> Result<Client, String> {
    let kube_config = match (&config.kubeconfig, &config.context) {
        (None, None) => kube::Config::infer().await.map_err(|e| e.to_string())?,
        (path, context) => {
            let options = kube::config::KubeConfigOptions {
                context: context.clone(),
                ..Default::default()
            };
            match path {
                Some(p) => {
                    let file = kube::config::Kubeconfig::read_from(p)
                        .map_err(|e| format!("{}: {e}", p.display()))?;
                    kube::Config::from_custom_kubeconfig(file, &options)
                        .await
                        .map_err(|e| format!("{}: {e}", p.display()))?
                }
                None => kube::Config::from_kubeconfig(&options)
                    .await
                    .map_err(|e| e.to_string())?,
            }
        }
    };
    // 429s come back to lapse instead of being retried inside the client,
    // so they are counted; the watch loop waits out `retryAfterSeconds`.
    let mut kube_config = kube_config;
    kube_config.default_retry = false;
    Client::try_from(kube_config).map_err(|e| e.to_string())
}

fn api<K>(client: Client, scope: &Scope) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match &scope.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    }
}

/// Why a request failed, as an error entry naming the verb and resource.
fn describe(e: &watcher::Error, scope: &Scope) -> (ErrorReason, String) {
    let (verb, status) = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s)) => ("list", Some(s.as_ref())),
        watcher::Error::WatchStartFailed(kube::Error::Api(s)) => ("watch", Some(s.as_ref())),
        watcher::Error::WatchFailed(kube::Error::Api(s)) => ("watch", Some(s.as_ref())),
        watcher::Error::WatchError(s) => ("watch", Some(s.as_ref())),
        watcher::Error::InitialListFailed(_) => ("list", None),
        _ => ("watch", None),
    };
    let resource = scope.kind.plural();
    let place = scope.place();
    match status.map(|s| s.code) {
        Some(401) => (
            ErrorReason::Forbidden,
            format!(
                "unauthorized: the API server rejected lapse's credentials ({verb} {resource} {place})"
            ),
        ),
        Some(403) => (
            ErrorReason::Forbidden,
            format!(
                "forbidden: cannot {verb} {resource} {place}; grant get, list and watch on {resource}"
            ),
        ),
        Some(410) => (
            ErrorReason::Expired,
            format!("{verb} {resource} {place}: resource version expired (410 Gone); re-listing"),
        ),
        Some(429) => (
            ErrorReason::Throttled,
            format!("{verb} {resource} {place}: throttled by the API server (429); backing off"),
        ),
        Some(code) => (
            ErrorReason::Unreachable,
            format!("{verb} {resource} {place}: API error {code}"),
        ),
        None => (
            ErrorReason::Unreachable,
            format!("{verb} {resource} {place}: {e}"),
        ),
    }
}

/// Why a one-shot LIST stopped retrying a 410 or a 429.
fn gave_up(reason: ErrorReason, scope: &Scope) -> String {
    let what = match reason {
        ErrorReason::Expired => "resource version expired (410 Gone)",
        _ => "throttled by the API server (429)",
    };
    format!(
        "list {} {}: {what} {LIST_ATTEMPTS} times; gave up",
        scope.kind.plural(),
        scope.place()
    )
}

/// How long a 429 asks lapse to wait (`retryAfterSeconds`, else 1 s).
fn retry_after(e: &watcher::Error) -> Option<Duration> {
    let status = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.as_ref(),
        watcher::Error::WatchError(s) => s.as_ref(),
        _ => return None,
    };
    (status.code == 429).then(|| {
        let secs = status
            .details
            .as_ref()
            .map(|d| d.retry_after_seconds)
            .unwrap_or(0);
        Duration::from_secs(u64::from(secs.max(1)))
    })
}

async fn watch_scope<K>(scope: Scope, config: &KubernetesConfig, shared: &Shared)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Derive
        + serde::de::DeserializeOwned,
    <K as kube::Resource>::DynamicType: Default,
{
    let api: Api<K> = api(shared.client.clone(), &scope);
    // Filter on the server: Helm payloads and excluded namespaces never arrive.
    let mut wc = watcher::Config::default();
    if let Some(fields) = scope.field_selector(config) {
        wc = wc.fields(&fields);
    }
    if let Some(labels) = &config.label_selector {
        wc = wc.labels(labels);
    }
    // A failed watch restarts from a fresh LIST: the watcher resumes a
    // watch silently, and only a completed list proves the scope healthy again.
    loop {
        let restart = run_watcher(&api, &scope, &wc, shared).await;
        if !restart {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs one watcher until its stream ends (false) or a watch fails after
/// the list (true: start over).
async fn run_watcher<K>(api: &Api<K>, scope: &Scope, wc: &watcher::Config, shared: &Shared) -> bool
where
    K: kube::Resource + Derive + serde::de::DeserializeOwned,
    <K as kube::Resource>::DynamicType: Default,
{
    let mut events = watcher::watcher(api.clone(), wc.clone())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        // What to do once the store is unlocked: wait out a 429, or restart.
        let mut throttled: Option<Duration> = None;
        let mut restart = false;
        let event = match event {
            Ok(WatchEvent::Init) => Event::Init,
            Ok(WatchEvent::InitApply(obj)) => Event::InitApply(obj),
            Ok(WatchEvent::InitDone) => Event::InitDone,
            Ok(WatchEvent::Apply(obj)) => Event::Apply(obj),
            Ok(WatchEvent::Delete(obj)) => Event::Delete(obj),
            Err(e) => {
                let (reason, message) = describe(&e, scope);
                let wait = retry_after(&e);
                let listing = matches!(e, watcher::Error::InitialListFailed(_));
                throttled = wait;
                restart = wait.is_none() && !listing && reason != ErrorReason::Expired;
                Event::Failed(reason, message)
            }
        };
        let failure = match &event {
            Event::Failed(reason, message) => Some((*reason, message.clone())),
            _ => None,
        };
        let effect = lock(&shared.store).apply(scope, event, now());
        for reason in &effect.counted {
            shared.metrics.count_error(SOURCE, *reason);
        }
        if let Some((reason, message)) = failure.filter(|_| effect.new_failure) {
            tracing::warn!(endpoint = %scope.endpoint(), reason = reason.as_str(), "{message}");
        }
        if let Some(objects) = effect.listed {
            tracing::info!(endpoint = %scope.endpoint(), objects, "listed");
        }
        if !effect.refetch.is_empty() {
            refetch_keystores(effect.refetch, shared);
        }
        if effect.changed {
            shared.changed.notify_one();
        }
        if let Some(wait) = throttled {
            // Wait as long as the API server asked, before the watcher's own
            // backoff retries.
            tokio::time::sleep(wait).await;
        }
        if restart {
            return true;
        }
    }
    false
}

/// Fetches again (GET) the Secrets whose keystore no password opened, now
/// that another password is known: their payloads were not kept.
fn refetch_keystores(locked: Vec<ObjectKey>, shared: &Shared) {
    let (client, store, changed) = (
        shared.client.clone(),
        shared.store.clone(),
        shared.changed.clone(),
    );
    tokio::spawn(async move {
        for key in locked {
            let api: Api<Secret> = Api::namespaced(client.clone(), &key.namespace);
            let Ok(obj) = api.get(&key.name).await else {
                continue;
            };
            lock(&store).refetched(&obj);
        }
        changed.notify_one();
    });
}
