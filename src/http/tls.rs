//! TLS for the server: the `tls_server_config` section, the rustls
//! `ServerConfig` built from it, the PEM inputs it reads (inline or from
//! files, relative to the web config), and the client-certificate
//! verifiers, `client_allowed_sans` included.
//!
//! Read at start-up and on reload (SIGHUP); the serving certificate and
//! key files are also looked at again on new connections (see
//! [`super::server_cert`]). Never quote key or certificate text in a
//! problem: a PEM input is blamed by its field and file name alone.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::WebPkiSupportedAlgorithms;
use tokio_rustls::rustls::pki_types::{CertificateDer, UnixTime};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedProtocolVersion,
};

use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny};

pub use super::server_cert::io_reason;
use super::server_cert::{self, PemInput, ServerCert, certificates, pem_input, private_key};
use crate::config::section::{Problems, Text, TextList};

/// `client_auth_type`: which client certificates are asked for, and
/// whether they are checked against `client_ca`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    fn parse(name: &str) -> Option<ClientAuth> {
        Some(match name {
            "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            // exporter-toolkit keeps the old name for compatibility.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => return None,
        })
    }

    fn verifies_against_ca(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// The `client_auth_type` field: unset, or a name [`ClientAuth`] knows.
/// Any other name is a problem at the field, listing the names.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuthType(pub Option<ClientAuth>);

impl<'de> Deserialize<'de> for AuthType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Some(name) = Text::deserialize(d)?.0 else {
            return Ok(AuthType(None));
        };
        match ClientAuth::parse(&name) {
            Some(auth) => Ok(AuthType(Some(auth))),
            None => Err(de::Error::custom(format_args!(
                "unknown value {name:?} (expected NoClientCert, RequestClientCert, \
                 RequireAnyClientCert, VerifyClientCertIfGiven or \
                 RequireAndVerifyClientCert)"
            ))),
        }
    }
}

/// Protocol versions in order; rustls speaks only these two.
const VERSIONS: [(&str, &SupportedProtocolVersion); 2] = [
    ("TLS12", &rustls::version::TLS12),
    ("TLS13", &rustls::version::TLS13),
];

/// `min_version` / `max_version`: unset, or a place in [`VERSIONS`].
/// TLS 1.0 and 1.1 are refused by name; so is anything else.
#[derive(Clone, Copy, Debug, Default)]
pub struct TlsVersion(pub Option<usize>);

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Some(name) = Text::deserialize(d)?.0 else {
            return Ok(TlsVersion(None));
        };
        if let Some(index) = VERSIONS.iter().position(|(n, _)| *n == name) {
            return Ok(TlsVersion(Some(index)));
        }
        Err(de::Error::custom(if name == "TLS10" || name == "TLS11" {
            format!("{name} is not supported: lapse speaks TLS 1.2 and 1.3 only")
        } else {
            format!("unknown TLS version {name:?} (expected TLS12 or TLS13)")
        }))
    }
}

/// `tls_server_config`, as exporter-toolkit spells it. File names are
/// relative to the web config's directory; each PEM input is given inline
/// or as a file, never both.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsServerConfig {
    /// The server's certificate chain, inline PEM.
    pub cert: Text,
    /// The server's certificate chain, a PEM file.
    pub cert_file: Text,
    /// The server's private key, inline PEM.
    pub key: Text,
    /// The server's private key, a PEM file.
    pub key_file: Text,
    /// The CAs client certificates are checked against, inline PEM.
    pub client_ca: Text,
    /// The CAs client certificates are checked against, a PEM file.
    pub client_ca_file: Text,
    /// Default `NoClientCert`.
    pub client_auth_type: AuthType,
    /// Default TLS12.
    pub min_version: TlsVersion,
    /// Default TLS13.
    pub max_version: TlsVersion,
    /// When set, a client certificate must carry one of these DNS, e-mail,
    /// IP or URI names.
    pub client_allowed_sans: TextList,
    /// Go's crypto/tls choices: rustls makes its own, so these three are
    /// accepted and ignored (with a warning at start-up).
    pub cipher_suites: Option<IgnoredAny>,
    pub curve_preferences: Option<IgnoredAny>,
    pub prefer_server_cipher_suites: Option<IgnoredAny>,
    /// Set to a name lapse does not know: TLS is on, and the problem is
    /// already reported. Not a field of the file.
    #[serde(skip)]
    pub client_auth_type_invalid: bool,
}

impl TlsServerConfig {
    /// exporter-toolkit's rule: any of these turns TLS on.
    pub fn enabled(&self) -> bool {
        self.cert.0.is_some()
            || self.cert_file.0.is_some()
            || self.key.0.is_some()
            || self.key_file.0.is_some()
            || self.client_ca.0.is_some()
            || self.client_ca_file.0.is_some()
            || self.client_auth_type.0.is_some()
            || self.client_auth_type_invalid
    }
}

fn client_roots(input: &PemInput, p: &mut Problems) -> Option<Arc<RootCertStore>> {
    let certs = certificates(input, p)?;
    let mut roots = RootCertStore::empty();
    let mut usable = true;
    for (index, cert) in certs.into_iter().enumerate() {
        if let Err(e) = roots.add(cert) {
            p.add(
                &input.blame,
                format_args!("certificate {} is not usable as a CA: {e}", index + 1),
            );
            usable = false;
        }
    }
    usable.then(|| Arc::new(roots))
}

/// The server's TLS set-up, or `None` with every problem in `p`, each
/// naming the field to fix.
pub fn server_config(
    tls: &TlsServerConfig,
    base: &Path,
    failures: Counter,
    p: &mut Problems,
) -> Option<Arc<ServerConfig>> {
    let before = p.0.len();
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    if tls.cert.0.is_none() && tls.cert_file.0.is_none() {
        p.add(
            "tls_server_config.cert_file",
            "required (or an inline cert)",
        );
    }
    if tls.key.0.is_none() && tls.key_file.0.is_none() {
        p.add("tls_server_config.key_file", "required (or an inline key)");
    }
    let cert_input = pem_input(
        ("cert", &tls.cert.0),
        ("cert_file", &tls.cert_file.0),
        base,
        p,
    );
    let key_input = pem_input(("key", &tls.key.0), ("key_file", &tls.key_file.0), base, p);
    let ca_input = pem_input(
        ("client_ca", &tls.client_ca.0),
        ("client_ca_file", &tls.client_ca_file.0),
        base,
        p,
    );
    let chain = cert_input.as_ref().and_then(|input| certificates(input, p));
    let key = key_input.as_ref().and_then(|input| private_key(input, p));
    let roots = ca_input.as_ref().and_then(|input| client_roots(input, p));

    let min = tls.min_version.0.unwrap_or(0);
    let max = tls.max_version.0.unwrap_or(VERSIONS.len() - 1);
    if min > max {
        p.add(
            "tls_server_config.min_version",
            format_args!(
                "{} is above max_version {}",
                VERSIONS[min].0, VERSIONS[max].0
            ),
        );
    }
    let versions: Vec<&'static SupportedProtocolVersion> = VERSIONS[min..=max.max(min)]
        .iter()
        .map(|(_, v)| *v)
        .collect();

    let client_auth = tls.client_auth_type.0.unwrap_or(ClientAuth::NoClientCert);
    let ca_given = tls.client_ca.0.is_some() || tls.client_ca_file.0.is_some();
    if ca_given && client_auth == ClientAuth::NoClientCert && !tls.client_auth_type_invalid {
        p.add(
            "tls_server_config.client_auth_type",
            "a client CA is set but client_auth_type is NoClientCert; \
             set e.g. RequireAndVerifyClientCert",
        );
    }
    if client_auth.verifies_against_ca() && !ca_given {
        p.add(
            "tls_server_config.client_ca_file",
            format_args!("required by client_auth_type {client_auth:?} (or an inline client_ca)"),
        );
    }
    if ca_given
        && matches!(
            client_auth,
            ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert
        )
    {
        tracing::warn!(
            "tls_server_config: the client CA is not used with client_auth_type {client_auth:?}, \
             which accepts any client certificate"
        );
    }
    if let Some(sans) = &tls.client_allowed_sans.0 {
        if !matches!(
            client_auth,
            ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert
        ) {
            p.add(
                "tls_server_config.client_allowed_sans",
                "requires client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert",
            );
        } else if sans.is_empty() {
            p.add(
                "tls_server_config.client_allowed_sans",
                "an empty list would refuse every client; remove it or list names",
            );
        }
    }
    if p.0.len() > before {
        return None;
    }
    let (chain, key) = (chain?, key?);

    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ClientCertVerifier> = match client_auth {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Arc::new(AnyClientCert {
                mandatory: client_auth == ClientAuth::RequireAnyClientCert,
                algorithms,
            })
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let mut builder =
                WebPkiClientVerifier::builder_with_provider(roots?, Arc::clone(&provider));
            if client_auth == ClientAuth::VerifyClientCertIfGiven {
                builder = builder.allow_unauthenticated();
            }
            match builder.build() {
                Ok(verifier) => verifier,
                Err(e) => {
                    p.add("tls_server_config.client_ca_file", e);
                    return None;
                }
            }
        }
    };
    let verifier = match &tls.client_allowed_sans.0 {
        Some(allowed) => Arc::new(AllowedSans {
            inner: verifier,
            allowed: allowed.clone(),
        }),
        None => verifier,
    };

    let builder = match ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
    {
        Ok(builder) => builder,
        Err(e) => {
            p.add("tls_server_config", e);
            return None;
        }
    };
    let key_blame = key_input.map_or_else(String::new, |input| input.blame);
    let cert_blame = cert_input.map_or_else(String::new, |input| input.blame);
    let pair = server_cert::pair(chain, key, (&cert_blame, &key_blame), &provider, p)?;
    let resolver = match (&tls.cert_file.0, &tls.key_file.0) {
        (Some(cert), Some(key)) => {
            ServerCert::from_files(pair, (cert, key), base, Arc::clone(&provider), failures)
        }
        _ => ServerCert::fixed(pair),
    };
    let mut config = builder
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(resolver));
    // HTTP/1.1 only: the server does not speak h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Some(Arc::new(config))
}

/// RequestClientCert / RequireAnyClientCert: as in Go's crypto/tls, any
/// certificate is accepted without checking who issued it; the handshake
/// signature still proves the client holds its key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[derive(thiserror::Error)]
#[error("the client certificate carries none of client_allowed_sans")]
struct NoAllowedSan;

/// rustls shows this error through `Debug`; make that the readable message.
impl fmt::Debug for NoAllowedSan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `client_allowed_sans`: after `inner` accepts the certificate, one of its
/// DNS, e-mail, IP or URI names must be on the list (exporter-toolkit's rule).
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

fn subject_alt_names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                Some(s.to_string())
            }
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|b| Ipv4Addr::from(b).to_string()),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|b| Ipv6Addr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if subject_alt_names(end_entity)
            .iter()
            .any(|name| self.allowed.contains(name))
        {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(NoAllowedSan))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::{Ca, Pem, SERVER_FILES, fixture, load, problems, self_signed};
    use rcgen::ExtendedKeyUsagePurpose;
    use std::future::poll_fn;
    use std::pin::Pin;
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio_rustls::rustls::ClientConfig;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, ServerName};

    #[test]
    fn files_relative_to_the_config_build_tls_with_http11_alpn() {
        let (dir, _ca) = fixture();
        let config = load(dir.path(), SERVER_FILES).unwrap();
        let tls = config.tls.expect("TLS on");
        assert_eq!(tls.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn inline_cert_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let pem = self_signed("localhost");
        let yaml = serde_json::json!({
            "tls_server_config": {"cert": pem.cert, "key": pem.key}
        })
        .to_string();
        assert!(load(dir.path(), &yaml).unwrap().tls.is_some());
    }

    #[test]
    fn unusable_pem_is_blamed_on_the_file_without_quoting_it() {
        let (dir, _ca) = fixture();
        std::fs::write(dir.path().join("junk.key"), "SECRETJUNK").unwrap();
        std::fs::write(dir.path().join("empty.crt"), "").unwrap();
        let found = problems(
            dir.path(),
            "tls_server_config:\n  cert_file: empty.crt\n  key_file: junk.key\n",
        );
        let crt = dir.path().join("empty.crt");
        let key = dir.path().join("junk.key");
        assert_eq!(
            found,
            vec![
                format!(
                    "tls_server_config.cert_file: {}: no CERTIFICATE block found",
                    crt.display()
                ),
                format!(
                    "tls_server_config.key_file: {}: no private key (PKCS#8, RSA or EC PRIVATE KEY block) found",
                    key.display()
                ),
            ]
        );
    }

    #[test]
    fn a_key_for_another_certificate_is_refused() {
        let (dir, _ca) = fixture();
        std::fs::write(dir.path().join("other.key"), self_signed("x").key).unwrap();
        let found = problems(
            dir.path(),
            "tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n",
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("tls_server_config.key_file: ")
                && found[0].ends_with("does not match the certificate's public key"),
            "{found:#?}"
        );
    }

    #[test]
    fn client_ca_rules() {
        let (dir, _ca) = fixture();
        let with = |extra: &str| format!("{SERVER_FILES}{extra}");
        let ok = load(
            dir.path(),
            &with("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"),
        );
        assert!(ok.unwrap().tls.is_some());
        let inline = serde_json::json!({"tls_server_config": {
            "cert_file": "server.crt", "key_file": "server.key",
            "client_auth_type": "VerifyClientCertIfGiven",
            "client_ca": std::fs::read_to_string(dir.path().join("ca.crt")).unwrap(),
        }});
        assert!(load(dir.path(), &inline.to_string()).unwrap().tls.is_some());

        let cases = [
            (
                "  client_auth_type: VerifyClientCertIfGiven\n",
                "tls_server_config.client_ca_file: required by client_auth_type VerifyClientCertIfGiven",
            ),
            (
                "  client_ca_file: ca.crt\n",
                "tls_server_config.client_auth_type: a client CA is set but client_auth_type is NoClientCert",
            ),
            (
                "  client_auth_type: RequestClientCert\n  client_allowed_sans: [a]\n",
                "tls_server_config.client_allowed_sans: requires client_auth_type",
            ),
            (
                "  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: []\n",
                "tls_server_config.client_allowed_sans: an empty list",
            ),
            (
                "  min_version: TLS13\n  max_version: TLS12\n",
                "tls_server_config.min_version: TLS13 is above max_version TLS12",
            ),
            (
                "  cert: inline\n",
                "tls_server_config.cert_file: set either cert_file or cert, not both",
            ),
        ];
        for (extra, want) in cases {
            let found = problems(dir.path(), &with(extra));
            assert!(
                found.len() == 1 && found[0].starts_with(want),
                "{extra}: {found:#?}"
            );
        }
    }

    // ---- end to end through a real TLS handshake

    // tokio's io-util feature is off, so these stand in for read_exact,
    // write_all and shutdown.
    async fn read_exact<S: AsyncRead + Unpin>(
        stream: &mut S,
        buf: &mut [u8],
    ) -> std::io::Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            let mut read = ReadBuf::new(&mut buf[filled..]);
            poll_fn(|cx| Pin::new(&mut *stream).poll_read(cx, &mut read)).await?;
            if read.filled().is_empty() {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            filled += read.filled().len();
        }
        Ok(())
    }

    async fn write_all<S: AsyncWrite + Unpin>(
        stream: &mut S,
        mut buf: &[u8],
    ) -> std::io::Result<()> {
        while !buf.is_empty() {
            let n = poll_fn(|cx| Pin::new(&mut *stream).poll_write(cx, buf)).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        poll_fn(|cx| Pin::new(&mut *stream).poll_flush(cx)).await
    }

    async fn shutdown<S: AsyncWrite + Unpin>(stream: &mut S) -> std::io::Result<()> {
        poll_fn(|cx| Pin::new(&mut *stream).poll_shutdown(cx)).await
    }

    /// Connects a client trusting `ca_pem` (with an optional client
    /// certificate) and echoes five bytes; Err says which side failed.
    async fn handshake(
        server: Arc<ServerConfig>,
        ca_pem: &str,
        client_cert: Option<&Pem>,
    ) -> Result<(), String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let server_side = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
            let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
            let mut buf = [0u8; 5];
            read_exact(&mut tls, &mut buf)
                .await
                .map_err(|e| e.to_string())?;
            write_all(&mut tls, &buf).await.map_err(|e| e.to_string())?;
            shutdown(&mut tls).await.map_err(|e| e.to_string())
        });

        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots);
        let mut client = match client_cert {
            Some(pem) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(pem.cert.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let client_side = async {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await?;
            write_all(&mut tls, b"hello").await?;
            let mut buf = [0u8; 5];
            read_exact(&mut tls, &mut buf).await?;
            assert_eq!(&buf, b"hello");
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
            Ok::<(), std::io::Error>(())
        }
        .await;
        let server_result = server_side.await.unwrap();
        match (client_side, server_result) {
            (Ok(()), Ok(())) => Ok(()),
            (client, server) => Err(format!("client: {client:?}; server: {server:?}")),
        }
    }

    #[tokio::test]
    async fn tls_handshake_serves_bytes() {
        let (dir, ca) = fixture();
        let tls = load(dir.path(), SERVER_FILES).unwrap().tls.unwrap();
        handshake(tls, &ca.pem, None).await.unwrap();
    }

    #[tokio::test]
    async fn require_and_verify_needs_a_certificate_from_the_ca() {
        let (dir, ca) = fixture();
        let yaml = format!(
            "{SERVER_FILES}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
        );
        let tls = load(dir.path(), &yaml).unwrap().tls.unwrap();
        let client = ca.issue("client.example", ExtendedKeyUsagePurpose::ClientAuth);
        handshake(Arc::clone(&tls), &ca.pem, Some(&client))
            .await
            .unwrap();
        let err = handshake(Arc::clone(&tls), &ca.pem, None)
            .await
            .unwrap_err();
        assert!(err.contains("server: Err"), "{err}");
        let stranger = Ca::new().issue("client.example", ExtendedKeyUsagePurpose::ClientAuth);
        let err = handshake(tls, &ca.pem, Some(&stranger)).await.unwrap_err();
        assert!(err.contains("server: Err"), "{err}");
    }

    #[tokio::test]
    async fn allowed_sans_pick_among_verified_clients() {
        let (dir, ca) = fixture();
        let yaml = format!(
            "{SERVER_FILES}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  \
             client_allowed_sans: [prometheus.example]\n"
        );
        let tls = load(dir.path(), &yaml).unwrap().tls.unwrap();
        let allowed = ca.issue("prometheus.example", ExtendedKeyUsagePurpose::ClientAuth);
        let other = ca.issue("grafana.example", ExtendedKeyUsagePurpose::ClientAuth);
        handshake(Arc::clone(&tls), &ca.pem, Some(&allowed))
            .await
            .unwrap();
        let err = handshake(tls, &ca.pem, Some(&other)).await.unwrap_err();
        assert!(err.contains("client_allowed_sans"), "{err}");
    }

    #[tokio::test]
    async fn require_any_accepts_a_self_signed_client_over_tls12() {
        let (dir, ca) = fixture();
        let yaml = format!(
            "{SERVER_FILES}  client_auth_type: RequireAnyClientCert\n  max_version: TLS12\n"
        );
        let tls = load(dir.path(), &yaml).unwrap().tls.unwrap();
        handshake(Arc::clone(&tls), &ca.pem, Some(&self_signed("anyone")))
            .await
            .unwrap();
        let err = handshake(tls, &ca.pem, None).await.unwrap_err();
        assert!(err.contains("server: Err"), "{err}");
    }
}
