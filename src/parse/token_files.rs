//! Token files and caches that keep an expiry beside an opaque token:
//! AKS-on-Azure-Stack-HCI (MOC) login files and `cloudconfig`, OpenStack
//! Keystone output (v2 and v3 token bodies, `openstack token issue`,
//! application credentials as the API and the CLI print them), the
//! gke-gcloud-auth-plugin cache, kubelogin caches and saved
//! `ExecCredential` output.
//!
//! An application credential's `secret` is never read: the credential is
//! known by its id.

use super::record::{Context, Parsed, field, get, get_str};
use super::{jwt, x509};
use crate::credential::{Credential, ErrorReason, Fingerprint, Kind, Source};
use crate::timefmt::{parse_timestamp, parse_unix};
use serde_json::Value;

/// Tries each recogniser; true when one matched.
pub(crate) fn parse(ctx: &Context, doc: &Value, out: &mut Parsed) -> bool {
    let source = ctx.source_or(Source::File);
    let mut p = Tokens { ctx, source, out };
    if get_str(doc, "kind") == Some("ExecCredential") {
        p.exec_credential(doc);
    } else if field(doc, "token").is_some()
        && ["certificate", "cloudfqdn", "clienttype", "cloudport"]
            .iter()
            .any(|k| get(doc, k).is_some())
    {
        p.moc_login(doc);
    } else if get(doc, "ClientCertificate").is_some() || get(doc, "CloudCertificate").is_some() {
        p.b64_certificates(doc, "CloudCertificate");
        p.b64_certificates(doc, "ClientCertificate");
    } else if let (Some(expires), Some(id)) = (field(doc, "expires"), field(doc, "id")) {
        p.openstack_token_issue(doc, expires, id);
    } else if let Some(token) = get(doc, "token").filter(|t| get(t, "expires_at").is_some()) {
        p.keystone_body(token);
    } else if let Some(token) = get(doc, "access")
        .and_then(|a| get(a, "token"))
        .filter(|t| get(t, "expires").is_some())
    {
        p.keystone_v2_body(doc, token);
    } else if let Some(app) =
        get(doc, "application_credential").filter(|a| get(a, "expires_at").is_some())
    {
        p.application_credential(
            app,
            &API,
            "application_credential",
            "application_credential",
        );
    } else if let Some(list) = get(doc, "application_credentials").and_then(Value::as_array) {
        for (i, app) in list.iter().enumerate() {
            let at = format!("application_credentials[{i}]");
            p.application_credential(app, &API, &at, &at);
        }
    } else if let Some(keys) = [&API, &CLI].into_iter().find(|k| k.is_flat(doc)) {
        p.application_credential(doc, keys, keys.id, "");
    } else if let Some(list) = doc
        .as_array()
        .filter(|l| !l.is_empty() && l.iter().all(|a| CLI.is_flat(a)))
    {
        // `openstack application credential list -f json`.
        for (i, app) in list.iter().enumerate() {
            let at = format!("[{i}]");
            p.application_credential(app, &CLI, &at, &at);
        }
    } else if let (Some(token), Some(expiry)) =
        (field(doc, "access_token"), field(doc, "token_expiry"))
    {
        // gke-gcloud-auth-plugin cache.
        p.token_with_expiry("access_token", token, expiry, parse_timestamp(expiry));
    } else if let Some(token) = field(doc, "id_token") {
        // int128/kubelogin cache.
        jwt::add_token(ctx, source, "id_token", token.trim(), p.out);
        if let Some(refresh) = field(doc, "refresh_token") {
            jwt::add_token(ctx, source, "refresh_token", refresh.trim(), p.out);
        }
    } else if let (Some(token), Some(expires_on)) =
        (field(doc, "access_token"), get(doc, "expires_on"))
    {
        // Azure kubelogin cache.
        let when = expires_on.as_str().unwrap_or_default();
        p.token_with_expiry("access_token", token, when, parse_unix(expires_on));
    } else {
        return false;
    }
    true
}

/// The keys of an application credential's fields: the API's, and the
/// column headers newer `openstack application credential create|show|list
/// -f json` print (older clients print the API's keys, flat).
struct AppCredentialKeys {
    id: &'static str,
    name: &'static str,
    expires_at: &'static str,
    /// Keys only an application credential has, one of which a flat
    /// document must hold to be taken for one.
    markers: [&'static str; 4],
}

const API: AppCredentialKeys = AppCredentialKeys {
    id: "id",
    name: "name",
    expires_at: "expires_at",
    markers: ["unrestricted", "access_rules", "roles", "secret"],
};

const CLI: AppCredentialKeys = AppCredentialKeys {
    id: "ID",
    name: "Name",
    expires_at: "Expires At",
    markers: ["Unrestricted", "Access Rules", "Roles", "Secret"],
};

impl AppCredentialKeys {
    /// A flat application credential: an id, an `expires_at` (`null`
    /// counts) and one of the markers.
    fn is_flat(&self, doc: &Value) -> bool {
        field(doc, self.id).is_some()
            && get(doc, self.expires_at).is_some()
            && self.markers.iter().any(|k| get(doc, k).is_some())
    }
}

struct Tokens<'c, 'a> {
    ctx: &'c Context<'a>,
    source: Source,
    out: &'c mut Parsed,
}

impl Tokens<'_, '_> {
    fn token_with_expiry(
        &mut self,
        entry: &str,
        token: &str,
        raw_expiry: &str,
        expiry: Option<i64>,
    ) {
        if expiry.is_none() && !raw_expiry.is_empty() {
            self.out.error(
                self.ctx,
                entry,
                ErrorReason::Parse,
                "expiry field is not a date",
            );
            return;
        }
        jwt::add_token_expiring(self.ctx, self.source, entry, token.trim(), expiry, self.out);
    }

    fn b64_certificates(&mut self, doc: &Value, key: &str) {
        let Some(data) = field(doc, key) else { return };
        match x509::decode_b64(data) {
            Ok(bytes) => x509::certificates(self.ctx, self.source, key, &bytes, self.out),
            Err(e) => self.out.error(self.ctx, key, ErrorReason::Parse, e),
        }
    }

    /// MOC login YAML: `token` (a JWT when it has `exp`) and `certificate`,
    /// the cloud agent's CA as base64 PEM.
    fn moc_login(&mut self, doc: &Value) {
        if let Some(token) = field(doc, "token") {
            let before = self.out.credentials.len();
            jwt::add_token(self.ctx, self.source, "token", token.trim(), self.out);
            for c in &mut self.out.credentials[before..] {
                if c.identity.subject().is_none() {
                    c.identity.set_subject(field(doc, "name"));
                }
                if c.not_after.is_none() {
                    c.set_note(Some(
                        "cloud agent login token: valid for the identity's window (60 or 90 days); declare it with a tokens rule".into(),
                    ));
                }
            }
        }
        self.b64_certificates(doc, "certificate");
    }

    /// `openstack token issue -f json`.
    fn openstack_token_issue(&mut self, doc: &Value, expires: &str, id: &str) {
        let Some(not_after) = parse_timestamp(expires) else {
            self.out.error(
                self.ctx,
                "expires",
                ErrorReason::Parse,
                "expires is not a date",
            );
            return;
        };
        let mut c = match jwt::token_credential(id.trim()) {
            Ok(c) if c.kind != Kind::Jwt => c,
            _ => Credential::new(Kind::OpaqueToken, Fingerprint::of(id.trim().as_bytes())),
        }
        .expiring(Some(not_after));
        c.set_note(None);
        c.identity.set_subject(field(doc, "user_id"));
        self.out.add(self.ctx, self.source, "id", None, c);
    }

    /// A `/v3/auth/tokens` response body. The token itself travels in a
    /// header; its audit id identifies it here.
    fn keystone_body(&mut self, token: &Value) {
        let expires = field(token, "expires_at").unwrap_or_default();
        let Some(not_after) = parse_timestamp(expires) else {
            self.out.error(
                self.ctx,
                "token.expires_at",
                ErrorReason::Parse,
                "expires_at is not a date",
            );
            return;
        };
        let audit = get(token, "audit_ids")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                format!(
                    "{}|{expires}",
                    field(token, "issued_at").unwrap_or_default()
                )
            });
        let mut c = Credential::new(Kind::OpaqueToken, Fingerprint::of(audit.as_bytes()))
            .expiring(Some(not_after));
        c.not_before = field(token, "issued_at").and_then(parse_timestamp);
        let user = get(token, "user");
        c.identity.set_subject(user.and_then(|u| field(u, "name")));
        self.out.add(self.ctx, self.source, "token", None, c);
    }

    /// A Keystone v2 `POST /v2.0/tokens` body: `access.token.{id, issued_at,
    /// expires}`. The token itself is in the body; it is known by its
    /// fingerprint, as `openstack token issue`'s `id` is.
    fn keystone_v2_body(&mut self, doc: &Value, token: &Value) {
        let Some(not_after) = field(token, "expires").and_then(parse_timestamp) else {
            self.out.error(
                self.ctx,
                "access.token.expires",
                ErrorReason::Parse,
                "expires is not a date",
            );
            return;
        };
        let not_before = match get(token, "issued_at") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_str().and_then(parse_timestamp) {
                Some(t) => Some(t),
                None => {
                    self.out.error(
                        self.ctx,
                        "access.token.issued_at",
                        ErrorReason::Parse,
                        "issued_at is not a date",
                    );
                    return;
                }
            },
        };
        // Without its id, the audit id (or its dates, as for a v3 body)
        // tells this token from others.
        let identity = field(token, "id")
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .or_else(|| get(token, "audit_ids")?.as_array()?.first()?.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| {
                let issued = field(token, "issued_at").unwrap_or_default();
                format!("{issued}|{}", field(token, "expires").unwrap_or_default())
            });
        let mut c = Credential::new(Kind::OpaqueToken, Fingerprint::of(identity.as_bytes()))
            .expiring(Some(not_after));
        c.not_before = not_before;
        let user = get(doc, "access").and_then(|a| get(a, "user"));
        c.identity.set_subject(user.and_then(|u| field(u, "name")));
        self.out.add(self.ctx, self.source, "access.token", None, c);
    }

    /// Keystone application credential: `expires_at` without a zone is UTC;
    /// `null` means it never expires. `entry` is where it is reported,
    /// `at` the prefix of its fields in an error (empty: top level).
    fn application_credential(
        &mut self,
        app: &Value,
        keys: &AppCredentialKeys,
        entry: &str,
        at: &str,
    ) {
        let in_field = |key: &str| match at {
            "" => key.to_string(),
            _ => format!("{at}.{key}"),
        };
        let Some(id) = field(app, keys.id).filter(|id| !id.is_empty()) else {
            let message = format!("application credential without {}", keys.id);
            self.out
                .error(self.ctx, &in_field(keys.id), ErrorReason::Parse, message);
            return;
        };
        let not_after = match get(app, keys.expires_at) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_str().and_then(parse_timestamp) {
                Some(t) => Some(t),
                None => {
                    self.out.error(
                        self.ctx,
                        &in_field(keys.expires_at),
                        ErrorReason::Parse,
                        format!("{} is not a date", keys.expires_at),
                    );
                    return;
                }
            },
        };
        let mut c =
            Credential::new(Kind::OpaqueToken, Fingerprint::of(id.as_bytes())).expiring(not_after);
        c.identity.set_subject(field(app, keys.name));
        if not_after.is_none() {
            c.set_note(Some(
                "application credential without expires_at: it never expires".into(),
            ));
        }
        self.out.add(self.ctx, self.source, entry, None, c);
    }

    /// Saved `client.authentication.k8s.io` ExecCredential output.
    fn exec_credential(&mut self, doc: &Value) {
        let Some(status) = get(doc, "status") else {
            return;
        };
        let raw = field(status, "expirationTimestamp").unwrap_or_default();
        let expiry = parse_timestamp(raw);
        if expiry.is_none() && !raw.is_empty() {
            self.out.error(
                self.ctx,
                "status.expirationTimestamp",
                ErrorReason::Parse,
                "not an RFC 3339 time",
            );
            return;
        }
        if let Some(token) = field(status, "token") {
            jwt::add_token_expiring(
                self.ctx,
                self.source,
                "status.token",
                token.trim(),
                expiry,
                self.out,
            );
        }
        if let Some(pem) = field(status, "clientCertificateData") {
            x509::certificates(
                self.ctx,
                self.source,
                "status.clientCertificateData",
                pem.as_bytes(),
                self.out,
            );
        }
    }
}
