//! The `kubernetes:` section of lapse.yaml, validated, beside the source
//! it configures. Holds settings only: no client, no file read.

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
