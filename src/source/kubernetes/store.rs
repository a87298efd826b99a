//! The Kubernetes source's derived state, and how watch events change it.
//!
//! [`Store::apply`] is the one place an event (a LIST's start, item and
//! end, an added, modified or deleted object, a failure) changes what the
//! source reports. It is synchronous and pure: no client, no runtime, no
//! clock (the time comes in with the event), no metrics; what the caller
//! must do afterwards (count, log, publish, fetch a Secret again) comes
//! back as an [`Effect`]. Only derived credentials are stored, never a
//! payload, and never a password outside `from_secrets`.

use super::config::KubernetesConfig;
use super::derive::{Derive, ObjectKey, ObjectKind, derive};
use crate::credential::{ErrorEntry, ErrorReason, Timestamp};
use crate::inventory::{Part, SourceReport};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// What one watcher covers: a kind, cluster-wide or in one namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    pub kind: ObjectKind,
    pub namespace: Option<String>,
}

impl Scope {
    /// Every scope a configuration watches: Secrets (then ConfigMaps, when
    /// enabled), cluster-wide or once per configured namespace.
    pub fn all(config: &KubernetesConfig) -> Vec<Scope> {
        let mut kinds = vec![ObjectKind::Secret];
        if config.configmaps {
            kinds.push(ObjectKind::ConfigMap);
        }
        let namespaces: Vec<Option<String>> = if config.namespaces.is_empty() {
            vec![None]
        } else {
            config.namespaces.iter().cloned().map(Some).collect()
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

    pub fn endpoint(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("/api/v1/namespaces/{ns}/{}", self.kind.plural()),
            None => format!("/api/v1/{}", self.kind.plural()),
        }
    }

    /// "cluster-wide" or "in namespace NS", for error messages.
    pub fn place(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "cluster-wide".to_string(),
        }
    }

    pub fn covers(&self, key: &ObjectKey) -> bool {
        key.kind == self.kind
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == key.namespace)
    }

    /// The field selector sent with this scope's LIST and WATCH, so that
    /// Helm payloads and excluded namespaces never arrive.
    pub fn field_selector(&self, config: &KubernetesConfig) -> Option<String> {
        let mut fields: Vec<String> = Vec::new();
        if self.kind == ObjectKind::Secret {
            fields.extend(
                config
                    .exclude_secret_types
                    .iter()
                    .map(|t| format!("type!={t}")),
            );
        }
        if self.namespace.is_none() {
            fields.extend(
                config
                    .exclude_namespaces
                    .iter()
                    .map(|n| format!("metadata.namespace!={n}")),
            );
        }
        (!fields.is_empty()).then(|| fields.join(","))
    }
}

/// One thing that happened to a scope, as the watcher (or a one-shot
/// LIST) reports it.
#[derive(Debug)]
pub enum Event<K> {
    /// A LIST starts: what it returns replaces the scope.
    Init,
    /// An object of that LIST.
    InitApply(K),
    /// The LIST is complete.
    InitDone,
    /// An object was added or modified.
    Apply(K),
    Delete(K),
    /// A request failed, already described (see `describe`). A 410 or a
    /// 429 is retried, so it leaves the scope as it was.
    Failed(ErrorReason, String),
    /// A LIST that will not be retried failed: the scope is down, whatever
    /// the reason.
    GaveUp(ErrorReason, String),
}

/// What the caller does after an event.
#[derive(Debug, Default, PartialEq)]
pub struct Effect {
    /// The report changed: publish.
    pub changed: bool,
    /// Reasons to add to `lapse_errors_total`, one per error.
    pub counted: Vec<ErrorReason>,
    /// A LIST completed with this many objects in its scope.
    pub listed: Option<usize>,
    /// A failure whose message differs from the scope's last one: log it.
    pub new_failure: bool,
    /// Secrets to fetch again (GET) and hand to [`Store::refetched`]:
    /// keystores no password opened, now that another one is known.
    pub refetch: Vec<ObjectKey>,
}

/// The derived state: parts by object, errors by scope.
pub struct Store {
    config: Arc<KubernetesConfig>,
    objects: BTreeMap<ObjectKey, Arc<Part>>,
    /// Re-list in progress: what it has seen so far.
    relisting: BTreeMap<Scope, BTreeMap<ObjectKey, Arc<Part>>>,
    errors: BTreeMap<Scope, ErrorEntry>,
    /// Scopes that listed at least once, or failed at least once.
    settled: HashSet<Scope>,
    last_change: Option<Timestamp>,
    /// Passwords read from password Secrets, by (namespace, name, key).
    from_secrets: BTreeMap<(String, String, String), String>,
}

impl Store {
    pub fn new(config: Arc<KubernetesConfig>) -> Self {
        Store {
            config,
            objects: BTreeMap::new(),
            relisting: BTreeMap::new(),
            errors: BTreeMap::new(),
            settled: HashSet::new(),
            last_change: None,
            from_secrets: BTreeMap::new(),
        }
    }

    /// Configured passwords, then those read from password Secrets.
    fn all_passwords(&self) -> Vec<String> {
        self.config
            .passwords
            .iter()
            .chain(self.from_secrets.values())
            .cloned()
            .collect()
    }

    /// Secrets holding a keystore no known password opened. Only Secret
    /// scopes fetch again: a ConfigMap scope has no password Secrets.
    fn locked_keystores(&self, scope: &Scope) -> Vec<ObjectKey> {
        if scope.kind != ObjectKind::Secret {
            return Vec::new();
        }
        self.objects
            .iter()
            .filter(|(k, _)| k.kind == ObjectKind::Secret)
            .filter(|(_, p)| p.errors.iter().any(|e| e.reason == ErrorReason::Password))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Remembers the value of a configured password Secret; true when it is new.
    fn learn_password<K: Derive>(&mut self, obj: &K) -> bool {
        let Some(values) = obj.secret_values() else {
            return false;
        };
        let key = obj.key();
        let mut learned = false;
        for (ns, name, field) in &self.config.password_secrets {
            if *ns != key.namespace || *name != key.name {
                continue;
            }
            let Some(value) = values.get(field.as_str()) else {
                continue;
            };
            let id = (ns.clone(), name.clone(), field.clone());
            if self.from_secrets.get(&id) != Some(value) {
                self.from_secrets.insert(id, value.clone());
                learned = true;
            }
        }
        learned
    }

    /// One event of `scope`, at time `now`.
    pub fn apply<K: Derive>(&mut self, scope: &Scope, event: Event<K>, now: Timestamp) -> Effect {
        let mut effect = Effect::default();
        match event {
            Event::Init => {
                self.relisting.insert(scope.clone(), BTreeMap::new());
            }
            Event::InitApply(obj) => {
                self.learn_password(&obj);
                if let Some((key, part)) = derive(&self.all_passwords(), &obj, &self.config) {
                    effect.counted.extend(part.errors.iter().map(|e| e.reason));
                    self.relisting
                        .entry(scope.clone())
                        .or_default()
                        .insert(key, part);
                }
            }
            Event::InitDone => {
                let fresh = self.relisting.remove(scope).unwrap_or_default();
                self.objects.retain(|k, _| !scope.covers(k));
                self.objects.extend(fresh);
                self.errors.remove(scope);
                self.settled.insert(scope.clone());
                self.last_change = Some(now);
                effect.listed = Some(self.objects.keys().filter(|k| scope.covers(k)).count());
                // A password Secret listed after its keystore: open it now.
                if !self.from_secrets.is_empty() {
                    effect.refetch = self.locked_keystores(scope);
                }
                effect.changed = true;
            }
            Event::Apply(obj) => {
                let key = obj.key();
                if self.learn_password(&obj) {
                    effect.refetch = self.locked_keystores(scope);
                }
                match derive(&self.all_passwords(), &obj, &self.config) {
                    Some((key, part)) => {
                        effect.counted.extend(part.errors.iter().map(|e| e.reason));
                        self.objects.insert(key, part);
                    }
                    None => {
                        self.objects.remove(&key);
                    }
                }
                self.errors.remove(scope);
                self.last_change = Some(now);
                effect.changed = true;
            }
            Event::Delete(obj) => {
                self.objects.remove(&obj.key());
                self.last_change = Some(now);
                effect.changed = true;
            }
            Event::Failed(reason, message) => {
                // 410 and 429 are the API working as designed: counted,
                // and recovered from, without taking the source down.
                let down = !matches!(reason, ErrorReason::Expired | ErrorReason::Throttled);
                self.failed(scope, reason, message, down, &mut effect);
            }
            Event::GaveUp(reason, message) => {
                self.failed(scope, reason, message, true, &mut effect);
            }
        }
        effect
    }

    fn failed(
        &mut self,
        scope: &Scope,
        reason: ErrorReason,
        message: String,
        down: bool,
        effect: &mut Effect,
    ) {
        effect.counted.push(reason);
        effect.new_failure = self
            .errors
            .get(scope)
            .is_none_or(|old| old.message != message);
        if down {
            self.errors.insert(
                scope.clone(),
                ErrorEntry {
                    path: scope.endpoint(),
                    entry: None,
                    reason,
                    message,
                },
            );
            self.settled.insert(scope.clone());
            effect.changed = true;
        }
    }

    /// A Secret fetched again after [`Effect::refetch`]: derived with every
    /// password known now.
    pub fn refetched<K: Derive>(&mut self, obj: &K) {
        if let Some((key, part)) = derive(&self.all_passwords(), obj, &self.config) {
            self.objects.insert(key, part);
        }
    }

    /// The report to publish, once every one of `scopes` has settled.
    pub fn report(&self, scopes: &[Scope]) -> Option<SourceReport> {
        if !scopes.iter().all(|scope| self.settled.contains(scope)) {
            return None;
        }
        Some(SourceReport {
            parts: self.objects.values().cloned().collect(),
            errors: self.errors.values().cloned().collect(),
            up: self.errors.is_empty(),
            last_scan: self.last_change,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::derive::fixtures::*;
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};

    const T0: Timestamp = 1_700_000_000;

    fn store(config: KubernetesConfig) -> Store {
        Store::new(Arc::new(config))
    }

    fn cluster(kind: ObjectKind) -> Scope {
        Scope {
            kind,
            namespace: None,
        }
    }

    fn tls(namespace: &str, name: &str) -> Secret {
        let (pem, _, _) = cert(name);
        secret(
            namespace,
            name,
            "kubernetes.io/tls",
            &[("tls.crt", pem.as_bytes())],
        )
    }

    fn list<K: Derive>(s: &mut Store, scope: &Scope, objects: Vec<K>, now: Timestamp) -> Effect {
        s.apply::<K>(scope, Event::Init, now);
        for obj in objects {
            s.apply(scope, Event::InitApply(obj), now);
        }
        s.apply::<K>(scope, Event::InitDone, now)
    }

    fn paths(report: &SourceReport) -> Vec<String> {
        report
            .parts
            .iter()
            .map(|p| p.path.display().to_string())
            .collect()
    }

    #[test]
    fn nothing_is_reported_until_every_scope_settled() {
        let config = KubernetesConfig::default();
        let scopes = Scope::all(&config);
        let mut s = store(config);
        assert!(s.report(&scopes).is_none());
        let effect = list(&mut s, &scopes[0], vec![tls("web", "a")], T0);
        assert_eq!(effect.listed, Some(1));
        assert!(effect.changed);
        assert!(s.report(&scopes).is_none(), "ConfigMaps not listed yet");
        list::<ConfigMap>(&mut s, &scopes[1], vec![], T0 + 1);
        let r = s.report(&scopes).unwrap();
        assert!(r.up && r.errors.is_empty());
        assert_eq!(paths(&r), ["/api/v1/namespaces/web/secrets/a"]);
        assert_eq!(r.last_scan, Some(T0 + 1));
    }

    #[test]
    fn a_relist_removes_objects_that_vanished_meanwhile() {
        let scope = cluster(ObjectKind::Secret);
        let scopes = [scope.clone()];
        let mut s = store(KubernetesConfig::default());
        list(&mut s, &scope, vec![tls("web", "a"), tls("web", "b")], T0);
        assert_eq!(s.report(&scopes).unwrap().parts.len(), 2);
        // Until the relist completes, what was there stays.
        s.apply::<Secret>(&scope, Event::Init, T0 + 5);
        s.apply(&scope, Event::InitApply(tls("web", "b")), T0 + 5);
        s.apply(&scope, Event::InitApply(tls("web", "c")), T0 + 5);
        assert_eq!(s.report(&scopes).unwrap().parts.len(), 2);
        s.apply::<Secret>(&scope, Event::InitDone, T0 + 6);
        let r = s.report(&scopes).unwrap();
        assert_eq!(
            paths(&r),
            [
                "/api/v1/namespaces/web/secrets/b",
                "/api/v1/namespaces/web/secrets/c"
            ]
        );
        assert_eq!(r.last_scan, Some(T0 + 6));
    }

    #[test]
    fn a_relist_replaces_only_its_own_scope() {
        let web = Scope {
            kind: ObjectKind::Secret,
            namespace: Some("web".into()),
        };
        let ci = Scope {
            kind: ObjectKind::Secret,
            namespace: Some("ci".into()),
        };
        let maps = Scope {
            kind: ObjectKind::ConfigMap,
            namespace: Some("web".into()),
        };
        let scopes = [web.clone(), ci.clone(), maps.clone()];
        let mut s = store(KubernetesConfig::default());
        list(&mut s, &web, vec![tls("web", "a")], T0);
        list(&mut s, &ci, vec![tls("ci", "b")], T0);
        list(&mut s, &maps, vec![config_map("web", "a", &[], &[])], T0);
        list::<Secret>(&mut s, &web, vec![], T0 + 1);
        assert_eq!(
            paths(&s.report(&scopes).unwrap()),
            [
                "/api/v1/namespaces/ci/secrets/b",
                "/api/v1/namespaces/web/configmaps/a"
            ]
        );
    }

    #[test]
    fn apply_adds_and_replaces_and_delete_removes() {
        let scope = cluster(ObjectKind::Secret);
        let scopes = [scope.clone()];
        let mut s = store(KubernetesConfig::default());
        list::<Secret>(&mut s, &scope, vec![], T0);
        let effect = s.apply(&scope, Event::Apply(tls("web", "a")), T0 + 1);
        assert!(effect.changed && effect.counted.is_empty());
        let first = s.report(&scopes).unwrap().parts[0].credentials[0].fingerprint;
        s.apply(&scope, Event::Apply(tls("web", "a")), T0 + 2);
        let r = s.report(&scopes).unwrap();
        assert_eq!(r.parts.len(), 1);
        assert_ne!(r.parts[0].credentials[0].fingerprint, first, "replaced");
        let effect = s.apply(&scope, Event::Delete(tls("web", "a")), T0 + 3);
        assert!(effect.changed);
        let r = s.report(&scopes).unwrap();
        assert!(r.parts.is_empty());
        assert_eq!(r.last_scan, Some(T0 + 3));
    }

    #[test]
    fn an_object_modified_into_an_excluded_type_goes() {
        let scope = cluster(ObjectKind::Secret);
        let config = KubernetesConfig {
            secret_types: vec!["kubernetes.io/tls".into()],
            ..KubernetesConfig::default()
        };
        let mut s = store(config);
        list(&mut s, &scope, vec![tls("web", "a")], T0);
        let mut now_opaque = tls("web", "a");
        now_opaque.type_ = Some("Opaque".into());
        s.apply(&scope, Event::Apply(now_opaque), T0 + 1);
        assert!(s.report(&[scope]).unwrap().parts.is_empty());
    }

    #[test]
    fn a_failing_scope_takes_the_source_down_and_keeps_its_last_credentials() {
        let secrets = cluster(ObjectKind::Secret);
        let maps = cluster(ObjectKind::ConfigMap);
        let scopes = [secrets.clone(), maps.clone()];
        let mut s = store(KubernetesConfig::default());
        list(&mut s, &secrets, vec![tls("web", "a")], T0);
        // A scope that never listed settles by failing.
        let message = "forbidden: cannot list configmaps cluster-wide; grant get, list and watch on configmaps";
        let effect = s.apply::<ConfigMap>(
            &maps,
            Event::Failed(ErrorReason::Forbidden, message.into()),
            T0 + 1,
        );
        assert!(effect.changed && effect.new_failure);
        assert_eq!(effect.counted, [ErrorReason::Forbidden]);
        let r = s.report(&scopes).unwrap();
        assert!(!r.up);
        assert_eq!(r.parts.len(), 1, "last good credentials stay");
        assert_eq!(
            r.errors,
            [ErrorEntry {
                path: "/api/v1/configmaps".into(),
                entry: None,
                reason: ErrorReason::Forbidden,
                message: message.into(),
            }]
        );
        // The same failure again is counted, not logged again.
        let again = s.apply::<ConfigMap>(
            &maps,
            Event::Failed(ErrorReason::Forbidden, message.into()),
            T0 + 2,
        );
        assert!(!again.new_failure);
        assert_eq!(again.counted, [ErrorReason::Forbidden]);
        // A completed list brings it back.
        list::<ConfigMap>(&mut s, &maps, vec![], T0 + 3);
        assert!(s.report(&scopes).unwrap().up);
        // So does a watch event, once the scope has listed.
        s.apply::<Secret>(
            &secrets,
            Event::Failed(
                ErrorReason::Unreachable,
                "watch secrets cluster-wide: gone".into(),
            ),
            T0 + 4,
        );
        assert!(!s.report(&scopes).unwrap().up);
        s.apply(&secrets, Event::Apply(tls("web", "b")), T0 + 5);
        assert!(s.report(&scopes).unwrap().up);
    }

    #[test]
    fn gone_and_throttled_are_counted_without_taking_the_source_down() {
        let scope = cluster(ObjectKind::Secret);
        let scopes = [scope.clone()];
        let mut s = store(KubernetesConfig::default());
        for reason in [ErrorReason::Expired, ErrorReason::Throttled] {
            let effect = s.apply::<Secret>(&scope, Event::Failed(reason, "x".into()), T0);
            assert_eq!(effect.counted, [reason]);
            assert!(!effect.changed);
        }
        assert!(s.report(&scopes).is_none(), "not settled by a 410 or a 429");
        list(&mut s, &scope, vec![tls("web", "a")], T0);
        s.apply::<Secret>(&scope, Event::Failed(ErrorReason::Expired, "x".into()), T0);
        let r = s.report(&scopes).unwrap();
        assert!(r.up && r.errors.is_empty() && r.parts.len() == 1);
        // A one-shot list that gave up on them is down, though.
        s.apply::<Secret>(
            &scope,
            Event::GaveUp(ErrorReason::Throttled, "gave up".into()),
            T0,
        );
        let r = s.report(&scopes).unwrap();
        assert!(!r.up);
        assert_eq!(r.errors[0].reason, ErrorReason::Throttled);
    }

    #[test]
    fn a_password_secret_opens_keystores_listed_before_it() {
        let scope = cluster(ObjectKind::Secret);
        let scopes = [scope.clone()];
        let config = KubernetesConfig {
            password_secrets: vec![("vault".into(), "pass".into(), "password".into())],
            ..KubernetesConfig::default()
        };
        let mut s = store(config);
        let keystore = secret(
            "web",
            "store",
            "Opaque",
            &[("keystore.p12", &pkcs12("vault-9"))],
        );
        let password = secret("vault", "pass", "Opaque", &[("password", b"vault-9\n")]);
        // Listed in order: the store first, still locked at its InitApply.
        s.apply::<Secret>(&scope, Event::Init, T0);
        let effect = s.apply(&scope, Event::InitApply(keystore.clone()), T0);
        assert_eq!(effect.counted, [ErrorReason::Password]);
        s.apply(&scope, Event::InitApply(password.clone()), T0);
        let effect = s.apply::<Secret>(&scope, Event::InitDone, T0);
        assert_eq!(effect.refetch, [keystore.key()]);
        s.refetched(&keystore);
        let r = s.report(&scopes).unwrap();
        let store_part = r.parts.iter().find(|p| p.path.ends_with("store")).unwrap();
        assert!(store_part.errors.is_empty() && !store_part.credentials.is_empty());
        // The same password again fetches nothing; a new one does.
        let effect = s.apply(&scope, Event::Apply(password), T0 + 1);
        assert!(effect.refetch.is_empty());
        let locked = secret(
            "web",
            "other",
            "Opaque",
            &[("keystore.p12", &pkcs12("new"))],
        );
        s.apply(&scope, Event::Apply(locked.clone()), T0 + 2);
        let rotated = secret("vault", "pass", "Opaque", &[("password", b"new")]);
        let effect = s.apply(&scope, Event::Apply(rotated), T0 + 3);
        assert_eq!(effect.refetch, [locked.key()]);
        // A ConfigMap scope never fetches Secrets.
        let maps = cluster(ObjectKind::ConfigMap);
        assert!(
            list::<ConfigMap>(&mut s, &maps, vec![], T0)
                .refetch
                .is_empty()
        );
    }

    #[test]
    fn scopes_and_their_server_side_filters() {
        let config = KubernetesConfig {
            exclude_namespaces: vec!["kube-public".into()],
            ..KubernetesConfig::default()
        };
        let scopes = Scope::all(&config);
        assert_eq!(
            scopes.iter().map(Scope::endpoint).collect::<Vec<_>>(),
            ["/api/v1/secrets", "/api/v1/configmaps"]
        );
        assert_eq!(
            scopes[0].field_selector(&config).as_deref(),
            Some("type!=helm.sh/release.v1,metadata.namespace!=kube-public")
        );
        assert_eq!(
            scopes[1].field_selector(&config).as_deref(),
            Some("metadata.namespace!=kube-public")
        );
        let namespaced = KubernetesConfig {
            namespaces: vec!["web".into(), "ci".into()],
            configmaps: false,
            exclude_secret_types: Vec::new(),
            ..KubernetesConfig::default()
        };
        let scopes = Scope::all(&namespaced);
        assert_eq!(
            scopes.iter().map(Scope::endpoint).collect::<Vec<_>>(),
            [
                "/api/v1/namespaces/web/secrets",
                "/api/v1/namespaces/ci/secrets"
            ]
        );
        assert_eq!(scopes[0].field_selector(&namespaced), None);
        assert_eq!(scopes[1].place(), "in namespace ci");
    }
}
