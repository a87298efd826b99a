//! Times as people and credential formats write them (durations and
//! sizes are in [`crate::units`]).
//!
//! Parsing accepts the spellings found in the wild (RFC 3339 with
//! nanoseconds, OpenStack's `+0000`, zone-less UTC); formatting always
//! writes RFC 3339 UTC with whole seconds.

use crate::credential::Timestamp;
use crate::units::human_span;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The current time, in whole seconds.
pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// "in 12d 4h", "expired 3d ago", "never".
pub fn time_left(expires_in: Option<i64>) -> String {
    match expires_in {
        None => "never".into(),
        Some(s) if s > 0 => format!("in {}", human_span(s)),
        Some(0) => "expires now".into(),
        Some(s) => format!("expired {} ago", human_span(s)),
    }
}

/// RFC 3339 in UTC with whole seconds: `2026-11-22T11:08:31Z`.
pub fn rfc3339(ts: Timestamp) -> String {
    match OffsetDateTime::from_unix_timestamp(ts) {
        Ok(t) => t.format(&Rfc3339).unwrap_or_else(|_| format!("@{ts}")),
        Err(_) => format!("@{ts}"),
    }
}

/// Parses the timestamp spellings credential formats use: RFC 3339 (any
/// precision, any offset), `+0000`-style offsets, and zone-less times,
/// which are UTC. Fractions of a second are dropped.
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    // `2026-07-08T04:00:54+0000` → `+00:00`.
    let bytes = text.as_bytes();
    if bytes.len() > 5 && text.is_char_boundary(text.len() - 5) {
        let (head, zone) = text.split_at(text.len() - 5);
        let z = zone.as_bytes();
        if (z[0] == b'+' || z[0] == b'-') && z[1..].iter().all(u8::is_ascii_digit) {
            let fixed = format!("{head}{}:{}", &zone[..3], &zone[3..]);
            if let Ok(t) = OffsetDateTime::parse(&fixed, &Rfc3339) {
                return Some(t.unix_timestamp());
            }
        }
    }
    // Zone-less (`2026-07-08T04:00:54.000000`, `2026-07-08 04:00:54`): UTC.
    let with_t = text.replacen(' ', "T", 1);
    OffsetDateTime::parse(&format!("{with_t}Z"), &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Unix seconds from a JSON number or string; fractions are dropped.
pub fn parse_unix(value: &serde_json::Value) -> Option<Timestamp> {
    let secs = match value {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?,
        serde_json::Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| f as i64)
            })?
        }
        _ => return None,
    };
    // Beyond year 9999 is not a date anyone meant.
    (-62_135_596_800..=253_402_300_799)
        .contains(&secs)
        .then_some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(human_span(12 * 86_400 + 4 * 3_600 + 59), "12d 4h");
        assert_eq!(human_span(3 * 86_400), "3d");
        assert_eq!(human_span(3 * 86_400 + 5 * 60), "3d");
        assert_eq!(human_span(3_600 + 5 * 60 + 7), "1h 5m");
        assert_eq!(human_span(45), "45s");
        assert_eq!(human_span(0), "0s");
        assert_eq!(time_left(Some(12 * 86_400 + 4 * 3_600)), "in 12d 4h");
        assert_eq!(time_left(Some(-3 * 86_400)), "expired 3d ago");
        assert_eq!(time_left(None), "never");
    }

    #[test]
    fn timestamps() {
        let t = 1_783_483_254; // 2026-07-08T04:00:54Z
        assert_eq!(rfc3339(t), "2026-07-08T04:00:54Z");
        assert_eq!(parse_timestamp("2026-07-08T04:00:54Z"), Some(t));
        assert_eq!(parse_timestamp("2026-07-08T04:00:54.123456789Z"), Some(t));
        assert_eq!(parse_timestamp("2026-07-08T06:00:54+02:00"), Some(t));
        assert_eq!(parse_timestamp("2026-07-08T04:00:54+0000"), Some(t));
        assert_eq!(parse_timestamp("2026-07-08T05:00:54+0100"), Some(t));
        assert_eq!(parse_timestamp("2026-07-08T04:00:54.000000"), Some(t));
        assert_eq!(parse_timestamp("2026-07-08 04:00:54"), Some(t));
        assert_eq!(parse_timestamp("tomorrow"), None);
        assert_eq!(parse_unix(&serde_json::json!("1783483254")), Some(t));
        assert_eq!(parse_unix(&serde_json::json!(1783483254.9)), Some(t));
        assert_eq!(parse_unix(&serde_json::json!("soon")), None);
    }
}
