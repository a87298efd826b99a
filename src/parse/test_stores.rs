//! Test stores written by p12-keystore, shared by the PKCS#12 reader's,
//! the cost walk's and the caps' unit tests: one self-signed certificate
//! (`p12.example`, valid to 2031-05-17) and its key, at `iterations` for
//! the MAC and every encrypted part.

/// A PKCS#12 store holding the certificate and its key.
pub(crate) fn pkcs12(password: &str, iterations: u32) -> Vec<u8> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["p12.example".into()]).unwrap();
    params.not_after = rcgen::date_time_ymd(2031, 5, 17);
    let cert = params.self_signed(&key).unwrap();
    let chain = [Certificate::from_der(cert.der()).unwrap()];
    let key = PrivateKey::from_der(&key.serialize_der()).unwrap();
    let mut store = KeyStore::new();
    store.add_entry(
        "leaf",
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new("key-1", key, chain)),
    );
    store
        .writer(password)
        .encryption_iterations(iterations)
        .mac_iterations(iterations)
        .write()
        .unwrap()
}
