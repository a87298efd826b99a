//! PKCS#12 stores: every certificate in them, opened with the empty
//! password and the configured ones, under the iteration caps of
//! [`pkcs12_cost`]. Keys are never looked at.

use super::cert::certificate_from_der;
use super::pkcs12_cost;
use super::record::{Context, Parsed};
use crate::credential::{Credential, ErrorReason, Source};

/// Certificates from a PKCS#12 store opened with `password`.
pub(crate) fn pkcs12_certificates(der: &[u8], password: &str) -> Result<Vec<Credential>, P12Error> {
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(der, password).map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) => P12Error::Password,
        p12_keystore::error::Error::UnpadError | p12_keystore::error::Error::Pkcs5Error(_) => {
            P12Error::Password
        }
        other => P12Error::Invalid(other.to_string()),
    })?;
    // Private key bags are decrypted by the library; they are dropped here
    // and never looked at.
    archive
        .certs
        .iter()
        .map(|bag| certificate_from_der(bag.cert.as_der()).map_err(P12Error::Invalid))
        .collect()
}

#[derive(Debug)]
pub(crate) enum P12Error {
    Password,
    Invalid(String),
}

/// Adds the certificates of the PKCS#12 store `bytes`, trying the empty
/// password, then `passwords`, then the configured ones; an error entry
/// says why none was added.
pub(crate) fn add_certificates(
    ctx: &Context,
    source: Source,
    field: &str,
    bytes: &[u8],
    passwords: &[&str],
    out: &mut Parsed,
) {
    let cost = pkcs12_cost::of(bytes);
    if cost.largest > pkcs12_cost::MAX_ITERATIONS {
        out.error(
            ctx,
            field,
            ErrorReason::TooLarge,
            format!(
                "PKCS#12 store asks for {} key-derivation iterations, more than lapse's cap of {}; not opened",
                cost.largest,
                pkcs12_cost::MAX_ITERATIONS
            ),
        );
        return;
    }
    let mut wrong_password = false;
    let configured = ctx.passwords.iter().map(String::as_str);
    let all: Vec<&str> = std::iter::once("")
        .chain(passwords.iter().copied())
        .chain(configured)
        .collect();
    for (tried, password) in all.iter().enumerate() {
        // The try that opens the store pays for all of it.
        if out.p12_work.saturating_add(cost.open) > pkcs12_cost::MAX_WORK {
            out.error(
                ctx,
                field,
                ErrorReason::TooLarge,
                format!(
                    "PKCS#12 store: {tried} of {} passwords tried, none opens it; trying more would pass the cap of {} key-derivation iterations per file",
                    all.len(),
                    pkcs12_cost::MAX_WORK
                ),
            );
            return;
        }
        match pkcs12_certificates(bytes, password) {
            Ok(certs) => {
                out.p12_work = out.p12_work.saturating_add(cost.open);
                for (i, c) in certs.into_iter().enumerate() {
                    out.add(ctx, source, field, Some(i as u32), c);
                }
                return;
            }
            Err(P12Error::Password) => {
                out.p12_work = out.p12_work.saturating_add(cost.wrong);
                wrong_password = true;
            }
            Err(P12Error::Invalid(e)) => {
                out.p12_work = out.p12_work.saturating_add(cost.open);
                out.error(ctx, field, ErrorReason::Parse, format!("PKCS#12: {e}"));
                return;
            }
        }
    }
    if wrong_password {
        let msg = if passwords.is_empty() && ctx.passwords.is_empty() {
            "PKCS#12 store is password-protected and no password is configured"
        } else {
            "PKCS#12 store: none of the configured passwords opens it"
        };
        out.error(ctx, field, ErrorReason::Password, msg);
    }
}
