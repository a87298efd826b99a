//! What opening a PKCS#12 store will cost, read from its DER before any
//! password is tried: the MAC's iteration count, paid by every try, and
//! the key-derivation counts of its encrypted parts, paid by the try that
//! opens it. The caps below bound both, so a store cannot buy hours of
//! work with a large count, nor with many configured passwords.
//!
//! Pure and bounded: a walk over at most [`MAX_NODES`] DER nodes, never a
//! decryption. Shrouded key bags are not counted: the reader of
//! `pkcs12.rs` never decrypts a key, and every part it does decrypt
//! states its counts outside its ciphertext, so what is counted here is
//! what opening a store costs.

/// The largest iteration count (PBKDF2, PKCS#12 KDF, PBES1, the MAC) lapse
/// honours. OpenSSL writes 2,048 by default and Java's keytool 10,000;
/// ten times keytool leaves room for hardened stores while one try stays
/// in the tens of milliseconds. The reader refuses a larger count itself
/// too.
pub const MAX_ITERATIONS: u64 = 100_000;

/// Iterations spent per file (or Kubernetes object) over every password
/// tried on every store in it: some 50 ms of work. A store at the cap
/// opens with up to eight tries.
pub const MAX_WORK: u64 = 1_000_000;

const MAX_NODES: usize = 10_000;
const MAX_DEPTH: u8 = 16;

use super::der::tlv;

/// `1.3.6.1.4.1.11591.4.11`, scrypt: its cost parameters multiply.
const SCRYPT_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x04, 0x0b];

/// `1.2.840.113549.1.12.10.1.2`, pkcs8ShroudedKeyBag: lapse never decrypts
/// keys, so their counts cost nothing.
const SHROUDED_KEY_BAG_OID: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x02,
];

/// `1.2.840.113549.1.7.1`, PKCS#7 data: its content is DER to read on.
const DATA_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];

/// Iterations a store asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Cost {
    /// The largest single count anywhere in the store.
    pub largest: u64,
    /// Spent by a wrong password: the MAC when there is one (it is checked
    /// first), otherwise everything.
    pub wrong: u64,
    /// Spent by the password that opens it: everything visible.
    pub open: u64,
}

/// Reads the counts of a PFX: `SEQUENCE { version, authSafe, macData? }`.
pub(crate) fn of(der: &[u8]) -> Cost {
    let mut walk = Walk::default();
    let parts = match tlv(der) {
        Some((0x30, content, _)) => children(content),
        _ => Vec::new(),
    };
    let mac = match parts.get(2) {
        Some(&(0x30, content)) => {
            walk.sequence(content, None, 0);
            std::mem::take(&mut walk.total)
        }
        _ => 0,
    };
    if let Some(&(0x30, content)) = parts.get(1) {
        walk.sequence(content, None, 0);
    }
    let open = mac.saturating_add(walk.total);
    Cost {
        largest: walk.largest.max(mac),
        wrong: if parts.len() > 2 { mac } else { open },
        open,
    }
}

#[derive(Default)]
struct Walk {
    nodes: usize,
    total: u64,
    largest: u64,
}

impl Walk {
    fn count(&mut self, n: u64) {
        self.total = self.total.saturating_add(n);
        self.largest = self.largest.max(n);
    }

    /// A SEQUENCE's content. An OCTET STRING (a salt) followed by an
    /// INTEGER is an iteration count: PBKDF2 and PBES1 parameters and the
    /// MAC data all have that shape. `alg` is the OID beside these
    /// parameters in their AlgorithmIdentifier.
    fn sequence(&mut self, content: &[u8], alg: Option<&[u8]>, depth: u8) {
        let items = children(content);
        if matches!(items.first(), Some(&(0x06, SHROUDED_KEY_BAG_OID))) {
            return;
        }
        if alg == Some(SCRYPT_OID) {
            let ints: Vec<u64> = items.iter().skip(1).take(3).map(|i| integer(i.1)).collect();
            self.count(ints.iter().fold(1u64, |a, &n| a.saturating_mul(n)));
            return;
        }
        for pair in items.windows(2) {
            if pair[0].0 == 0x04 && pair[1].0 == 0x02 {
                self.count(integer(pair[1].1));
            }
        }
        let mut oid = None;
        for &(tag, inner) in &items {
            self.node(tag, inner, oid, depth + 1);
            oid = (tag == 0x06).then_some(inner);
        }
    }

    fn node(&mut self, tag: u8, content: &[u8], alg: Option<&[u8]>, depth: u8) {
        self.nodes += 1;
        if depth > MAX_DEPTH || self.nodes > MAX_NODES {
            return;
        }
        match tag {
            0x30 => self.sequence(content, alg, depth),
            // SET, and context-specific constructed ([0] EXPLICIT content,
            // which keeps the OID beside it).
            0x31 | 0xa0..=0xbf => {
                for (t, inner) in children(content) {
                    self.node(t, inner, alg, depth + 1);
                }
            }
            // The authenticated safe and each safe's bags are DER in an
            // OCTET STRING of PKCS#7 data; certificates (and ciphertext)
            // are not read into.
            0x04 if alg == Some(DATA_OID) => {
                if let Some((0x30, inner, rest)) = tlv(content)
                    && rest.is_empty()
                {
                    self.sequence(inner, None, depth + 1);
                }
            }
            _ => {}
        }
    }
}

/// A non-negative INTEGER's value; past 64 bits, the largest.
fn integer(content: &[u8]) -> u64 {
    match content.first() {
        None => 0,
        Some(b) if b & 0x80 != 0 => 0,
        _ => {
            let digits = &content[content.iter().take_while(|&&b| b == 0).count()..];
            if digits.len() > 8 {
                return u64::MAX;
            }
            digits.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b))
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A store written with 16 iterations everywhere (MAC, the certificate
    /// part, the key bag, which is not counted).
    #[test]
    fn counts_of_a_store_written_by_the_library() {
        let store = crate::parse::test_stores::pkcs12("pw", 16);
        assert_eq!(
            of(&store),
            Cost {
                largest: 16,
                wrong: 16,
                open: 32
            }
        );
    }

    #[test]
    fn garbage_costs_nothing() {
        assert_eq!(of(b""), Cost::default());
        assert_eq!(of(&[0x30, 0x84, 0xff, 0xff]), Cost::default());
        assert_eq!(integer(&[0x00, 0x01, 0x86, 0xa0]), 100_000);
        assert_eq!(integer(&[0xff]), 0);
        assert_eq!(integer(&[1; 9]), u64::MAX);
    }
}
