//! Durations and sizes as people write them in flags and lapse.yaml
//! (`30d`, `1d12h`, `16MiB`), and back.

/// Parses a human duration: `90s`, `15m`, `12h`, `30d`, `2w`, or a sum such
/// as `1d12h`. A bare number is refused unless it is `0`: `--warning 30`
/// meant 30 s once, and people who write it mean days as often as seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(n) = text.parse::<i64>() {
        return match n {
            0 => Ok(0),
            n if n < 0 => Err(format!("negative duration {text:?}")),
            n => Err(format!(
                "duration {text:?} has no unit: add a unit: {n}d (or {n}h, {n}m, {n}s)"
            )),
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

/// `16 MiB`, `512 KiB`, `100 B`.
pub fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// Parses `16MiB`, `512KiB`, `2M`, `100` (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid size {text:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("invalid size {text:?}: use B, KiB, MiB or GiB")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {text:?} is too large"))
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
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(
            parse_duration("30"),
            Err("duration \"30\" has no unit: add a unit: 30d (or 30h, 30m, 30s)".into())
        );
        assert!(parse_duration("12x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("5d3").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("999999999999999999d").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("lots").is_err());
        assert_eq!(human_bytes(16 << 20), "16 MiB");
        assert_eq!(human_bytes(1000), "1000 B");
    }
}
