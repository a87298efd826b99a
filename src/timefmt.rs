//! Times and durations as people and credential formats write them.
//!
//! Parsing accepts the spellings found in the wild (RFC 3339 with
//! nanoseconds, OpenStack's `+0000`, zone-less UTC); formatting always
//! writes RFC 3339 UTC with whole seconds.

use crate::credential::Timestamp;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The current time, in whole seconds.
pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Parses a human duration: `90s`, `15m`, `12h`, `30d`, `2w`, or a sum such
/// as `1d12h`. A bare number is seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = text.parse::<i64>() {
        return if secs >= 0 {
            Ok(secs)
        } else {
            Err(format!("negative duration {text:?}"))
        };
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {ch:?} (use s, m, h, d or w)"
                ));
            }
        };
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: a unit needs a number before it"))?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration {text:?} is too large"))?;
    }
    if !digits.is_empty() {
        return Err(format!(
            "invalid duration {text:?}: the last number has no unit"
        ));
    }
    Ok(total)
}

/// Renders seconds as the two largest units: `12d 4h`, `3h 5m`, `45s`.
pub fn human_span(secs: i64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let secs = secs.unsigned_abs();
    for (i, (size, name)) in UNITS.iter().enumerate() {
        if secs >= *size {
            let mut text = format!("{}{name}", secs / size);
            if let Some((next, next_name)) = UNITS.get(i + 1) {
                let minor = (secs % size) / next;
                if minor > 0 {
                    text.push_str(&format!(" {minor}{next_name}"));
                }
            }
            return text;
        }
    }
    "0s".into()
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
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("12h"), Ok(43_200));
        assert_eq!(parse_duration("30d"), Ok(2_592_000));
        assert_eq!(parse_duration("1d12h"), Ok(129_600));
        assert_eq!(parse_duration("2w"), Ok(1_209_600));
        assert_eq!(parse_duration("45"), Ok(45));
        assert!(parse_duration("12x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("12").is_ok());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("5d3").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("999999999999999999d").is_err());
    }

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
