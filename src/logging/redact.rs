//! Text lapse did not write — a library's log line, which may quote an
//! API server's Status message or a request header verbatim — made safe
//! to log: everything shaped like a credential is replaced by
//! `<redacted sha256:…>` (the first 8 hex digits of the SHA-256 of what
//! it hides, the same prefix lapse shows for a token it found), and the
//! whole is cut at [`MAX_CHARS`].
//!
//! Shapes: JWTs (JWS and JWE, `eyJ…` with dots), Kubernetes bootstrap
//! tokens (`abcdef.0123456789abcdef`), whatever follows `Bearer` or
//! `Basic`, hex runs of 32 digits or more, letter-and-digit runs of 32 or
//! more, and base64-looking runs of 24 or more that mix upper case, lower
//! case and digits. A path or a name is rarely any of these; a false
//! positive costs a readable word, a miss would cost a secret.

use crate::credential::Fingerprint;

/// Characters of a value kept, after redaction; the rest is counted.
pub const MAX_CHARS: usize = 1_000;

/// Characters a credential-shaped word is made of.
fn wordy(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-' | '.' | '~')
}

fn redacted(secret: &str) -> String {
    format!(
        "<redacted sha256:{}>",
        Fingerprint::of(secret.as_bytes()).short(8)
    )
}

/// `text` with credential shapes replaced and cut at [`MAX_CHARS`].
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_CHARS + 64));
    let mut rest = text;
    let mut after_scheme = false;
    while !rest.is_empty() {
        let start = rest.find(wordy).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c| !wordy(c)).unwrap_or(rest.len());
        let word = &rest[..end];
        rest = &rest[end..];
        if word.is_empty() {
            break;
        }
        if after_scheme {
            out.push_str(&redacted(word));
        } else {
            push_word(&mut out, word);
        }
        // `Bearer <token>` and `Basic <base64>`: the next word, whatever it is.
        after_scheme = (word.eq_ignore_ascii_case("bearer") || word.eq_ignore_ascii_case("basic"))
            && rest.starts_with(' ');
    }
    cap(out)
}

fn push_word(out: &mut String, word: &str) {
    let trimmed = word.trim_end_matches('.');
    if is_jwt(trimmed) || is_bootstrap_token(trimmed) {
        out.push_str(&redacted(trimmed));
    } else {
        // Dots end sentences and join host names: judge each piece alone.
        for (i, piece) in trimmed.split('.').enumerate() {
            if i > 0 {
                out.push('.');
            }
            push_piece(out, piece);
        }
    }
    out.push_str(&word[trimmed.len()..]);
}

/// `key=value` is two pieces; `=` at the end is base64 padding.
fn push_piece(out: &mut String, piece: &str) {
    let unpadded = piece.trim_end_matches('=');
    if let Some((key, _)) = unpadded.split_once('=') {
        push_piece(out, key);
        out.push('=');
        push_piece(out, &piece[key.len() + 1..]);
    } else if secret_shaped(piece) {
        out.push_str(&redacted(piece));
    } else {
        out.push_str(piece);
    }
}

fn is_jwt(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    word.starts_with("eyJ") && (2..=5).contains(&parts.len()) && parts[0].len() >= 10
}

fn is_bootstrap_token(word: &str) -> bool {
    let lower_alnum = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    matches!(word.split_once('.'), Some((id, secret))
        if id.len() == 6 && secret.len() == 16 && lower_alnum(id) && lower_alnum(secret))
}

fn secret_shaped(piece: &str) -> bool {
    let n = piece.len();
    let has = |f: fn(&u8) -> bool| piece.as_bytes().iter().any(f);
    let (upper, lower, digit) = (
        has(u8::is_ascii_uppercase),
        has(u8::is_ascii_lowercase),
        has(u8::is_ascii_digit),
    );
    let alnum = piece.bytes().all(|b| b.is_ascii_alphanumeric());
    if n >= 32 && piece.bytes().all(|b| b.is_ascii_hexdigit()) {
        return true;
    }
    if n >= 32 && alnum && digit && (upper || lower) {
        return true;
    }
    // Base64 has `/`, and so do paths: a path's segments are short, a
    // random run's are long.
    let longest_segment = piece.split('/').map(str::len).max().unwrap_or(0);
    let base64ish = longest_segment >= 16 || piece.contains('+') || piece.ends_with('=');
    n >= 24 && upper && lower && digit && base64ish
}

fn cap(mut text: String) -> String {
    let Some((cut, _)) = text.char_indices().nth(MAX_CHARS) else {
        return text;
    };
    let more = text[cut..].chars().count();
    text.truncate(cut);
    text.push_str(&format!("… ({more} more characters)"));
    text
}

#[cfg(test)]
mod tests {
    use super::redact;
    use crate::credential::Fingerprint;

    fn hidden(secret: &str) -> String {
        format!(
            "<redacted sha256:{}>",
            Fingerprint::of(secret.as_bytes()).short(8)
        )
    }

    #[test]
    fn credential_shapes_are_replaced_by_their_fingerprint() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtZSJ9.c2lnLWxlYWs";
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let b64 = "dGhpcyBpcyBhIHNlY3JldCBrZXkhISE=";
        let text = format!(
            "token {jwt}. Authorization: Bearer s3cr3t; Basic dXNlcjpwYXNz key={hex} data \"{b64}\" boot abcdef.0123456789abcdef"
        );
        assert_eq!(
            redact(&text),
            format!(
                "token {}. Authorization: Bearer {}; Basic {} key={} data \"{}\" boot {}",
                hidden(jwt),
                hidden("s3cr3t"),
                hidden("dXNlcjpwYXNz"),
                hidden(hex),
                hidden(b64),
                hidden("abcdef.0123456789abcdef"),
            )
        );
    }

    #[test]
    fn paths_names_and_prose_are_kept() {
        for same in [
            "GET /apis/cert-manager.io/v1/namespaces/Production2/certificates?limit=500",
            "secrets \"web-tls\" is forbidden: User \"system:serviceaccount:lapse:lapse\"",
            "kube-apiserver-controlplane-node-1.example.com resourceVersion=123456",
            "uid 3f2a9c4e-1b7d-4e8a-9c0f-5d6e7f8a9b0c",
            "InitialListFailed(Api(Status { code: 403 }))",
        ] {
            assert_eq!(redact(same), same);
        }
    }

    #[test]
    fn long_values_are_cut_and_counted() {
        let long = "word ".repeat(300);
        let cut = redact(&long);
        assert_eq!(
            cut.chars().count(),
            1_000 + "… (500 more characters)".len() - 2
        );
        assert!(cut.ends_with("… (500 more characters)"), "{cut}");
    }
}
