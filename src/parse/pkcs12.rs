//! PKCS#12 stores: every certificate in them, read by a certificates-only
//! reader that never decrypts a key. The store's outline (RFC 7292: the
//! MAC data, the authenticated safe's parts) is read first; then each
//! password is tried — `""`, NULL (no bytes, as `PKCS12_create(NULL, …)`
//! writes), those stored beside the keystore, the configured ones —
//! against the MAC (one key derivation, which tells `""` from NULL
//! cheaply), and only the password the MAC accepts decrypts the parts
//! that hold certificates. Everything it does is counted by
//! [`pkcs12_cost`] before it starts.
//!
//! An algorithm lapse cannot run is a parse error naming it, never a
//! wrong password. No error message quotes the store's bytes or a
//! password.

mod oid;
mod pbe;

use super::cert::certificate_from_der;
use super::der::tlv;
use super::pkcs12_cost;
use super::record::{Context, Parsed};
use crate::credential::{Credential, ErrorReason, Source};
use pbe::{Budget, Password, PbeError};

/// `safeContentsBag`s nest; deeper than this is not followed.
const MAX_BAG_DEPTH: u8 = 4;

/// Why a store gave no certificates for one password.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum P12Error {
    /// The MAC (or, without one, the decryption) refused the password.
    Password,
    /// An algorithm or mode lapse does not run, by name.
    Unsupported(String),
    /// The store does not parse.
    Invalid(String),
    /// Opening it would pass the file's key-derivation budget.
    OverBudget,
}

fn invalid(what: &str) -> P12Error {
    P12Error::Invalid(what.to_string())
}

/// The integrity MAC: `MacData` of RFC 7292.
struct MacData<'a> {
    digest_alg: &'a [u8],
    digest: &'a [u8],
    salt: &'a [u8],
    rounds: u64,
}

/// One `ContentInfo` of the authenticated safe.
enum Part<'a> {
    /// `data`: the DER of a `SafeContents`.
    Plain(&'a [u8]),
    /// `encryptedData`: the algorithm identifier's content, the ciphertext.
    Encrypted { alg: &'a [u8], data: &'a [u8] },
}

/// A PFX read as far as it can be without a password.
struct Outline<'a> {
    /// The authenticated safe's DER, which the MAC covers.
    auth_safe: &'a [u8],
    mac: Option<MacData<'a>>,
    parts: Vec<Part<'a>>,
}

/// The TLVs of a constructed value's content, up to the first that does
/// not parse.
fn children(mut content: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let Some((tag, inner, rest)) = tlv(content) {
        out.push((tag, inner));
        content = rest;
    }
    out
}

/// A `ContentInfo`'s type and its `[0] EXPLICIT` content.
fn content_info(seq: &[u8]) -> Result<(&[u8], &[u8]), P12Error> {
    match children(seq).as_slice() {
        [(0x06, kind), (0xa0, content), ..] => Ok((kind, content)),
        _ => Err(invalid("a ContentInfo does not parse")),
    }
}

/// The bytes of an explicit `[0] { OCTET STRING }`.
fn octets(content: &[u8]) -> Result<&[u8], P12Error> {
    match tlv(content) {
        Some((0x04, bytes, _)) => Ok(bytes),
        Some((0x24, _, _)) => Err(P12Error::Unsupported(
            "BER encoding (constructed OCTET STRING)".into(),
        )),
        _ => Err(invalid("a ContentInfo holds no OCTET STRING")),
    }
}

impl<'a> Outline<'a> {
    fn read(der: &'a [u8]) -> Result<Outline<'a>, P12Error> {
        let pfx = match tlv(der) {
            Some((0x30, pfx, _)) => children(pfx),
            _ => return Err(invalid("not a DER PFX")),
        };
        let (auth, mac) = match pfx.as_slice() {
            [(0x02, _), (0x30, auth), rest @ ..] => (*auth, rest.first()),
            _ => return Err(invalid("not a DER PFX")),
        };
        let (kind, content) = content_info(auth)?;
        if kind == oid::SIGNED_DATA {
            return Err(P12Error::Unsupported(
                "public-key integrity mode (signedData)".into(),
            ));
        }
        if kind != oid::DATA {
            return Err(invalid("the authenticated safe is not PKCS#7 data"));
        }
        let auth_safe = octets(content)?;
        // Nothing may follow the SEQUENCE: the cost walk would not see
        // parts past it, so neither does the reader.
        let items = match tlv(auth_safe) {
            Some((0x30, items, [])) => children(items),
            _ => return Err(invalid("the authenticated safe does not parse")),
        };
        let mut parts = Vec::with_capacity(items.len());
        for (tag, item) in items {
            if tag != 0x30 {
                return Err(invalid("the authenticated safe does not parse"));
            }
            parts.push(Self::part(item)?);
        }
        let mac = match mac {
            Some(&(0x30, mac)) => Some(Self::mac(mac)?),
            Some(_) => return Err(invalid("the MAC data does not parse")),
            None => None,
        };
        Ok(Outline {
            auth_safe,
            mac,
            parts,
        })
    }

    fn part(item: &'a [u8]) -> Result<Part<'a>, P12Error> {
        let (kind, content) = content_info(item)?;
        match kind {
            oid::DATA => Ok(Part::Plain(octets(content)?)),
            oid::ENCRYPTED_DATA => {
                // EncryptedData { version, EncryptedContentInfo { type,
                // algorithm, [0] IMPLICIT ciphertext } }
                let bad = || invalid("an encrypted part does not parse");
                let (_, data, _) = tlv(content).filter(|t| t.0 == 0x30).ok_or_else(bad)?;
                let info = match children(data).as_slice() {
                    [(0x02, _), (0x30, info), ..] => children(info),
                    _ => return Err(bad()),
                };
                match info.as_slice() {
                    [(0x06, _), (0x30, alg), (0x80, data), ..] => Ok(Part::Encrypted { alg, data }),
                    [(0x06, _), (0x30, _), (0xa0, _), ..] => Err(P12Error::Unsupported(
                        "BER encoding (constructed ciphertext)".into(),
                    )),
                    _ => Err(bad()),
                }
            }
            oid::ENVELOPED_DATA => Err(P12Error::Unsupported(
                "public-key privacy mode (envelopedData)".into(),
            )),
            other => Err(P12Error::Unsupported(format!(
                "content type {}",
                oid::name(other)
            ))),
        }
    }

    fn mac(mac: &'a [u8]) -> Result<MacData<'a>, P12Error> {
        let bad = || invalid("the MAC data does not parse");
        let items = children(mac);
        let (digest_info, salt) = match items.as_slice() {
            [(0x30, info), (0x04, salt), ..] => (children(info), *salt),
            _ => return Err(bad()),
        };
        let rounds = match items.get(2) {
            Some(&(0x02, n)) => pbe::integer(n),
            Some(_) => return Err(bad()),
            None => 1,
        };
        match digest_info.as_slice() {
            [(0x30, alg), (0x04, digest)] => match tlv(alg) {
                Some((0x06, digest_alg, _)) => Ok(MacData {
                    digest_alg,
                    digest,
                    salt,
                    rounds,
                }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }

    /// Whether NULL and `""` differ for this store: only the PKCS#12 KDF
    /// (the MAC, PBES1 parts) sees a difference.
    fn tells_null_from_empty(&self) -> bool {
        self.mac.is_some()
            || self
                .parts
                .iter()
                .any(|p| matches!(p, Part::Encrypted { alg, .. } if pbe::uses_pkcs12_kdf(alg)))
    }

    fn all_plain(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Plain(_)))
    }

    /// The certificates' DER with `password`.
    fn open(&self, password: Password, budget: &mut Budget) -> Result<Vec<Vec<u8>>, P12Error> {
        let verified = match &self.mac {
            Some(mac) => {
                let hash = pbe::Hash::of_digest(mac.digest_alg).ok_or_else(|| {
                    P12Error::Unsupported(format!("MAC {}", oid::name(mac.digest_alg)))
                })?;
                if mac.rounds > pkcs12_cost::MAX_ITERATIONS {
                    return Err(invalid("the MAC's iteration count is past the cap"));
                }
                // A digest of another length matches no password: damage.
                if mac.digest.len() != hash.output_len() {
                    return Err(invalid("the MAC's digest has the wrong length"));
                }
                let matches = pbe::mac_matches(
                    hash,
                    password,
                    mac.salt,
                    mac.rounds,
                    self.auth_safe,
                    mac.digest,
                    budget,
                )
                .map_err(|_| P12Error::OverBudget)?;
                if !matches {
                    return Err(P12Error::Password);
                }
                true
            }
            None => false,
        };
        let mut certs = Vec::new();
        for part in &self.parts {
            match part {
                Part::Plain(contents) => safe_contents(contents, 0, &mut certs)?,
                Part::Encrypted { alg, data } => {
                    // Past a verified MAC the password is right, so a part
                    // that does not decrypt is damage, not a wrong password.
                    let wrong = |what: &str| {
                        if verified {
                            invalid(what)
                        } else {
                            P12Error::Password
                        }
                    };
                    let plain = match pbe::decrypt(alg, password, data, budget) {
                        Ok(plain) => plain,
                        Err(PbeError::OverBudget) => return Err(P12Error::OverBudget),
                        Err(PbeError::Decrypt) => {
                            return Err(wrong(
                                "an encrypted part does not decrypt with the password its MAC accepts",
                            ));
                        }
                        Err(PbeError::Unsupported(name)) => {
                            return Err(P12Error::Unsupported(format!("encryption {name}")));
                        }
                        Err(PbeError::Invalid(what)) => return Err(invalid(what)),
                    };
                    safe_contents(&plain, 0, &mut certs)
                        .map_err(|_| wrong("a decrypted part does not parse"))?;
                }
            }
        }
        Ok(certs)
    }
}

/// The X.509 certificates in a `SafeContents`: `SEQUENCE OF SafeBag {
/// bagId, [0] EXPLICIT bagValue, attributes }`. Key bags are skipped
/// unread.
fn safe_contents(der: &[u8], depth: u8, certs: &mut Vec<Vec<u8>>) -> Result<(), P12Error> {
    let bags = match tlv(der) {
        Some((0x30, bags, [])) => children(bags),
        _ => return Err(invalid("a SafeContents does not parse")),
    };
    for (tag, bag) in bags {
        let (id, value) = match (tag, children(bag).as_slice()) {
            (0x30, [(0x06, id), (0xa0, value), ..]) => (*id, *value),
            _ => return Err(invalid("a SafeBag does not parse")),
        };
        match id {
            oid::CERT_BAG => {
                // CertBag { certId, [0] EXPLICIT OCTET STRING }
                let cert = match tlv(value).map(|t| (t.0, children(t.1))) {
                    Some((0x30, inner)) => match inner.as_slice() {
                        [(0x06, kind), (0xa0, value), ..] if *kind == oid::X509_CERTIFICATE => {
                            Some(octets(value)?)
                        }
                        // SDSI certificates are no X.509.
                        [(0x06, _), ..] => None,
                        _ => return Err(invalid("a certificate bag does not parse")),
                    },
                    _ => return Err(invalid("a certificate bag does not parse")),
                };
                certs.extend(cert.map(<[u8]>::to_vec));
            }
            oid::SAFE_CONTENTS_BAG if depth < MAX_BAG_DEPTH => {
                safe_contents(value, depth + 1, certs)?;
            }
            oid::SAFE_CONTENTS_BAG => return Err(invalid("safe contents nest too deep")),
            _ => {}
        }
    }
    Ok(())
}

fn credentials(ders: Vec<Vec<u8>>) -> Result<Vec<Credential>, P12Error> {
    ders.iter()
        .map(|der| certificate_from_der(der).map_err(P12Error::Invalid))
        .collect()
}

/// Adds the certificates of the PKCS#12 store `bytes`, trying the empty
/// password, NULL, then `passwords`, then the configured ones; an error
/// entry says why none was added.
pub(crate) fn add_certificates(
    ctx: &Context,
    source: Source,
    field: &str,
    bytes: &[u8],
    passwords: &[&str],
    out: &mut Parsed,
) {
    let parse_error = |out: &mut Parsed, e: P12Error| {
        let msg = match e {
            P12Error::Unsupported(what) => format!("PKCS#12: unsupported {what}"),
            P12Error::Invalid(what) => format!("PKCS#12: {what}"),
            P12Error::Password | P12Error::OverBudget => {
                unreachable!("passwords and the budget are handled by the caller")
            }
        };
        out.error(ctx, field, ErrorReason::Parse, msg);
    };
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
    let outline = match Outline::read(bytes) {
        Ok(outline) => outline,
        Err(e) => return parse_error(out, e),
    };
    let configured = ctx.passwords.iter().map(String::as_str);
    let mut all: Vec<Password> = vec![Password::Text("")];
    if outline.tells_null_from_empty() {
        all.push(Password::Null);
    }
    // A password configured twice (or as "") is tried once.
    for password in passwords.iter().copied().chain(configured) {
        if !all.contains(&Password::Text(password)) {
            all.push(Password::Text(password));
        }
    }
    let over_cap = |out: &mut Parsed, tried: usize| {
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
    };
    for (tried, password) in all.iter().enumerate() {
        // The try that opens the store pays for all of it.
        if out.p12_work.saturating_add(cost.open) > pkcs12_cost::MAX_WORK {
            return over_cap(out, tried);
        }
        // The walk's figure is charged; the budget holds the try to what
        // is left whatever the walk saw, and what it spent is charged when
        // that is more.
        let mut budget = Budget {
            left: pkcs12_cost::MAX_WORK.saturating_sub(out.p12_work),
        };
        let start = budget.left;
        let result = outline.open(*password, &mut budget);
        let spent = start - budget.left;
        let charge = |out: &mut Parsed, figure: u64| {
            out.p12_work = out.p12_work.saturating_add(figure.max(spent));
        };
        match result.and_then(credentials) {
            Ok(certs) => {
                charge(out, cost.open);
                for (i, c) in certs.into_iter().enumerate() {
                    out.add(ctx, source, field, Some(i as u32), c);
                }
                return;
            }
            Err(P12Error::Password) => charge(out, cost.wrong),
            Err(P12Error::OverBudget) => {
                out.p12_work = pkcs12_cost::MAX_WORK;
                return over_cap(out, tried);
            }
            Err(e) => {
                charge(out, cost.open);
                return parse_error(out, e);
            }
        }
    }
    let configured = !(passwords.is_empty() && ctx.passwords.is_empty());
    if outline.all_plain() {
        // Nothing is encrypted: the certificates read without a password;
        // only their integrity is unverified.
        let mut ders = Vec::new();
        for part in &outline.parts {
            if let Part::Plain(contents) = part
                && let Err(e) = safe_contents(contents, 0, &mut ders)
            {
                return parse_error(out, e);
            }
        }
        match credentials(ders) {
            Ok(certs) => {
                for (i, c) in certs.into_iter().enumerate() {
                    out.add(ctx, source, field, Some(i as u32), c);
                }
            }
            Err(e) => return parse_error(out, e),
        }
        if configured {
            out.error(
                ctx,
                field,
                ErrorReason::Password,
                "PKCS#12 store: none of the configured passwords verifies its MAC; its unencrypted certificates are reported unverified",
            );
        }
        return;
    }
    let msg = if configured {
        "PKCS#12 store: none of the configured passwords opens it"
    } else {
        "PKCS#12 store is password-protected and no password is configured"
    };
    out.error(ctx, field, ErrorReason::Password, msg);
}

#[cfg(test)]
mod tests;
