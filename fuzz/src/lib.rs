//! Invariants every fuzz target checks on what a parser returned, beyond
//! "it did not panic".

use lapse::credential::ExpirySource;
use lapse::parse::Parsed;

/// A "now" near the present: downstream code subtracts it from every
/// `not_after`, so that must not overflow.
const NOW: i64 = 1_800_000_000;

/// The documents in the fuzz bytes, as lapse reads a file: one JSON
/// value, or else a YAML stream; none when the bytes are neither.
pub fn documents(data: &[u8]) -> Vec<serde_json::Value> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Vec::new();
    };
    match serde_json::from_str(text) {
        Ok(doc) => vec![doc],
        Err(_) => lapse::parse::fuzzing::documents(text).unwrap_or_default(),
    }
}

/// Every credential and error names the file it came from, every
/// reference names the file that made it, and expiries are coherent.
/// `planted` are secrets the target put into the input itself (never
/// taken from fuzz bytes): none may appear anywhere in the result.
pub fn check(name: &str, parsed: &Parsed, planted: &[&str]) {
    for c in &parsed.credentials {
        assert_eq!(c.path, name, "credential path");
        assert_eq!(
            c.not_after.is_none(),
            c.expiry_source == ExpirySource::None,
            "not_after {:?} with expiry source {:?}",
            c.not_after,
            c.expiry_source
        );
        let _ = c.expires_in(NOW);
        if let (Some(warn), Some(_)) = (c.warn_after, c.not_after) {
            let _ = warn - NOW;
        }
    }
    for e in &parsed.errors {
        assert_eq!(e.path, name, "error path");
        assert!(!e.message.trim().is_empty(), "empty error message");
    }
    for r in &parsed.refs {
        assert_eq!(r.from, name, "reference origin");
    }
    if !planted.is_empty() {
        let shown = format!("{parsed:?}");
        for secret in planted {
            assert!(!shown.contains(secret), "a planted secret leaked: {shown}");
        }
    }
}

/// Planted secrets that the fuzz bytes do not already contain (if the
/// fuzzer wrote one itself, the parser may legitimately echo it, e.g. as a
/// user name).
pub fn absent_from<'a>(input: &[u8], planted: &[&'a str]) -> Vec<&'a str> {
    planted
        .iter()
        .copied()
        .filter(|p| !input.windows(p.len()).any(|w| w == p.as_bytes()))
        .collect()
}

/// Unpadded base64url, as JWT segments are written.
pub fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| n << 8 | b as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn b64url() {
        assert_eq!(super::b64url(b""), "");
        assert_eq!(super::b64url(b"f"), "Zg");
        assert_eq!(super::b64url(b"fo"), "Zm8");
        assert_eq!(super::b64url(b"foo"), "Zm9v");
        assert_eq!(super::b64url(b"\xfb\xff"), "-_8");
    }
}
