//! The server's own certificate and key (`tls_server_config`'s `cert` /
//! `cert_file` and `key` / `key_file`), and the rustls resolver that
//! hands them to each handshake. When both are files they are looked at
//! again, at most once a second, on a new connection (as exporter-toolkit
//! does): a pair replaced on disk (cert-manager's rotation) is served to
//! new connections within about a second; a bad new pair (unreadable, not
//! PEM, a key that is not the certificate's) keeps the last good one, and
//! is logged once and counted in `lapse_web_certificate_reload_failures_total`.
//! A pair found bad is retried at the next look before it is reported, so a
//! rotation caught between its two writes is not a failure.
//!
//! Never quote key or certificate text: a PEM input is blamed by its field
//! and file name alone.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::counter::Counter;
use tokio_rustls::rustls;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

use crate::config::section::Problems;

/// The files are looked at no more often than this.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// How a failed read is told in a problem (also for the web config file).
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "is a directory".to_string(),
        _ => e.to_string(),
    }
}

/// PEM text from an inline field or a file, and the name to blame for it.
pub(super) struct PemInput {
    pub(super) blame: String,
    bytes: Vec<u8>,
}

pub(super) fn pem_input(
    inline: (&str, &Option<String>),
    file: (&str, &Option<String>),
    base: &Path,
    p: &mut Problems,
) -> Option<PemInput> {
    let inline_field = format!("tls_server_config.{}", inline.0);
    let file_field = format!("tls_server_config.{}", file.0);
    match (inline.1, file.1) {
        (Some(_), Some(_)) => {
            p.add(
                &file_field,
                format_args!("set either {} or {}, not both", file.0, inline.0),
            );
            None
        }
        (Some(text), None) => Some(PemInput {
            blame: inline_field,
            bytes: text.clone().into_bytes(),
        }),
        (None, Some(name)) => {
            let path: PathBuf = base.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => Some(PemInput {
                    blame: format!("{file_field}: {}", path.display()),
                    bytes,
                }),
                Err(e) => {
                    p.add(
                        &file_field,
                        format_args!("cannot read {}: {}", path.display(), io_reason(&e)),
                    );
                    None
                }
            }
        }
        (None, None) => None,
    }
}

/// Describes a PEM problem without quoting the input.
fn pem_reason(e: &pem::Error, wanted: &str) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no END line".to_string(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".to_string(),
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64".to_string(),
        pem::Error::NoItemsFound => format!("no {wanted} found"),
        pem::Error::SectionTooLarge => "a PEM block is too large".to_string(),
        _ => "not valid PEM".to_string(),
    }
}

pub(super) fn certificates(
    input: &PemInput,
    p: &mut Problems,
) -> Option<Vec<CertificateDer<'static>>> {
    match CertificateDer::pem_slice_iter(&input.bytes).collect::<Result<Vec<_>, _>>() {
        Ok(certs) if certs.is_empty() => {
            p.add(&input.blame, "no CERTIFICATE block found");
            None
        }
        Ok(certs) => Some(certs),
        Err(e) => {
            p.add(&input.blame, pem_reason(&e, "CERTIFICATE block"));
            None
        }
    }
}

pub(super) fn private_key(input: &PemInput, p: &mut Problems) -> Option<PrivateKeyDer<'static>> {
    match PrivateKeyDer::from_pem_slice(&input.bytes) {
        Ok(key) => Some(key),
        Err(e) => {
            let wanted = "private key (PKCS#8, RSA or EC PRIVATE KEY block)";
            p.add(&input.blame, pem_reason(&e, wanted));
            None
        }
    }
}

/// The certificate chain and key read from `cert` and `key`, or `None`
/// with the problems in `p`.
fn certified_key(
    cert: &PemInput,
    key: &PemInput,
    provider: &CryptoProvider,
    p: &mut Problems,
) -> Option<CertifiedKey> {
    let chain = certificates(cert, p);
    let key_der = private_key(key, p);
    pair(chain?, key_der?, (&cert.blame, &key.blame), provider, p)
}

/// `chain` and `key` together, or `None` with the problem in `p`: a key
/// that is not the certificate's is blamed on the key.
pub(super) fn pair(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    (cert_blame, key_blame): (&str, &str),
    provider: &CryptoProvider,
    p: &mut Problems,
) -> Option<CertifiedKey> {
    match CertifiedKey::from_der(chain, key, provider) {
        Ok(pair) => Some(pair),
        Err(e) => {
            match e {
                rustls::Error::InconsistentKeys(_) => {
                    p.add(key_blame, "does not match the certificate's public key")
                }
                rustls::Error::InvalidCertificate(_) => p.add(cert_blame, e),
                _ => p.add(key_blame, e),
            }
            None
        }
    }
}

/// What a file looked like: modified time, size and (on Unix) inode, or
/// `None` if it cannot be looked at.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.modified().ok()?, meta.len(), inode))
}

/// `cert_file` and `key_file` as configured, and what became of them.
#[derive(Debug)]
struct Files {
    cert: String,
    key: String,
    /// The web config's directory: the names are relative to it.
    base: PathBuf,
    provider: Arc<CryptoProvider>,
    failures: Counter,
    /// [`CHECK_INTERVAL`]; shorter in tests.
    interval: Duration,
    seen: Mutex<Seen>,
}

#[derive(Debug)]
struct Seen {
    checked: Instant,
    /// The pair being served.
    loaded: [Stamp; 2],
    /// A pair that failed once, to be tried again before it is reported.
    failed_once: Option<[Stamp; 2]>,
    /// A pair reported bad: not read again until one of them changes.
    reported: Option<[Stamp; 2]>,
}

impl Files {
    fn paths(&self) -> [PathBuf; 2] {
        [self.base.join(&self.cert), self.base.join(&self.key)]
    }

    /// A new pair to serve, if the files changed and make a good one.
    fn check(&self) -> Option<CertifiedKey> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.checked.elapsed() < self.interval {
            return None;
        }
        seen.checked = Instant::now();
        let now = self.paths().map(|path| stamp(&path));
        if now == seen.loaded || Some(now) == seen.reported {
            return None;
        }
        let mut p = Problems::default();
        let cert = pem_input(
            ("cert", &None),
            ("cert_file", &Some(self.cert.clone())),
            &self.base,
            &mut p,
        );
        let key = pem_input(
            ("key", &None),
            ("key_file", &Some(self.key.clone())),
            &self.base,
            &mut p,
        );
        let pair = match (cert, key) {
            (Some(cert), Some(key)) => certified_key(&cert, &key, &self.provider, &mut p),
            _ => None,
        };
        match pair {
            Some(pair) => {
                seen.loaded = now;
                seen.failed_once = None;
                seen.reported = None;
                tracing::info!(cert_file = %self.paths()[0].display(), "serving certificate reloaded");
                Some(pair)
            }
            None if seen.failed_once == Some(now) => {
                seen.reported = Some(now);
                seen.failed_once = None;
                self.failures.inc();
                tracing::warn!(
                    "serving certificate not reloaded, keeping the previous one: {}",
                    p.0.join("; ")
                );
                None
            }
            None => {
                // Perhaps caught between the writes of a rotation: look
                // again at the next check, without waiting for a change.
                seen.failed_once = Some(now);
                None
            }
        }
    }
}

/// The certificate each handshake is given.
#[derive(Debug)]
pub struct ServerCert {
    current: RwLock<Arc<CertifiedKey>>,
    /// `None`: inline PEM, served as it is.
    files: Option<Files>,
}

impl ServerCert {
    /// A pair given inline: never read again.
    pub(super) fn fixed(pair: CertifiedKey) -> ServerCert {
        ServerCert {
            current: RwLock::new(Arc::new(pair)),
            files: None,
        }
    }

    /// A pair read from `cert` and `key` (names relative to `base`) just
    /// now: looked at again on new connections; bad new pairs counted in
    /// `failures`.
    pub(super) fn from_files(
        pair: CertifiedKey,
        (cert, key): (&str, &str),
        base: &Path,
        provider: Arc<CryptoProvider>,
        failures: Counter,
    ) -> ServerCert {
        let base = base.to_path_buf();
        let loaded = [stamp(&base.join(cert)), stamp(&base.join(key))];
        ServerCert {
            current: RwLock::new(Arc::new(pair)),
            files: Some(Files {
                cert: cert.to_string(),
                key: key.to_string(),
                base,
                provider,
                failures,
                interval: CHECK_INTERVAL,
                seen: Mutex::new(Seen {
                    checked: Instant::now(),
                    loaded,
                    failed_once: None,
                    reported: None,
                }),
            }),
        }
    }
}

impl ServerCert {
    /// The pair to serve now, the files looked at first if it is time.
    fn current(&self) -> Arc<CertifiedKey> {
        if let Some(pair) = self.files.as_ref().and_then(Files::check) {
            *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pair);
        }
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&current)
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::{Pem, self_signed};

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// `server.crt` and `server.key` written in `dir`, looked at on every call.
    fn watching(dir: &Path, pem: &Pem, failures: &Counter) -> ServerCert {
        write(dir, "server.crt", &pem.cert);
        write(dir, "server.key", &pem.key);
        let input = |name: &str, field: &str| {
            let file = Some(name.to_string());
            pem_input(("-", &None), (field, &file), dir, &mut Problems::default()).unwrap()
        };
        let pair = certified_key(
            &input("server.crt", "cert_file"),
            &input("server.key", "key_file"),
            &provider(),
            &mut Problems::default(),
        )
        .unwrap();
        let mut cert = ServerCert::from_files(
            pair,
            ("server.crt", "server.key"),
            dir,
            provider(),
            failures.clone(),
        );
        cert.files.as_mut().unwrap().interval = Duration::ZERO;
        cert
    }

    /// Replaced, never rewritten in place: a new inode each time.
    fn write(dir: &Path, name: &str, text: &str) {
        let tmp = dir.join(format!("{name}.new"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, dir.join(name)).unwrap();
    }

    fn der(pem: &Pem) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.cert.as_bytes())
            .unwrap()
            .to_vec()
    }

    fn served(cert: &ServerCert) -> Vec<u8> {
        cert.current().cert[0].to_vec()
    }

    #[test]
    fn a_replaced_pair_is_served_next() {
        let dir = tempfile::tempdir().unwrap();
        let failures = Counter::default();
        let (one, two) = (self_signed("localhost"), self_signed("localhost"));
        let cert = watching(dir.path(), &one, &failures);
        assert_eq!(served(&cert), der(&one));
        write(dir.path(), "server.key", &two.key);
        write(dir.path(), "server.crt", &two.cert);
        assert_eq!(served(&cert), der(&two));
        assert_eq!(failures.get(), 0);
    }

    #[test]
    fn a_bad_pair_keeps_the_last_good_one_and_is_counted_once_while_it_stays() {
        let dir = tempfile::tempdir().unwrap();
        let failures = Counter::default();
        let (one, two) = (self_signed("localhost"), self_signed("localhost"));
        let cert = watching(dir.path(), &one, &failures);
        // The certificate written, its key not yet: perhaps a rotation
        // between its writes, so not a failure yet.
        write(dir.path(), "server.crt", &two.cert);
        assert_eq!((served(&cert), failures.get()), (der(&one), 0));
        // Still so at the next look: reported once, however often looked at.
        for _ in 0..3 {
            assert_eq!((served(&cert), failures.get()), (der(&one), 1));
        }
        // A file gone is as bad; a good pair again is served.
        std::fs::remove_file(dir.path().join("server.key")).unwrap();
        assert_eq!((served(&cert), failures.get()), (der(&one), 1));
        assert_eq!((served(&cert), failures.get()), (der(&one), 2));
        write(dir.path(), "server.key", &two.key);
        assert_eq!((served(&cert), failures.get()), (der(&two), 2));
    }

    #[test]
    fn the_files_are_looked_at_once_per_interval_and_inline_pairs_never() {
        let dir = tempfile::tempdir().unwrap();
        let failures = Counter::default();
        let (one, two) = (self_signed("localhost"), self_signed("localhost"));
        let mut cert = watching(dir.path(), &one, &failures);
        cert.files.as_mut().unwrap().interval = Duration::from_secs(3600);
        write(dir.path(), "server.key", &two.key);
        write(dir.path(), "server.crt", &two.cert);
        assert_eq!(served(&cert), der(&one));

        let fixed = ServerCert::fixed((*cert.current()).clone());
        assert!(fixed.files.is_none());
        assert_eq!(served(&fixed), der(&one));
    }
}
