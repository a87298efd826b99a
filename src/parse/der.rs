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
}
