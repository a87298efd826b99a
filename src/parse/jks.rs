//! Java keystores, JKS (`FEEDFEED`) and JCEKS (`CECECECE`): every trusted
//! certificate and every certificate of every key entry's chain.
//!
//! The certificates are stored in the clear, so listing them needs no
//! password. Keys are never decrypted: a private key's blob and a secret
//! key's sealed object are walked past, never copied. With passwords
//! configured, the store's integrity hash is checked and an error entry
//! says when none of them matches; the certificates count either way.
//! Error messages name entries by position, never by alias or content.

use super::cert::certificate_from_der;
use super::java_serial;
use super::record::{Context, Parsed};
use crate::credential::{ErrorReason, Source};
use sha1::{Digest, Sha1};

const JKS_MAGIC: [u8; 4] = [0xfe, 0xed, 0xfe, 0xed];
const JCEKS_MAGIC: [u8; 4] = [0xce, 0xce, 0xce, 0xce];

/// Entries read per store; a JDK's `cacerts` holds about 150.
pub(crate) const MAX_ENTRIES: u32 = 10_000;
/// An alias's length in bytes (keytool's are a few dozen).
pub(crate) const MAX_ALIAS_BYTES: usize = 1_024;
/// One certificate's length in bytes.
pub(crate) const MAX_CERTIFICATE_BYTES: usize = 1 << 20;
/// Certificates in one key entry's chain.
pub(crate) const MAX_CHAIN: u32 = 100;

/// The integrity hash is SHA-1 over the password, this and the store.
const WHITENING: &[u8] = b"Mighty Aphrodite";
const HASH_LEN: usize = 20;

/// True when `bytes` start like a JKS or JCEKS store.
pub(crate) fn is_keystore(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && (bytes[..4] == JKS_MAGIC || bytes[..4] == JCEKS_MAGIC)
}

/// Adds the certificates of the JKS or JCEKS store `bytes`. `passwords`
/// (found beside the store) and the configured ones are used only to check
/// the integrity hash.
pub(crate) fn add_certificates(
    ctx: &Context,
    source: Source,
    field: &str,
    bytes: &[u8],
    passwords: &[&str],
    out: &mut Parsed,
) {
    let kind = if bytes.starts_with(&JCEKS_MAGIC) {
        "JCEKS"
    } else {
        "JKS"
    };
    let mut store = Store {
        r: Reader {
            data: bytes,
            pos: 4,
        },
        kind,
        certificates: 0,
    };
    let end = match store.entries(ctx, source, field, out) {
        Ok(end) => end,
        Err(problem) => {
            let reason = problem.reason();
            out.error(ctx, field, reason, format!("{kind} keystore: {problem}"));
            return;
        }
    };
    // Every entry was there; a store cut short in its hash is still cut short.
    let Some(stored) = bytes.get(end..end + HASH_LEN) else {
        out.error(
            ctx,
            field,
            ErrorReason::Parse,
            format!("{kind} keystore: truncated (its integrity hash runs past the end)"),
        );
        return;
    };
    let configured = ctx.passwords.iter().map(String::as_str);
    let all: Vec<&str> = passwords.iter().copied().chain(configured).collect();
    if all.is_empty() {
        return;
    }
    if !all
        .iter()
        .any(|p| integrity_hash(p, &bytes[..end]) == stored)
    {
        out.error(
            ctx,
            field,
            ErrorReason::Password,
            format!(
                "{kind} keystore: integrity check failed with every configured password ({} tried)",
                all.len()
            ),
        );
    }
}

/// SHA-1 over the password as UTF-16BE (Java's `char`s), the whitening
/// phrase and the store's bytes before the hash.
fn integrity_hash(password: &str, data: &[u8]) -> [u8; HASH_LEN] {
    let mut h = Sha1::new();
    for unit in password.encode_utf16() {
        h.update(unit.to_be_bytes());
    }
    h.update(WHITENING);
    h.update(data);
    h.finalize().into()
}

/// Why the entries could not all be read. Messages name entries by
/// position only.
#[derive(Debug)]
enum Problem {
    Truncated(String),
    Version(u32),
    Tag { entry: u32, tag: u32 },
    Cap(String),
    SecretKey { entry: u32, why: String },
}

impl Problem {
    fn reason(&self) -> ErrorReason {
        match self {
            Problem::Cap(_) => ErrorReason::TooLarge,
            _ => ErrorReason::Parse,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Truncated(at) => write!(f, "truncated ({at} runs past the end)"),
            Problem::Version(v) => write!(f, "version {v} is not one lapse reads (1 or 2)"),
            Problem::Tag { entry, tag } => write!(
                f,
                "entry #{entry} has unknown tag {tag}; the entries after it were not read"
            ),
            Problem::Cap(what) => write!(f, "{what}; the rest was not read"),
            Problem::SecretKey { entry, why } => write!(
                f,
                "entry #{entry} (a secret key) cannot be read past ({why}); the entries after it were not read"
            ),
        }
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// `n` bytes; `at` names what was being read when they ran out.
    fn take(&mut self, n: usize, at: impl Fn() -> String) -> Result<&'a [u8], Problem> {
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|end| self.data.get(self.pos..end))
            .ok_or_else(|| Problem::Truncated(at()))?;
        self.pos += n;
        Ok(bytes)
    }

    fn u16(&mut self, at: impl Fn() -> String) -> Result<u16, Problem> {
        let b = self.take(2, at)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, at: impl Fn() -> String) -> Result<u32, Problem> {
        let b = self.take(4, at)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

struct Store<'a> {
    r: Reader<'a>,
    kind: &'static str,
    /// Certificates seen so far: each one's index in the store.
    certificates: u32,
}

impl Store<'_> {
    /// Reads every entry, adding certificates as they come (so those
    /// before a broken entry still count). Returns where the hash starts.
    fn entries(
        &mut self,
        ctx: &Context,
        source: Source,
        field: &str,
        out: &mut Parsed,
    ) -> Result<usize, Problem> {
        let header = || "its header".to_string();
        let version = self.r.u32(header)?;
        if version != 1 && version != 2 {
            return Err(Problem::Version(version));
        }
        let count = self.r.u32(header)?;
        if count > MAX_ENTRIES {
            return Err(Problem::Cap(format!(
                "holds {count} entries, more than lapse's cap of {MAX_ENTRIES}"
            )));
        }
        for entry in 0..count {
            let at = || format!("entry #{entry}");
            let tag = self.r.u32(at)?;
            let alias = self.r.u16(at)? as usize;
            if alias > MAX_ALIAS_BYTES {
                return Err(Problem::Cap(format!(
                    "entry #{entry} has an alias of {alias} bytes, more than lapse's cap of {MAX_ALIAS_BYTES}"
                )));
            }
            self.r.take(alias + 8, at)?; // the alias and a timestamp
            match tag {
                1 => {
                    // The encrypted key, skipped.
                    let key = self.r.u32(at)? as usize;
                    self.r.take(key, at)?;
                    let chain = self.r.u32(at)?;
                    if chain > MAX_CHAIN {
                        return Err(Problem::Cap(format!(
                            "entry #{entry} has a chain of {chain} certificates, more than lapse's cap of {MAX_CHAIN}"
                        )));
                    }
                    for _ in 0..chain {
                        self.certificate(entry, version, ctx, source, field, out)?;
                    }
                }
                2 => self.certificate(entry, version, ctx, source, field, out)?,
                3 if self.kind == "JCEKS" => {
                    let rest = &self.r.data[self.r.pos..];
                    let len = java_serial::object_len(rest).map_err(|e| Problem::SecretKey {
                        entry,
                        why: e.to_string(),
                    })?;
                    self.r.pos += len;
                }
                _ => return Err(Problem::Tag { entry, tag }),
            }
        }
        Ok(self.r.pos)
    }

    /// One certificate: in version 2 its type, then its length and DER.
    fn certificate(
        &mut self,
        entry: u32,
        version: u32,
        ctx: &Context,
        source: Source,
        field: &str,
        out: &mut Parsed,
    ) -> Result<(), Problem> {
        let index = self.certificates;
        self.certificates += 1;
        let at = || format!("entry #{entry}, certificate #{index}");
        let x509 = if version == 2 {
            let len = self.r.u16(at)? as usize;
            self.r.take(len, at)? == b"X.509"
        } else {
            true
        };
        let len = self.r.u32(at)? as usize;
        if len > MAX_CERTIFICATE_BYTES {
            return Err(Problem::Cap(format!(
                "entry #{entry}, certificate #{index} is {len} bytes, more than lapse's cap of {MAX_CERTIFICATE_BYTES}"
            )));
        }
        let der = self.r.take(len, at)?;
        let kind = self.kind;
        if !x509 {
            out.error(
                ctx,
                field,
                ErrorReason::Parse,
                format!("{kind} keystore entry #{entry}, certificate #{index}: not an X.509 certificate; skipped"),
            );
            return Ok(());
        }
        match certificate_from_der(der) {
            Ok(c) => out.add(ctx, source, field, Some(index), c),
            Err(e) => out.error(
                ctx,
                field,
                ErrorReason::Parse,
                format!("{kind} keystore entry #{entry}, certificate #{index}: {e}"),
            ),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::credential::ErrorReason;
    use crate::parse::{Parsed, parse_file, parse_file_with};

    const PASSWORD: &str = "store-pass-41";

    /// A keytool-written store; tests/fixtures/jks/make.sh rebuilds them.
    /// Read at run time (`cargo test` runs in the package root): the
    /// image's build copies no test fixtures.
    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("tests/fixtures/jks/{name}");
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
    }

    fn jks() -> Vec<u8> {
        fixture("truststore.jks")
    }

    fn jceks() -> Vec<u8> {
        fixture("truststore.jceks")
    }

    fn errors(p: &Parsed) -> Vec<(ErrorReason, &str)> {
        p.errors
            .iter()
            .map(|e| (e.reason, e.message.as_str()))
            .collect()
    }

    fn not_afters(p: &Parsed) -> Vec<i64> {
        p.credentials.iter().map(|c| c.not_after.unwrap()).collect()
    }

    /// Store order: `two` (2026-06-20T12:00:00Z), then `one` (2027-03-04T05:06:07Z).
    const TWO_THEN_ONE: [i64; 2] = [1_781_956_800, 1_804_136_767];

    fn patched(store: &[u8], at: usize, value: &[u8]) -> Vec<u8> {
        let mut b = store.to_vec();
        b[at..at + value.len()].copy_from_slice(value);
        b
    }

    #[test]
    fn certificates_are_listed_with_or_without_the_password() {
        for store in [jks(), jceks()] {
            for passwords in [vec![], vec![PASSWORD.to_string()]] {
                let p = parse_file_with("s", &store, &passwords);
                assert_eq!(errors(&p), [], "{passwords:?}");
                assert_eq!(not_afters(&p), TWO_THEN_ONE);
                assert_eq!(p.credentials[1].index, Some(1));
            }
        }
    }

    #[test]
    fn no_matching_password_is_a_password_error_that_keeps_the_certificates() {
        let passwords = ["changeit".to_string(), format!("{PASSWORD}x")];
        let p = parse_file_with("s", &jceks(), &passwords);
        assert_eq!(not_afters(&p), TWO_THEN_ONE);
        assert_eq!(
            errors(&p),
            [(
                ErrorReason::Password,
                "JCEKS keystore: integrity check failed with every configured password (2 tried)"
            )]
        );
    }

    #[test]
    fn caps_are_too_large_entries_naming_the_cap() {
        let cases: [(Vec<u8>, &str); 3] = [
            (
                patched(&jks(), 8, &10_001u32.to_be_bytes()),
                "JKS keystore: holds 10001 entries, more than lapse's cap of 10000; the rest was not read",
            ),
            (
                patched(&jks(), 16, &2_000u16.to_be_bytes()),
                "JKS keystore: entry #0 has an alias of 2000 bytes, more than lapse's cap of 1024; the rest was not read",
            ),
            (
                patched(&jks(), 36, &(2u32 << 20).to_be_bytes()),
                "JKS keystore: entry #0, certificate #0 is 2097152 bytes, more than lapse's cap of 1048576; the rest was not read",
            ),
        ];
        for (store, message) in cases {
            let p = parse_file("s.jks", &store);
            assert_eq!(errors(&p), [(ErrorReason::TooLarge, message)]);
        }
    }

    /// `keytool -genkeypair -startdate "2026/01/01 00:00:00" -validity 90`:
    /// the key entry's one certificate, not after 2026-04-01T00:00:00Z.
    #[test]
    fn a_key_entry_gives_its_chain_and_its_chain_length_is_capped() {
        let store = fixture("keystore.jks");
        let p = parse_file_with("k.jks", &store, &[PASSWORD.to_string()]);
        assert_eq!(errors(&p), []);
        assert_eq!(not_afters(&p), [1_775_001_600]);
        // The chain's length follows the 127-byte encrypted key at 36.
        assert_eq!(store[32..36], 127u32.to_be_bytes());
        assert_eq!(store[163..167], 1u32.to_be_bytes());
        let p = parse_file("k.jks", &patched(&store, 163, &101u32.to_be_bytes()));
        assert_eq!(
            errors(&p),
            [(
                ErrorReason::TooLarge,
                "JKS keystore: entry #0 has a chain of 101 certificates, more than lapse's cap of 100; the rest was not read"
            )]
        );
    }

    /// Every byte of every store set to 0x00 and to 0xff: never a panic,
    /// never silence (certificates or an error entry), never the password.
    #[test]
    fn one_changed_byte_is_never_a_panic_or_silence() {
        for name in ["truststore.jks", "truststore.jceks", "keystore.jks"] {
            let store = fixture(name);
            for at in 0..store.len() {
                for byte in [0x00, 0xff] {
                    let p = parse_file_with(
                        name,
                        &patched(&store, at, &[byte]),
                        &[PASSWORD.to_string()],
                    );
                    assert!(
                        !p.credentials.is_empty() || !p.errors.is_empty(),
                        "{name} {at}"
                    );
                    assert!(!format!("{p:?}").contains(PASSWORD), "{name} {at}");
                }
            }
        }
    }

    #[test]
    fn a_secret_key_that_cannot_be_walked_past_is_named() {
        // Entry #0 is the secret key; its serialized object starts at 32.
        let store = jceks();
        assert_eq!(&store[32..37], [0xac, 0xed, 0x00, 0x05, 0x73]);
        let p = parse_file("s.jceks", &patched(&store, 36, &[0x00]));
        assert_eq!(p.credentials.len(), 0);
        assert_eq!(
            errors(&p),
            [(
                ErrorReason::Parse,
                "JCEKS keystore: entry #0 (a secret key) cannot be read past (the serialized object holds an unknown type code); the entries after it were not read"
            )]
        );
    }

    /// A store cut anywhere is one error entry naming its format, with the
    /// certificates before the cut.
    #[test]
    fn every_truncation_is_one_error_naming_the_format() {
        for (store, kind) in [
            (jks(), "JKS keystore: truncated ("),
            (jceks(), "JCEKS keystore: "),
        ] {
            for end in 4..store.len() {
                let p = parse_file_with("s", &store[..end], &[PASSWORD.to_string()]);
                assert_eq!(p.errors.len(), 1, "{end}");
                assert!(
                    p.errors[0].message.starts_with(kind),
                    "{end}: {:?}",
                    p.errors[0]
                );
                assert!(!p.errors[0].message.contains(PASSWORD));
                assert!(p.credentials.len() <= 2);
            }
        }
    }
}
