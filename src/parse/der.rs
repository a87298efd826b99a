//! DER tag-length headers, read without a parser: enough to tell shapes
//! apart and to walk a structure's outline before any crate decodes it.
//! Single-byte tags and definite lengths of up to four bytes, as DER has
//! them; anything else is `None`.

/// Reads a DER tag-length header: (tag, header length, content length).
pub(crate) fn header(b: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *b.first()?;
    let first = *b.get(1)? as usize;
    if first < 0x80 {
        return Some((tag, 2, first));
    }
    let n = first & 0x7f;
    if n == 0 || n > 4 || b.len() < 2 + n {
        return None;
    }
    let len = b[2..2 + n]
        .iter()
        .fold(0usize, |acc, &x| (acc << 8) | x as usize);
    Some((tag, 2 + n, len))
}

/// One DER tag-length-value: (tag, content, what follows).
pub(crate) fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (tag, header, len) = header(b)?;
    let end = header.checked_add(len)?;
    if end > b.len() {
        return None;
    }
    Some((tag, &b[header..end], &b[end..]))
}

/// The elements of a constructed value, each as (tag, content), or `None`
/// when they do not exactly fill it.
fn elements(mut b: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (tag, content, rest) = tlv(b)?;
        out.push((tag, content));
        b = rest;
        if out.len() > 16 {
            return None;
        }
    }
    Some(out)
}

const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;

/// An AlgorithmIdentifier: SEQUENCE { OID, parameters OPTIONAL }.
fn is_algorithm(content: &[u8]) -> bool {
    elements(content).is_some_and(|e| matches!(e.first(), Some((OID, _))) && e.len() <= 2)
}

/// What sort of key (or key parameters) a whole DER value is, judged by
/// its complete structure, or `None`. Every byte must belong to the one
/// outer SEQUENCE, so a truncated or corrupt certificate never counts as a
/// key: certificates are SEQUENCE { SEQUENCE, SEQUENCE, BIT STRING } and
/// match none of these shapes.
pub(crate) fn key_shape(b: &[u8]) -> Option<&'static str> {
    let (tag, content, rest) = tlv(b)?;
    if tag != SEQUENCE || !rest.is_empty() {
        return None;
    }
    let e = elements(content)?;
    let tags: Vec<u8> = e.iter().map(|(t, _)| *t).collect();
    let small_int = |i: usize, values: &[u8]| {
        e.get(i)
            .is_some_and(|(t, c)| *t == INTEGER && c.len() == 1 && values.contains(&c[0]))
    };
    let all_integers = tags.iter().all(|&t| t == INTEGER);
    match tags.as_slice() {
        // PrivateKeyInfo / OneAsymmetricKey (RFC 5958): version, algorithm,
        // key, then optional [0] attributes and [1] public key.
        [INTEGER, SEQUENCE, OCTET_STRING, ..] if small_int(0, &[0, 1]) && is_algorithm(e[1].1) => {
            Some("PKCS#8 private key")
        }
        // SEC1 ECPrivateKey: version 1, key, [0] curve, [1] public key.
        [INTEGER, OCTET_STRING, ..] if small_int(0, &[1]) => Some("EC private key"),
        // EncryptedPrivateKeyInfo: algorithm, encrypted data.
        [SEQUENCE, OCTET_STRING] if is_algorithm(e[0].1) => Some("encrypted PKCS#8 private key"),
        // SubjectPublicKeyInfo: algorithm, key bits.
        [SEQUENCE, BIT_STRING] if is_algorithm(e[0].1) => Some("public key"),
        // PKCS#1 RSAPrivateKey: version and eight integers (more with
        // multi-prime's trailing SEQUENCE).
        [
            INTEGER,
            INTEGER,
            INTEGER,
            INTEGER,
            INTEGER,
            INTEGER,
            INTEGER,
            INTEGER,
            INTEGER,
            ..,
        ] if small_int(0, &[0, 1]) => Some("RSA private key"),
        // OpenSSL's DSA private key: version 0, p, q, g, y, x.
        [_, _, _, _, _, _] if all_integers && small_int(0, &[0]) => Some("DSA private key"),
        // PKCS#1 RSAPublicKey (n, e); PKCS#3 DH parameters (p, g and an
        // optional private value length); DSA parameters (p, q, g).
        [INTEGER, INTEGER] | [INTEGER, INTEGER, INTEGER] => Some("public key or parameters"),
        // X9.42 DH parameters: p, g, q, optional j and validation parameters.
        [INTEGER, INTEGER, INTEGER, INTEGER]
        | [INTEGER, INTEGER, INTEGER, INTEGER, SEQUENCE]
        | [INTEGER, INTEGER, INTEGER, SEQUENCE] => Some("DH parameters"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_and_long_form_lengths() {
        assert_eq!(super::header(&[0x30, 0x03]), Some((0x30, 2, 3)));
        assert_eq!(
            super::header(&[0x30, 0x82, 0x01, 0x00]),
            Some((0x30, 4, 256))
        );
        assert_eq!(super::header(&[0x30, 0x80]), None);
        assert_eq!(super::header(&[0x30, 0x85, 1, 2, 3, 4, 5]), None);
        assert_eq!(
            super::tlv(&[0x02, 0x01, 0x05, 0xff]),
            Some((0x02, &[5u8][..], &[0xffu8][..]))
        );
        assert_eq!(super::tlv(&[0x02, 0x02, 0x05]), None);
    }

    #[test]
    fn key_shapes_need_their_whole_structure() {
        let two_integers = [0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03];
        assert_eq!(
            super::key_shape(&two_integers),
            Some("public key or parameters")
        );
        assert_eq!(super::key_shape(&[&two_integers[..], &[0]].concat()), None);
        assert_eq!(super::key_shape(&two_integers[..7]), None);
        // SEQUENCE { SEQUENCE { OID }, SEQUENCE {}, BIT STRING }: a
        // certificate's outline is no key.
        let cert_like = [
            0x30, 0x09, 0x30, 0x02, 0x06, 0x00, 0x30, 0x00, 0x03, 0x01, 0x00,
        ];
        assert_eq!(super::key_shape(&cert_like), None);
    }
}
