//! Kubernetes objects: Secrets, ConfigMaps and Lists, YAML and JSON. Each
//! document is read as a Secret, as a ConfigMap and as what its `kind`
//! says. A key file and a password are planted in every Secret's data:
//! neither may ever show in the result.
#![no_main]

use lapse::credential::Source;
use lapse::parse::{fuzzing, parse_document, parse_file_with};
use lapse_fuzz::{absent_from, check, documents};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const PASSWORD: &str = "p12-Pa55word-planted";
/// A key file is never read, even when it holds a certificate.
const KEY_NAME: &str = "planted.key";
const KEY_TEXT: &str =
    "-----BEGIN CERTIFICATE-----\nTm90QUtleUJ1dE5ldmVyUmVhZA==\n-----END CERTIFICATE-----\n";

fuzz_target!(|data: &[u8]| {
    let name = "dump.yaml";
    let passwords = vec![PASSWORD.to_string()];
    let planted = absent_from(data, &[PASSWORD, "Tm90QUtleUJ1dE5ldmVyUmVhZA"]);
    check(name, &parse_file_with(name, data, &passwords), &planted);
    let docs = documents(data);
    for mut doc in docs {
        check(name, &parse_document(name, &doc, &passwords), &planted);
        let parsed = fuzzing::config_map(name, &doc);
        check(name, &parsed, &[]);
        in_an_object(&parsed);
        if let Some(map) = doc.as_object_mut() {
            let string_data = map
                .entry("stringData")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(sd) = string_data.as_object_mut() {
                sd.insert(KEY_NAME.into(), KEY_TEXT.into());
                sd.insert("keystore-password".into(), PASSWORD.into());
            }
        }
        let parsed = fuzzing::secret(name, &doc, &passwords);
        check(name, &parsed, &planted);
        in_an_object(&parsed);
        for c in &parsed.credentials {
            let entry = c.entry.as_deref().unwrap_or_default();
            assert!(!entry.contains(KEY_NAME), "a key file was read: {entry}");
        }
    }
});

/// Everything found in a Secret or ConfigMap names its object; a Secret
/// may hold a ConfigMap document and vice versa, so either source.
fn in_an_object(parsed: &lapse::parse::Parsed) {
    for c in &parsed.credentials {
        assert!(
            matches!(c.source, Source::Secret | Source::Configmap),
            "{:?}",
            c.source
        );
        assert!(c.object.is_some(), "a credential without its object");
    }
}
