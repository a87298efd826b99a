//! The mail itself: a subject naming the most urgent credential and its
//! time left, and a plain-text and an HTML table of every credential in
//! the message — where it lives, when it lapses (UTC), time left, its
//! validity window, and what to do. Never secret text: credentials carry
//! none.

use super::plan::{Event, EventKind, urgency};
use crate::credential::{Credential, Kind, Source, Timestamp};
use crate::logging::plain::plain;
use crate::output::html::html_escape;
use crate::timefmt::{rfc3339, time_left};
use crate::units::human_span;
use std::fmt::Write;

/// What an operator does about a credential of this kind, where it lives.
pub fn action(c: &Credential) -> &'static str {
    let path = &*c.path;
    let entry = c.entry.as_deref().unwrap_or("");
    let aks_hci = path.contains("wssd")
        || path.contains("cloudlogin")
        || path.contains("nodelogin")
        || path.contains("cloudconfig")
        || entry.contains("caphlogintoken");
    if aks_hci {
        return "AKS on Azure Stack HCI: run Update-AksHciCertificates (or upgrade the cluster: its tokens rotate only during upgrades)";
    }
    if c.kind == Kind::BootstrapToken {
        return "create a new token with `kubeadm token create` and delete the old one";
    }
    if path.contains("kubelet") {
        return "the kubelet should rotate it: check rotateCertificates and that its CSRs are approved";
    }
    let kubeadm_conf = [
        "admin.conf",
        "super-admin.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ]
    .iter()
    .any(|f| path.ends_with(f));
    if c.kind == Kind::X509 && (path.contains("/etc/kubernetes/pki") || kubeadm_conf) {
        return "renew with `kubeadm certs renew all`, then restart the control-plane static pods";
    }
    if c.source == Source::Kubeconfig && c.kind != Kind::X509 {
        return "log in again to refresh the token (kubectl oidc-login, gcloud auth login, az login, …)";
    }
    if path.contains("openstack")
        || entry == "id"
        || (entry == "token" && c.kind == Kind::OpaqueToken)
    {
        return "issue a new token (`openstack token issue`) and replace the stored one";
    }
    match (c.kind, c.source) {
        (Kind::X509, Source::Secret) => {
            "renew the certificate (cert-manager: `cmctl renew`; otherwise replace the Secret's tls.crt)"
        }
        (Kind::X509, _) => "renew the certificate and replace the file",
        _ => "issue a new token and replace the stored one",
    }
}

fn place(c: &Credential) -> String {
    let mut out = c.path.to_string();
    if let Some(entry) = &c.entry {
        let _ = write!(out, " [{entry}]");
    }
    plain(&out).into_owned()
}

/// Plain text: a CN's CR or escape sequence must not rewrite a mail
/// reader's subject line or a terminal that shows the mail.
fn name(c: &Credential) -> String {
    let name = c
        .identity
        .subject_cn()
        .or(c.identity.subject())
        .map_or_else(
            || format!("{} {}", c.kind.as_str(), c.fingerprint.short(12)),
            str::to_string,
        );
    plain(&name).into_owned()
}

fn what(e: &Event, now: Timestamp) -> String {
    match &e.kind {
        EventKind::Expired => format!(
            "expired {}",
            time_left(e.credential.expires_in(now)).trim_start_matches("expired ")
        ),
        EventKind::Threshold(_) => format!("expires {}", time_left(e.credential.expires_in(now))),
        EventKind::Renewed { old_not_after } => format!(
            "renewed: was due {}, now valid until {}",
            rfc3339(*old_not_after),
            e.credential.not_after.map(rfc3339).unwrap_or_default()
        ),
    }
}

fn window(c: &Credential) -> String {
    match (c.not_before, c.not_after) {
        (Some(from), Some(to)) => format!(
            "{} → {} ({})",
            rfc3339(from),
            rfc3339(to),
            human_span(to - from)
        ),
        _ => "-".into(),
    }
}

/// Subject, plain text and HTML for one message about `events`.
pub fn render(events: &[Event], now: Timestamp) -> (String, String, String) {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| urgency(e, now));
    let first = sorted[0];
    let more = if sorted.len() > 1 {
        format!(" (+{} more)", sorted.len() - 1)
    } else {
        String::new()
    };
    let subject = format!(
        "[lapse] {} {}{more}",
        name(&first.credential),
        what(first, now)
    );

    let mut text = String::new();
    let _ = writeln!(
        text,
        "lapse found {} credential event(s) as of {}:\n",
        sorted.len(),
        rfc3339(now)
    );
    for e in &sorted {
        let c = &e.credential;
        let _ = writeln!(text, "* {} — {}", name(c), what(e, now));
        let _ = writeln!(
            text,
            "  kind:     {} ({})",
            c.kind.as_str(),
            c.source.as_str()
        );
        let _ = writeln!(text, "  where:    {}", place(c));
        if let Some(o) = &c.object {
            let object = format!("{}/{} key {}", o.namespace, o.name, o.key);
            let _ = writeln!(text, "  object:   {}", plain(&object));
        }
        let _ = writeln!(
            text,
            "  expires:  {} UTC ({})",
            c.not_after
                .map(|t| rfc3339(t)
                    .replace('T', " ")
                    .trim_end_matches('Z')
                    .to_string())
                .unwrap_or_default(),
            time_left(c.expires_in(now))
        );
        let _ = writeln!(text, "  validity: {}", window(c));
        let _ = writeln!(text, "  to do:    {}\n", action(c));
    }
    text.push_str("-- \nSent by lapse. Each threshold crossing is mailed once.\n");

    let mut html = String::from(
        "<!doctype html><html><body style=\"font-family:sans-serif\">\n<table cellpadding=\"4\" style=\"border-collapse:collapse\">\n\
         <tr><th align=\"left\">credential</th><th align=\"left\">what</th><th align=\"left\">where</th>\
         <th align=\"left\">expires (UTC)</th><th align=\"left\">left</th><th align=\"left\">validity window</th><th align=\"left\">to do</th></tr>\n",
    );
    for e in &sorted {
        let c = &e.credential;
        let cells = [
            format!("{} ({})", name(c), c.kind.as_str()),
            what(e, now),
            place(c),
            c.not_after.map(rfc3339).unwrap_or_default(),
            time_left(c.expires_in(now)),
            window(c),
            action(c).to_string(),
        ];
        html.push_str("<tr>");
        for cell in cells {
            html.push_str("<td style=\"border-top:1px solid #ccc\">");
            html_escape(&mut html, &cell);
            html.push_str("</td>");
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n<p style=\"color:#666\">Sent by lapse. Each threshold crossing is mailed once.</p></body></html>\n");
    (subject, text, html)
}

/// The daily digest: everything inside the widest threshold, soonest first.
pub fn render_digest(
    creds: &[&Credential],
    now: Timestamp,
    widest: i64,
) -> Option<(String, String, String)> {
    let mut upcoming: Vec<&Credential> = creds
        .iter()
        .copied()
        .filter(|c| c.expires_in(now).is_some_and(|left| left <= widest))
        .collect();
    if upcoming.is_empty() {
        return None;
    }
    upcoming.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let events: Vec<Event> = upcoming
        .iter()
        .map(|c| Event {
            key: super::plan::location(c),
            kind: if c.expires_in(now).unwrap_or(1) <= 0 {
                EventKind::Expired
            } else {
                EventKind::Threshold(widest)
            },
            credential: (*c).clone(),
            record: super::plan::Sent {
                fingerprint: c.fingerprint.to_string(),
                not_after: c.not_after.unwrap_or_default(),
                level: 0,
                owed: None,
            },
            skip: Vec::new(),
        })
        .collect();
    let (first, text, html) = render(&events, now);
    let subject = format!(
        "[lapse] daily digest: {} credential(s) within {} — soonest: {}",
        events.len(),
        human_span(widest),
        first.trim_start_matches("[lapse] ")
    );
    Some((subject, text, html))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::{Fingerprint, Identity};
    use crate::notify::plan::{Sent, location};

    fn event(kind: EventKind, path: &str, cn: &str, not_after: Timestamp) -> Event {
        let mut c =
            Credential::new(Kind::X509, Fingerprint::of(cn.as_bytes())).expiring(Some(not_after));
        c.path = path.into();
        c.not_before = Some(not_after - 365 * 86_400);
        c.identity = Identity::new(None, Some(cn), None, None);
        Event {
            key: location(&c),
            kind,
            record: Sent {
                fingerprint: c.fingerprint.to_string(),
                not_after,
                level: 1,
                owed: None,
            },
            skip: Vec::new(),
            credential: c,
        }
    }

    #[test]
    fn the_subject_names_the_most_urgent_and_the_body_every_one() {
        let now = 1_800_000_000;
        let events = [
            event(
                EventKind::Threshold(14 * 86_400),
                "/pki/apiserver.crt",
                "kube-apiserver",
                now + 10 * 86_400,
            ),
            event(
                EventKind::Expired,
                "/etc/kubernetes/pki/front-proxy-client.crt",
                "front-proxy-client",
                now - 3 * 86_400,
            ),
        ];
        let (subject, text, html) = render(&events, now);
        assert_eq!(
            subject,
            "[lapse] front-proxy-client expired 3d ago (+1 more)"
        );
        assert!(
            text.contains("* front-proxy-client — expired 3d ago"),
            "{text}"
        );
        assert!(text.contains("* kube-apiserver — expires in 10d"), "{text}");
        assert!(
            text.contains("  expires:  2027-01-25 08:00:00 UTC (in 10d)"),
            "{text}"
        );
        assert!(
            text.contains("  validity: 2026-01-25T08:00:00Z → 2027-01-25T08:00:00Z (365d)"),
            "{text}"
        );
        assert!(text.contains("kubeadm certs renew all"), "{text}");
        assert!(text.find("front-proxy-client").unwrap() < text.find("kube-apiserver").unwrap());
        assert!(
            html.contains("<td style=\"border-top:1px solid #ccc\">/pki/apiserver.crt</td>"),
            "{html}"
        );
    }

    #[test]
    fn actions_fit_where_the_credential_lives() {
        let mut c = Credential::new(Kind::BootstrapToken, Fingerprint::of(b"t"));
        assert!(action(&c).contains("kubeadm token create"));
        c.kind = Kind::OpaqueToken;
        c.path = "/opt/wssd/k8s/cloudlogin.yaml".into();
        assert!(action(&c).contains("Update-AksHciCertificates"));
        c.path = "/home/a/.kube/config".into();
        c.source = Source::Kubeconfig;
        c.kind = Kind::Jwt;
        assert!(action(&c).contains("log in again"));
    }

    #[test]
    fn control_characters_in_names_and_paths_are_plain_text_in_every_part() {
        let now = 1_800_000_000;
        let events = [event(
            EventKind::Threshold(14 * 86_400),
            "/pki/api\nserver.crt",
            "kube-apiserver\rok\x1b[2K",
            now + 10 * 86_400,
        )];
        let (subject, text, html) = render(&events, now);
        assert_eq!(
            subject,
            "[lapse] kube-apiserver\\rok\\x1b[2K expires in 10d"
        );
        assert!(
            text.contains("* kube-apiserver\\rok\\x1b[2K — expires in 10d\n"),
            "{text}"
        );
        assert!(
            text.contains("  where:    /pki/api\\nserver.crt\n"),
            "{text}"
        );
        assert!(
            html.contains("<td style=\"border-top:1px solid #ccc\">/pki/api\\nserver.crt</td>"),
            "{html}"
        );
        for part in [&subject, &text, &html] {
            assert!(!part.contains('\r') && !part.contains('\x1b'), "{part:?}");
        }
    }
}
