//! The `kubernetes:` section of lapse.yaml: its fields, their defaults and
//! their validation, beside the source they configure.
//!
//! [`read`] reports every problem into the shared collector, each naming
//! its field (`kubernetes.configmaps: expected true or false`), and reads
//! nothing but the value it is given: no file, no variable, no cluster.
//! PKCS#12 passwords from `keystore_passwords` belong to the root document,
//! which fills [`KubernetesConfig::passwords`] in.

use crate::config::section::{Context, Flag, Text, TextList};
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;

/// Secret types never read unless configured otherwise: Helm release
/// payloads are large and never credentials.
pub const DEFAULT_EXCLUDED_TYPES: &[&str] = &["helm.sh/release.v1"];

/// The `kubernetes:` section, validated.
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

/// The section as written. Field order is the order the "expected one
/// of" list names them in. An absent field keeps its default; a field
/// present but empty (`exclude_secret_types:`) is an empty list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Section {
    /// A kubeconfig file (relative to lapse.yaml, `~/` from `$HOME`).
    /// Unset, with no `context`: in-cluster service account, else
    /// `$KUBECONFIG` / `~/.kube/config`.
    kubeconfig: Text,
    /// A context of that kubeconfig; unset: its current context.
    context: Text,
    /// Namespace-scoped mode: one watcher per namespace and kind, and
    /// never a cluster-scoped request.
    namespaces: TextList,
    /// Cluster mode only: namespaces filtered out on the server.
    exclude_namespaces: TextList,
    /// A label selector, sent with every LIST and WATCH.
    label_selector: Text,
    /// Only these Secret types; unset: every type not excluded.
    secret_types: TextList,
    /// Secret types filtered out on the server; default: Helm releases.
    exclude_secret_types: TextList,
    /// Whether ConfigMaps are read too; default true.
    configmaps: Flag,
    /// Secrets holding PKCS#12 passwords, each `NAMESPACE/NAME/KEY`.
    keystore_password_secrets: TextList,
    /// Object labels copied onto metrics as `secret_label_<name>`.
    copy_labels: TextList,
    /// Globs a ConfigMap key must match to be read; unset: every key.
    configmap_keys: TextList,
}

impl Default for Section {
    fn default() -> Self {
        Section {
            kubeconfig: Text::default(),
            context: Text::default(),
            namespaces: TextList::default(),
            exclude_namespaces: TextList::default(),
            label_selector: Text::default(),
            secret_types: TextList::default(),
            exclude_secret_types: TextList(Some(
                DEFAULT_EXCLUDED_TYPES
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            )),
            configmaps: Flag::default(),
            keystore_password_secrets: TextList::default(),
            copy_labels: TextList::default(),
            configmap_keys: TextList::default(),
        }
    }
}

/// Validates the `kubernetes:` section; `null` (`kubernetes:` alone) is
/// the source on, with defaults. Every problem goes to `cx`, each at its
/// field; `None` only when the section is not a mapping at all.
pub fn read(v: &Value, cx: &mut Context) -> Option<KubernetesConfig> {
    const AT: &str = "kubernetes";
    let s: Section = cx.section(AT, v)?;
    let namespaces = s.namespaces.items().to_vec();
    let exclude_namespaces = s.exclude_namespaces.items().to_vec();
    if !namespaces.is_empty() && !exclude_namespaces.is_empty() {
        cx.problem(
            "kubernetes.exclude_namespaces",
            "only in cluster mode: with kubernetes.namespaces, list just the namespaces to watch",
        );
    }
    let mut password_secrets = Vec::new();
    for (i, r) in s.keystore_password_secrets.items().iter().enumerate() {
        match r.split('/').collect::<Vec<_>>()[..] {
            [ns, name, key] if !ns.is_empty() && !name.is_empty() && !key.is_empty() => {
                password_secrets.push((ns.into(), name.into(), key.into()))
            }
            _ => cx.problem(
                &format!("kubernetes.keystore_password_secrets[{i}]"),
                format!("{r:?}: use NAMESPACE/NAME/KEY"),
            ),
        }
    }
    Some(KubernetesConfig {
        kubeconfig: s.kubeconfig.get().map(|p| cx.path(p)),
        context: s.context.0,
        namespaces,
        exclude_namespaces,
        label_selector: s.label_selector.0,
        secret_types: s.secret_types.items().to_vec(),
        exclude_secret_types: s.exclude_secret_types.items().to_vec(),
        configmaps: s.configmaps.0.unwrap_or(true),
        passwords: Vec::new(),
        password_secrets,
        copy_labels: s.copy_labels.items().to_vec(),
        configmap_keys: cx.globs("kubernetes.configmap_keys", s.configmap_keys.items()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The section as lapse.yaml has it (`kubernetes:` and below), read
    /// alone: the problems, or the config.
    fn parse(yaml: &str, base: &Path) -> Result<KubernetesConfig, Vec<String>> {
        let doc: Value = crate::yaml::documents(yaml).unwrap().remove(0);
        let mut cx = Context::new(base);
        let k = read(&doc["kubernetes"], &mut cx);
        if cx.problems.is_empty() {
            Ok(k.unwrap())
        } else {
            Err(cx.problems.0)
        }
    }

    #[test]
    fn an_empty_kubernetes_section_turns_it_on_with_defaults() {
        let k = parse("kubernetes: {}\n", Path::new("/")).unwrap();
        assert!(k.namespaces.is_empty());
        assert_eq!(k.exclude_secret_types, ["helm.sh/release.v1"]);
        assert!(k.configmaps);
    }

    #[test]
    fn a_bare_kubernetes_key_is_on_with_defaults_too() {
        let k = parse("kubernetes:\n", Path::new("/")).unwrap();
        assert_eq!(k.exclude_secret_types, ["helm.sh/release.v1"]);
        assert!(k.configmaps && k.kubeconfig.is_none() && k.password_secrets.is_empty());
    }

    #[test]
    fn the_kubernetes_section_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let k = parse(
            "kubernetes:\n  kubeconfig: kube/config\n  context: prod\n  namespaces: [web, ci]\n\
             \x20 label_selector: team=payments\n  secret_types: [kubernetes.io/tls]\n  configmaps: false\n\
             \x20 keystore_password_secrets: [web/keystore-pass/password]\n  copy_labels: [app.kubernetes.io/name]\n\
             \x20 configmap_keys: ['*.crt', ca.pem]\n",
            dir.path(),
        )
        .unwrap();
        assert_eq!(k.kubeconfig, Some(dir.path().join("kube/config")));
        assert_eq!(k.context.as_deref(), Some("prod"));
        assert_eq!(k.namespaces, ["web", "ci"]);
        assert_eq!(k.label_selector.as_deref(), Some("team=payments"));
        assert_eq!(k.secret_types, ["kubernetes.io/tls"]);
        assert!(!k.configmaps);
        assert_eq!(
            k.password_secrets,
            [("web".into(), "keystore-pass".into(), "password".into())]
        );
        assert_eq!(k.copy_labels, ["app.kubernetes.io/name"]);
        assert!(k.configmap_keys[0].is_match("ca.crt"));
        assert!(k.configmap_keys[1].is_match("ca.pem"));
        assert!(!k.configmap_keys.iter().any(|g| g.is_match("config.yaml")));
        // Filled in by the root document, from `keystore_passwords`.
        assert!(k.passwords.is_empty());
    }

    #[test]
    fn kubernetes_problems_name_their_fields() {
        let err = parse(
            "kubernetes:\n  namespaces: [web]\n  exclude_namespaces: [x]\n  configmaps: maybe\n\
             \x20 keystore_password_secrets: [web/only-two]\n  nodes: true\n",
            Path::new("/"),
        )
        .unwrap_err();
        let expected = [
            "kubernetes.exclude_namespaces: only in cluster mode",
            "kubernetes.configmaps: expected true or false",
            "kubernetes.keystore_password_secrets[0]: \"web/only-two\": use NAMESPACE/NAME/KEY",
            "kubernetes.nodes: unknown field",
        ];
        for want in expected {
            assert!(
                err.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {err:#?}"
            );
        }
        assert_eq!(err.len(), expected.len(), "{err:#?}");
    }

    #[test]
    fn unknown_fields_list_the_known_ones_in_order() {
        let err = parse("kubernetes:\n  nodes: true\n", Path::new("/")).unwrap_err();
        assert_eq!(
            err,
            [
                "kubernetes.nodes: unknown field (expected one of: kubeconfig, context, namespaces, \
              exclude_namespaces, label_selector, secret_types, exclude_secret_types, configmaps, \
              keystore_password_secrets, copy_labels, configmap_keys)"
            ]
        );
    }

    #[test]
    fn ill_shaped_values_name_their_field_and_index() {
        let err = parse(
            "kubernetes:\n  kubeconfig: [a]\n  namespaces: {a: 1}\n  configmap_keys: ['a[', ok]\n",
            Path::new("/"),
        )
        .unwrap_err();
        assert_eq!(err.len(), 3, "{err:#?}");
        for want in [
            "kubernetes.kubeconfig: expected a string",
            "kubernetes.namespaces: expected a list of strings",
            "kubernetes.configmap_keys[0]: invalid glob: ",
        ] {
            assert!(
                err.iter().any(|p| p.starts_with(want)),
                "{want:?} in {err:#?}"
            );
        }
        assert_eq!(
            parse("kubernetes: 3\n", Path::new("/")).unwrap_err(),
            ["kubernetes: expected a mapping"]
        );
    }

    #[test]
    fn an_empty_exclusion_list_reads_every_secret_type() {
        // Present but empty is no exclusion at all, as `[]` is.
        for yaml in [
            "kubernetes:\n  exclude_secret_types:\n",
            "kubernetes:\n  exclude_secret_types: []\n",
        ] {
            let k = parse(yaml, Path::new("/")).unwrap();
            assert!(k.exclude_secret_types.is_empty(), "{yaml}");
        }
    }
}
