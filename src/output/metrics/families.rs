//! The per-credential families: their names, help, values, and which are
//! written unless `metrics.families` says otherwise.
//!
//! The default set is what alerts and dashboards need and nothing a
//! PromQL expression can derive: `expires_in_seconds` and
//! `validity_seconds` give not-after (`time() + expires_in`), not-before
//! and expired (`expires_in <= 0`), so those three are opt-in; they
//! triple a large page for no new information.

use crate::credential::{Credential, Timestamp};

/// One gauge family: which credentials it covers and the value of each.
pub struct CredentialFamily {
    pub name: &'static str,
    pub help: &'static str,
    pub value: fn(&Credential, Timestamp) -> Option<f64>,
    /// Whether `value` reads its `now`.
    pub uses_now: bool,
    /// Written when `metrics.families` is not set.
    pub default: bool,
    /// Written with `serial` and `fingerprint` (lapse_credential_info).
    pub descriptive: bool,
}

pub const PREFIX: &str = "lapse_credential_";

pub const CREDENTIAL_FAMILIES: &[CredentialFamily] = &[
    CredentialFamily {
        name: "lapse_credential_expires_in_seconds",
        help: "Seconds until the credential lapses (negative once it has); computed at scrape time",
        value: |c, now| c.expires_in(now).map(|s| s as f64),
        uses_now: true,
        default: true,
        descriptive: false,
    },
    CredentialFamily {
        name: "lapse_credential_not_after_timestamp_seconds",
        help: "When the credential lapses, as a Unix timestamp",
        value: |c, _| c.not_after.map(|t| t as f64),
        uses_now: false,
        default: false,
        descriptive: false,
    },
    CredentialFamily {
        name: "lapse_credential_not_before_timestamp_seconds",
        help: "When the credential became valid (or was issued), as a Unix timestamp",
        value: |c, _| c.not_before.map(|t| t as f64),
        uses_now: false,
        default: false,
        descriptive: false,
    },
    CredentialFamily {
        name: "lapse_credential_validity_seconds",
        help: "The whole validity window, not_after minus not_before",
        value: |c, _| c.validity_window().map(|s| s as f64),
        uses_now: false,
        default: true,
        descriptive: false,
    },
    CredentialFamily {
        name: "lapse_credential_expired",
        help: "1 if the credential has lapsed, else 0",
        value: |c, now| c.expires_in(now).map(|s| if s <= 0 { 1.0 } else { 0.0 }),
        uses_now: true,
        default: false,
        descriptive: false,
    },
    CredentialFamily {
        name: "lapse_credential_no_expiry",
        help: "1 for a credential that never lapses (or whose expiry nothing states)",
        value: |c, _| c.not_after.is_none().then_some(1.0),
        uses_now: false,
        default: true,
        descriptive: false,
    },
    CredentialFamily {
        name: "lapse_credential_warn_after_timestamp_seconds",
        help: "Bound service-account tokens: when the kubelet should have rotated it",
        value: |c, _| c.warn_after().map(|t| t as f64),
        uses_now: false,
        default: true,
        descriptive: false,
    },
    CredentialFamily {
        name: "lapse_credential_info",
        help: "1 per credential, with its serial and fingerprint, which change at every renewal and so are on no other family",
        value: |_, _| Some(1.0),
        uses_now: false,
        default: true,
        descriptive: true,
    },
];

/// How many per-credential families there are.
pub const FAMILIES: usize = CREDENTIAL_FAMILIES.len();

/// The default set, by index.
pub fn defaults() -> Vec<bool> {
    CREDENTIAL_FAMILIES.iter().map(|f| f.default).collect()
}

/// The index of a family named with or without `lapse_credential_`.
pub fn find(name: &str) -> Option<usize> {
    let short = name.strip_prefix(PREFIX).unwrap_or(name);
    CREDENTIAL_FAMILIES
        .iter()
        .position(|f| &f.name[PREFIX.len()..] == short)
}

/// Every family's name without the prefix, for error messages.
pub fn short_names() -> Vec<&'static str> {
    CREDENTIAL_FAMILIES
        .iter()
        .map(|f| &f.name[PREFIX.len()..])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_found_with_or_without_the_prefix() {
        assert_eq!(find("expired"), Some(4));
        assert_eq!(find("lapse_credential_expired"), Some(4));
        assert_eq!(find("lapse_expired"), None);
        assert_eq!(find("info"), Some(FAMILIES - 1));
    }

    #[test]
    fn the_default_set_is_what_no_expression_can_derive() {
        let on: Vec<&str> = CREDENTIAL_FAMILIES
            .iter()
            .filter(|f| f.default)
            .map(|f| f.name)
            .collect();
        assert_eq!(
            on,
            [
                "lapse_credential_expires_in_seconds",
                "lapse_credential_validity_seconds",
                "lapse_credential_no_expiry",
                "lapse_credential_warn_after_timestamp_seconds",
                "lapse_credential_info",
            ]
        );
    }
}
