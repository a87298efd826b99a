//! `--web.config.file`: the Prometheus exporter-toolkit web configuration
//! (TLS, client certificates, basic auth, extra response headers), so an
//! operator can hand lapse the file node_exporter already reads.
//!
//! Loading validates by hand and reports every problem at once, each naming
//! its field. This module must never log or keep a password, and never put
//! key, certificate or hash text into an error message.

use std::collections::HashSet;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::header::{HeaderName, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::WebPkiSupportedAlgorithms;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedProtocolVersion,
};

use crate::validate::{Problems, flag, mapping, text, text_list};
use crate::yaml;

/// The parsed web configuration, ready for the server.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Present when the file turns TLS on; ALPN offers `http/1.1` only.
    pub tls: Option<Arc<ServerConfig>>,
    pub basic_auth: BasicAuth,
    /// Added to every response, including 401s.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl WebConfig {
    /// Plain HTTP, no authentication, no extra headers.
    pub fn none() -> WebConfig {
        WebConfig {
            tls: None,
            basic_auth: BasicAuth::disabled(),
            headers: Vec::new(),
        }
    }

    /// Reads and validates the file; relative paths in it are relative to
    /// the file's directory, as in exporter-toolkit. On failure every problem
    /// is returned, each as `field: message`; problems with the file itself
    /// (`cannot read: ...`, `invalid YAML at ...`) do not repeat its path,
    /// which the caller prints in front.
    pub fn load(path: &Path) -> Result<WebConfig, Vec<String>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![format!("cannot read: {}", io_reason(&e))])?;
        let root: Value = yaml::from_str(&text).map_err(|e| vec![e])?;
        let base = path.parent().unwrap_or(Path::new(""));
        let mut problems = Problems::default();
        let config = from_value(&root, base, &mut problems);
        if problems.0.is_empty() {
            Ok(config)
        } else {
            Err(problems.0)
        }
    }
}

fn from_value(root: &Value, base: &Path, p: &mut Problems) -> WebConfig {
    let mut config = WebConfig::none();
    let Some(fields) = mapping(root, "web config", p) else {
        return config;
    };
    for (name, value) in fields {
        match name.as_str() {
            "tls_server_config" => config.tls = tls_section(value, base, p),
            "http_server_config" => config.headers = http_section(value, p),
            "basic_auth_users" => config.basic_auth = users_section(value, p),
            // A limiter silently dropped would be worse than a refusal.
            "rate_limit" => p.add(name, "not supported by lapse; remove it"),
            _ => p.unknown(name),
        }
    }
    config
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "is a directory".to_string(),
        _ => e.to_string(),
    }
}

// ---- http_server_config

/// exporter-toolkit allows only these headers (and, for two, only these
/// values), to keep the Prometheus ecosystem consistent; lapse mirrors it.
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Content-Security-Policy", &[]),
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
];

fn http_section(value: &Value, p: &mut Problems) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::new();
    let Some(fields) = mapping(value, "http_server_config", p) else {
        return headers;
    };
    for (name, value) in fields {
        let field = format!("http_server_config.{name}");
        match name.as_str() {
            "http2" => {
                if flag(value, &field, p) == Some(true) {
                    tracing::warn!("{field}: lapse serves HTTP/1.1 only; ignoring http2: true");
                }
            }
            "headers" => {
                if let Some(entries) = mapping(value, &field, p) {
                    for (header, value) in entries {
                        let field = format!("{field}.{header}");
                        if let Some(pair) = header_pair(header, value, &field, p) {
                            headers.push(pair);
                        }
                    }
                }
            }
            _ => p.unknown(&field),
        }
    }
    headers
}

fn header_pair(
    name: &str,
    value: &Value,
    field: &str,
    p: &mut Problems,
) -> Option<(HeaderName, HeaderValue)> {
    let Some(value) = value.as_str() else {
        p.add(field, "expected a string");
        return None;
    };
    let Some((canonical, allowed_values)) = ALLOWED_HEADERS
        .iter()
        .find(|(allowed, _)| allowed.eq_ignore_ascii_case(name))
    else {
        let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
        p.add(
            field,
            format_args!("this header cannot be set (allowed: {})", names.join(", ")),
        );
        return None;
    };
    if !allowed_values.is_empty() && !allowed_values.iter().any(|v| v.eq_ignore_ascii_case(value)) {
        p.add(
            field,
            format_args!("expected one of {}", allowed_values.join(", ")),
        );
        return None;
    }
    match HeaderValue::from_str(value) {
        Ok(header_value) => Some((HeaderName::from_static(lowercase(canonical)), header_value)),
        Err(_) => {
            p.add(field, "not a valid header value");
            None
        }
    }
}

/// `HeaderName::from_static` wants lowercase names.
fn lowercase(name: &str) -> &'static str {
    match name {
        "Content-Security-Policy" => "content-security-policy",
        "Strict-Transport-Security" => "strict-transport-security",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-Frame-Options" => "x-frame-options",
        _ => "x-xss-protection",
    }
}

// ---- tls_server_config

#[derive(Clone, Copy, Debug, PartialEq)]
enum ClientAuth {
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

/// Protocol versions in order; rustls speaks only these two.
const VERSIONS: [(&str, &SupportedProtocolVersion); 2] = [
    ("TLS12", &rustls::version::TLS12),
    ("TLS13", &rustls::version::TLS13),
];

fn version_index(value: &Value, field: &str, p: &mut Problems) -> Option<usize> {
    let name = text(value, field, p)?;
    if let Some(index) = VERSIONS.iter().position(|(n, _)| *n == name) {
        return Some(index);
    }
    if name == "TLS10" || name == "TLS11" {
        p.add(
            field,
            format_args!("{name} is not supported: lapse speaks TLS 1.2 and 1.3 only"),
        );
    } else {
        p.add(
            field,
            format_args!("unknown TLS version {name:?} (expected TLS12 or TLS13)"),
        );
    }
    None
}

/// The raw `tls_server_config` fields.
#[derive(Default)]
struct TlsFields {
    cert: Option<String>,
    cert_file: Option<String>,
    key: Option<String>,
    key_file: Option<String>,
    client_ca: Option<String>,
    client_ca_file: Option<String>,
    client_auth_type: Option<ClientAuth>,
    /// Set but unparsable: TLS is on, the problem is already reported.
    client_auth_type_invalid: bool,
    min_version: Option<usize>,
    max_version: Option<usize>,
    client_allowed_sans: Option<Vec<String>>,
}

impl TlsFields {
    /// exporter-toolkit's rule: any of these turns TLS on.
    fn enabled(&self) -> bool {
        self.cert.is_some()
            || self.cert_file.is_some()
            || self.key.is_some()
            || self.key_file.is_some()
            || self.client_ca.is_some()
            || self.client_ca_file.is_some()
            || self.client_auth_type.is_some()
            || self.client_auth_type_invalid
    }
}

fn tls_section(value: &Value, base: &Path, p: &mut Problems) -> Option<Arc<ServerConfig>> {
    let fields = mapping(value, "tls_server_config", p)?;
    let mut tls = TlsFields::default();
    for (name, value) in fields {
        let field = format!("tls_server_config.{name}");
        match name.as_str() {
            "cert" => tls.cert = text(value, &field, p),
            "cert_file" => tls.cert_file = text(value, &field, p),
            "key" => tls.key = text(value, &field, p),
            "key_file" => tls.key_file = text(value, &field, p),
            "client_ca" => tls.client_ca = text(value, &field, p),
            "client_ca_file" => tls.client_ca_file = text(value, &field, p),
            "client_auth_type" => {
                if let Some(name) = text(value, &field, p) {
                    tls.client_auth_type = ClientAuth::parse(&name);
                    if tls.client_auth_type.is_none() {
                        tls.client_auth_type_invalid = true;
                        p.add(
                            &field,
                            format_args!(
                                "unknown value {name:?} (expected NoClientCert, RequestClientCert, \
                                 RequireAnyClientCert, VerifyClientCertIfGiven or \
                                 RequireAndVerifyClientCert)"
                            ),
                        );
                    }
                }
            }
            "min_version" => tls.min_version = version_index(value, &field, p),
            "max_version" => tls.max_version = version_index(value, &field, p),
            "client_allowed_sans" => tls.client_allowed_sans = text_list(value, &field, p),
            "cipher_suites" | "curve_preferences" | "prefer_server_cipher_suites" => {
                tracing::warn!("{field}: ignored; rustls chooses cipher suites and curves");
            }
            _ => p.unknown(&field),
        }
    }
    if !tls.enabled() {
        if !fields.is_empty() {
            // exporter-toolkit also serves plain HTTP here; say so, at least.
            tracing::warn!("tls_server_config: no cert, key or client CA set; TLS is off");
        }
        return None;
    }
    build_tls(&tls, base, p)
}

/// PEM text from an inline field or a file, and the name to blame for it.
struct PemInput {
    blame: String,
    bytes: Vec<u8>,
}

fn pem_input(
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

fn certificates(input: &PemInput, p: &mut Problems) -> Option<Vec<CertificateDer<'static>>> {
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

fn private_key(input: &PemInput, p: &mut Problems) -> Option<PrivateKeyDer<'static>> {
    match PrivateKeyDer::from_pem_slice(&input.bytes) {
        Ok(key) => Some(key),
        Err(e) => {
            let wanted = "private key (PKCS#8, RSA or EC PRIVATE KEY block)";
            p.add(&input.blame, pem_reason(&e, wanted));
            None
        }
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

fn build_tls(tls: &TlsFields, base: &Path, p: &mut Problems) -> Option<Arc<ServerConfig>> {
    let before = p.0.len();
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    if tls.cert.is_none() && tls.cert_file.is_none() {
        p.add(
            "tls_server_config.cert_file",
            "required (or an inline cert)",
        );
    }
    if tls.key.is_none() && tls.key_file.is_none() {
        p.add("tls_server_config.key_file", "required (or an inline key)");
    }
    let cert_input = pem_input(("cert", &tls.cert), ("cert_file", &tls.cert_file), base, p);
    let key_input = pem_input(("key", &tls.key), ("key_file", &tls.key_file), base, p);
    let ca_input = pem_input(
        ("client_ca", &tls.client_ca),
        ("client_ca_file", &tls.client_ca_file),
        base,
        p,
    );
    let chain = cert_input.as_ref().and_then(|input| certificates(input, p));
    let key = key_input.as_ref().and_then(|input| private_key(input, p));
    let roots = ca_input.as_ref().and_then(|input| client_roots(input, p));

    let min = tls.min_version.unwrap_or(0);
    let max = tls.max_version.unwrap_or(VERSIONS.len() - 1);
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

    let client_auth = tls.client_auth_type.unwrap_or(ClientAuth::NoClientCert);
    let ca_given = tls.client_ca.is_some() || tls.client_ca_file.is_some();
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
    if let Some(sans) = &tls.client_allowed_sans {
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
    let verifier = match &tls.client_allowed_sans {
        Some(allowed) => Arc::new(AllowedSans {
            inner: verifier,
            allowed: allowed.clone(),
        }),
        None => verifier,
    };

    let builder =
        match ServerConfig::builder_with_provider(provider).with_protocol_versions(&versions) {
            Ok(builder) => builder,
            Err(e) => {
                p.add("tls_server_config", e);
                return None;
            }
        };
    match builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
    {
        Ok(mut config) => {
            // HTTP/1.1 only: the server does not speak h2.
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(config))
        }
        Err(e) => {
            let key_blame = key_input.map_or_else(String::new, |input| input.blame);
            let cert_blame = cert_input.map_or_else(String::new, |input| input.blame);
            match e {
                rustls::Error::InconsistentKeys(_) => {
                    p.add(&key_blame, "does not match the certificate's public key")
                }
                rustls::Error::InvalidCertificate(_) => p.add(&cert_blame, e),
                _ => p.add(&key_blame, e),
            }
            None
        }
    }
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

// ---- basic_auth_users

/// Remembered successful logins; only successes, so a client without a
/// password cannot fill it. Bounded: at most this many.
const VERIFIED_CACHE_ENTRIES: usize = 256;

/// Basic authentication against bcrypt hashes. Cheap to clone.
#[derive(Clone)]
pub struct BasicAuth {
    inner: Option<Arc<Users>>,
}

struct User {
    /// SHA-256 of the name: fixed length, so comparing leaks no length.
    name_digest: [u8; 32],
    hash: String,
}

struct Users {
    users: Vec<User>,
    /// Verified against when the user is unknown, so that an unknown user
    /// costs as much time as a wrong password. Its random salt also salts
    /// the cache keys.
    decoy_hash: String,
    /// SHA-256 of (salt, user, password) for each recent success; never the password.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// One bcrypt at a time, as exporter-toolkit does: it is CPU-heavy by design.
    bcrypt: Mutex<()>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users = self.inner.as_ref().map_or(0, |inner| inner.users.len());
        f.debug_struct("BasicAuth").field("users", &users).finish()
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Equality that does not stop at the first differing byte.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The user and password of a `Basic` Authorization header.
fn credentials(header: &HeaderValue) -> Option<(Vec<u8>, Vec<u8>)> {
    let text = header.to_str().ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

impl BasicAuth {
    fn disabled() -> BasicAuth {
        BasicAuth { inner: None }
    }

    fn new(users: Vec<(String, String)>, decoy_hash: String) -> BasicAuth {
        let users = users
            .into_iter()
            .map(|(name, hash)| User {
                name_digest: sha256(&[name.as_bytes()]),
                hash,
            })
            .collect();
        BasicAuth {
            inner: Some(Arc::new(Users {
                users,
                decoy_hash,
                verified: Mutex::new(HashSet::new()),
                bcrypt: Mutex::new(()),
            })),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// `header` is the raw Authorization header value, if any. True when
    /// auth is disabled or the credentials match.
    ///
    /// A first login per (user, password) runs bcrypt, which takes tens of
    /// milliseconds at usual costs: call it off the async executor
    /// (`tokio::task::spawn_blocking`). Repeats are answered from a cache.
    pub fn authorize(&self, header: Option<&HeaderValue>) -> bool {
        let Some(inner) = &self.inner else {
            return true;
        };
        let Some((user, password)) = header.and_then(credentials) else {
            return false;
        };
        let key = sha256(&[inner.decoy_hash.as_bytes(), &user, &password]);
        if lock(&inner.verified).contains(&key) {
            return true;
        }
        let user_digest = sha256(&[&user]);
        let mut found = None;
        for candidate in &inner.users {
            if same_digest(&candidate.name_digest, &user_digest) {
                found = Some(candidate);
            }
        }
        let hash = found.map_or(inner.decoy_hash.as_str(), |u| u.hash.as_str());
        let matches = {
            let _one_at_a_time = lock(&inner.bcrypt);
            bcrypt::verify(&password, hash).unwrap_or(false)
        };
        let authorized = matches && found.is_some();
        if authorized {
            let mut verified = lock(&inner.verified);
            if verified.len() >= VERIFIED_CACHE_ENTRIES {
                let evicted = verified.iter().next().copied();
                if let Some(evicted) = evicted {
                    verified.remove(&evicted);
                }
            }
            verified.insert(key);
        }
        authorized
    }

    #[cfg(test)]
    fn cached(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(0, |inner| lock(&inner.verified).len())
    }
}

/// A panic while holding these locks leaves nothing half-written worth refusing.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn users_section(value: &Value, p: &mut Problems) -> BasicAuth {
    let Some(entries) = mapping(value, "basic_auth_users", p) else {
        return BasicAuth::disabled();
    };
    if entries.is_empty() {
        return BasicAuth::disabled();
    }
    let mut users = Vec::new();
    let mut max_cost = 4;
    for (name, hash) in entries {
        let field = format!("basic_auth_users.{name}");
        if name.contains(':') {
            p.add(
                &field,
                "a user name cannot contain ':' (basic auth splits on it)",
            );
            continue;
        }
        let cost = hash
            .as_str()
            .and_then(|h| h.parse::<bcrypt::HashParts>().ok())
            .map(|parts| parts.get_cost())
            .filter(|cost| (4..=31).contains(cost));
        match (cost, hash.as_str()) {
            (Some(cost), Some(hash)) => {
                max_cost = max_cost.max(cost);
                users.push((name.clone(), hash.to_string()));
            }
            _ => p.add(&field, "not a bcrypt hash"),
        }
    }
    if users.is_empty() {
        return BasicAuth::disabled();
    }
    // At the highest configured cost, so an unknown user is never the fast case.
    match bcrypt::hash("lapse: no such user", max_cost) {
        Ok(decoy) => BasicAuth::new(users, decoy),
        Err(e) => {
            p.add(
                "basic_auth_users",
                format_args!("cannot prepare bcrypt: {e}"),
            );
            BasicAuth::disabled()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    use std::future::poll_fn;
    use std::pin::Pin;
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio_rustls::rustls::ClientConfig;
    use tokio_rustls::rustls::pki_types::ServerName;

    /// A CA, or a certificate it issued, as PEM.
    struct Pem {
        cert: String,
        key: String,
    }

    struct Ca {
        params: CertificateParams,
        key: KeyPair,
        pem: String,
    }

    impl Ca {
        fn new() -> Ca {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let key = KeyPair::generate().unwrap();
            let pem = params.self_signed(&key).unwrap().pem();
            Ca { params, key, pem }
        }

        fn issue(&self, san: &str, usage: ExtendedKeyUsagePurpose) -> Pem {
            let mut params = CertificateParams::new(vec![san.to_string()]).unwrap();
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            let issuer = Issuer::from_params(&self.params, &self.key);
            Pem {
                cert: params.signed_by(&key, &issuer).unwrap().pem(),
                key: key.serialize_pem(),
            }
        }
    }

    fn self_signed(san: &str) -> Pem {
        let params = CertificateParams::new(vec![san.to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        Pem {
            cert: params.self_signed(&key).unwrap().pem(),
            key: key.serialize_pem(),
        }
    }

    /// A directory with the server's files (`server.crt`, `server.key`,
    /// `ca.crt`) and the CA that signed them.
    fn fixture() -> (tempfile::TempDir, Ca) {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new();
        let server = ca.issue("localhost", ExtendedKeyUsagePurpose::ServerAuth);
        std::fs::write(dir.path().join("server.crt"), &server.cert).unwrap();
        std::fs::write(dir.path().join("server.key"), &server.key).unwrap();
        std::fs::write(dir.path().join("ca.crt"), &ca.pem).unwrap();
        (dir, ca)
    }

    fn load(dir: &Path, yaml: &str) -> Result<WebConfig, Vec<String>> {
        let path = dir.join("web.yml");
        std::fs::write(&path, yaml).unwrap();
        WebConfig::load(&path)
    }

    fn problems(dir: &Path, yaml: &str) -> Vec<String> {
        match load(dir, yaml) {
            Ok(_) => panic!("expected problems for:\n{yaml}"),
            Err(problems) => problems,
        }
    }

    const SERVER_FILES: &str =
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

    #[test]
    fn none_and_empty_files_mean_plain_open_http() {
        let none = WebConfig::none();
        assert!(none.tls.is_none() && none.headers.is_empty());
        assert!(!none.basic_auth.is_enabled());
        assert!(none.basic_auth.authorize(None));

        let dir = tempfile::tempdir().unwrap();
        for yaml in ["", "{}\n", "tls_server_config:\nbasic_auth_users: {}\n"] {
            let config = load(dir.path(), yaml).unwrap();
            assert!(config.tls.is_none(), "{yaml:?}");
            assert!(!config.basic_auth.is_enabled(), "{yaml:?}");
        }
    }

    #[test]
    fn an_unreadable_or_broken_file_is_one_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = WebConfig::load(&dir.path().join("nope.yml")).unwrap_err();
        assert_eq!(missing, vec!["cannot read: no such file or directory"]);
        let broken = problems(dir.path(), "basic_auth_users: [\n");
        assert_eq!(broken.len(), 1);
        assert!(broken[0].starts_with("invalid YAML at line "), "{broken:?}");
        let list = problems(dir.path(), "- a\n");
        assert_eq!(list, vec!["web config: expected a mapping"]);
    }

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
    fn every_problem_is_reported_at_once_and_names_its_field() {
        let (dir, _ca) = fixture();
        let yaml = "tls_server_config:\n  certfile: server.crt\n  key_file: missing.key\n  \
                    client_auth_type: Sometimes\n  min_version: TLS10\n  max_version: TLS9\n\
                    http_server_config:\n  headers:\n    Authorization: x\n    X-Frame-Options: allow\n  \
                    http3: true\n\
                    basic_auth_users:\n  alice: hunter2\n  bob: 5\n\
                    metrics_path: /x\n";
        let found = problems(dir.path(), yaml);
        let missing = dir.path().join("missing.key");
        let expected = [
            "tls_server_config.certfile: unknown field".to_string(),
            format!(
                "tls_server_config.key_file: cannot read {}: no such file or directory",
                missing.display()
            ),
            "tls_server_config.client_auth_type: unknown value \"Sometimes\"".to_string(),
            "tls_server_config.min_version: TLS10 is not supported".to_string(),
            "tls_server_config.max_version: unknown TLS version \"TLS9\"".to_string(),
            "tls_server_config.cert_file: required".to_string(),
            "http_server_config.headers.Authorization: this header cannot be set".to_string(),
            "http_server_config.headers.X-Frame-Options: expected one of deny, sameorigin"
                .to_string(),
            "http_server_config.http3: unknown field".to_string(),
            "basic_auth_users.alice: not a bcrypt hash".to_string(),
            "basic_auth_users.bob: not a bcrypt hash".to_string(),
            "metrics_path: unknown field".to_string(),
        ];
        for want in &expected {
            assert!(
                found.iter().any(|p| p.starts_with(want.as_str())),
                "missing {want:?} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        assert!(!found.iter().any(|p| p.contains("hunter2")), "{found:#?}");
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

    #[test]
    fn ignored_fields_do_not_fail() {
        let (dir, _ca) = fixture();
        let yaml = format!(
            "{SERVER_FILES}  cipher_suites: [TLS_AES_128_GCM_SHA256]\n  curve_preferences: [X25519]\n  \
             prefer_server_cipher_suites: true\nhttp_server_config:\n  http2: true\n"
        );
        assert!(load(dir.path(), &yaml).unwrap().tls.is_some());
    }

    #[test]
    fn allowed_headers_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let config = load(
            dir.path(),
            "http_server_config:\n  headers:\n    x-frame-options: deny\n    \
             Strict-Transport-Security: max-age=31536000\n",
        )
        .unwrap();
        let headers: Vec<(String, String)> = config
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            headers,
            vec![
                (
                    "strict-transport-security".to_string(),
                    "max-age=31536000".to_string()
                ),
                ("x-frame-options".to_string(), "deny".to_string()),
            ]
        );
        assert!(config.tls.is_none());
    }

    fn basic(user: &str, password: &str) -> HeaderValue {
        let encoded = STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn auth() -> BasicAuth {
        let dir = tempfile::tempdir().unwrap();
        let alice = bcrypt::hash("s3cret:pw", 4).unwrap();
        let bob = bcrypt::hash("other", 4).unwrap();
        let yaml = format!("basic_auth_users:\n  alice: '{alice}'\n  bob: '{bob}'\n");
        let config = load(dir.path(), &yaml).unwrap();
        assert!(config.basic_auth.is_enabled());
        config.basic_auth
    }

    #[test]
    fn basic_auth_accepts_only_the_right_user_and_password() {
        let auth = auth();
        assert!(auth.authorize(Some(&basic("alice", "s3cret:pw"))));
        assert!(auth.authorize(Some(&basic("bob", "other"))));
        assert!(!auth.authorize(Some(&basic("alice", "other"))));
        assert!(!auth.authorize(Some(&basic("alice", "s3cret"))));
        assert!(!auth.authorize(Some(&basic("carol", "s3cret:pw"))));
        assert!(!auth.authorize(Some(&basic("", ""))));
        assert!(!auth.authorize(None));
        let encoded = STANDARD.encode("alice:s3cret:pw");
        let malformed = [
            format!("Bearer {encoded}"),
            "Basic".to_string(),
            "Basic !!!notbase64".to_string(),
            format!("Basic {}", STANDARD.encode("alice-no-colon")),
        ];
        for header in malformed {
            let value = HeaderValue::from_str(&header).unwrap();
            assert!(!auth.authorize(Some(&value)), "{header}");
        }
        let lower = HeaderValue::from_str(&format!("basic {encoded}")).unwrap();
        assert!(auth.authorize(Some(&lower)));
    }

    #[test]
    fn only_successes_are_cached_and_answers_do_not_change() {
        let auth = auth();
        assert_eq!(auth.cached(), 0);
        for _ in 0..3 {
            assert!(auth.authorize(Some(&basic("alice", "s3cret:pw"))));
            assert!(!auth.authorize(Some(&basic("alice", "wrong"))));
            assert!(!auth.authorize(Some(&basic("carol", "s3cret:pw"))));
            assert_eq!(auth.cached(), 1);
        }
        // Clones share the cache.
        let clone = auth.clone();
        assert!(clone.authorize(Some(&basic("bob", "other"))));
        assert_eq!(auth.cached(), 2);
        assert_eq!(format!("{auth:?}"), "BasicAuth { users: 2 }");
        fn shared_across_tasks<T: Clone + Send + Sync>(_: &T) {}
        shared_across_tasks(&auth);
    }

    #[test]
    fn the_cache_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let hash = bcrypt::hash("pw", 4).unwrap();
        let auth = load(dir.path(), &format!("basic_auth_users:\n  u: '{hash}'\n"))
            .unwrap()
            .basic_auth;
        let inner = auth.inner.as_ref().unwrap();
        let earlier = (0..VERIFIED_CACHE_ENTRIES as u32).map(|i| sha256(&[&i.to_be_bytes()]));
        lock(&inner.verified).extend(earlier);
        assert!(auth.authorize(Some(&basic("u", "pw"))));
        assert_eq!(auth.cached(), VERIFIED_CACHE_ENTRIES);
        assert!(auth.authorize(Some(&basic("u", "pw"))));
        assert_eq!(auth.cached(), VERIFIED_CACHE_ENTRIES);
    }

    #[test]
    fn user_names_with_a_colon_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let hash = bcrypt::hash("pw", 4).unwrap();
        let found = problems(
            dir.path(),
            &format!("basic_auth_users:\n  'a:b': '{hash}'\n"),
        );
        assert_eq!(
            found,
            vec!["basic_auth_users.a:b: a user name cannot contain ':' (basic auth splits on it)"]
        );
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
