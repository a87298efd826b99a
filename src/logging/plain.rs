//! Plain text for terminals and logs: every character that could move the
//! cursor, recolour, retitle or reorder what a person reads is shown as a
//! visible escape instead, so a certificate CN of `kube-apiserver\rok`
//! cannot overwrite its own row and a file name with a newline cannot
//! forge a line. Only for text meant for people: JSON has its own escaping
//! and HTML its own.

use std::borrow::Cow;

/// Characters shown escaped: C0 controls and DEL, C1 controls, and the
/// invisible Unicode formatting characters that reorder or hide text
/// (bidi embeddings, overrides and isolates, zero-width characters, line
/// and paragraph separators, the byte-order mark).
fn hidden(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x1f'
            | '\x7f'..='\u{9f}'
            | '\u{61c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// `text` with every hidden character escaped: `\r`, `\n`, `\t`, `\x1b`
/// for the other C0 controls and DEL, `\u{202e}` for the rest. Borrowed
/// when nothing needs escaping, which is nearly always.
pub fn plain(text: &str) -> Cow<'_, str> {
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    push_plain(&mut out, text);
    Cow::Owned(out)
}

/// Appends `text` to `out`, escaped as [`plain`] escapes it.
pub fn push_plain(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c <= '\x7f' && hidden(c) => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn controls_and_reordering_characters_are_shown_escaped() {
        assert_eq!(plain("kube-apiserver\rok     "), "kube-apiserver\\rok     ");
        assert_eq!(
            plain("a\nerror: forged\tb\x1b]0;title\x07\x1b[31m\x7f"),
            "a\\nerror: forged\\tb\\x1b]0;title\\x07\\x1b[31m\\x7f"
        );
        assert_eq!(
            plain("\u{9b}31m \u{202e}cod.exe"),
            "\\u{9b}31m \\u{202e}cod.exe"
        );
        assert_eq!(
            plain("\u{200b}\u{2066}x\u{2069}\u{feff}\u{61c}\u{2028}"),
            "\\u{200b}\\u{2066}x\\u{2069}\\u{feff}\\u{61c}\\u{2028}"
        );
        // Printable text, accents, CJK and backslashes pass unchanged.
        for same in ["CN=café,O=Ex\\,ample", "証明書", "/etc/pki/tls.crt", ""] {
            assert!(matches!(plain(same), std::borrow::Cow::Borrowed(s) if s == same));
        }
    }
}
