//! One Kubernetes object → its [`Part`]: the configured filters (excluded
//! namespaces and Secret types, ConfigMap key patterns), then the parsers
//! on the object's decoded values, then the labels copied onto metrics.
//!
//! Pure: no client, no clock, no lock. Values go to the parsers as the API
//! client decoded them, never re-encoded. A payload never outlives the call:
//! only the credentials derived from it are kept.

use super::config::KubernetesConfig;
use crate::inventory::Part;
use crate::parse::{self, K8sKind, K8sObject};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    Secret,
    ConfigMap,
}

impl ObjectKind {
    pub fn plural(self) -> &'static str {
        match self {
            ObjectKind::Secret => "secrets",
            ObjectKind::ConfigMap => "configmaps",
        }
    }
}

/// An object's identity in the store.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub kind: ObjectKind,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    /// The object's API path, which names it in metrics and error entries.
    pub fn path(&self) -> String {
        format!(
            "/api/v1/namespaces/{}/{}/{}",
            self.namespace,
            self.kind.plural(),
            self.name
        )
    }
}

/// What lapse needs of a typed object: its metadata, and its values in
/// the shape the parsers read.
pub trait Derive: Clone + std::fmt::Debug + Send + Sync + 'static {
    const KIND: ObjectKind;

    fn meta(&self) -> &ObjectMeta;

    fn key(&self) -> ObjectKey {
        ObjectKey {
            kind: Self::KIND,
            namespace: self.meta().namespace.clone().unwrap_or_default(),
            name: self.meta().name.clone().unwrap_or_default(),
        }
    }

    fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.meta().labels.as_ref()
    }

    /// A Secret's type (`Opaque` when unset); `None` for ConfigMaps.
    fn secret_type(&self) -> Option<&str>;

    fn values(&self) -> Values<'_>;

    /// A Secret's values as text (for password Secrets); `None` for ConfigMaps.
    fn secret_values(&self) -> Option<BTreeMap<String, String>> {
        None
    }
}

/// An object's values, borrowed from it, as the API client decoded them.
pub struct Values<'a> {
    /// `data` of a Secret, `binaryData` of a ConfigMap.
    pub binary: Vec<(&'a str, &'a [u8])>,
    /// `stringData` of a Secret, `data` of a ConfigMap.
    pub text: Vec<(&'a str, &'a str)>,
}

fn bytes(values: &Option<BTreeMap<String, k8s_openapi::ByteString>>) -> Vec<(&str, &[u8])> {
    values
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.0.as_slice()))
        .collect()
}

fn text(values: &Option<BTreeMap<String, String>>) -> Vec<(&str, &str)> {
    values
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

impl Derive for Secret {
    const KIND: ObjectKind = ObjectKind::Secret;

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn secret_type(&self) -> Option<&str> {
        Some(self.type_.as_deref().unwrap_or("Opaque"))
    }

    fn values(&self) -> Values<'_> {
        Values {
            binary: bytes(&self.data),
            text: text(&self.string_data),
        }
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
}

impl Derive for ConfigMap {
    const KIND: ObjectKind = ObjectKind::ConfigMap;

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn secret_type(&self) -> Option<&str> {
        None
    }

    fn values(&self) -> Values<'_> {
        Values {
            binary: bytes(&self.binary_data),
            text: text(&self.data),
        }
    }
}

/// The object's credentials, or `None` when configuration says to skip it.
pub fn derive<K: Derive>(
    passwords: &[String],
    obj: &K,
    config: &KubernetesConfig,
) -> Option<(ObjectKey, Arc<Part>)> {
    let key = obj.key();
    if config.exclude_namespaces.contains(&key.namespace) {
        return None;
    }
    if let Some(t) = obj.secret_type()
        && (config.exclude_secret_types.iter().any(|x| x == t)
            || (!config.secret_types.is_empty() && !config.secret_types.iter().any(|x| x == t)))
    {
        return None;
    }
    let path = key.path();
    let Values {
        mut binary,
        mut text,
    } = obj.values();
    if K::KIND == ObjectKind::ConfigMap && !config.configmap_keys.is_empty() {
        let wanted = |k: &str| config.configmap_keys.iter().any(|g| g.is_match(k));
        binary.retain(|(k, _)| wanted(k));
        text.retain(|(k, _)| wanted(k));
    }
    let object = K8sObject {
        kind: match K::KIND {
            ObjectKind::Secret => K8sKind::Secret,
            ObjectKind::ConfigMap => K8sKind::ConfigMap,
        },
        secret_type: obj.secret_type(),
        namespace: &key.namespace,
        name: &key.name,
        labels: obj
            .labels()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        binary,
        text,
    };
    let mut parsed = parse::parse_object(&path, &object, passwords);
    copy_labels(&mut parsed, &config.copy_labels, obj.labels());
    let mut part = Part {
        path: std::path::Path::new(&path).into(),
        credentials: parsed.credentials.into(),
        errors: parsed.errors.into(),
        ..Part::default()
    };
    part.share_path();
    Some((key, Arc::new(part)))
}

/// Typed objects and credentials for the tests of this source.
/// The object's labels named in `copy_labels`, on every credential it gave.
fn copy_labels(
    parsed: &mut parse::Parsed,
    copy: &[String],
    labels: Option<&BTreeMap<String, String>>,
) {
    let copied: Vec<(String, String)> = copy
        .iter()
        .filter_map(|l| Some((l.clone(), labels?.get(l)?.clone())))
        .collect();
    if copied.is_empty() {
        return;
    }
    for c in &mut parsed.credentials {
        if let Some(o) = c.object.as_mut() {
            o.labels = copied.clone();
        }
    }
}

#[cfg(test)]
pub mod fixtures {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn meta(namespace: &str, name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            namespace: Some(namespace.into()),
            name: Some(name.into()),
            labels: (!labels.is_empty()).then(|| {
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            ..ObjectMeta::default()
        }
    }

    pub fn secret(namespace: &str, name: &str, type_: &str, data: &[(&str, &[u8])]) -> Secret {
        Secret {
            metadata: meta(namespace, name, &[]),
            type_: Some(type_.into()),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    pub fn labelled(mut s: Secret, labels: &[(&str, &str)]) -> Secret {
        s.metadata = meta(
            s.metadata.namespace.as_deref().unwrap_or_default(),
            s.metadata.name.as_deref().unwrap_or_default(),
            labels,
        );
        s
    }

    pub fn config_map(
        namespace: &str,
        name: &str,
        data: &[(&str, &str)],
        binary: &[(&str, &[u8])],
    ) -> ConfigMap {
        ConfigMap {
            metadata: meta(namespace, name, &[]),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            binary_data: (!binary.is_empty()).then(|| {
                binary
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect()
            }),
            ..ConfigMap::default()
        }
    }

    /// A self-signed certificate: (PEM, DER, key DER).
    pub fn cert(cn: &str) -> (String, Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let c = rcgen::CertificateParams::new(vec![format!("{cn}.example")])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (c.pem(), c.der().to_vec(), key.serialize_der())
    }

    /// A PKCS#12 store of a fresh certificate, locked with `password`.
    pub fn pkcs12(password: &str) -> Vec<u8> {
        use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
        let (_, der, key) = cert("store");
        let chain = [Certificate::from_der(&der).unwrap()];
        let mut store = KeyStore::new();
        store.add_entry(
            "leaf",
            KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
                "key-1",
                PrivateKey::from_der(&key).unwrap(),
                chain,
            )),
        );
        store
            .writer(password)
            .encryption_iterations(16)
            .mac_iterations(16)
            .write()
            .unwrap()
    }

    pub fn jwt(claims: &str) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.c2lnbmF0dXJl",
            b64.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            b64.encode(claims)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::credential::ErrorReason;
    use serde_json::{Value, json};

    /// How lapse derived an object before values went to the parsers
    /// decoded: the object re-encoded as the document a dump would hold,
    /// filtered, parsed as a document, labels copied.
    fn through_a_document<K: Derive>(
        passwords: &[String],
        obj: &K,
        config: &KubernetesConfig,
    ) -> Option<Part> {
        use base64::Engine;
        let key = obj.key();
        if config.exclude_namespaces.contains(&key.namespace) {
            return None;
        }
        if let Some(t) = obj.secret_type()
            && (config.exclude_secret_types.iter().any(|x| x == t)
                || (!config.secret_types.is_empty() && !config.secret_types.iter().any(|x| x == t)))
        {
            return None;
        }
        let Values { binary, text } = obj.values();
        let b64: serde_json::Map<String, Value> = binary
            .iter()
            .map(|(k, v)| {
                let v = base64::engine::general_purpose::STANDARD.encode(v);
                (k.to_string(), Value::String(v))
            })
            .collect();
        let text: serde_json::Map<String, Value> = text
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        let meta = json!({
            "name": obj.meta().name,
            "namespace": obj.meta().namespace,
            "labels": obj.meta().labels,
        });
        let mut doc = match K::KIND {
            ObjectKind::Secret => json!({
                "kind": "Secret", "type": obj.secret_type(), "metadata": meta,
                "data": b64, "stringData": text,
            }),
            ObjectKind::ConfigMap => json!({
                "kind": "ConfigMap", "metadata": meta, "data": text, "binaryData": b64,
            }),
        };
        if K::KIND == ObjectKind::ConfigMap && !config.configmap_keys.is_empty() {
            for field in ["data", "binaryData"] {
                if let Some(map) = doc.get_mut(field).and_then(Value::as_object_mut) {
                    map.retain(|k, _| config.configmap_keys.iter().any(|g| g.is_match(k)));
                }
            }
        }
        let path = key.path();
        let mut parsed = parse::parse_document(&path, &doc, passwords);
        copy_labels(&mut parsed, &config.copy_labels, obj.labels());
        Some(Part {
            path: std::path::Path::new(&path).into(),
            credentials: parsed.credentials.into(),
            errors: parsed.errors.into(),
            ..Part::default()
        })
    }

    fn same<K: Derive>(passwords: &[String], obj: &K, config: &KubernetesConfig) -> Option<Part> {
        let direct = derive(passwords, obj, config).map(|(key, part)| {
            assert_eq!(key, obj.key());
            Arc::try_unwrap(part).unwrap()
        });
        let old = through_a_document(passwords, obj, config);
        match (&direct, &old) {
            (Some(d), Some(o)) => {
                assert_eq!(d.path, o.path);
                assert_eq!(d.credentials, o.credentials);
                assert_eq!(d.file, o.file);
                assert_eq!(d.reached, o.reached);
                assert_eq!(d.errors, o.errors);
            }
            (None, None) => {}
            _ => panic!("derived {direct:?}, through a document {old:?}"),
        }
        direct
    }

    #[test]
    fn decoded_values_give_what_a_dump_of_the_object_gives() {
        let (pem, der, key) = cert("web");
        let (ca, _, _) = cert("ca");
        let sa = jwt(r#"{"iss":"kubernetes/serviceaccount","sub":"system:serviceaccount:ci:old"}"#);
        let bound = jwt(r#"{"sub":"a","exp":1800000000,"iat":1700000000}"#);
        let store = pkcs12("changeit");
        let objects = [
            secret(
                "web",
                "tls",
                "kubernetes.io/tls",
                &[
                    ("tls.crt", pem.as_bytes()),
                    ("tls.key", &key),
                    ("ca.crt", ca.as_bytes()),
                ],
            ),
            labelled(
                secret(
                    "ci",
                    "old-token",
                    "kubernetes.io/service-account-token",
                    &[("token", sa.as_bytes()), ("namespace", b"ci")],
                ),
                &[
                    ("kubernetes.io/legacy-token-invalid-since", "2026-01-01"),
                    ("app.kubernetes.io/name", "builder"),
                ],
            ),
            secret(
                "ci",
                "never-ending",
                "kubernetes.io/service-account-token",
                &[("token", sa.as_bytes())],
            ),
            secret(
                "kube-system",
                "bootstrap-token-abcdef",
                "bootstrap.kubernetes.io/token",
                &[
                    ("token-id", b"abcdef"),
                    ("token-secret", b"0123456789abcdef"),
                    ("expiration", b"2026-01-01T00:00:00Z"),
                ],
            ),
            secret(
                "kube-system",
                "bootstrap-token-badexp",
                "bootstrap.kubernetes.io/token",
                &[
                    ("token-id", b"badexp"),
                    ("token-secret", b"0123456789abcdef"),
                    ("expiration", b"soon"),
                ],
            ),
            secret(
                "app",
                "sibling",
                "Opaque",
                &[
                    ("keystore.p12", &store),
                    ("keystore-password", b"changeit\n"),
                ],
            ),
            secret("app", "locked", "Opaque", &[("keystore.p12", &store)]),
            secret(
                "app",
                "mixed",
                "Opaque",
                &[
                    ("der", &der),
                    ("jwt", bound.as_bytes()),
                    ("tls.crt", b"\xff\xfenot a certificate"),
                    ("notes", b"hello"),
                ],
            ),
            secret("app", "empty", "Opaque", &[]),
        ];
        let config = KubernetesConfig {
            copy_labels: vec!["app.kubernetes.io/name".into()],
            exclude_secret_types: Vec::new(),
            ..KubernetesConfig::default()
        };
        let mut found = 0;
        for obj in &objects {
            found += same(&[], obj, &config).unwrap().credentials.len();
        }
        // tls.crt and ca.crt, two service-account tokens, a bootstrap token,
        // the sibling-opened store, and a DER certificate and a JWT.
        assert_eq!(found, 8);
        let locked = same(&[], &objects[6], &config).unwrap();
        assert_eq!(locked.errors[0].reason, ErrorReason::Password);
        let opened = same(&["changeit".into()], &objects[6], &config).unwrap();
        assert!(opened.errors.is_empty() && !opened.credentials.is_empty());
        let labelled = same(&[], &objects[1], &config).unwrap();
        assert_eq!(
            labelled.credentials[0].object.as_ref().unwrap().labels,
            [("app.kubernetes.io/name".to_string(), "builder".to_string())]
        );
    }

    #[test]
    fn string_data_wins_and_helm_releases_are_skipped_either_way() {
        let (pem, _, _) = cert("web");
        let (other, _, _) = cert("other");
        let mut s = secret("web", "both", "Opaque", &[("ca.pem", other.as_bytes())]);
        s.string_data = Some([("ca.pem".to_string(), pem.clone())].into());
        let config = KubernetesConfig::default();
        let part = same(&[], &s, &config).unwrap();
        assert_eq!(part.credentials.len(), 1);
        let helm = secret(
            "web",
            "sh.helm.release.v1.web.v1",
            "helm.sh/release.v1",
            &[],
        );
        assert!(same(&[], &helm, &config).is_none());
        let read_all = KubernetesConfig {
            exclude_secret_types: Vec::new(),
            ..KubernetesConfig::default()
        };
        let part = same(&[], &helm, &read_all).unwrap();
        assert!(part.credentials.is_empty() && part.errors.is_empty());
    }

    #[test]
    fn configmaps_text_and_binary_with_key_patterns() {
        let (pem, der, _) = cert("ca");
        let cm = config_map(
            "default",
            "kube-root-ca.crt",
            &[("ca.crt", &pem), ("config.yaml", "a: 1")],
            &[("ca.der", &der), ("blob", b"\x00\x01")],
        );
        let all = KubernetesConfig::default();
        assert_eq!(same(&[], &cm, &all).unwrap().credentials.len(), 2);
        let crt_only = KubernetesConfig {
            configmap_keys: vec![globset::Glob::new("*.crt").unwrap().compile_matcher()],
            ..KubernetesConfig::default()
        };
        let part = same(&[], &cm, &crt_only).unwrap();
        assert_eq!(part.credentials.len(), 1);
        assert_eq!(part.credentials[0].object.as_ref().unwrap().key, "ca.crt");
        assert_eq!(
            &*part.path,
            std::path::Path::new("/api/v1/namespaces/default/configmaps/kube-root-ca.crt")
        );
    }

    /// One Secret of 1 MiB of empty certificate blocks: 100 error entries
    /// and one for the 19,318 others, not 19,418.
    #[test]
    fn a_secret_of_empty_pem_blocks_keeps_a_hundred_errors() {
        let block = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
        let junk = block.repeat((1 << 20) / block.len());
        let s = secret("web", "junk", "Opaque", &[("ca.crt", junk.as_bytes())]);
        let part = same(&[], &s, &KubernetesConfig::default()).unwrap();
        assert_eq!(part.errors.len(), 101);
        assert_eq!(
            part.errors[99].entry.as_deref(),
            Some("secret web/junk ca.crt")
        );
        assert_eq!(
            part.errors[99].message,
            "certificate #99: not a valid X.509 certificate (truncated)"
        );
        let last = &part.errors[100];
        assert_eq!(
            (last.path.as_str(), last.entry.as_deref(), last.reason),
            (
                "/api/v1/namespaces/web/secrets/junk",
                None,
                ErrorReason::TooLarge
            )
        );
        assert_eq!(
            last.message,
            "19318 more errors were dropped (at most 100 are kept per file or object)"
        );
    }

    #[test]
    fn configuration_filters_objects_out() {
        let s = secret("kube-public", "x", "kubernetes.io/tls", &[]);
        let excluded = KubernetesConfig {
            exclude_namespaces: vec!["kube-public".into()],
            ..KubernetesConfig::default()
        };
        assert!(same(&[], &s, &excluded).is_none());
        let only_opaque = KubernetesConfig {
            secret_types: vec!["Opaque".into()],
            ..KubernetesConfig::default()
        };
        assert!(same(&[], &s, &only_opaque).is_none());
        let mut untyped = s.clone();
        untyped.type_ = None;
        untyped.metadata.namespace = Some("web".into());
        assert!(same(&[], &untyped, &only_opaque).is_some());
    }
}
