//! Integration tests for `lapse check` and `lapse serve`: each test builds
//! its fixtures with chosen dates in a scratch directory, runs the real
//! binary with a clean environment (a pinned `--at` for `check`, its own
//! port for `serve`), and asserts exact values in its report or `/metrics`.

mod support;

/// One module per area; files live in `tests/check/`.
mod check {
    mod alerts;
    mod apiserver;
    mod caps;
    mod cert_fields;
    mod certificates;
    mod conventions;
    mod dashboard;
    mod deploy;
    mod differential;
    mod directories;
    mod exit_codes;
    mod globs;
    mod golden;
    mod hostile_files;
    mod k8s_objects;
    mod keys;
    mod keystores;
    mod kubeconfig;
    mod kubernetes;
    mod kubernetes_failures;
    mod large_dumps;
    mod layout;
    mod log_format;
    mod logs;
    mod malformed;
    mod metrics_options;
    mod multi_cluster;
    mod nagios;
    mod notify;
    mod openstack;
    mod output;
    mod pkcs12;
    mod readme;
    mod secrecy;
    mod serve_auth;
    mod serve_config;
    mod serve_gzip;
    mod serve_hostile;
    mod serve_http;
    mod serve_metrics;
    mod serve_prometheus;
    mod serve_reload;
    mod serve_tls;
    mod serve_watch;
    mod target_labels;
    mod token_files;
    mod token_rules;
    mod tokens;
}
