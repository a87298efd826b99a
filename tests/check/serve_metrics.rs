//! `/metrics` when inputs are bad or repeat: a file in error is counted
//! and listed while everything else keeps being exported, and labels
//! that would collide are made distinct instead of failing the page.

use crate::support::*;
use time::macros::datetime;

const NOT_AFTER: &str = "lapse_credential_info";
const PARSE_ERRORS: [(&str, &str); 2] = [("source", "files"), ("reason", "parse")];

fn ca() -> Cert {
    Cert::ca(
        "metrics-ca",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2040-01-01 0:00 UTC),
    )
}

#[test]
fn a_bad_file_is_counted_and_listed_while_the_rest_is_exported() {
    let s = Scratch::new();
    let ca = ca();
    let good = ca.issue(
        "good.example",
        datetime!(2025-02-01 0:00 UTC),
        datetime!(2031-02-01 0:00 UTC),
    );
    let fixed = ca.issue(
        "fixed.example",
        datetime!(2025-03-01 0:00 UTC),
        datetime!(2032-03-01 0:00 UTC),
    );
    s.write("certs/good.crt", &good.pem);
    s.write("certs/x.crt", &fixed.pem[..fixed.pem.len() / 2]);
    let server = s.serve().arg("certs").start();

    let m = server.metrics();
    assert!(
        m.value("lapse_errors_total", &PARSE_ERRORS) >= 1.0,
        "{}",
        m.text
    );
    assert_eq!(m.value("lapse_file_errors", &[]), 1.0);
    assert_eq!(m.value("lapse_source_up", &[("source", "files")]), 1.0);
    assert_eq!(m.paths(), ["certs/good.crt"]);
    m.assert_window(
        &[
            ("path", "certs/good.crt"),
            ("fingerprint", &good.fingerprint_label()),
        ],
        unix(datetime!(2025-02-01 0:00 UTC)),
        unix(datetime!(2031-02-01 0:00 UTC)),
    );
    // The error is on the page, named by file; never as a metric label.
    let page = server.get("/");
    assert_contains(&page.body, "<h2>Could not read (1)</h2>");
    assert_contains(&page.body, "<td>certs/x.crt</td>");
    assert!(
        !m.text.contains("no matching END line"),
        "error text in a label:\n{}",
        m.text
    );

    s.write("certs/x.crt", &fixed.pem);
    let (m, _) = server.wait_for("fixed file", |m| m.value("lapse_file_errors", &[]) == 0.0);
    m.assert_window(
        &[
            ("path", "certs/x.crt"),
            ("fingerprint", &fixed.fingerprint_label()),
        ],
        unix(datetime!(2025-03-01 0:00 UTC)),
        unix(datetime!(2032-03-01 0:00 UTC)),
    );
    assert_eq!(m.paths(), ["certs/good.crt", "certs/x.crt"]);
    let counted = m.value("lapse_errors_total", &PARSE_ERRORS);
    assert!(counted >= 1.0, "a counter never goes down");

    // Breaking a good file later counts one more occurrence.
    s.write("certs/good.crt", &good.pem[..good.pem.len() / 2]);
    let (m, _) = server.wait_for("newly broken file", |m| {
        m.value("lapse_file_errors", &[]) == 1.0
    });
    assert_eq!(m.value("lapse_errors_total", &PARSE_ERRORS), counted + 1.0);
    m.assert_window(
        &[("path", "certs/x.crt")],
        unix(datetime!(2025-03-01 0:00 UTC)),
        unix(datetime!(2032-03-01 0:00 UTC)),
    );
    for reason in ["read", "not_found", "loop", "too_large", "password"] {
        assert_eq!(
            m.value(
                "lapse_errors_total",
                &[("source", "files"), ("reason", reason)]
            ),
            0.0,
            "reason {reason}"
        );
    }
}

#[test]
fn repeated_certificates_get_distinct_label_sets() {
    let s = Scratch::new();
    let ca = ca();
    let cert = ca.issue(
        "twice.example",
        datetime!(2025-04-01 0:00 UTC),
        datetime!(2033-04-01 0:00 UTC),
    );
    // The same certificate twice in one bundle.
    s.write("certs/bundle.pem", bundle(&[&cert, &cert]));
    // Two kubeconfig users with one name and one certificate: every
    // identifying label is equal.
    let user = format!(
        "- name: dup\n  user:\n    client-certificate-data: {}\n",
        b64(&cert.pem)
    );
    s.write(
        "kube/config",
        format!("apiVersion: v1\nkind: Config\nusers:\n{user}{user}"),
    );
    let server = s.serve().args(["certs", "kube/config"]).start();

    let m = server.metrics();
    let window = (
        unix(datetime!(2025-04-01 0:00 UTC)),
        unix(datetime!(2033-04-01 0:00 UTC)),
    );
    for index in ["0", "1"] {
        m.assert_window(
            &[("path", "certs/bundle.pem"), ("index", index)],
            window.0,
            window.1,
        );
    }
    let dup = m.find(NOT_AFTER, &[("path", "kube/config")]);
    let mut indices: Vec<&str> = dup.iter().map(|x| x.label("index")).collect();
    indices.sort();
    assert_eq!(indices.len(), 2, "{}", m.text);
    assert_ne!(indices[0], indices[1], "label sets collide:\n{}", m.text);
    for index in indices {
        m.assert_window(
            &[("path", "kube/config"), ("index", index)],
            window.0,
            window.1,
        );
    }
    // Every sample's label set is unique within its family.
    let mut seen = std::collections::HashSet::new();
    for x in &m.samples {
        assert!(
            seen.insert((x.name.clone(), format!("{:?}", x.labels))),
            "duplicate series {x:?}"
        );
    }
    assert_eq!(
        server
            .request(
                "GET",
                "/metrics",
                &[("Accept", "application/openmetrics-text")]
            )
            .status,
        200
    );
    assert_eq!(server.get("/").status, 200);
}
