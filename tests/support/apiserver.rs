//! A Kubernetes API server for tests: plain HTTP/1.1 on a free loopback
//! port, speaking the real protocol for Secrets, ConfigMaps and Namespaces
//! with k8s-openapi types: paginated LIST (`limit`/`continue`), label and
//! field selectors, WATCH streams (ADDED/MODIFIED/DELETED/BOOKMARK, an
//! `ERROR` 410 for a resource version older than the retained history),
//! `Status` bodies for 401/403/404/410/429, and a log of every request.
//!
//! Tests change the cluster through it ([`ApiServer::put`],
//! [`ApiServer::delete`]) and break it on purpose (`expire_history`,
//! `drop_connections`, `forbid_namespace`, `set_down`, `throttle`).
//!
//! Self-contained (std threads and `std::net`; no other test module), so a
//! benchmark can include it with `#[path = "../tests/support/apiserver.rs"]`.
//! It must never decide what lapse should report: it only serves objects.

#![allow(dead_code)] // tests and benches each use a part

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    ListMeta, ObjectMeta, Status, StatusDetails, Time,
};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The bearer token the kubeconfig carries and the server accepts.
pub const TOKEN: &str = "test-token";
/// Who the server says was refused, as a real API server names a pod's service account.
pub const USER: &str = "system:serviceaccount:lapse:lapse";

/// The resources this server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Namespaces,
    Secrets,
    ConfigMaps,
}

impl Resource {
    pub fn plural(self) -> &'static str {
        match self {
            Resource::Namespaces => "namespaces",
            Resource::Secrets => "secrets",
            Resource::ConfigMaps => "configmaps",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Resource::Namespaces => "Namespace",
            Resource::Secrets => "Secret",
            Resource::ConfigMaps => "ConfigMap",
        }
    }

    fn from_plural(plural: &str) -> Option<Resource> {
        [
            Resource::Namespaces,
            Resource::Secrets,
            Resource::ConfigMaps,
        ]
        .into_iter()
        .find(|r| r.plural() == plural)
    }

    fn namespaced(self) -> bool {
        self != Resource::Namespaces
    }

    /// Field selectors the real API server accepts for this resource.
    fn supports_field(self, field: &str) -> bool {
        match field {
            "metadata.name" | "metadata.namespace" => true,
            "type" => self == Resource::Secrets,
            "status.phase" => self == Resource::Namespaces,
            _ => false,
        }
    }
}

/// An object the server can store: a k8s-openapi type with `ObjectMeta`.
pub trait ApiObject: serde::Serialize + k8s_openapi::Metadata<Ty = ObjectMeta> + Clone {
    const RESOURCE: Resource;

    /// What the API server does on write (e.g. `stringData` → `data`).
    fn normalize(&mut self) {}

    fn secret_type(&self) -> Option<&str> {
        None
    }
}

impl ApiObject for Secret {
    const RESOURCE: Resource = Resource::Secrets;

    fn normalize(&mut self) {
        if let Some(string_data) = self.string_data.take() {
            let data = self.data.get_or_insert_with(BTreeMap::new);
            for (k, v) in string_data {
                data.insert(k, ByteString(v.into_bytes()));
            }
        }
        self.type_.get_or_insert_with(|| "Opaque".to_string());
    }

    fn secret_type(&self) -> Option<&str> {
        self.type_.as_deref()
    }
}

impl ApiObject for ConfigMap {
    const RESOURCE: Resource = Resource::ConfigMaps;
}

impl ApiObject for Namespace {
    const RESOURCE: Resource = Resource::Namespaces;

    fn normalize(&mut self) {
        // As the real server labels every namespace with its own name.
        let name = self.metadata.name.clone().unwrap_or_default();
        self.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert("kubernetes.io/metadata.name".into(), name);
    }
}

/// A Secret of `type_` with these `data` values.
pub fn secret(namespace: &str, name: &str, type_: &str, data: &[(&str, &[u8])]) -> Secret {
    Secret {
        metadata: meta(namespace, name),
        type_: Some(type_.to_string()),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// A ConfigMap with these `data` values.
pub fn config_map(namespace: &str, name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: meta(namespace, name),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..ConfigMap::default()
    }
}

pub fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
    labelled(
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        },
        labels,
    )
}

/// `obj` with these labels added.
pub fn labelled<T: ApiObject>(mut obj: T, labels: &[(&str, &str)]) -> T {
    let map = obj.metadata_mut().labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in labels {
        map.insert(k.to_string(), v.to_string());
    }
    obj
}

fn meta(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(namespace.to_string()),
        name: Some(name.to_string()),
        ..ObjectMeta::default()
    }
}

/// One object as stored: what selectors need, and its JSON, serialized once.
#[derive(Debug)]
struct Stored {
    resource: Resource,
    namespace: String,
    name: String,
    labels: BTreeMap<String, String>,
    secret_type: Option<String>,
    uid: String,
    created: Option<Time>,
    rv: u64,
    json: String,
}

impl Stored {
    fn field(&self, field: &str) -> Option<&str> {
        match field {
            "metadata.name" => Some(&self.name),
            "metadata.namespace" => Some(&self.namespace),
            "type" => self.secret_type.as_deref(),
            "status.phase" => Some("Active"),
            _ => None,
        }
    }

    /// The same object as the API server reports it in a later event
    /// (a deletion): only `metadata.resourceVersion` changes.
    fn at_version(&self, rv: u64) -> Stored {
        let mut value: serde_json::Value =
            serde_json::from_str(&self.json).expect("stored JSON parses");
        value["metadata"]["resourceVersion"] = serde_json::Value::String(rv.to_string());
        Stored {
            resource: self.resource,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            labels: self.labels.clone(),
            secret_type: self.secret_type.clone(),
            uid: self.uid.clone(),
            created: self.created.clone(),
            rv,
            json: value.to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Added,
    Modified,
    Deleted,
}

#[derive(Debug)]
struct Event {
    rv: u64,
    change: Change,
    object: Arc<Stored>,
    /// For a modification: the version it replaced (selectors may have
    /// matched one and not the other).
    previous: Option<Arc<Stored>>,
}

type Key = (Resource, String, String);

/// Who may not do what: `namespace: None` is the cluster scope,
/// `resource: None` every resource.
#[derive(Clone, Debug)]
struct Forbidden {
    namespace: Option<String>,
    resource: Option<Resource>,
    /// The Status message instead of the usual one.
    message: Option<String>,
}

struct State {
    rv: u64,
    /// A watch from a resource version older than this gets 410 Gone.
    compacted: u64,
    objects: BTreeMap<Key, Arc<Stored>>,
    history: Vec<Event>,
    forbidden: Vec<Forbidden>,
    token: String,
    throttled: u32,
    down: bool,
    /// Bumped by `drop_connections`: watches of an older epoch end abruptly.
    epoch: u64,
    bookmark_interval: Duration,
    next_uid: u64,
}

/// An object the server sent, in a LIST page or a WATCH event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub resource: Resource,
    pub namespace: String,
    pub name: String,
    pub secret_type: Option<String>,
    /// `ADDED`, `MODIFIED`, `DELETED`, or `LIST`.
    pub how: &'static str,
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    pub status: u16,
    pub sent: Vec<Sent>,
    /// When the request arrived.
    pub received: Instant,
}

impl Logged {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_watch(&self) -> bool {
        matches!(self.param("watch"), Some("true" | "1"))
    }

    /// The namespace of a namespaced resource path
    /// (`/api/v1/namespaces/NS/RESOURCE[/NAME]`).
    pub fn namespace(&self) -> Option<&str> {
        let rest = self.path.strip_prefix("/api/v1/namespaces/")?;
        let (ns, resource) = rest.split_once('/')?;
        (!ns.is_empty() && !resource.is_empty()).then_some(ns)
    }

    /// Anything a namespace-scoped Role cannot grant: a resource path
    /// without a namespace segment (`/api/v1/secrets`, `/api/v1/namespaces`,
    /// `/api/v1/namespaces/NS`), discovery (`/api`, `/apis/...`).
    pub fn is_cluster_scoped(&self) -> bool {
        let api = self.path == "/api" || self.path.starts_with("/api/");
        let apis = self.path == "/apis" || self.path.starts_with("/apis/");
        (api || apis) && self.namespace().is_none()
    }

    /// `GET /path?query` as one line, for failure messages.
    pub fn line(&self) -> String {
        let query: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "{} {}?{} -> {}",
            self.method,
            self.path,
            query.join("&"),
            self.status
        )
    }
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    log: Mutex<Vec<Logged>>,
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
    watches: AtomicUsize,
    stop: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self) -> MutexGuard<'_, Vec<Logged>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running server; stopped (every connection closed) on drop.
pub struct ApiServer {
    shared: Arc<Shared>,
    port: u16,
    acceptor: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Listens on a free loopback port, empty, with no namespaces.
    pub fn start() -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test API server");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                rv: 1000,
                compacted: 0,
                objects: BTreeMap::new(),
                history: Vec::new(),
                forbidden: Vec::new(),
                token: TOKEN.to_string(),
                throttled: 0,
                down: false,
                epoch: 0,
                bookmark_interval: Duration::from_secs(1),
                next_uid: 1,
            }),
            changed: Condvar::new(),
            log: Mutex::new(Vec::new()),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
            watches: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("apiserver-accept".into())
            .spawn(move || accept(listener, accepting))
            .expect("spawn the acceptor");
        ApiServer {
            shared,
            port,
            acceptor: Some(acceptor),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Writes `dir/kubeconfig`: cluster `test` at this server, user `test`
    /// with [`TOKEN`], context `test` current.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n\
             users:\n- name: test\n  user:\n    token: {TOKEN}\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n\
             current-context: test\n",
            self.url()
        );
        std::fs::create_dir_all(dir).expect("create the kubeconfig's directory");
        std::fs::write(&path, text).expect("write the kubeconfig");
        path
    }

    /// Creates or replaces `obj` (ADDED or MODIFIED); creates its namespace
    /// first when missing. Returns the new resource version.
    pub fn put<T: ApiObject>(&self, obj: T) -> u64 {
        self.put_then(obj, false)
    }

    /// [`put`](Self::put), then compaction in the same instant: no watcher
    /// can see the change as an event, so every open watch ends with 410
    /// Gone and only a re-list finds the object.
    pub fn put_and_expire<T: ApiObject>(&self, obj: T) -> u64 {
        self.put_then(obj, true)
    }

    fn put_then<T: ApiObject>(&self, mut obj: T, expire: bool) -> u64 {
        obj.normalize();
        let mut state = self.shared.state();
        let namespace = obj.metadata().namespace.clone().unwrap_or_default();
        if T::RESOURCE.namespaced() {
            assert!(
                !namespace.is_empty(),
                "a {} needs a namespace",
                T::RESOURCE.kind()
            );
            let key = (Resource::Namespaces, String::new(), namespace.clone());
            if !state.objects.contains_key(&key) {
                let mut ns = self::namespace(&namespace, &[]);
                ns.normalize();
                store(&mut state, ns);
            }
        }
        let rv = store(&mut state, obj);
        if expire {
            state.compacted = state.rv;
            state.history.clear();
        }
        self.shared.changed.notify_all();
        rv
    }

    pub fn put_all<T: ApiObject>(&self, objects: impl IntoIterator<Item = T>) {
        for obj in objects {
            self.put(obj);
        }
    }

    /// Deletes an object (DELETED); `false` if there was none.
    pub fn delete<T: ApiObject>(&self, namespace: &str, name: &str) -> bool {
        let namespace = if T::RESOURCE.namespaced() {
            namespace
        } else {
            ""
        };
        let key = (T::RESOURCE, namespace.to_string(), name.to_string());
        let mut state = self.shared.state();
        let Some(old) = state.objects.remove(&key) else {
            return false;
        };
        state.rv += 1;
        let rv = state.rv;
        state.history.push(Event {
            rv,
            change: Change::Deleted,
            object: Arc::new(old.at_version(rv)),
            previous: None,
        });
        self.shared.changed.notify_all();
        true
    }

    pub fn delete_secret(&self, namespace: &str, name: &str) -> bool {
        self.delete::<Secret>(namespace, name)
    }

    pub fn delete_config_map(&self, namespace: &str, name: &str) -> bool {
        self.delete::<ConfigMap>(namespace, name)
    }

    /// The current (global) resource version.
    pub fn resource_version(&self) -> u64 {
        self.shared.state().rv
    }

    /// Forgets every event so far, as etcd compaction does: a watch (or a
    /// `continue` token) from an older resource version now gets 410 Gone,
    /// and the client must list again. Open watches that are behind end
    /// with the same error.
    pub fn expire_history(&self) {
        let mut state = self.shared.state();
        state.compacted = state.rv;
        state.history.clear();
        self.shared.changed.notify_all();
    }

    /// Closes every open connection abruptly (watches mid-stream, idle
    /// keep-alive connections): no final chunk, no response.
    pub fn drop_connections(&self) {
        self.shared.state().epoch += 1;
        self.shared.changed.notify_all();
        for (_, conn) in self.shared.connections.lock().unwrap().drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }

    /// While down, every new connection is closed at once, unanswered;
    /// going down also drops the open ones.
    pub fn set_down(&self, down: bool) {
        self.shared.state().down = down;
        if down {
            self.drop_connections();
        }
    }

    /// Every request for a resource in `namespace` gets 403.
    pub fn forbid_namespace(&self, namespace: &str) {
        self.forbid(None, Some(namespace));
    }

    /// Every request for a resource at the cluster scope gets 403.
    pub fn forbid_cluster_scope(&self) {
        self.forbid(None, None);
    }

    /// 403 for `resource` (all when `None`) in `namespace` (the cluster
    /// scope when `None`).
    pub fn forbid(&self, resource: Option<Resource>, namespace: Option<&str>) {
        self.shared.state().forbidden.push(Forbidden {
            namespace: namespace.map(str::to_string),
            resource,
            message: None,
        });
    }

    /// Every request in `namespace` gets 403 with `message` as the
    /// Status message (an API server's or admission webhook's own words).
    pub fn forbid_namespace_saying(&self, namespace: &str, message: &str) {
        self.shared.state().forbidden.push(Forbidden {
            namespace: Some(namespace.to_string()),
            resource: None,
            message: Some(message.to_string()),
        });
    }

    /// Lifts every `forbid*`.
    pub fn allow_all(&self) {
        self.shared.state().forbidden.clear();
    }

    /// The bearer token accepted from now on (others get 401).
    pub fn set_token(&self, token: &str) {
        self.shared.state().token = token.to_string();
    }

    /// The next `n` requests get 429 Too Many Requests with `Retry-After: 1`.
    pub fn throttle(&self, n: u32) {
        self.shared.state().throttled = n;
    }

    pub fn set_bookmark_interval(&self, interval: Duration) {
        self.shared.state().bookmark_interval = interval;
        self.shared.changed.notify_all();
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Logged> {
        self.shared.log().clone()
    }

    pub fn clear_requests(&self) {
        self.shared.log().clear();
    }

    /// Requests a namespace-scoped Role could not have allowed.
    pub fn cluster_scoped_requests(&self) -> Vec<Logged> {
        self.requests()
            .into_iter()
            .filter(Logged::is_cluster_scoped)
            .collect()
    }

    /// Every object sent so far, by LIST or WATCH.
    pub fn sent(&self) -> Vec<Sent> {
        self.shared
            .log()
            .iter()
            .flat_map(|l| l.sent.iter().cloned())
            .collect()
    }

    /// Watches streaming right now.
    pub fn open_watches(&self) -> usize {
        self.shared.watches.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` watches are open; `false` on timeout.
    pub fn wait_for_watches(&self, n: usize, limit: Duration) -> bool {
        let started = Instant::now();
        while self.open_watches() < n {
            if started.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.drop_connections();
        // Wake the acceptor so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Stores `obj` at the next resource version and records the event.
fn store<T: ApiObject>(state: &mut State, mut obj: T) -> u64 {
    let resource = T::RESOURCE;
    let namespace = if resource.namespaced() {
        obj.metadata().namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let name = obj.metadata().name.clone().expect("an object needs a name");
    let key = (resource, namespace.clone(), name.clone());
    let previous = state.objects.get(&key).cloned();
    state.rv += 1;
    let rv = state.rv;
    let (uid, created) = match &previous {
        Some(p) => (p.uid.clone(), p.created.clone()),
        None => {
            state.next_uid += 1;
            (
                format!("00000000-0000-4000-8000-{:012x}", state.next_uid),
                Some(Time(k8s_openapi::jiff::Timestamp::now())),
            )
        }
    };
    let meta = obj.metadata_mut();
    meta.resource_version = Some(rv.to_string());
    meta.uid = Some(uid.clone());
    meta.creation_timestamp = created.clone();
    let labels = meta.labels.clone().unwrap_or_default();
    let stored = Arc::new(Stored {
        resource,
        namespace,
        name,
        labels,
        secret_type: obj.secret_type().map(str::to_string),
        uid,
        created,
        rv,
        json: serde_json::to_string(&obj).expect("serialize the object"),
    });
    state.objects.insert(key, stored.clone());
    state.history.push(Event {
        rv,
        change: if previous.is_some() {
            Change::Modified
        } else {
            Change::Added
        },
        object: stored,
        previous,
    });
    rv
}

fn accept(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        if shared.state().down {
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = shared.next_connection.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            shared.connections.lock().unwrap().insert(id, clone);
        }
        let conn = shared.clone();
        let _ = std::thread::Builder::new()
            .name("apiserver-conn".into())
            .spawn(move || {
                connection(&conn, stream);
                conn.connections.lock().unwrap().remove(&id);
            });
    }
}

/// A parsed request head.
struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    authorization: Option<String>,
    close: bool,
}

impl Request {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Serves requests on one keep-alive connection until either side closes.
fn connection(shared: &Shared, stream: TcpStream) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    while let Some(request) = read_request(&mut reader) {
        let keep_alive = handle(shared, &request, &mut out);
        if !keep_alive || request.close || shared.stop.load(Ordering::SeqCst) {
            break;
        }
    }
    let _ = out.shutdown(Shutdown::Both);
}

fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut authorization = None;
    let mut close = false;
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "authorization" => authorization = Some(value.to_string()),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            "content-length" => length = value.parse().ok()?,
            _ => {}
        }
    }
    // No handler reads a body; skip it to keep the connection in step.
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Request {
        method,
        path: percent_decode(path),
        query: query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect(),
        authorization,
        close,
    })
}

/// `application/x-www-form-urlencoded` decoding, as kube encodes queries.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where a path leads.
enum Route {
    Version,
    Collection {
        resource: Resource,
        namespace: Option<String>,
    },
    Item {
        resource: Resource,
        namespace: Option<String>,
        name: String,
    },
    NotFound,
}

fn route(path: &str) -> Route {
    if path == "/version" {
        return Route::Version;
    }
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return Route::NotFound;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let resource = |s: &str| Resource::from_plural(s);
    match segments.as_slice() {
        [r] => match resource(r) {
            Some(resource) => Route::Collection {
                resource,
                namespace: None,
            },
            None => Route::NotFound,
        },
        ["namespaces", ns] if !ns.is_empty() => Route::Item {
            resource: Resource::Namespaces,
            namespace: None,
            name: ns.to_string(),
        },
        ["namespaces", ns, r] => match resource(r) {
            Some(resource) if resource.namespaced() && !ns.is_empty() => Route::Collection {
                resource,
                namespace: Some(ns.to_string()),
            },
            _ => Route::NotFound,
        },
        ["namespaces", ns, r, name] => match resource(r) {
            Some(resource) if resource.namespaced() && !ns.is_empty() && !name.is_empty() => {
                Route::Item {
                    resource,
                    namespace: Some(ns.to_string()),
                    name: name.to_string(),
                }
            }
            _ => Route::NotFound,
        },
        _ => Route::NotFound,
    }
}

/// A failure as the API server reports it: an HTTP status and a `Status` body.
struct Failure {
    code: u16,
    reason: &'static str,
    message: String,
    kind: Option<String>,
    name: Option<String>,
    retry_after: Option<i32>,
}

impl Failure {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            reason,
            message: message.into(),
            kind: None,
            name: None,
            retry_after: None,
        }
    }

    fn status(&self) -> Status {
        let details = (self.kind.is_some() || self.name.is_some() || self.retry_after.is_some())
            .then(|| StatusDetails {
                kind: self.kind.clone(),
                name: self.name.clone(),
                retry_after_seconds: self.retry_after,
                ..StatusDetails::default()
            });
        Status {
            code: Some(self.code.into()),
            details,
            message: Some(self.message.clone()),
            metadata: ListMeta::default(),
            reason: Some(self.reason.to_string()),
            status: Some("Failure".to_string()),
        }
    }

    fn json(&self) -> String {
        serde_json::to_string(&self.status()).expect("serialize a Status")
    }

    fn gone(message: impl Into<String>) -> Failure {
        Failure::new(410, "Expired", message)
    }
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        429 => "Too Many Requests",
        _ => "Error",
    }
}

fn respond(out: &mut impl Write, code: u16, extra: &[(&str, &str)], body: &str) -> bool {
    let mut head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        reason_phrase(code),
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
        .and_then(|_| out.write_all(body.as_bytes()))
        .and_then(|_| out.flush())
        .is_ok()
}

/// Answers one request; `false` when the connection must close.
fn handle(shared: &Shared, request: &Request, out: &mut TcpStream) -> bool {
    let index = {
        let mut log = shared.log();
        log.push(Logged {
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            status: 0,
            sent: Vec::new(),
            received: Instant::now(),
        });
        log.len() - 1
    };
    let set_status = |code: u16| {
        if let Some(entry) = shared.log().get_mut(index) {
            entry.status = code;
        }
    };
    match answer(shared, request) {
        Err(failure) => {
            set_status(failure.code);
            let retry = failure.retry_after.map(|s| s.to_string());
            let extra: Vec<(&str, &str)> =
                retry.iter().map(|s| ("Retry-After", s.as_str())).collect();
            respond(out, failure.code, &extra, &failure.json())
        }
        Ok(Answer::Body(body)) => {
            set_status(200);
            respond(out, 200, &[], &body)
        }
        Ok(Answer::Page(body, sent)) => {
            if let Some(entry) = shared.log().get_mut(index) {
                entry.status = 200;
                entry.sent = sent;
            }
            respond(out, 200, &[], &body)
        }
        Ok(Answer::Watch(watch)) => {
            set_status(200);
            shared.watches.fetch_add(1, Ordering::SeqCst);
            stream_watch(shared, watch, index, out);
            shared.watches.fetch_sub(1, Ordering::SeqCst);
            false
        }
    }
}

enum Answer {
    Body(String),
    Page(String, Vec<Sent>),
    Watch(Watch),
}

fn verb(request: &Request, item: bool) -> &'static str {
    if matches!(request.param("watch"), Some("true" | "1")) {
        "watch"
    } else if item {
        "get"
    } else {
        "list"
    }
}

fn answer(shared: &Shared, request: &Request) -> Result<Answer, Failure> {
    let mut state = shared.state();
    let bearer = request
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "));
    if bearer != Some(state.token.as_str()) {
        return Err(Failure::new(401, "Unauthorized", "Unauthorized"));
    }
    if state.throttled > 0 {
        state.throttled -= 1;
        let mut f = Failure::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        );
        f.retry_after = Some(1);
        return Err(f);
    }
    let route = route(&request.path);
    if request.method != "GET" && !matches!(route, Route::NotFound) {
        return Err(Failure::new(
            405,
            "MethodNotAllowed",
            format!(
                "the test API server only serves GET, not {}",
                request.method
            ),
        ));
    }
    let (resource, namespace, name) = match route {
        Route::Version => {
            return Ok(Answer::Body(
                serde_json::json!({
                    "major": "1", "minor": "33", "gitVersion": "v1.33.0-lapse-test",
                    "platform": "linux/amd64"
                })
                .to_string(),
            ));
        }
        Route::NotFound => {
            return Err(Failure::new(
                404,
                "NotFound",
                format!(
                    "the server could not find the requested resource ({} {})",
                    request.method, request.path
                ),
            ));
        }
        Route::Collection {
            resource,
            namespace,
        } => (resource, namespace, None),
        Route::Item {
            resource,
            namespace,
            name,
        } => (resource, namespace, Some(name)),
    };
    let verb = verb(request, name.is_some());
    let plural = resource.plural();
    let forbidden = state.forbidden.iter().find(|f| {
        f.resource.is_none_or(|r| r == resource) && f.namespace.as_deref() == namespace.as_deref()
    });
    if let Some(forbidden) = forbidden {
        let what = match &name {
            Some(n) => format!("{plural} \"{n}\""),
            None => plural.to_string(),
        };
        let scope = match &namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        let message = forbidden.message.clone().unwrap_or_else(|| {
            format!(
                "{what} is forbidden: User \"{USER}\" cannot {verb} resource \"{plural}\" in API group \"\" {scope}"
            )
        });
        let mut f = Failure::new(403, "Forbidden", message);
        f.kind = Some(plural.to_string());
        f.name = name.clone();
        return Err(f);
    }
    let selectors = Selectors::parse(request, resource)?;
    if let Some(name) = name {
        if verb == "watch" {
            return Err(Failure::new(
                400,
                "BadRequest",
                "watch a single object with fieldSelector=metadata.name instead",
            ));
        }
        let key = (resource, namespace.unwrap_or_default(), name.clone());
        return match state.objects.get(&key) {
            Some(obj) => Ok(Answer::Body(obj.json.clone())),
            None => {
                let mut f = Failure::new(404, "NotFound", format!("{plural} \"{name}\" not found"));
                f.kind = Some(plural.to_string());
                f.name = Some(name);
                Err(f)
            }
        };
    }
    if verb == "watch" {
        let timeout = request
            .param("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(1800);
        return Ok(Answer::Watch(Watch {
            resource,
            namespace,
            selectors,
            from: request.param("resourceVersion").map(str::to_string),
            bookmarks: request.param("allowWatchBookmarks") == Some("true"),
            initial_events: request.param("sendInitialEvents") == Some("true"),
            deadline: Instant::now() + Duration::from_secs(timeout),
        }));
    }
    list(&state, resource, namespace, &selectors, request)
}

/// A continue token: the snapshot's resource version and the last key sent.
#[derive(serde::Serialize, serde::Deserialize)]
struct Continue {
    rv: u64,
    after: (String, String),
}

fn list(
    state: &State,
    resource: Resource,
    namespace: Option<String>,
    selectors: &Selectors,
    request: &Request,
) -> Result<Answer, Failure> {
    let limit = request
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&l| l > 0)
        .unwrap_or(usize::MAX);
    let (snapshot, after) = match request.param("continue") {
        None | Some("") => (state.rv, None),
        Some(token) => {
            let token: Continue = STANDARD
                .decode(token)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| Failure::new(400, "BadRequest", "continue key is not valid"))?;
            if token.rv < state.compacted {
                return Err(Failure::gone(
                    "The provided continue parameter is too old to display a consistent list result. \
                     You can start a new list without the continue parameter.",
                ));
            }
            (token.rv, Some(token.after))
        }
    };
    let ns = namespace.clone().unwrap_or_default();
    let start = match &after {
        Some((n, name)) => std::ops::Bound::Excluded((resource, n.clone(), name.clone())),
        None => std::ops::Bound::Included((
            resource,
            if namespace.is_some() {
                ns.clone()
            } else {
                String::new()
            },
            String::new(),
        )),
    };
    let mut items = Vec::new();
    let mut more = false;
    for ((r, n, _), obj) in state.objects.range((start, std::ops::Bound::Unbounded)) {
        if *r != resource || (namespace.is_some() && *n != ns) {
            break;
        }
        if !selectors.matches(obj) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(obj);
    }
    let continue_ = more.then(|| {
        let last = items.last().expect("a full page");
        STANDARD.encode(
            serde_json::to_vec(&Continue {
                rv: snapshot,
                after: (last.namespace.clone(), last.name.clone()),
            })
            .expect("serialize a continue token"),
        )
    });
    let meta = ListMeta {
        continue_,
        resource_version: Some(snapshot.to_string()),
        ..ListMeta::default()
    };
    let mut body =
        String::with_capacity(items.iter().map(|o| o.json.len() + 1).sum::<usize>() + 128);
    body.push_str(&format!(
        "{{\"kind\":\"{}List\",\"apiVersion\":\"v1\",\"metadata\":{},\"items\":[",
        resource.kind(),
        serde_json::to_string(&meta).expect("serialize ListMeta")
    ));
    for (i, obj) in items.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&obj.json);
    }
    body.push_str("]}");
    let sent = items.iter().map(|o| sent(o, "LIST")).collect();
    Ok(Answer::Page(body, sent))
}

fn sent(obj: &Stored, how: &'static str) -> Sent {
    Sent {
        resource: obj.resource,
        namespace: obj.namespace.clone(),
        name: obj.name.clone(),
        secret_type: obj.secret_type.clone(),
        how,
    }
}

/// One label selector requirement.
#[derive(Debug)]
enum Label {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// One field selector requirement: field, value, and whether it must equal.
#[derive(Debug)]
struct Field {
    field: String,
    value: String,
    equal: bool,
}

#[derive(Debug, Default)]
struct Selectors {
    labels: Vec<Label>,
    fields: Vec<Field>,
}

impl Selectors {
    fn parse(request: &Request, resource: Resource) -> Result<Selectors, Failure> {
        let bad = |m: String| Failure::new(400, "BadRequest", m);
        let mut selectors = Selectors::default();
        if let Some(text) = request.param("labelSelector") {
            for term in split_top_level(text) {
                selectors.labels.push(parse_label(term).map_err(bad)?);
            }
        }
        if let Some(text) = request.param("fieldSelector") {
            for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let (field, value, equal) = if let Some((f, v)) = term.split_once("!=") {
                    (f, v, false)
                } else if let Some((f, v)) = term.split_once("==") {
                    (f, v, true)
                } else if let Some((f, v)) = term.split_once('=') {
                    (f, v, true)
                } else {
                    return Err(bad(format!("invalid field selector: {term:?}")));
                };
                let field = field.trim();
                if !resource.supports_field(field) {
                    return Err(bad(format!("field label not supported: {field}")));
                }
                selectors.fields.push(Field {
                    field: field.to_string(),
                    value: value.trim().to_string(),
                    equal,
                });
            }
        }
        Ok(selectors)
    }

    fn matches(&self, obj: &Stored) -> bool {
        let label = |k: &String| obj.labels.get(k);
        self.labels.iter().all(|req| match req {
            Label::Equals(k, v) => label(k) == Some(v),
            Label::NotEquals(k, v) => label(k) != Some(v),
            Label::Exists(k) => label(k).is_some(),
            Label::NotExists(k) => label(k).is_none(),
            Label::In(k, vs) => label(k).is_some_and(|v| vs.contains(v)),
            Label::NotIn(k, vs) => label(k).is_none_or(|v| !vs.contains(v)),
        }) && self
            .fields
            .iter()
            .all(|f| (obj.field(&f.field).unwrap_or("") == f.value) == f.equal)
    }
}

/// Splits on commas outside parentheses (`a in (x,y),b`).
fn split_top_level(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn parse_label(term: &str) -> Result<Label, String> {
    let valid = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    };
    let key = |k: &str| {
        let k = k.trim();
        if valid(k) {
            Ok(k.to_string())
        } else {
            Err(format!(
                "unable to parse requirement: invalid label key {k:?}"
            ))
        }
    };
    if let Some((head, values)) = term.split_once('(') {
        let values: Vec<String> = values
            .trim_end()
            .strip_suffix(')')
            .ok_or_else(|| format!("unable to parse requirement: {term:?}"))?
            .split(',')
            .map(|v| v.trim().to_string())
            .collect();
        let head = head.trim();
        if let Some(k) = head.strip_suffix(" notin") {
            return Ok(Label::NotIn(key(k)?, values));
        }
        if let Some(k) = head.strip_suffix(" in") {
            return Ok(Label::In(key(k)?, values));
        }
        return Err(format!("unable to parse requirement: {term:?}"));
    }
    if let Some(k) = term.strip_prefix('!') {
        return Ok(Label::NotExists(key(k)?));
    }
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(Label::NotEquals(key(k)?, v.trim().to_string()));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(Label::Equals(key(k)?, v.trim().to_string()));
    }
    Ok(Label::Exists(key(term)?))
}

/// An open watch, as requested.
struct Watch {
    resource: Resource,
    namespace: Option<String>,
    selectors: Selectors,
    from: Option<String>,
    bookmarks: bool,
    initial_events: bool,
    deadline: Instant,
}

impl Watch {
    fn in_scope(&self, obj: &Stored) -> bool {
        obj.resource == self.resource
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == obj.namespace)
    }

    /// What this watch sees of `event`: its type and object JSON.
    fn view(&self, event: &Event) -> Option<(&'static str, Arc<Stored>)> {
        if !self.in_scope(&event.object) {
            return None;
        }
        let now = self.selectors.matches(&event.object);
        match event.change {
            Change::Added => now.then(|| ("ADDED", event.object.clone())),
            Change::Deleted => now.then(|| ("DELETED", event.object.clone())),
            Change::Modified => {
                let before = event
                    .previous
                    .as_ref()
                    .is_some_and(|p| self.selectors.matches(p));
                match (before, now) {
                    (true, true) => Some(("MODIFIED", event.object.clone())),
                    (false, true) => Some(("ADDED", event.object.clone())),
                    // No longer selected: gone, as far as this watch knows.
                    (true, false) => Some((
                        "DELETED",
                        Arc::new(
                            event
                                .previous
                                .as_ref()
                                .expect("a previous version")
                                .at_version(event.rv),
                        ),
                    )),
                    (false, false) => None,
                }
            }
        }
    }

    fn bookmark(&self, rv: u64, annotations: &str) -> String {
        format!(
            "{{\"type\":\"BOOKMARK\",\"object\":{{\"kind\":\"{}\",\"apiVersion\":\"v1\",\"metadata\":{{\"resourceVersion\":\"{rv}\"{annotations}}}}}}}\n",
            self.resource.kind()
        )
    }
}

fn event_line(how: &str, obj: &Stored) -> String {
    format!("{{\"type\":\"{how}\",\"object\":{}}}\n", obj.json)
}

fn error_line(failure: &Failure) -> String {
    format!("{{\"type\":\"ERROR\",\"object\":{}}}\n", failure.json())
}

fn chunk(out: &mut impl Write, data: &str) -> std::io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    write!(out, "{:x}\r\n", data.len())?;
    out.write_all(data.as_bytes())?;
    out.write_all(b"\r\n")
}

fn too_old(rv: u64, compacted: u64) -> Failure {
    Failure::gone(format!("too old resource version: {rv} ({compacted})"))
}

/// Streams a watch until its timeout (a clean end), a 410 (an `ERROR`
/// event, then a clean end), `drop_connections` or a write error (abrupt).
fn stream_watch(shared: &Shared, watch: Watch, index: usize, stream: &mut TcpStream) {
    let mut out = BufWriter::new(stream);
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if out.write_all(head.as_bytes()).is_err() {
        return;
    }
    let record = |batch: Vec<Sent>| {
        if !batch.is_empty()
            && let Some(entry) = shared.log().get_mut(index)
        {
            entry.sent.extend(batch);
        }
    };

    let mut state = shared.state();
    let epoch = state.epoch;
    let mut text = String::new();
    let mut batch = Vec::new();
    // Where this watch starts: every current object first (no version, or
    // "0", or sendInitialEvents), else the events after `from`.
    let requested = watch.from.as_deref().filter(|v| !v.is_empty() && *v != "0");
    let mut last = match requested {
        None => {
            for obj in state.objects.values() {
                if watch.in_scope(obj) && watch.selectors.matches(obj) {
                    text.push_str(&event_line("ADDED", obj));
                    batch.push(sent(obj, "ADDED"));
                }
            }
            if watch.initial_events && watch.bookmarks {
                text.push_str(&watch.bookmark(
                    state.rv,
                    ",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}",
                ));
            }
            state.rv
        }
        Some(v) => match v.parse::<u64>() {
            Ok(rv) if rv >= state.compacted => rv,
            Ok(rv) => {
                let error = error_line(&too_old(rv, state.compacted));
                drop(state);
                let _ = chunk(&mut out, &error).and_then(|_| out.write_all(b"0\r\n\r\n"));
                let _ = out.flush();
                return;
            }
            Err(_) => {
                let error = error_line(&Failure::new(
                    400,
                    "BadRequest",
                    format!("invalid resource version: {v:?}"),
                ));
                drop(state);
                let _ = chunk(&mut out, &error).and_then(|_| out.write_all(b"0\r\n\r\n"));
                let _ = out.flush();
                return;
            }
        },
    };
    let mut next_bookmark = Instant::now() + state.bookmark_interval;
    loop {
        if state.epoch != epoch || shared.stop.load(Ordering::SeqCst) {
            return; // Abrupt: the socket is already shut down.
        }
        if last < state.compacted {
            // Fell behind events that no longer exist.
            let error = error_line(&too_old(last, state.compacted));
            drop(state);
            let _ = chunk(&mut out, &text)
                .and_then(|_| chunk(&mut out, &error))
                .and_then(|_| out.write_all(b"0\r\n\r\n"));
            let _ = out.flush();
            record(batch);
            return;
        }
        let first = state.history.partition_point(|e| e.rv <= last);
        for event in &state.history[first..] {
            if let Some((how, obj)) = watch.view(event) {
                text.push_str(&event_line(how, &obj));
                batch.push(sent(&obj, how));
            }
        }
        last = last.max(state.rv);
        let now = Instant::now();
        if watch.bookmarks && now >= next_bookmark {
            text.push_str(&watch.bookmark(last, ""));
            next_bookmark = now + state.bookmark_interval;
        }
        let done = now >= watch.deadline;
        if !text.is_empty() || done {
            drop(state);
            let written = chunk(&mut out, &std::mem::take(&mut text)).and_then(|_| out.flush());
            record(std::mem::take(&mut batch));
            if written.is_err() {
                return;
            }
            if done {
                let _ = out.write_all(b"0\r\n\r\n").and_then(|_| out.flush());
                return;
            }
            state = shared.state();
            continue;
        }
        let wake = if watch.bookmarks {
            next_bookmark.min(watch.deadline)
        } else {
            watch.deadline
        };
        let wait = wake.saturating_duration_since(now);
        state = shared
            .changed
            .wait_timeout(state, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}
