//! Helpers for the `lapse check` and `lapse serve` integration tests: a scratch directory per
//! test, a runner for the real binary with a clean environment and a pinned
//! clock, and fixture builders (certificates, keys, keystores, tokens).
//!
//! Nothing here knows what lapse should answer; the tests say that.

#![allow(dead_code)] // each test module uses a different part

pub mod apiserver;
pub mod fixtures;
pub mod prometheus;
pub mod report;
pub mod server;
pub mod smtp;

pub use fixtures::*;
pub use report::*;
pub use server::*;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The moment every run is judged at (`--at`), unless a test says otherwise.
pub const AT: &str = "2026-06-01T00:00:00Z";
pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;

/// A temporary directory the binary runs in. Files are written and named
/// relative to it, so paths in lapse's output are short and exact.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        std::fs::create_dir(dir.path().join("home")).expect("create HOME");
        Scratch { dir }
    }

    /// The absolute path of `rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The absolute path of `rel`, as lapse prints it.
    pub fn abs(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    /// `$HOME` for runs in this scratch directory.
    pub fn home(&self) -> PathBuf {
        self.path("home")
    }

    /// Writes `contents` to `rel`, creating parent directories.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {rel}: {e}"));
    }

    pub fn mkdir(&self, rel: &str) {
        std::fs::create_dir_all(self.path(rel)).unwrap_or_else(|e| panic!("mkdir {rel}: {e}"));
    }

    /// Creates the symlink `rel` pointing at `target` (taken literally).
    pub fn symlink(&self, target: &str, rel: &str) {
        let link = self.path(rel);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::os::unix::fs::symlink(target, &link)
            .unwrap_or_else(|e| panic!("symlink {rel} -> {target}: {e}"));
    }

    /// `lapse check --at AT` in this directory, with `HOME` set to
    /// `home/` and nothing else inherited from the environment.
    pub fn check(&self) -> Lapse {
        self.check_at(AT)
    }

    /// `lapse check --at <at>`, otherwise as [`Scratch::check`].
    pub fn check_at(&self, at: &str) -> Lapse {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lapse"));
        cmd.env_clear()
            .env("HOME", self.home())
            .env("PATH", "/usr/bin:/bin")
            .current_dir(self.dir.path())
            .args(["check", "--at", at]);
        Lapse { cmd, stdin: None }
    }
}

/// A `lapse check` invocation being built.
pub struct Lapse {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Lapse {
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs the binary and collects what it printed.
    pub fn run(mut self) -> Outcome {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("run the lapse binary");
        if let Some(bytes) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            pipe.write_all(&bytes).expect("write stdin");
        }
        let output = child.wait_with_output().expect("wait for lapse");
        Outcome {
            code: output.status.code().expect("lapse ended by a signal"),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// [`Lapse::run`], killed (and the test failed) if it is still
    /// running after `limit`: for inputs that once made lapse hang.
    pub fn run_within(mut self, limit: std::time::Duration) -> Outcome {
        self.cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("run the lapse binary");
        let started = std::time::Instant::now();
        while child.try_wait().expect("poll lapse").is_none() {
            if started.elapsed() > limit {
                let _ = child.kill();
                let output = child.wait_with_output().expect("wait for lapse");
                panic!(
                    "lapse check still running after {limit:?}\n--- stderr ---\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let output = child.wait_with_output().expect("wait for lapse");
        Outcome {
            code: output.status.code().expect("lapse ended by a signal"),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// [`Lapse::json`] under [`Lapse::run_within`]'s guard.
    pub fn json_within(self, limit: std::time::Duration) -> Report {
        Report::parse(self.args(["--format", "json"]).run_within(limit))
    }

    /// Runs with `--format json` and parses the report.
    pub fn json(self) -> Report {
        let outcome = self.args(["--format", "json"]).run();
        Report::parse(outcome)
    }
}

/// What one run printed and how it exited.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Asserts the exit status, showing the output when it differs.
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "exit status: expected {expected}, got {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// A finished external tool's stdout; panics with its output when it failed.
#[track_caller]
pub fn assert_success(what: &str, out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
