//! UTC instants as Unix seconds, with fast parsing of the timestamp shapes feeds use.
//!
//! Feeds write `2021-01-17 07:44:46`, `2021-01-17T07:44:46Z`, `2021-01-17T07:44:46+02:00`,
//! `2021-01-17T07:44:46.123Z`, `2021-01-17` or Unix seconds. Parsing is hand-written because it
//! runs once or twice per row on the hot path; it allocates nothing.

/// Seconds since 1970-01-01T00:00:00Z.
pub type UnixTime = i64;

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    let mut v: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u32::from(c - b'0'))?;
    }
    Some(v)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses a feed timestamp into Unix seconds (UTC). Returns `None` for anything else.
pub fn parse_timestamp(s: &[u8]) -> Option<UnixTime> {
    let s = s.trim_ascii();
    if s.len() < 10 {
        // Unix seconds (short values are old but valid).
        return digits(s).map(i64::from).filter(|_| !s.is_empty());
    }
    if s.iter().all(u8::is_ascii_digit) {
        return std::str::from_utf8(s).ok()?.parse::<i64>().ok();
    }
    if s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let y = i64::from(digits(&s[0..4])?);
    let mo = digits(&s[5..7])?;
    let d = digits(&s[8..10])?;
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return None;
    }
    let mut t = days_from_civil(y, mo, d) * DAY;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(t);
    }
    if rest[0] != b' ' && rest[0] != b'T' && rest[0] != b't' {
        return None;
    }
    let rest = &rest[1..];
    if rest.len() < 5 || rest[2] != b':' {
        return None;
    }
    let h = digits(&rest[0..2])?;
    let mi = digits(&rest[3..5])?;
    let mut sec = 0;
    let mut rest = &rest[5..];
    if rest.first() == Some(&b':') {
        if rest.len() < 3 {
            return None;
        }
        sec = digits(&rest[1..3])?;
        rest = &rest[3..];
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    t += i64::from(h * 3600 + mi * 60 + sec);
    // Fractional seconds are dropped.
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = &rest[1 + n..];
    }
    let rest = rest.trim_ascii_start();
    match rest {
        [] | b"Z" | b"z" | b"UTC" | b"+00" | b"+0000" | b"+00:00" => Some(t),
        [sign @ (b'+' | b'-'), tz @ ..] => {
            let (oh, om) = match tz.len() {
                2 => (digits(tz)?, 0),
                4 => (digits(&tz[0..2])?, digits(&tz[2..4])?),
                5 if tz[2] == b':' => (digits(&tz[0..2])?, digits(&tz[3..5])?),
                _ => return None,
            };
            let off = i64::from(oh * 3600 + om * 60);
            Some(if *sign == b'+' { t - off } else { t + off })
        }
        _ => None,
    }
}

/// Formats Unix seconds as RFC 3339 with milliseconds, as STIX wants: `2021-01-17T07:44:46.000Z`.
pub fn format_rfc3339(t: UnixTime) -> String {
    let days = t.div_euclid(DAY);
    let secs = t.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Formats the day of `t` as `YYYY-MM-DD`.
pub fn format_day(t: UnixTime) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_feed_shapes() {
        let t = 1_610_869_486; // 2021-01-17T07:44:46Z
        assert_eq!(parse_timestamp(b"2021-01-17 07:44:46"), Some(t));
        assert_eq!(parse_timestamp(b"2021-01-17T07:44:46Z"), Some(t));
        assert_eq!(parse_timestamp(b"2021-01-17T07:44:46.123Z"), Some(t));
        assert_eq!(parse_timestamp(b"2021-01-17T09:44:46+02:00"), Some(t));
        assert_eq!(parse_timestamp(b"2021-01-17 07:44:46 UTC"), Some(t));
        assert_eq!(parse_timestamp(b"2021-01-17 07:44"), Some(t - 46));
        assert_eq!(parse_timestamp(b"1610869486"), Some(t));
        assert_eq!(parse_timestamp(b"2021-01-17"), Some(t - 7 * 3600 - 44 * 60 - 46));
        assert_eq!(parse_timestamp(b"2021-02-30 00:00:00"), None);
        assert_eq!(parse_timestamp(b"yesterday"), None);
        assert_eq!(parse_timestamp(b"2021-01-17 25:00:00"), None);
        assert_eq!(parse_timestamp(b""), None);
        assert_eq!(format_rfc3339(t), "2021-01-17T07:44:46.000Z");
        assert_eq!(format_day(t), "2021-01-17");
    }

    #[test]
    fn civil_round_trip() {
        for d in [-800_000, -1, 0, 1, 18_000, 20_000, 2_000_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }
}
