//! Token files and caches: MOC login YAML (plain and base64-wrapped),
//! cloudconfig, `openstack token issue` output, Keystone bodies,
//! gke-gcloud-auth-plugin and kubelogin caches, ExecCredential. Each
//! document goes to the cache recognisers directly, and the whole file
//! through `parse_file` and as a cache a kubeconfig's exec plugin names.
#![no_main]

use lapse::credential::Source;
use lapse::parse::{FileRef, RefKind, fuzzing, parse_file, parse_reference};
use lapse_fuzz::{check, documents};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = "cache/token.json";
    check(name, &parse_file(name, data), &[]);
    let r = FileRef {
        path: name.into(),
        from: "home/.kube/config".into(),
        entry: "users[u].exec cache".into(),
        kind: RefKind::Any,
        source: Source::Kubeconfig,
        optional: true,
    };
    check(name, &parse_reference(&r, data), &[]);
    let docs = documents(data);
    for doc in docs {
        let parsed = fuzzing::token_cache(name, &doc);
        check(name, &parsed, &[]);
        for c in &parsed.credentials {
            assert_eq!(c.source, Source::File);
        }
    }
});
