//! Escaping text for HTML, for the page and the mails alike.

use crate::logging::plain::push_plain;

/// Escapes text for HTML element content and attribute values. Control
/// and bidi characters are shown as visible escapes (`\r`, `\u{202e}`),
/// as on a terminal, so a name cannot reorder or hide what a row says.
pub fn html_escape(out: &mut String, text: &str) {
    let mut buf = [0u8; 4];
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => push_plain(out, c.encode_utf8(&mut buf)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::html_escape;

    #[test]
    fn markup_and_hidden_characters_are_escaped() {
        let mut out = String::new();
        html_escape(&mut out, "<b a='1'>&\"kube\rok\u{202e}</b>");
        assert_eq!(
            out,
            "&lt;b a=&#39;1&#39;&gt;&amp;&quot;kube\\rok\\u{202e}&lt;/b&gt;"
        );
    }
}
