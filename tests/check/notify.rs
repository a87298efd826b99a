//! `lapse serve` with a `notify` section, against a real SMTP server
//! (aiosmtpd, [`SmtpServer`]): who gets which mail, what its subject and
//! both bodies say, that a crossing is mailed once — across checks, across
//! a restart of lapse, across the mail server being down — and that no
//! secret reaches a mail or the log.
//!
//! serve reads the real clock, so certificates are made relative to now,
//! with half an hour of slack around every "time left" the tests spell
//! out: `in 10d 12h` stays true however slow the machine is.

use crate::support::apiserver::{ApiServer, labelled, secret};
use crate::support::smtp::{Mail, SmtpServer};
use crate::support::*;
use serde_json::json;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const OPS: &str = "ops@example.com";
/// Long enough for three more checks: what has not been sent by then is not coming.
const QUIET: Duration = Duration::from_millis(3_500);
const SENT: [(&str, &str); 2] = [("channel", "email"), ("result", "sent")];
const FAILED: [(&str, &str); 2] = [("channel", "email"), ("result", "failed")];
const PENDING: &str = "lapse_notifications_pending";
const TOTAL: &str = "lapse_notifications_total";

/// A scratch tree with a CA, a mail server and a lapse.yaml pointing at it.
struct Setup {
    s: Scratch,
    ca: Cert,
    smtp: SmtpServer,
}

impl Setup {
    fn new() -> Setup {
        Setup::with_server(SmtpServer::start, "")
    }

    /// `smtp_extra` goes inside the `smtp: {…}` mapping.
    fn with_server(
        start: impl FnOnce(std::path::PathBuf) -> SmtpServer,
        smtp_extra: &str,
    ) -> Setup {
        let s = Scratch::new();
        s.mkdir("certs");
        let smtp = start(s.path("mail"));
        let ca = Cert::ca(
            "notify-ca",
            at(unix_now() - 400 * DAY),
            at(unix_now() + 4000 * DAY),
        );
        let setup = Setup { s, ca, smtp };
        setup.config(smtp_extra, "", "");
        setup
    }

    /// Writes `lapse.yaml`: the certs/ tree, mail to ops@ through the test
    /// server, checks every second; `top` goes before `notify:`, `extra`
    /// is appended under it.
    fn config(&self, smtp_extra: &str, top: &str, extra: &str) {
        self.s.write(
            "lapse.yaml",
            format!(
                "files:\n  paths: [certs]\n{top}\
                 notify:\n  email:\n    \
                 smtp: {{host: 127.0.0.1, port: {port}, tls: none{smtp_extra}}}\n    \
                 from: lapse@example.com\n    to: [{OPS}]\n  \
                 thresholds: [30d, 14d, 7d, 3d, 1d]\n  \
                 state_file: state/notify-state.json\n  \
                 check_interval: 1s\n  retry_interval: 1s\n{extra}",
                port = self.smtp.port
            ),
        );
    }

    /// A certificate `CN=<cn>` valid for 90 days, lapsing `left` seconds
    /// from now (negative: that long ago); returns it and its not_after.
    fn cert(&self, cn: &str, left: i64) -> (Cert, i64) {
        let not_after = unix_now() + left;
        let cert = self.ca.issue(cn, at(not_after - 90 * DAY), at(not_after));
        (cert, not_after)
    }

    /// As [`Setup::cert`], written to `certs/<rel>`.
    fn cert_file(&self, rel: &str, cn: &str, left: i64) -> (Cert, i64) {
        let (cert, not_after) = self.cert(cn, left);
        self.s.write(&format!("certs/{rel}"), &cert.pem);
        (cert, not_after)
    }

    fn serve(&self) -> Server {
        self.s.serve().args(["--config", "lapse.yaml"]).start()
    }

    /// Waits for `n` messages in all, showing lapse's log if they do not come.
    #[track_caller]
    fn wait_for(&self, server: &Server, n: usize) -> Vec<Mail> {
        let started = Instant::now();
        loop {
            let mails = self.smtp.messages();
            if mails.len() >= n {
                println!("{n} mail(s) after {} ms", started.elapsed().as_millis());
                return mails;
            }
            if started.elapsed() > DEADLINE {
                panic!(
                    "expected {n} mail(s) within {DEADLINE:?}, got {}: {:#?}\n--- lapse stderr ---\n{}\n--- SMTP server log ---\n{}",
                    mails.len(),
                    mails.iter().map(|m| &m.subject).collect::<Vec<_>>(),
                    server.stderr(),
                    self.smtp.log()
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).expect("a valid time")
}

/// `2026-01-02T03:04:05Z`.
fn rfc3339(t: i64) -> String {
    at(t)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formattable")
}

/// `2026-01-02 03:04:05`.
fn utc(t: i64) -> String {
    rfc3339(t)
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// The text part's entries: blocks that start with `* `, without their
/// trailing blank line.
fn entries(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|b| b.starts_with("* "))
        .map(|b| b.trim_end().to_string())
        .collect()
}

/// The HTML table's data rows, each cell's text unescaped.
fn rows(html: &str) -> Vec<Vec<String>> {
    html.split("<tr>")
        .filter(|r| r.contains("<td"))
        .map(|r| {
            r.split("<td")
                .skip(1)
                .map(|cell| {
                    let start = cell.find('>').expect("a <td> tag") + 1;
                    let end = cell.find("</td>").expect("a closed cell");
                    cell[start..end]
                        .replace("&lt;", "<")
                        .replace("&gt;", ">")
                        .replace("&quot;", "\"")
                        .replace("&#39;", "'")
                        .replace("&amp;", "&")
                })
                .collect()
        })
        .collect()
}

/// The row lapse writes for one credential, cell by cell.
fn row(
    name: &str,
    what: &str,
    place: &str,
    not_after: i64,
    left: &str,
    window_days: i64,
    action: &str,
) -> Vec<String> {
    vec![
        name.to_string(),
        what.to_string(),
        place.to_string(),
        rfc3339(not_after),
        left.to_string(),
        window(not_after, window_days),
        action.to_string(),
    ]
}

/// `<not_before> → <not_after> (<n>d)` for a window of `days` ending at `not_after`.
fn window(not_after: i64, days: i64) -> String {
    format!(
        "{} → {} ({days}d)",
        rfc3339(not_after - days * DAY),
        rfc3339(not_after)
    )
}

/// Asserts the mail's envelope and headers name `from` lapse and `to`
/// exactly these: the `To:` header lists them all, the envelope one of
/// them (each recipient is its own SMTP transaction).
#[track_caller]
fn assert_addressed(mail: &Mail, to: &[&str]) {
    assert_eq!(mail.from, "lapse@example.com", "envelope sender");
    assert_eq!(
        mail.to.len(),
        1,
        "one envelope recipient per transaction: {:?}",
        mail.subject
    );
    assert!(
        to.contains(&mail.to[0].as_str()),
        "envelope recipient {:?} of {:?} not among {to:?}",
        mail.to,
        mail.subject
    );
    assert_eq!(mail.header("From"), Some("lapse@example.com"));
    assert_eq!(mail.header("To"), Some(to.join(", ").as_str()));
    assert_eq!(
        mail.content_types,
        ["multipart/alternative", "text/plain", "text/html"],
        "{}",
        mail.raw
    );
}

const RENEW_FILE: &str = "renew the certificate and replace the file";

#[test]
fn one_mail_for_the_tightest_threshold_crossed_then_silence() {
    let t = Setup::new();
    // Inside 30d and 14d at start-up: one mail, for 14d.
    let left = 10 * DAY + 12 * HOUR + 30 * MINUTE;
    let (_, not_after) = t.cert_file("web.crt", "web.example", left);
    t.cert_file("healthy.crt", "healthy.example", 200 * DAY);
    let server = t.serve();

    let mails = t.wait_for(&server, 1);
    let mail = &mails[0];
    assert_addressed(mail, &[OPS]);
    assert_eq!(mail.subject, "[lapse] web.example expires in 10d 12h");
    assert_eq!(
        entries(mail.text()),
        [format!(
            "* web.example — expires in 10d 12h\n  \
             kind:     x509 (file)\n  \
             where:    certs/web.crt\n  \
             expires:  {} UTC (in 10d 12h)\n  \
             validity: {}\n  \
             to do:    {RENEW_FILE}",
            utc(not_after),
            window(not_after, 90)
        )]
    );
    assert_eq!(
        rows(mail.html()),
        [row(
            "web.example (x509)",
            "expires in 10d 12h",
            "certs/web.crt",
            not_after,
            "in 10d 12h",
            90,
            RENEW_FILE
        )]
    );
    assert!(!mail.everything().contains("healthy.example"));

    // Three more checks: still inside 14d, nothing new to say.
    t.smtp.assert_stays(1, QUIET);
    let m = server.metrics();
    assert_eq!(m.value(TOTAL, &SENT), 1.0);
    assert_eq!(m.value(TOTAL, &FAILED), 0.0);
    assert_eq!(m.value(PENDING, &[]), 0.0);
}

#[test]
fn an_expired_certificate_gets_an_expired_mail() {
    let t = Setup::new();
    let left = -(2 * DAY + 5 * HOUR + 30 * MINUTE);
    let (_, not_after) = t.cert_file("old.crt", "old.example", left);
    let server = t.serve();

    let mails = t.wait_for(&server, 1);
    let mail = &mails[0];
    assert_addressed(mail, &[OPS]);
    assert_eq!(mail.subject, "[lapse] old.example expired 2d 5h ago");
    assert_eq!(
        entries(mail.text()),
        [format!(
            "* old.example — expired 2d 5h ago\n  \
             kind:     x509 (file)\n  \
             where:    certs/old.crt\n  \
             expires:  {} UTC (expired 2d 5h ago)\n  \
             validity: {}\n  \
             to do:    {RENEW_FILE}",
            utc(not_after),
            window(not_after, 90)
        )]
    );
    assert_eq!(
        rows(mail.html()),
        [row(
            "old.example (x509)",
            "expired 2d 5h ago",
            "certs/old.crt",
            not_after,
            "expired 2d 5h ago",
            90,
            RENEW_FILE
        )]
    );
    t.smtp.assert_stays(1, QUIET);
}

#[test]
fn a_certificate_replaced_by_a_later_one_gets_a_renewed_mail() {
    let t = Setup::new();
    let (_, old_not_after) =
        t.cert_file("web.crt", "web.example", 5 * DAY + 12 * HOUR + 30 * MINUTE);
    let server = t.serve();
    let mails = t.wait_for(&server, 1);
    assert_eq!(mails[0].subject, "[lapse] web.example expires in 5d 12h");

    // Half an hour short of a year, so that "in 364d 23h" holds however
    // quickly the mail follows the write (within the same second, a
    // whole year would read "in 365d").
    let (_, new_not_after) = t.cert_file("web.crt", "web.example", 365 * DAY - 30 * MINUTE);
    let mails = t.wait_for(&server, 2);
    let mail = &mails[1];
    assert_addressed(mail, &[OPS]);
    let what = format!(
        "renewed: was due {}, now valid until {}",
        rfc3339(old_not_after),
        rfc3339(new_not_after)
    );
    assert_eq!(mail.subject, format!("[lapse] web.example {what}"));
    assert_eq!(
        entries(mail.text()),
        [format!(
            "* web.example — {what}\n  \
             kind:     x509 (file)\n  \
             where:    certs/web.crt\n  \
             expires:  {} UTC (in 364d 23h)\n  \
             validity: {}\n  \
             to do:    {RENEW_FILE}",
            utc(new_not_after),
            window(new_not_after, 90)
        )]
    );
    assert_eq!(
        rows(mail.html()),
        [row(
            "web.example (x509)",
            &what,
            "certs/web.crt",
            new_not_after,
            "in 364d 23h",
            90,
            RENEW_FILE
        )]
    );
    // The renewed certificate is healthy: nothing more.
    t.smtp.assert_stays(2, QUIET);
}

/// A TLS Secret as `kubectl get secret -o yaml` prints it.
fn tls_secret(namespace: &str, name: &str, cert: &Cert) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\n\
         type: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
        b64(&cert.pem),
        b64(&cert.key_pem)
    )
}

const RENEW_SECRET: &str =
    "renew the certificate (cert-manager: `cmctl renew`; otherwise replace the Secret's tls.crt)";

#[test]
fn routes_send_each_credential_to_the_first_route_that_matches_it() {
    let t = Setup::new();
    t.config(
        "",
        "",
        "  routes:\n\
         \x20   - match: {namespace: web}\n      to: [web-team@example.com]\n\
         \x20   - match: {source: secret, kind: x509}\n      to: [secrets@example.com]\n\
         \x20   - match: {path: 'certs/pki/*.crt'}\n      to: [pki@example.com, etcd-admins@example.com]\n",
    );
    // A Secret in web matches the first two routes: the first wins.
    let (shop, shop_at) = t.cert("shop.web.example", 5 * DAY + 12 * HOUR + 30 * MINUTE);
    t.s.write("certs/web-tls.yaml", tls_secret("web", "web-tls", &shop));
    let (pay, pay_at) = t.cert("pay.example", 6 * DAY + 12 * HOUR + 30 * MINUTE);
    t.s.write("certs/pay-tls.yaml", tls_secret("billing", "pay-tls", &pay));
    let (_, etcd_at) = t.cert_file("pki/etcd.crt", "etcd", 12 * DAY + 12 * HOUR + 30 * MINUTE);
    // A .pem beside the glob's .crt, and two more: no route, so ops@, in one
    // mail, most urgent first.
    let (_, db_at) = t.cert_file(
        "pki/db.pem",
        "db.internal",
        2 * DAY + 12 * HOUR + 30 * MINUTE,
    );
    let (_, queue_at) = t.cert_file(
        "queue.crt",
        "queue.internal",
        20 * DAY + 12 * HOUR + 30 * MINUTE,
    );
    let server = t.serve();

    let mut mails = t.wait_for(&server, 5);
    t.smtp.assert_stays(5, QUIET);
    mails.sort_by(|a, b| a.to.cmp(&b.to));
    let [etcd_admins, ops, pki, secrets, web] = &mails[..] else {
        unreachable!()
    };
    // One message for the pki route, delivered to each of its recipients.
    assert_eq!(etcd_admins.to, ["etcd-admins@example.com"]);
    assert_eq!(pki.to, ["pki@example.com"]);
    assert_eq!(
        (&etcd_admins.subject, etcd_admins.text(), etcd_admins.html()),
        (&pki.subject, pki.text(), pki.html())
    );

    assert_addressed(web, &["web-team@example.com"]);
    assert_eq!(web.subject, "[lapse] shop.web.example expires in 5d 12h");
    assert_eq!(
        entries(web.text()),
        [format!(
            "* shop.web.example — expires in 5d 12h\n  \
             kind:     x509 (secret)\n  \
             where:    certs/web-tls.yaml [secret web/web-tls tls.crt]\n  \
             object:   web/web-tls key tls.crt\n  \
             expires:  {} UTC (in 5d 12h)\n  \
             validity: {}\n  \
             to do:    {RENEW_SECRET}",
            utc(shop_at),
            window(shop_at, 90)
        )]
    );

    assert_addressed(secrets, &["secrets@example.com"]);
    assert_eq!(secrets.subject, "[lapse] pay.example expires in 6d 12h");
    assert_eq!(
        rows(secrets.html()),
        [row(
            "pay.example (x509)",
            "expires in 6d 12h",
            "certs/pay-tls.yaml [secret billing/pay-tls tls.crt]",
            pay_at,
            "in 6d 12h",
            90,
            RENEW_SECRET
        )]
    );

    assert_addressed(pki, &["pki@example.com", "etcd-admins@example.com"]);
    assert_eq!(pki.subject, "[lapse] etcd expires in 12d 12h");
    assert_eq!(
        rows(pki.html()),
        [row(
            "etcd (x509)",
            "expires in 12d 12h",
            "certs/pki/etcd.crt",
            etcd_at,
            "in 12d 12h",
            90,
            RENEW_FILE
        )]
    );

    assert_addressed(ops, &[OPS]);
    assert_eq!(
        ops.subject,
        "[lapse] db.internal expires in 2d 12h (+1 more)"
    );
    assert_eq!(
        rows(ops.html()),
        [
            row(
                "db.internal (x509)",
                "expires in 2d 12h",
                "certs/pki/db.pem",
                db_at,
                "in 2d 12h",
                90,
                RENEW_FILE
            ),
            row(
                "queue.internal (x509)",
                "expires in 20d 12h",
                "certs/queue.crt",
                queue_at,
                "in 20d 12h",
                90,
                RENEW_FILE
            ),
        ]
    );
    assert_eq!(entries(ops.text()).len(), 2);

    // Each credential in exactly one mail.
    for (cn, expected) in [
        ("shop.web.example", "web-team@example.com"),
        ("pay.example", "secrets@example.com"),
        ("etcd", "pki@example.com"),
        ("db.internal", OPS),
        ("queue.internal", OPS),
    ] {
        let holders: Vec<&str> = mails
            .iter()
            .filter(|m| m.text().contains(&format!("* {cn} —")))
            .map(|m| m.to[0].as_str())
            .collect();
        let expected = match expected {
            "pki@example.com" => vec!["etcd-admins@example.com", "pki@example.com"],
            one => vec![one],
        };
        assert_eq!(holders, expected, "who was told about {cn}");
    }
    // One delivery per recipient.
    assert_eq!(server.metrics().value(TOTAL, &SENT), 5.0);
}

#[test]
fn a_labels_route_matches_labels_copied_from_the_kubernetes_api() {
    let t = Setup::new();
    let api = ApiServer::start();
    let kubeconfig = api.write_kubeconfig(&t.s.path("kube"));
    t.config(
        "",
        &format!(
            "kubernetes:\n  kubeconfig: {}\n  copy_labels: [team]\n",
            kubeconfig.display()
        ),
        "  routes:\n\
         \x20   - match: {labels: {team: payments}}\n      to: [payments@example.com]\n\
         \x20   - match: {namespace: web}\n      to: [web-team@example.com]\n",
    );
    let team = [("team", "payments")];
    let (pay, _) = t.cert("pay.web.example", 5 * DAY + 12 * HOUR + 30 * MINUTE);
    api.put(labelled(api_tls_secret("web", "pay-tls", &pay), &team));
    let (shop, _) = t.cert("shop.web.example", 6 * DAY + 12 * HOUR + 30 * MINUTE);
    api.put(api_tls_secret("web", "shop-tls", &shop));
    let (other, _) = t.cert("other.example", 6 * DAY + 12 * HOUR + 30 * MINUTE);
    api.put(labelled(
        api_tls_secret("billing", "other-tls", &other),
        &[("team", "other")],
    ));
    let server = t.serve();

    let mut mails = t.wait_for(&server, 3);
    t.smtp.assert_stays(3, QUIET);
    mails.sort_by(|a, b| a.to.cmp(&b.to));
    let subjects: Vec<(&str, &str)> = mails
        .iter()
        .map(|m| (m.to[0].as_str(), m.subject.as_str()))
        .collect();
    assert_eq!(
        subjects,
        [
            (OPS, "[lapse] other.example expires in 6d 12h"),
            (
                "payments@example.com",
                "[lapse] pay.web.example expires in 5d 12h"
            ),
            (
                "web-team@example.com",
                "[lapse] shop.web.example expires in 6d 12h"
            ),
        ]
    );
    assert_contains(mails[1].text(), "  object:   web/pay-tls key tls.crt\n");
}

fn api_tls_secret(namespace: &str, name: &str, cert: &Cert) -> k8s_openapi::api::core::v1::Secret {
    secret(
        namespace,
        name,
        "kubernetes.io/tls",
        &[
            ("tls.crt", cert.pem.as_bytes()),
            ("tls.key", cert.key_pem.as_bytes()),
        ],
    )
}

#[test]
fn a_daily_digest_to_the_default_recipients_once_a_day() {
    let t = Setup::new();
    let day = || rfc3339(unix_now())[..10].to_string();
    let today = day();
    // 00:00 UTC has always passed: the digest is due at the first check.
    t.config("", "", "  digest: '00:00'\n");
    let (_, web_at) = t.cert_file("web.crt", "web.example", 10 * DAY + 12 * HOUR + 30 * MINUTE);
    let (_, old_at) = t.cert_file(
        "old.crt",
        "old.example",
        -(2 * DAY + 5 * HOUR + 30 * MINUTE),
    );
    t.cert_file("healthy.crt", "healthy.example", 200 * DAY);
    let server = t.serve();

    let mails = t.wait_for(&server, 2);
    let (digests, crossings): (Vec<&Mail>, Vec<&Mail>) =
        mails.iter().partition(|m| m.subject.contains("digest"));
    assert_eq!((digests.len(), crossings.len()), (1, 1), "{mails:#?}");
    let digest = digests[0];
    assert_addressed(digest, &[OPS]);
    assert_eq!(
        digest.subject,
        "[lapse] daily digest: 2 credential(s) within 30d — soonest: old.example expired 2d 5h ago (+1 more)"
    );
    assert_eq!(
        rows(digest.html()),
        [
            row(
                "old.example (x509)",
                "expired 2d 5h ago",
                "certs/old.crt",
                old_at,
                "expired 2d 5h ago",
                90,
                RENEW_FILE
            ),
            row(
                "web.example (x509)",
                "expires in 10d 12h",
                "certs/web.crt",
                web_at,
                "in 10d 12h",
                90,
                RENEW_FILE
            ),
        ]
    );
    assert!(!digest.everything().contains("healthy.example"));
    assert_eq!(
        crossings[0].subject,
        "[lapse] old.example expired 2d 5h ago (+1 more)"
    );

    // Not again today, not after a restart either.
    t.smtp.assert_stays(2, QUIET);
    server.terminate(Duration::from_secs(10));
    let server = t.serve();
    std::thread::sleep(QUIET);
    if day() != today {
        println!("UTC midnight passed during the test: a new digest is due");
        return;
    }
    t.smtp.assert_stays(2, Duration::ZERO);
    drop(server);
}

#[test]
fn a_mail_that_cannot_be_sent_waits_and_arrives_once_the_server_is_back() {
    let mut t = Setup::new();
    t.cert_file("healthy.crt", "healthy.example", 200 * DAY);
    let server = t.serve();
    let m = server.metrics();
    assert_eq!(m.value(TOTAL, &SENT), 0.0);
    assert_eq!(m.value(TOTAL, &FAILED), 0.0);
    assert_eq!(m.value(PENDING, &[]), 0.0);

    t.smtp.stop();
    t.cert_file("new.crt", "new.example", 3 * DAY + 12 * HOUR + 30 * MINUTE);
    // A first attempt and a retry, both refused.
    let (m, _) = server.wait_for("the mail pending after two failed attempts", |m| {
        m.value(PENDING, &[]) >= 1.0 && m.value(TOTAL, &FAILED) >= 2.0
    });
    assert_eq!(m.value(PENDING, &[]), 1.0);
    assert_eq!(m.value(TOTAL, &SENT), 0.0);
    assert_contains(&server.stderr(), "mail not sent; will retry");
    assert!(t.smtp.messages().is_empty());

    t.smtp.restart();
    let mails = t.wait_for(&server, 1);
    assert_addressed(&mails[0], &[OPS]);
    assert_eq!(mails[0].subject, "[lapse] new.example expires in 3d 12h");
    t.smtp.assert_stays(1, QUIET);
    let m = server.metrics();
    assert_eq!(m.value(TOTAL, &SENT), 1.0);
    assert_eq!(m.value(PENDING, &[]), 0.0);
    assert!(m.value(TOTAL, &FAILED) >= 2.0);
}

#[test]
fn a_restarted_lapse_does_not_mail_a_crossing_again() {
    let t = Setup::new();
    t.cert_file("web.crt", "web.example", 10 * DAY + 12 * HOUR + 30 * MINUTE);
    let server = t.serve();
    t.wait_for(&server, 1);
    let (status, took) = server.terminate(Duration::from_secs(10));
    assert!(status.success(), "SIGTERM: {status:?}");
    println!("SIGTERM to exit: {} ms", took.as_millis());
    assert!(t.s.path("state/notify-state.json").exists());

    let server = t.serve();
    t.smtp.assert_stays(1, QUIET);
    // The new run is checking: a new crossing is mailed, alone.
    t.cert_file("api.crt", "api.example", 3 * DAY + 12 * HOUR + 30 * MINUTE);
    let mails = t.wait_for(&server, 2);
    assert_eq!(mails[1].subject, "[lapse] api.example expires in 3d 12h");
    assert_eq!(entries(mails[1].text()).len(), 1);
    t.smtp.assert_stays(2, QUIET);
}

#[test]
fn a_mail_pending_at_shutdown_is_sent_by_the_next_run_once() {
    let mut t = Setup::new();
    t.smtp.stop();
    t.cert_file("web.crt", "web.example", 10 * DAY + 12 * HOUR + 30 * MINUTE);
    let server = t.serve();
    server.wait_for("a failed attempt", |m| m.value(TOTAL, &FAILED) >= 1.0);
    let (status, took) = server.terminate(Duration::from_secs(10));
    assert!(status.success(), "SIGTERM: {status:?}");
    println!(
        "SIGTERM to exit with a mail pending: {} ms",
        took.as_millis()
    );

    t.smtp.restart();
    let server = t.serve();
    let mails = t.wait_for(&server, 1);
    assert_eq!(mails[0].subject, "[lapse] web.example expires in 10d 12h");
    t.smtp.assert_stays(1, QUIET);
}

#[test]
fn smtp_auth_with_a_password_file_and_the_password_never_logged() {
    let password = "pw-canary-7Yq2xV9k";
    let t = Setup::with_server(
        |dir| SmtpServer::start_with_auth(dir, "lapse-mailer", password),
        ", username: lapse-mailer, password_file: smtp.pass",
    );
    t.s.write("smtp.pass", format!("{password}\n"));
    t.cert_file("web.crt", "web.example", 10 * DAY + 12 * HOUR + 30 * MINUTE);
    let server = t.s.serve().args(["-vvv", "--config", "lapse.yaml"]).start();

    let mails = t.wait_for(&server, 1);
    assert_eq!(mails[0].auth_user.as_deref(), Some("lapse-mailer"));
    assert_eq!(mails[0].subject, "[lapse] web.example expires in 10d 12h");
    let stderr = server.stderr();
    for leak in [
        password.to_string(),
        b64(format!("\0lapse-mailer\0{password}")),
        b64(password),
    ] {
        assert!(
            !stderr.contains(&leak),
            "the SMTP password in the log:\n{stderr}"
        );
        assert!(
            !mails[0].everything().contains(&leak),
            "the SMTP password in the mail"
        );
    }
}

#[test]
fn a_refused_login_is_retried_until_the_server_takes_it_without_logging_the_password() {
    let password = "pw-canary-Lm4Rt8Zq";
    let mut t = Setup::with_server(
        |dir| SmtpServer::start_with_auth(dir, "lapse-mailer", "rotated-on-the-server"),
        ", username: lapse-mailer, password_file: smtp.pass",
    );
    t.s.write("smtp.pass", password);
    t.cert_file("web.crt", "web.example", 10 * DAY + 12 * HOUR + 30 * MINUTE);
    let server = t.s.serve().args(["-vvv", "--config", "lapse.yaml"]).start();
    server.wait_for("two refused logins", |m| m.value(TOTAL, &FAILED) >= 2.0);
    assert!(t.smtp.messages().is_empty());

    t.smtp.require_auth("lapse-mailer", password);
    let mails = t.wait_for(&server, 1);
    assert_eq!(mails[0].auth_user.as_deref(), Some("lapse-mailer"));
    t.smtp.assert_stays(1, QUIET);
    let stderr = server.stderr();
    assert_contains(&stderr, "mail not sent; will retry");
    for leak in [password.to_string(), b64(password)] {
        assert!(
            !stderr.contains(&leak),
            "the SMTP password in the log:\n{stderr}"
        );
    }
}

#[test]
fn no_token_or_key_text_in_any_mail() {
    let t = Setup::new();
    let (web, _) = t.cert("web.example", 5 * DAY + 12 * HOUR + 30 * MINUTE);
    // A certificate with its key in one file, and a Secret with tls.key.
    t.s.write("certs/web.pem", format!("{}{}", web.pem, web.key_pem));
    let (shop, _) = t.cert("shop.example", 6 * DAY + 12 * HOUR + 30 * MINUTE);
    t.s.write("certs/shop-tls.yaml", tls_secret("web", "shop-tls", &shop));
    t.s.write("certs/ca.key", &t.ca.key_pem);
    // A service-account token lapsing in two days.
    let exp = unix_now() + 2 * DAY + 12 * HOUR;
    let token = jwt(
        json!({"sub": "system:serviceaccount:web:deployer", "iat": exp - 7 * DAY, "exp": exp}),
        "canary-jwt-signature-Qm9vbQ",
    );
    t.s.write("certs/deployer.token", &token);
    let server = t.serve();

    let mails = t.wait_for(&server, 1);
    t.smtp.assert_stays(1, QUIET);
    let mail = &mails[0];
    assert_eq!(entries(mail.text()).len(), 3, "{}", mail.text());
    let segments: Vec<&str> = token.split('.').collect();
    let canaries = [
        ("the token", token.clone()),
        ("the token's payload", segments[1].to_string()),
        ("the token's signature", segments[2].to_string()),
        ("web's key", web.key_pem_fragment()),
        ("shop's key", shop.key_pem_fragment()),
        (
            "shop's key, base64",
            b64(&shop.key_pem)[40..120].to_string(),
        ),
        ("the CA key", t.ca.key_pem_fragment()),
    ];
    let state = std::fs::read_to_string(t.s.path("state/notify-state.json")).unwrap();
    for (what, secret) in &canaries {
        for mail in &mails {
            assert!(
                !mail.everything().contains(secret.as_str()),
                "{what} in a mail:\n{}",
                mail.raw
            );
        }
        assert!(!state.contains(secret.as_str()), "{what} in the state file");
        assert!(
            !server.stderr().contains(secret.as_str()),
            "{what} in the log"
        );
    }
}

/// A recipient refused for good (550) is counted and dropped: retried at
/// the head of the queue, it would hold every mail after it forever.
#[test]
fn a_recipient_the_server_refuses_does_not_hold_up_mail_for_others() {
    let mut t = Setup::new();
    t.config(
        "",
        "",
        "  routes:\n\
         \x20   - match: {path: 'certs/legacy/*'}\n      to: [nobody@example.com]\n",
    );
    t.smtp.reject(&["nobody@example.com"]);
    t.cert_file(
        "legacy/old.crt",
        "legacy.example",
        5 * DAY + 12 * HOUR + 30 * MINUTE,
    );
    t.cert_file("web.crt", "web.example", 3 * DAY + 12 * HOUR + 30 * MINUTE);
    let server = t.serve();

    let mails = t.wait_for(&server, 1);
    assert_addressed(&mails[0], &[OPS]);
    assert_eq!(mails[0].subject, "[lapse] web.example expires in 3d 12h");
    server.wait_for("the refused mail counted as failed", |m| {
        m.value(TOTAL, &FAILED) >= 1.0
    });
}

/// lettre's async timeout bounds only the TCP connect: lapse bounds each
/// delivery itself and races it against shutdown, so a server that accepts
/// and then stalls holds neither the notifier nor SIGTERM.
#[test]
fn sigterm_does_not_wait_for_a_mail_server_that_never_answers() {
    let t = Setup::new();
    // Takes connections and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let (accepted, connections) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in silent.incoming() {
            if accepted.send(conn).is_err() {
                break;
            }
        }
    });
    t.s.write(
        "lapse.yaml",
        std::fs::read_to_string(t.s.path("lapse.yaml"))
            .unwrap()
            .replace(&format!("port: {}", t.smtp.port), &format!("port: {port}")),
    );
    t.cert_file("web.crt", "web.example", 3 * DAY + 12 * HOUR + 30 * MINUTE);
    let server = t.serve();
    let _held = connections
        .recv_timeout(DEADLINE)
        .expect("lapse connects to send");
    std::thread::sleep(Duration::from_millis(300));
    let (status, took) = server.terminate(Duration::from_secs(10));
    println!("SIGTERM to exit during a send: {} ms", took.as_millis());
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(5), "exit took {took:?}");
}

const OWED: &str = "lapse_notifications_owed";
const REFUSED: &str = "lapse_notifications_refused_total";

/// A sample's value, `None` while lapse does not export it.
fn sample(m: &crate::support::Exposition, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    m.find(name, labels).first().map(|s| s.value)
}

/// Log text without its terminal colours (`ESC [ … m`).
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut rest = log;
    while let Some(at) = rest.find('\x1b') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        rest = rest.find('m').map_or("", |end| &rest[end + 1..]);
    }
    out.push_str(rest);
    out
}

/// The refusals counted for one reason.
fn refused(reason: &str) -> [(&str, &str); 2] {
    [("channel", "email"), ("reason", reason)]
}

/// A 550 is not "sent": the warning stays owed (a gauge, the log), and the
/// next run of lapse, the mail server fixed, delivers it once.
#[test]
fn a_warning_refused_for_good_stays_owed_and_the_next_run_delivers_it() {
    let mut t = Setup::new();
    t.config(
        "",
        "",
        "  routes:\n\
         \x20   - match: {path: 'certs/legacy/*'}\n      to: [nobody@example.com]\n",
    );
    t.smtp.reject(&["nobody@example.com"]);
    t.cert_file(
        "legacy/old.crt",
        "legacy.example",
        5 * DAY + 12 * HOUR + 30 * MINUTE,
    );
    let server = t.serve();
    let (m, _) = server.wait_for("the refused warning owed", |m| {
        sample(m, OWED, &[]) == Some(1.0)
    });
    assert_eq!(m.value(REFUSED, &refused("mailbox_unavailable")), 1.0);
    assert_eq!(m.value(REFUSED, &refused("user_not_local")), 0.0);
    assert_eq!(m.value(REFUSED, &refused("mailbox_name_not_allowed")), 0.0);
    assert_eq!(m.value(TOTAL, &SENT), 0.0);
    assert_eq!(m.value(TOTAL, &FAILED), 1.0);
    assert_eq!(m.value(PENDING, &[]), 0.0);
    // Refused for good: not retried every check, not counted again.
    t.smtp.assert_stays(0, QUIET);
    let m = server.metrics();
    assert_eq!(m.value(TOTAL, &FAILED), 1.0);
    assert_eq!(m.value(OWED, &[]), 1.0);
    // The page says so, at the top.
    assert_contains(
        &server.get("/").body,
        "<p class=\"critical\">1 credential warning(s) not delivered: the mail server refused a recipient \
         for good. lapse's log names the address; the warnings are offered again when lapse restarts or \
         <code>notify:</code> is reloaded.</p>",
    );
    let stderr = server.stderr();
    assert_contains(
        &stderr,
        "recipient refused the mail for good; the warning stays owed",
    );
    assert_contains(&plain(&stderr), "recipient=nobody@example.com code=550");
    let state = std::fs::read_to_string(t.s.path("state/notify-state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let record = &state["credentials"]["file|certs/legacy/old.crt||0"];
    // Level 3 (inside 7d) is owed, not sent.
    assert_eq!(record["level"], 3);
    assert_eq!(
        record["owed"],
        json!({"delivered": [], "refused": ["nobody@example.com"]})
    );
    let (status, _) = server.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");

    // The address now exists: the next run delivers what is owed, once.
    t.smtp.reject(&[]);
    let server = t.serve();
    let mails = t.wait_for(&server, 1);
    assert_addressed(&mails[0], &["nobody@example.com"]);
    assert_eq!(mails[0].subject, "[lapse] legacy.example expires in 5d 12h");
    t.smtp.assert_stays(1, QUIET);
    let m = server.metrics();
    assert_eq!(m.value(OWED, &[]), 0.0);
    assert_eq!(m.value(TOTAL, &SENT), 1.0);
    assert!(!server.get("/").body.contains("not delivered"));
    drop(server);
    // Delivered: a third run owes nothing.
    let server = t.serve();
    t.smtp.assert_stays(1, QUIET);
    assert_eq!(server.metrics().value(OWED, &[]), 0.0);
}

/// One mistyped address among three: the other two get the mail, the typo
/// is counted by reason, and once the configuration names the right
/// address only that address gets it — nobody gets it twice.
#[test]
fn a_mistyped_recipient_does_not_block_the_others_and_a_fixed_one_is_told_once() {
    let mut t = Setup::new();
    let route = |typo: &str| {
        format!(
            "  routes:\n\
             \x20   - match: {{path: 'certs/pki/*'}}\n      \
             to: [pki@example.com, {typo}, etcd-admins@example.com]\n"
        )
    };
    t.config("", "", &route("pki-oncall@exmaple.com"));
    t.smtp.refuse(&[("pki-oncall@exmaple.com", 553)]);
    t.cert_file("pki/etcd.crt", "etcd", 6 * DAY + 12 * HOUR + 30 * MINUTE);
    let server = t.serve();
    let mut mails = t.wait_for(&server, 2);
    let all = [
        "pki@example.com",
        "pki-oncall@exmaple.com",
        "etcd-admins@example.com",
    ];
    for mail in &mails {
        assert_addressed(mail, &all);
        assert_eq!(mail.subject, "[lapse] etcd expires in 6d 12h");
    }
    mails.sort_by(|a, b| a.to.cmp(&b.to));
    let envelopes: Vec<&str> = mails.iter().map(|m| m.to[0].as_str()).collect();
    assert_eq!(envelopes, ["etcd-admins@example.com", "pki@example.com"]);
    let (m, _) = server.wait_for("the typo owed", |m| sample(m, OWED, &[]) == Some(1.0));
    assert_eq!(m.value(REFUSED, &refused("mailbox_name_not_allowed")), 1.0);
    assert_eq!(m.value(REFUSED, &refused("mailbox_unavailable")), 0.0);
    assert_eq!(m.value(TOTAL, &SENT), 2.0);
    t.smtp.assert_stays(2, QUIET);
    assert_contains(
        &plain(&server.stderr()),
        "recipient=pki-oncall@exmaple.com code=553 reason=\"mailbox_name_not_allowed\"",
    );
    drop(server);

    // The configuration is fixed: only the new address is owed the warning.
    t.config("", "", &route("pki-oncall@example.com"));
    let server = t.serve();
    let mails = t.wait_for(&server, 3);
    assert_eq!(mails[2].to, ["pki-oncall@example.com"]);
    assert_addressed(&mails[2], &["pki-oncall@example.com"]);
    assert_eq!(mails[2].subject, "[lapse] etcd expires in 6d 12h");
    t.smtp.assert_stays(3, QUIET);
    assert_eq!(server.metrics().value(OWED, &[]), 0.0);
}

/// A temporary refusal (451) is retried for that recipient only: the one
/// that took the message does not get it again.
#[test]
fn a_temporary_refusal_is_retried_for_that_recipient_alone() {
    let mut t = Setup::new();
    t.config(
        "",
        "",
        "  routes:\n\
         \x20   - match: {path: 'certs/*'}\n      to: [a@example.com, b@example.com]\n",
    );
    t.smtp.fail_first(1);
    t.cert_file("web.crt", "web.example", 3 * DAY + 12 * HOUR + 30 * MINUTE);
    let server = t.serve();
    let mut mails = t.wait_for(&server, 2);
    t.smtp.assert_stays(2, QUIET);
    mails.sort_by(|a, b| a.to.cmp(&b.to));
    let envelopes: Vec<&str> = mails.iter().map(|m| m.to[0].as_str()).collect();
    assert_eq!(envelopes, ["a@example.com", "b@example.com"]);
    let m = server.metrics();
    assert_eq!(m.value(TOTAL, &FAILED), 1.0);
    assert_eq!(m.value(TOTAL, &SENT), 2.0);
    assert_eq!(m.value(PENDING, &[]), 0.0);
    assert_eq!(m.value(OWED, &[]), 0.0);
    assert_contains(&server.stderr(), "mail not sent; will retry");
}

/// A one-hour token that machinery rewrites every hour: no "expires in 59m"
/// and no "renewed" mail for it by default; `short_lived: mail` mails it.
#[test]
fn machinery_rotated_short_lived_tokens_are_not_mailed_by_default() {
    let t = Setup::new();
    let token = |iat: i64, sig: &str| {
        jwt(
            json!({"sub": "oidc-user", "iat": iat, "exp": iat + HOUR}),
            sig,
        )
    };
    let now = unix_now();
    t.s.write("certs/oidc.token", token(now - 30 * MINUTE, "first-sig"));
    // A certificate crossing a threshold, so a check visibly happened.
    t.cert_file("web.crt", "web.example", 3 * DAY + 12 * HOUR + 30 * MINUTE);
    let server = t.serve();
    let mails = t.wait_for(&server, 1);
    assert_eq!(mails[0].subject, "[lapse] web.example expires in 3d 12h");
    assert_eq!(entries(mails[0].text()).len(), 1, "{}", mails[0].text());
    // The plugin rewrites the token: still nothing.
    t.s.write("certs/oidc.token", token(unix_now(), "second-sig"));
    t.smtp.assert_stays(1, QUIET);
    drop(server);

    t.config("", "", "  short_lived: mail\n");
    // 49m 30s left when written: "in 49m" for half a minute.
    t.s.write(
        "certs/oidc.token",
        token(unix_now() - 10 * MINUTE - 30, "third-sig"),
    );
    let server = t.serve();
    let mails = t.wait_for(&server, 2);
    // Under an hour, time left has seconds: the minutes are what is fixed.
    assert!(
        mails[1]
            .subject
            .starts_with("[lapse] oidc-user expires in 49m "),
        "{}",
        mails[1].subject
    );
    t.smtp.assert_stays(2, QUIET);
}
