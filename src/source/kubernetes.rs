//! Secrets and ConfigMaps from the Kubernetes API: paginated LIST, then
//! WATCH with bookmarks (kube-runtime's watcher, with backoff).
//!
//! Helm release payloads are filtered on the server. Each object's values
//! go through the same parsers as files, and only the derived credentials
//! are kept: never a payload. A re-list (after 410 Gone or a dropped
//! connection) replaces its scope wholesale, so objects deleted meanwhile
//! disappear. Given namespaces, lapse watches each one with namespaced
//! requests only and never calls a cluster-scoped endpoint. While a scope
//! fails, the source is down and its last good credentials stay exported.

use crate::credential::{ErrorEntry, ErrorReason};
use crate::inventory::{Inventory, SourceReport};
use crate::inventory::{Origin, Part, Via};
use crate::parse;
use crate::telemetry::SelfMetrics;
use crate::timefmt::now;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

pub const SOURCE: &str = "kubernetes";

/// Secret types never read unless configured otherwise: Helm release
/// payloads are large and never credentials.
pub const DEFAULT_EXCLUDED_TYPES: &[&str] = &["helm.sh/release.v1"];

/// Changes closer together than this are published together.
const BATCH: Duration = Duration::from_millis(100);

/// The `kubernetes:` section of lapse.yaml.
#[derive(Clone, Debug)]
pub struct KubernetesConfig {
    /// Default: in-cluster service account, else `$KUBECONFIG` / `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Namespace-scoped mode: only these namespaces, only namespaced requests.
    pub namespaces: Vec<String>,
    /// Cluster mode: objects in these namespaces are dropped.
    pub exclude_namespaces: Vec<String>,
    pub label_selector: Option<String>,
    /// Only these Secret types (empty: every type not excluded).
    pub secret_types: Vec<String>,
    /// Filtered on the server with `type!=…` field selectors.
    pub exclude_secret_types: Vec<String>,
    pub configmaps: bool,
    /// PKCS#12 passwords from configuration (`keystore_passwords` files).
    pub passwords: Vec<String>,
    /// PKCS#12 passwords kept in other Secrets: (namespace, name, key).
    pub password_secrets: Vec<(String, String, String)>,
    /// Object labels copied onto metrics as `secret_label_<name>`.
    pub copy_labels: Vec<String>,
    /// ConfigMap keys to read (globs); empty: every key.
    pub configmap_keys: Vec<globset::GlobMatcher>,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            kubeconfig: None,
            context: None,
            namespaces: Vec::new(),
            exclude_namespaces: Vec::new(),
            label_selector: None,
            secret_types: Vec::new(),
            exclude_secret_types: DEFAULT_EXCLUDED_TYPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            configmaps: true,
            passwords: Vec::new(),
            password_secrets: Vec::new(),
            copy_labels: Vec::new(),
            configmap_keys: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum ObjectKind {
    Secret,
    ConfigMap,
}

impl ObjectKind {
    fn plural(self) -> &'static str {
        match self {
            ObjectKind::Secret => "secrets",
            ObjectKind::ConfigMap => "configmaps",
        }
    }
}

/// What one watcher covers: a kind, cluster-wide or in one namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Scope {
    kind: ObjectKind,
    namespace: Option<String>,
}

impl Scope {
    fn endpoint(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("/api/v1/namespaces/{ns}/{}", self.kind.plural()),
            None => format!("/api/v1/{}", self.kind.plural()),
        }
    }

    fn covers(&self, key: &ObjectKey) -> bool {
        key.kind == self.kind
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == key.namespace)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct ObjectKey {
    kind: ObjectKind,
    namespace: String,
    name: String,
}

/// The derived state: parts by object, errors by scope.
#[derive(Default)]
struct Store {
    objects: BTreeMap<ObjectKey, Arc<Part>>,
    /// Re-list in progress: what it has seen so far.
    relisting: BTreeMap<Scope, BTreeMap<ObjectKey, Arc<Part>>>,
    errors: BTreeMap<Scope, ErrorEntry>,
    /// Scopes that listed at least once, or failed at least once.
    settled: std::collections::HashSet<Scope>,
    last_change: Option<i64>,
    /// Configured passwords, then those read from password Secrets.
    passwords: Vec<String>,
    from_secrets: BTreeMap<(String, String, String), String>,
}

impl Store {
    fn all_passwords(&self) -> Vec<String> {
        self.passwords
            .iter()
            .chain(self.from_secrets.values())
            .cloned()
            .collect()
    }

    /// Objects holding a keystore no known password opened.
    fn locked_keystores(&self) -> Vec<ObjectKey> {
        self.objects
            .iter()
            .filter(|(_, p)| p.errors.iter().any(|e| e.reason == ErrorReason::Password))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

pub struct KubernetesSource {
    pub config: KubernetesConfig,
}

impl KubernetesSource {
    fn scopes(&self) -> Vec<Scope> {
        let mut kinds = vec![ObjectKind::Secret];
        if self.config.configmaps {
            kinds.push(ObjectKind::ConfigMap);
        }
        let namespaces: Vec<Option<String>> = if self.config.namespaces.is_empty() {
            vec![None]
        } else {
            self.config.namespaces.iter().cloned().map(Some).collect()
        };
        kinds
            .iter()
            .flat_map(|kind| {
                namespaces.iter().map(move |ns| Scope {
                    kind: *kind,
                    namespace: ns.clone(),
                })
            })
            .collect()
    }

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
                    inventory.publish(
                        SOURCE,
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
                        },
                    );
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                    }
                }
            }
        };
        let scopes = self.scopes();
        let store = Arc::new(Mutex::new(Store {
            passwords: self.config.passwords.clone(),
            ..Store::default()
        }));
        let changed = Arc::new(Notify::new());
        let config = Arc::new(self.config);
        let mut tasks = Vec::new();
        for scope in scopes.clone() {
            let (client, store, changed, metrics, config) = (
                client.clone(),
                store.clone(),
                changed.clone(),
                metrics.clone(),
                config.clone(),
            );
            tasks.push(tokio::spawn(async move {
                match scope.kind {
                    ObjectKind::Secret => {
                        let api: Api<Secret> = api(client.clone(), &scope);
                        watch_scope(api, scope, &config, store, changed, metrics, Some(client))
                            .await
                    }
                    ObjectKind::ConfigMap => {
                        let api: Api<ConfigMap> = api(client, &scope);
                        watch_scope(api, scope, &config, store, changed, metrics, None).await
                    }
                }
            }));
        }
        // Publish batches of changes once every scope has settled.
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = changed.notified() => {}
            }
            tokio::time::sleep(BATCH).await;
            let report = {
                let s = store.lock().unwrap_or_else(|p| p.into_inner());
                if !scopes.iter().all(|scope| s.settled.contains(scope)) {
                    continue;
                }
                SourceReport {
                    parts: s.objects.values().cloned().collect(),
                    errors: s.errors.values().cloned().collect(),
                    up: s.errors.is_empty(),
                    last_scan: s.last_change,
                }
            };
            inventory.publish(SOURCE, report);
        }
        for t in tasks {
            t.abort();
        }
    }
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

/// Turns a typed object into the document shape the parsers read, keeping
/// only what they need.
trait Derive: Clone + std::fmt::Debug + Send + Sync + 'static {
    fn meta(&self) -> &ObjectMeta;

    fn key(&self, kind: ObjectKind) -> ObjectKey {
        ObjectKey {
            kind,
            namespace: self.meta().namespace.clone().unwrap_or_default(),
            name: self.meta().name.clone().unwrap_or_default(),
        }
    }

    fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.meta().labels.as_ref()
    }

    fn secret_type(&self) -> Option<&str>;
    fn document(&self) -> Value;
    /// A Secret's values as text (for password Secrets); `None` for ConfigMaps.
    fn secret_values(&self) -> Option<BTreeMap<String, String>> {
        None
    }
}

/// Bytes as the base64 strings the parsers read in `data`/`binaryData`.
fn base64_values(values: &Option<BTreeMap<String, k8s_openapi::ByteString>>) -> Map<String, Value> {
    use base64::Engine;
    values
        .iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(&v.0)),
            )
        })
        .collect()
}

fn meta_doc(meta: &ObjectMeta) -> Value {
    json!({
        "name": meta.name,
        "namespace": meta.namespace,
        "labels": meta.labels,
    })
}

impl Derive for Secret {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn secret_type(&self) -> Option<&str> {
        Some(self.type_.as_deref().unwrap_or("Opaque"))
    }

    fn secret_values(&self) -> Option<BTreeMap<String, String>> {
        let data = self.data.iter().flatten().filter_map(|(k, v)| {
            Some((
                k.clone(),
                String::from_utf8(v.0.clone()).ok()?.trim().to_string(),
            ))
        });
        let text = self
            .string_data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.trim().to_string()));
        Some(data.chain(text).collect())
    }

    fn document(&self) -> Value {
        let data = base64_values(&self.data);
        json!({
            "kind": "Secret",
            "type": self.type_.as_deref().unwrap_or("Opaque"),
            "metadata": meta_doc(&self.metadata),
            "data": data,
            "stringData": self.string_data,
        })
    }
}

impl Derive for ConfigMap {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn secret_type(&self) -> Option<&str> {
        None
    }

    fn document(&self) -> Value {
        let binary = base64_values(&self.binary_data);
        json!({
            "kind": "ConfigMap",
            "metadata": meta_doc(&self.metadata),
            "data": self.data,
            "binaryData": binary,
        })
    }
}

/// The object's credentials, or `None` when configuration says to skip it.
fn derive<K: Derive>(
    passwords: &[String],
    obj: &K,
    kind: ObjectKind,
    config: &KubernetesConfig,
) -> Option<(ObjectKey, Arc<Part>)> {
    let key = obj.key(kind);
    if config.exclude_namespaces.contains(&key.namespace) {
        return None;
    }
    if let Some(t) = obj.secret_type()
        && (config.exclude_secret_types.iter().any(|x| x == t)
            || (!config.secret_types.is_empty() && !config.secret_types.iter().any(|x| x == t)))
    {
        return None;
    }
    let path = format!(
        "/api/v1/namespaces/{}/{}/{}",
        key.namespace,
        kind.plural(),
        key.name
    );
    let mut doc = obj.document();
    if kind == ObjectKind::ConfigMap && !config.configmap_keys.is_empty() {
        for field in ["data", "binaryData"] {
            if let Some(map) = doc.get_mut(field).and_then(Value::as_object_mut) {
                map.retain(|k, _| config.configmap_keys.iter().any(|g| g.is_match(k)));
            }
        }
    }
    let mut parsed = parse::parse_document(&path, &doc, passwords);
    let copied: Vec<(String, String)> = config
        .copy_labels
        .iter()
        .filter_map(|l| Some((l.clone(), obj.labels()?.get(l)?.clone())))
        .collect();
    if !copied.is_empty() {
        for c in &mut parsed.credentials {
            if let Some(o) = c.object.as_mut() {
                o.labels = copied.clone();
            }
        }
    }
    let origin = Origin {
        file: None,
        via: Via::Own,
    };
    Some((
        key,
        Arc::new(Part {
            path: PathBuf::from(&path),
            origins: vec![origin; parsed.credentials.len()],
            credentials: parsed.credentials,
            errors: parsed.errors,
        }),
    ))
}

/// Why a watch failed, as an error entry naming the verb and resource.
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
    let place = match &scope.namespace {
        Some(ns) => format!("in namespace {ns}"),
        None => "cluster-wide".to_string(),
    };
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

async fn watch_scope<K>(
    api: Api<K>,
    scope: Scope,
    config: &KubernetesConfig,
    store: Arc<Mutex<Store>>,
    changed: Arc<Notify>,
    metrics: Arc<SelfMetrics>,
    client: Option<Client>,
) where
    K: kube::Resource + Derive + serde::de::DeserializeOwned,
    <K as kube::Resource>::DynamicType: Default,
{
    // Filter on the server: Helm payloads and excluded namespaces never arrive.
    let mut fields: Vec<String> = Vec::new();
    if scope.kind == ObjectKind::Secret {
        fields.extend(
            config
                .exclude_secret_types
                .iter()
                .map(|t| format!("type!={t}")),
        );
    }
    if scope.namespace.is_none() {
        fields.extend(
            config
                .exclude_namespaces
                .iter()
                .map(|n| format!("metadata.namespace!={n}")),
        );
    }
    let mut wc = watcher::Config::default();
    if !fields.is_empty() {
        wc = wc.fields(&fields.join(","));
    }
    if let Some(labels) = &config.label_selector {
        wc = wc.labels(labels);
    }
    // A failed watch restarts from a fresh LIST: the watcher resumes a
    // watch silently, and only a completed list proves the scope healthy again.
    loop {
        let restart = run_watcher(
            &api, &scope, &wc, config, &store, &changed, &metrics, &client,
        )
        .await;
        if !restart {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs one watcher until its stream ends (false) or a watch fails after
/// the list (true: start over).
#[allow(clippy::too_many_arguments)]
async fn run_watcher<K>(
    api: &Api<K>,
    scope: &Scope,
    wc: &watcher::Config,
    config: &KubernetesConfig,
    store: &Arc<Mutex<Store>>,
    changed: &Arc<Notify>,
    metrics: &Arc<SelfMetrics>,
    client: &Option<Client>,
) -> bool
where
    K: kube::Resource + Derive + serde::de::DeserializeOwned,
    <K as kube::Resource>::DynamicType: Default,
{
    let (scope, store, changed, metrics, client) = (
        scope.clone(),
        store.clone(),
        changed.clone(),
        metrics.clone(),
        client.clone(),
    );
    let mut events = watcher::watcher(api.clone(), wc.clone())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        // What to do once the store is unlocked: wait out a 429, or restart.
        let mut throttled: Option<Duration> = None;
        let mut restart = false;
        {
            let mut s = store.lock().unwrap_or_else(|p| p.into_inner());
            match event {
                Ok(Event::Init) => {
                    s.relisting.insert(scope.clone(), BTreeMap::new());
                }
                Ok(Event::InitApply(obj)) => {
                    learn_password(&mut s, &obj, config);
                    if let Some((key, part)) = derive(&s.all_passwords(), &obj, scope.kind, config)
                    {
                        count_part_errors(&metrics, &part);
                        s.relisting
                            .entry(scope.clone())
                            .or_default()
                            .insert(key, part);
                    }
                }
                Ok(Event::InitDone) => {
                    let fresh = s.relisting.remove(&scope).unwrap_or_default();
                    let reopen = !s.from_secrets.is_empty();
                    s.objects.retain(|k, _| !scope.covers(k));
                    s.objects.extend(fresh);
                    s.errors.remove(&scope);
                    s.settled.insert(scope.clone());
                    s.last_change = Some(now());
                    tracing::info!(endpoint = %scope.endpoint(), objects = s.objects.keys().filter(|k| scope.covers(k)).count(), "listed");
                    // A password Secret listed after its keystore: open it now.
                    if reopen {
                        reopen_keystores(
                            &s,
                            client.clone(),
                            store.clone(),
                            changed.clone(),
                            config,
                        );
                    }
                    changed.notify_one();
                }
                Ok(Event::Apply(obj)) => {
                    let key = obj.key(scope.kind);
                    let learned = learn_password(&mut s, &obj, config);
                    if learned {
                        reopen_keystores(
                            &s,
                            client.clone(),
                            store.clone(),
                            changed.clone(),
                            config,
                        );
                    }
                    match derive(&s.all_passwords(), &obj, scope.kind, config) {
                        Some((key, part)) => {
                            count_part_errors(&metrics, &part);
                            s.objects.insert(key, part);
                        }
                        None => {
                            s.objects.remove(&key);
                        }
                    }
                    s.errors.remove(&scope);
                    s.last_change = Some(now());
                    changed.notify_one();
                }
                Ok(Event::Delete(obj)) => {
                    s.objects.remove(&obj.key(scope.kind));
                    s.last_change = Some(now());
                    changed.notify_one();
                }
                Err(e) => {
                    let (reason, message) = describe(&e, &scope);
                    let wait = retry_after(&e);
                    metrics.count_error(SOURCE, reason);
                    let known = s
                        .errors
                        .get(&scope)
                        .is_some_and(|old| old.message == message);
                    if !known {
                        tracing::warn!(endpoint = %scope.endpoint(), reason = reason.as_str(), "{message}");
                    }
                    // 410 and 429 are the API working as designed: counted,
                    // and recovered from, without taking the source down.
                    if !matches!(reason, ErrorReason::Expired | ErrorReason::Throttled) {
                        s.errors.insert(
                            scope.clone(),
                            ErrorEntry {
                                path: scope.endpoint(),
                                entry: None,
                                reason,
                                message,
                            },
                        );
                        s.settled.insert(scope.clone());
                        changed.notify_one();
                    }
                    let listing = matches!(e, watcher::Error::InitialListFailed(_));
                    throttled = wait;
                    restart = wait.is_none() && !listing && reason != ErrorReason::Expired;
                }
            }
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

/// Remembers the value of a configured password Secret; true when it is new.
fn learn_password<K: Derive>(s: &mut Store, obj: &K, config: &KubernetesConfig) -> bool {
    let Some(values) = obj.secret_values() else {
        return false;
    };
    let key = obj.key(ObjectKind::Secret);
    let mut learned = false;
    for (ns, name, field) in &config.password_secrets {
        if *ns != key.namespace || *name != key.name {
            continue;
        }
        let Some(value) = values.get(field.as_str()) else {
            continue;
        };
        let id = (ns.clone(), name.clone(), field.clone());
        if s.from_secrets.get(&id) != Some(value) {
            s.from_secrets.insert(id, value.clone());
            learned = true;
        }
    }
    learned
}

/// Fetches again (GET) the objects whose keystore no password opened, now
/// that another password is known: their payloads were not kept.
fn reopen_keystores(
    s: &Store,
    client: Option<Client>,
    store: Arc<Mutex<Store>>,
    changed: Arc<Notify>,
    config: &KubernetesConfig,
) {
    let (Some(client), locked) = (client, s.locked_keystores()) else {
        return;
    };
    if locked.is_empty() {
        return;
    }
    let config = config.clone();
    tokio::spawn(async move {
        for key in locked.into_iter().filter(|k| k.kind == ObjectKind::Secret) {
            let api: Api<Secret> = Api::namespaced(client.clone(), &key.namespace);
            let Ok(obj) = api.get(&key.name).await else {
                continue;
            };
            let mut s = store.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((key, part)) = derive(&s.all_passwords(), &obj, ObjectKind::Secret, &config)
            {
                s.objects.insert(key, part);
            }
        }
        changed.notify_one();
    });
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

fn count_part_errors(metrics: &SelfMetrics, part: &Part) {
    for e in &part.errors {
        metrics.count_error(SOURCE, e.reason);
    }
}
