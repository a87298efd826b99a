//! kubeconfig files: every YAML/JSON document read as a kubeconfig
//! whatever its `kind`, and the whole file through `parse_file`. A
//! `client-key-data` holding a certificate is planted in every user: key
//! fields are never read, so nothing may come from it.
#![no_main]

use lapse::parse::{fuzzing, parse_file};
use lapse_fuzz::{absent_from, check};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// base64 of a PEM armour line; nothing may be read from a key field.
const KEY_DATA: &str = "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk5ldmVyUmVhZA==";

fuzz_target!(|data: &[u8]| {
    let name = "home/.kube/config";
    check(name, &parse_file(name, data), &[]);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(docs) = fuzzing::documents(text) else {
        return;
    };
    let planted = absent_from(data, &[KEY_DATA]);
    for mut doc in docs {
        check(name, &fuzzing::kubeconfig(name, &doc), &[]);
        let mut planted_any = false;
        if let Some(users) = doc.get_mut("users").and_then(Value::as_array_mut) {
            for user in users {
                if let Some(u) = user.get_mut("user").and_then(Value::as_object_mut) {
                    u.insert("client-key-data".into(), KEY_DATA.into());
                    planted_any = true;
                }
            }
        }
        if planted_any {
            let parsed = fuzzing::kubeconfig(name, &doc);
            check(name, &parsed, &planted);
            for c in &parsed.credentials {
                let entry = c.entry.as_deref().unwrap_or_default();
                assert!(
                    !entry.ends_with("client-key-data"),
                    "a key was read: {entry}"
                );
            }
        }
    }
});
