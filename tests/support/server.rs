//! `lapse serve` under test: the real binary on a free loopback port with
//! a clean environment, a minimal HTTP/1.1 client over `std::net`, and a
//! parser for the exposition text it serves.
//!
//! Each server runs in its test's scratch directory and is killed when
//! the [`Server`] is dropped, so a failed assertion never leaves it behind.

use super::{Outcome, Scratch};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// How long a server gets to become ready, and a change to become visible.
/// Generous: CI machines are slow and shared. Speed is the benchmarks' job.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// How often a test looks again while waiting for a change.
pub const POLL: Duration = Duration::from_millis(100);

/// Seconds since the epoch, now, rounded down as lapse rounds its clock.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A port nobody listens on right now. Another process may take it before
/// lapse binds it; [`Serve::start`] retries when that happens.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

impl Scratch {
    /// `lapse serve` in this directory, with `HOME` set to `home/` and
    /// nothing else inherited from the environment.
    pub fn serve(&self) -> Serve<'_> {
        Serve {
            scratch: self,
            args: Vec::new(),
        }
    }
}

/// A `lapse serve` invocation being built.
pub struct Serve<'a> {
    scratch: &'a Scratch,
    args: Vec<OsString>,
}

impl Serve<'_> {
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    fn command(&self, port: Option<u16>) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lapse"));
        cmd.env_clear()
            .env("HOME", self.scratch.home())
            .env("PATH", "/usr/bin:/bin")
            .current_dir(self.scratch.dir.path())
            .stdin(Stdio::null());
        // Global flags (-v) go before the subcommand.
        let (global, rest): (Vec<&OsString>, Vec<&OsString>) = self
            .args
            .iter()
            .partition(|a| a.to_str().is_some_and(|s| s.starts_with("-v")));
        cmd.args(global).arg("serve").args(rest);
        if let Some(port) = port {
            cmd.args(["--web.listen-address", &format!("127.0.0.1:{port}")]);
        }
        cmd
    }

    /// Runs `lapse serve` expecting it to exit by itself (a bad
    /// configuration) within `limit`; panics if it keeps running.
    pub fn run_to_exit(self, limit: Duration) -> Outcome {
        let port = free_port();
        let mut child = self
            .command(Some(port))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the lapse binary");
        let started = Instant::now();
        loop {
            if child.try_wait().expect("poll lapse").is_some() {
                break;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let output = child.wait_with_output().expect("wait for lapse");
                panic!(
                    "lapse serve still running after {limit:?}\n--- stderr ---\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().expect("wait for lapse");
        Outcome {
            code: output.status.code().expect("lapse ended by a signal"),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Starts the server on a free port and waits until `/readyz` says 200.
    pub fn start(self) -> Server {
        self.start_with(Client::plain())
    }

    /// As [`Serve::start`], for a server every request to which goes
    /// through `client` (TLS, basic auth).
    pub fn start_with(self, client: Client) -> Server {
        let mut last_stderr = String::new();
        for attempt in 0..5 {
            let port = free_port();
            let stderr_path = self.scratch.path(&format!("lapse-serve-{port}.stderr"));
            let stderr = File::create(&stderr_path).expect("create the stderr file");
            let child = self
                .command(Some(port))
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("run the lapse binary");
            let mut server = Server {
                child: Some(child),
                port,
                stderr_path,
                client: client.clone(),
            };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(exited) => {
                    last_stderr = server.stderr();
                    // Someone else took the port between our probe and lapse's bind.
                    if exited && last_stderr.contains("cannot listen") {
                        eprintln!("port {port} was taken (attempt {attempt}); retrying");
                        continue;
                    }
                    panic!(
                        "lapse serve did not become ready on port {port}\n--- stderr ---\n{last_stderr}"
                    );
                }
            }
        }
        panic!("no free port after 5 attempts\n--- stderr ---\n{last_stderr}");
    }
}

/// How a test talks to the server: plain HTTP or TLS trusting one CA,
/// with or without basic auth.
#[derive(Clone, Default)]
pub struct Client {
    tls: Option<Arc<ClientConfig>>,
    authorization: Option<String>,
}

impl Client {
    pub fn plain() -> Client {
        Client::default()
    }

    /// TLS, trusting only `ca_pem`, checking the server's name is `localhost`.
    pub fn tls(ca_pem: &str) -> Client {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("a usable CA");
        }
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        Client {
            tls: Some(Arc::new(config)),
            authorization: None,
        }
    }

    /// Sends `Authorization: Basic …` with every request.
    pub fn basic_auth(mut self, user: &str, password: &str) -> Client {
        self.authorization = Some(format!(
            "Basic {}",
            super::b64(format!("{user}:{password}"))
        ));
        self
    }

    /// One request on a fresh connection.
    pub fn request(
        &self,
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Response> {
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(DEADLINE))?;
        tcp.set_write_timeout(Some(DEADLINE))?;
        let mut headers = headers.to_vec();
        if let Some(auth) = &self.authorization {
            headers.push(("Authorization", auth));
        }
        match &self.tls {
            None => exchange(&mut { tcp }, port, method, path, &headers),
            Some(config) => {
                let name = ServerName::try_from("localhost").expect("a server name");
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(std::io::Error::other)?;
                let mut stream = rustls::StreamOwned::new(conn, tcp);
                exchange(&mut stream, port, method, path, &headers)
            }
        }
    }
}

/// A running `lapse serve`; killed on drop.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    stderr_path: std::path::PathBuf,
    client: Client,
}

impl Server {
    /// Err(true) if lapse exited, Err(false) on timeout.
    fn wait_ready(&mut self) -> Result<(), bool> {
        let started = Instant::now();
        while started.elapsed() < DEADLINE {
            if let Some(child) = self.child.as_mut()
                && child.try_wait().expect("poll lapse").is_some()
            {
                return Err(true);
            }
            if self
                .try_request("GET", "/readyz", &[])
                .is_ok_and(|r| r.status == 200)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(false)
    }

    /// What lapse wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[])
    }

    /// One request on a fresh connection; panics with lapse's stderr if it fails.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        self.try_request(method, path, headers)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n--- stderr ---\n{}", self.stderr()))
    }

    /// One request through the server's client, without panicking.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Response> {
        self.client.request(self.port, method, path, headers)
    }

    /// `/metrics` in the classic text format, parsed; asserts 200.
    pub fn metrics(&self) -> Exposition {
        let before = unix_now();
        let r = self.get("/metrics");
        let after = unix_now();
        assert_eq!(r.status, 200, "GET /metrics: {r:?}");
        let mut m = Exposition::parse(&r.body);
        m.scraped = (before, after);
        m
    }

    /// Scrapes every [`POLL`] until `done` holds, for at most [`DEADLINE`].
    /// Returns the matching scrape and how long the change took to show;
    /// panics with the last scrape and lapse's log otherwise.
    pub fn wait_for(
        &self,
        what: &str,
        done: impl Fn(&Exposition) -> bool,
    ) -> (Exposition, Duration) {
        let started = Instant::now();
        loop {
            let m = self.metrics();
            if done(&m) {
                let took = started.elapsed();
                println!("{what}: visible after {} ms", took.as_millis());
                return (m, took);
            }
            if started.elapsed() > DEADLINE {
                panic!(
                    "{what}: not visible after {DEADLINE:?}\n--- last /metrics ---\n{}\n--- stderr ---\n{}",
                    m.text,
                    self.stderr()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sends `signal` (`HUP`, `INT`, …) to lapse, without waiting.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("lapse is running");
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// lapse's exit status, if it has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("poll lapse"))
    }

    /// Sends SIGTERM and waits up to `limit` for the exit; returns its
    /// status and how long it took.
    pub fn terminate(mut self, limit: Duration) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("lapse is running");
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        loop {
            if let Some(status) = child.try_wait().expect("poll lapse") {
                return (status, started.elapsed());
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "lapse serve did not exit within {limit:?} of SIGTERM\n--- stderr ---\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes one request with `Connection: close` and reads the response to
/// the end. Works over any stream (plain TCP or TLS).
pub fn exchange(
    stream: &mut (impl Read + Write),
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        // rustls reports a peer that closes without close_notify; whether
        // the response is whole is judged by its framing below.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    Response::parse(&raw, method == "HEAD").ok_or_else(|| {
        std::io::Error::other(format!(
            "malformed response: {:?}",
            String::from_utf8_lossy(&raw)
        ))
    })
}

/// An HTTP response, whole.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// `None` if the response is malformed or cut short.
    fn parse(raw: &[u8], head_request: bool) -> Option<Response> {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&raw[..end]).ok()?;
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw[end + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        if chunked {
            body = dechunk(&body)?;
        } else if let Some((_, length)) = headers.iter().find(|(n, _)| n == "content-length")
            && !head_request
            && length.parse::<usize>().ok()? != body.len()
        {
            return None;
        }
        Some(Response {
            status,
            headers,
            body: String::from_utf8(body).ok()?,
        })
    }

    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

/// One sample of the exposition text.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map(String::as_str).unwrap_or("")
    }
}

/// A parsed `/metrics` page (classic text or OpenMetrics).
#[derive(Debug)]
pub struct Exposition {
    pub text: String,
    pub samples: Vec<Sample>,
    /// Unix seconds just before the request and just after the response:
    /// lapse computed `expires_in` somewhere in between.
    pub scraped: (i64, i64),
}

impl Exposition {
    pub fn parse(text: &str) -> Exposition {
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("unparsable sample line: {l:?}")))
            .collect();
        Exposition {
            text: text.to_string(),
            samples,
            scraped: (i64::MIN, i64::MAX),
        }
    }

    /// Samples called `name` whose labels include every pair in `labels`.
    /// A credential's `serial` and `fingerprint` are on
    /// `lapse_credential_info` only (unless lapse writes them on every
    /// series): asked for on another family, they are joined in from the
    /// info series as PromQL's `* ignoring(serial, fingerprint)
    /// group_left(serial, fingerprint) lapse_credential_info` would.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        let direct = |s: &&Sample| s.name == name && labels.iter().all(|(k, v)| s.label(k) == *v);
        let descriptive = |k: &str| k == "serial" || k == "fingerprint";
        let joined = name.starts_with("lapse_credential_")
            && name != "lapse_credential_info"
            && labels.iter().any(|(k, _)| descriptive(k))
            && !self
                .samples
                .iter()
                .any(|s| s.name == name && s.labels.contains_key("fingerprint"));
        if !joined {
            return self.samples.iter().filter(direct).collect();
        }
        let identities: Vec<BTreeMap<String, String>> = self
            .find("lapse_credential_info", labels)
            .into_iter()
            .map(|info| {
                let mut l = info.labels.clone();
                l.retain(|k, _| !descriptive(k));
                l
            })
            .collect();
        self.samples
            .iter()
            .filter(|s| s.name == name && identities.contains(&s.labels))
            .collect()
    }

    /// The one sample called `name` with `labels`; panics, showing the page, otherwise.
    #[track_caller]
    pub fn one(&self, name: &str, labels: &[(&str, &str)]) -> &Sample {
        let found = self.find(name, labels);
        assert_eq!(
            found.len(),
            1,
            "expected exactly one {name}{labels:?}, found {}\n--- /metrics ---\n{}",
            found.len(),
            self.text
        );
        found[0]
    }

    #[track_caller]
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.one(name, labels).value
    }

    /// Asserts the one credential matching `labels` has exactly these
    /// bounds: its validity window exactly, `expires_in` computed during
    /// the scrape, and, where the page has them (`metrics.families`), the
    /// timestamp and expired families exactly.
    #[track_caller]
    pub fn assert_window(&self, labels: &[(&str, &str)], not_before: i64, not_after: i64) {
        let (before, after) = self.scraped;
        let got = self.value("lapse_credential_validity_seconds", labels);
        assert_eq!(
            got,
            (not_after - not_before) as f64,
            "lapse_credential_validity_seconds{labels:?}\n--- /metrics ---\n{}",
            self.text
        );
        let optional = [
            ("lapse_credential_not_after_timestamp_seconds", not_after),
            ("lapse_credential_not_before_timestamp_seconds", not_before),
        ];
        for (name, want) in optional {
            if self.samples.iter().any(|s| s.name == name) {
                let got = self.value(name, labels);
                assert_eq!(
                    got, want as f64,
                    "{name}{labels:?}\n--- /metrics ---\n{}",
                    self.text
                );
            }
        }
        let expires_in = self.value("lapse_credential_expires_in_seconds", labels);
        let (low, high) = (not_after - after, not_after - before);
        assert!(
            (low as f64..=high as f64).contains(&expires_in),
            "lapse_credential_expires_in_seconds{labels:?} = {expires_in}, expected within [{low}, {high}]"
        );
        // Decidable unless not_after fell during the scrape.
        if self
            .samples
            .iter()
            .any(|s| s.name == "lapse_credential_expired")
        {
            let expired = self.value("lapse_credential_expired", labels);
            if not_after <= before {
                assert_eq!(expired, 1.0, "lapse_credential_expired{labels:?}");
            } else if not_after > after {
                assert_eq!(expired, 0.0, "lapse_credential_expired{labels:?}");
            }
        }
        assert!(
            self.find("lapse_credential_no_expiry", labels).is_empty(),
            "a credential with an expiry has no lapse_credential_no_expiry series{labels:?}"
        );
    }

    /// Every distinct `path` label among the credential series.
    pub fn paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self
            .find("lapse_credential_info", &[])
            .iter()
            .map(|s| s.label("path").to_string())
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        let mut s = after;
        loop {
            s = s.trim_start_matches(',');
            if let Some(r) = s.strip_prefix('}') {
                rest = r;
                break;
            }
            let (key, r) = s.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = r.chars();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            labels.insert(key.to_string(), value);
            s = chars.as_str();
        }
    }
    let value_text = rest.split_whitespace().next()?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

impl super::Cert {
    /// The `fingerprint` label lapse gives this certificate: the first 16
    /// hex digits of the SHA-256 of its DER.
    pub fn fingerprint_label(&self) -> String {
        self.fingerprint()["sha256:".len()..][..16].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_with_escapes() {
        let s = parse_sample(r#"m{a="x\"y",b="",c="p\\q\nr"} -3"#).unwrap();
        assert_eq!(s.name, "m");
        assert_eq!(s.label("a"), "x\"y");
        assert_eq!(s.label("b"), "");
        assert_eq!(s.label("c"), "p\\q\nr");
        assert_eq!(s.value, -3.0);
        assert_eq!(parse_sample("n 1.5").unwrap().value, 1.5);
    }
}
