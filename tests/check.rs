//! Integration tests for `lapse check`: each test builds its fixtures with
//! chosen dates in a scratch directory, runs the real binary with a clean
//! environment and a pinned `--at`, and asserts exact values in its report.

mod support;

/// One module per area; files live in `tests/check/`.
mod check {
    mod certificates;
    mod directories;
    mod exit_codes;
    mod k8s_objects;
    mod kubeconfig;
    mod malformed;
    mod output;
    mod secrecy;
    mod token_files;
    mod tokens;
}
