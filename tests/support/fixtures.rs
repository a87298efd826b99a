//! Fixture builders: certificates with chosen validity (rcgen), PKCS#12
//! stores (p12-keystore), JWTs, and the encodings Kubernetes and friends
//! wrap them in.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// A certificate and its key, as every format needs them.
pub struct Cert {
    pub der: Vec<u8>,
    pub pem: String,
    /// PKCS#8 private key.
    pub key_der: Vec<u8>,
    pub key_pem: String,
    params: CertificateParams,
    key: KeyPair,
}

fn params(cn: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.not_before = not_before;
    params.not_after = not_after;
    params
}

impl Cert {
    /// A self-signed CA certificate `CN=<cn>`.
    pub fn ca(cn: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Cert {
        let mut params = params(cn, not_before, not_after);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("generate a key");
        let cert = params.self_signed(&key).expect("self-sign");
        Cert::from_parts(cert, params, key)
    }

    /// A certificate `CN=<cn>` issued by `self`.
    pub fn issue(&self, cn: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Cert {
        let params = params(cn, not_before, not_after);
        let key = KeyPair::generate().expect("generate a key");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("sign");
        Cert::from_parts(cert, params, key)
    }

    fn from_parts(cert: rcgen::Certificate, params: CertificateParams, key: KeyPair) -> Cert {
        Cert {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
            params,
            key,
        }
    }

    /// `sha256:<hex>` of the DER, as lapse prints it.
    pub fn fingerprint(&self) -> String {
        sha256(&self.der)
    }

    /// A certificate signing request for this certificate's subject, PEM.
    pub fn csr_pem(&self) -> String {
        self.params
            .serialize_request(&self.key)
            .expect("make a CSR")
            .pem()
            .expect("CSR as PEM")
    }

    pub fn public_key_pem(&self) -> String {
        self.key.public_key_pem()
    }

    /// A line from the middle of the private key's PEM body: proof that
    /// key text leaked, even in part.
    pub fn key_pem_fragment(&self) -> String {
        let lines: Vec<&str> = self.key_pem.lines().collect();
        lines[1].to_string()
    }
}

/// PEM texts concatenated, as a bundle file holds them.
pub fn bundle(certs: &[&Cert]) -> String {
    certs.iter().map(|c| c.pem.as_str()).collect()
}

/// A PKCS#12 store holding `chain` (leaf first) and the leaf's key.
pub fn pkcs12(chain: &[&Cert], password: &str) -> Vec<u8> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let key = PrivateKey::from_der(&chain[0].key_der).expect("PKCS#8 key");
    let certs = chain
        .iter()
        .map(|c| Certificate::from_der(&c.der).expect("certificate DER"));
    let mut store = KeyStore::new();
    store.add_entry(
        "leaf",
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new("key-1", key, certs)),
    );
    store
        .writer(password)
        .encryption_iterations(2048)
        .mac_iterations(2048)
        .write()
        .expect("write PKCS#12")
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: impl AsRef<[u8]>) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes.as_ref())))
}

/// Standard base64, as Kubernetes `data` and kubeconfig `-data` fields hold bytes.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS with these claims and a fake (unverifiable) signature.
/// `signature` makes each token's text distinctive.
pub fn jwt(claims: Value, signature: &str) -> String {
    let header = serde_json::json!({"alg": "RS256", "kid": "test", "typ": "JWT"});
    format!(
        "{}.{}.{}",
        b64url(header.to_string()),
        b64url(claims.to_string()),
        b64url(signature)
    )
}

/// A compact JWE (five segments): its claims are encrypted.
pub fn jwe(ciphertext: &str) -> String {
    let header = serde_json::json!({"alg": "RSA-OAEP-256", "enc": "A256GCM"});
    format!(
        "{}.{}.{}.{}.{}",
        b64url(header.to_string()),
        b64url("encrypted-key"),
        b64url("iv-12-bytes!"),
        b64url(ciphertext),
        b64url("tag")
    )
}

/// Seconds since the epoch of an RFC 3339 time.
pub fn unix(at: OffsetDateTime) -> i64 {
    at.unix_timestamp()
}

/// Deterministic bytes that are neither UTF-8 nor DER.
pub fn noise(len: usize) -> Vec<u8> {
    let mut out = vec![0xff, 0xfe, 0x00, 0x9c];
    let mut block = Sha256::digest(b"lapse test noise").to_vec();
    while out.len() < len {
        out.extend_from_slice(&block);
        block = Sha256::digest(&block).to_vec();
    }
    out.truncate(len);
    out
}
