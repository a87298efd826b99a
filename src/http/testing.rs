//! Test fixtures for the HTTP room: certificates made on the fly, a web
//! config written to a scratch directory and loaded. Test builds only.

use super::web_config::WebConfig;
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use std::path::Path;

/// A CA, or a certificate it issued, as PEM.
pub(super) struct Pem {
    pub(super) cert: String,
    pub(super) key: String,
}

pub(super) struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pub(super) pem: String,
}

impl Ca {
    pub(super) fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    pub(super) fn issue(&self, san: &str, usage: ExtendedKeyUsagePurpose) -> Pem {
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

pub(super) fn self_signed(san: &str) -> Pem {
    let params = CertificateParams::new(vec![san.to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    Pem {
        cert: params.self_signed(&key).unwrap().pem(),
        key: key.serialize_pem(),
    }
}

/// A directory with the server's files (`server.crt`, `server.key`,
/// `ca.crt`) and the CA that signed them.
pub(super) fn fixture() -> (tempfile::TempDir, Ca) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let server = ca.issue("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    std::fs::write(dir.path().join("server.crt"), &server.cert).unwrap();
    std::fs::write(dir.path().join("server.key"), &server.key).unwrap();
    std::fs::write(dir.path().join("ca.crt"), &ca.pem).unwrap();
    (dir, ca)
}

pub(super) fn load(dir: &Path, yaml: &str) -> Result<WebConfig, Vec<String>> {
    let path = dir.join("web.yml");
    std::fs::write(&path, yaml).unwrap();
    WebConfig::load(&path)
}

pub(super) fn problems(dir: &Path, yaml: &str) -> Vec<String> {
    match load(dir, yaml) {
        Ok(_) => panic!("expected problems for:\n{yaml}"),
        Err(problems) => problems,
    }
}

pub(super) const SERVER_FILES: &str =
    "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
