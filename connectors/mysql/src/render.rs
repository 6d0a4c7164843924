//! JSONB mode's rendering of the MySQL values whose Arrow types cannot carry their tag: dates
//! and timestamps that may be zero (`0000-00-00`), TIME beyond a day or negative, and BIT(n).
//! The text follows `docs/jsonb-encoding.md` (the MySQL section): fractions only when non-zero,
//! without trailing zeros; `Z` only on TIMESTAMP, which is an instant in UTC.

use mysql_async::Value;
use std::fmt::Write;

/// `{"_type":"date","value":"2024-01-02"}`, or the zero-date tag.
pub(crate) fn date(out: &mut String, y: u16, m: u8, d: u8) {
    if m == 0 || d == 0 {
        return zero_date(
            out,
            &format!("{y:04}-{m:02}-{d:02}"),
            y == 0 && m == 0 && d == 0,
        );
    }
    let _ = write!(out, r#"{{"_type":"date","value":"{y:04}-{m:02}-{d:02}"}}"#);
}

/// `{"_type":"datetime","value":"2024-01-02T03:04:05.5"}` (with `Z` when `utc`), or zero.
#[allow(clippy::too_many_arguments)]
pub(crate) fn datetime(out: &mut String, utc: bool, v: (u16, u8, u8, u8, u8, u8, u32)) {
    let (y, mo, d, h, mi, s, us) = v;
    if mo == 0 || d == 0 {
        let text = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
        let all_zero = y == 0 && mo == 0 && d == 0 && h == 0 && mi == 0 && s == 0 && us == 0;
        return zero_date(out, &text, all_zero);
    }
    let _ = write!(
        out,
        r#"{{"_type":"datetime","value":"{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}"#
    );
    fraction(out, us);
    out.push_str(if utc { "Z\"}" } else { "\"}" });
}

/// `{"_type":"zero_date"}` for the all-zero value; with `"value"` (MySQL's text) when only the
/// month or day is zero (`2024-00-15`).
fn zero_date(out: &mut String, text: &str, all_zero: bool) {
    match all_zero {
        true => out.push_str(r#"{"_type":"zero_date"}"#),
        false => {
            let _ = write!(out, r#"{{"_type":"zero_date","value":"{text}"}}"#);
        }
    }
}

/// `{"_type":"time","value":"-838:59:59.5"}`: hours may exceed 24, and the value may be negative.
pub(crate) fn time(out: &mut String, negative: bool, days: u32, h: u8, m: u8, s: u8, us: u32) {
    let hours = u64::from(days) * 24 + u64::from(h);
    let sign = if negative { "-" } else { "" };
    let _ = write!(
        out,
        r#"{{"_type":"time","value":"{sign}{hours:02}:{m:02}:{s:02}"#
    );
    fraction(out, us);
    out.push_str("\"}");
}

/// `{"_type":"bit","value":"0101"}`: the `n` bits of a BIT(n) value, most significant first.
pub(crate) fn bit(out: &mut String, n: u32, value: u64) {
    out.push_str(r#"{"_type":"bit","value":""#);
    for i in (0..n).rev() {
        out.push(if value >> i & 1 == 1 { '1' } else { '0' });
    }
    out.push_str("\"}");
}

/// `.123` for 123000 µs; nothing for 0.
fn fraction(out: &mut String, us: u32) {
    if us == 0 {
        return;
    }
    let digits = format!("{us:06}");
    out.push('.');
    out.push_str(digits.trim_end_matches('0'));
}

/// A BIT value (big-endian bytes) as an integer.
pub(crate) fn bits(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b))
}

/// A value from the server as text, when it is one (used for messages only).
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Bytes(b) => format!("{:?}", String::from_utf8_lossy(b)),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut String)) -> String {
        let mut out = String::new();
        f(&mut out);
        out
    }

    #[test]
    fn renders_match_the_documented_tags() {
        assert_eq!(
            s(|o| date(o, 2024, 1, 2)),
            r#"{"_type":"date","value":"2024-01-02"}"#
        );
        assert_eq!(s(|o| date(o, 0, 0, 0)), r#"{"_type":"zero_date"}"#);
        assert_eq!(
            s(|o| date(o, 2024, 0, 15)),
            r#"{"_type":"zero_date","value":"2024-00-15"}"#
        );
        assert_eq!(
            s(|o| datetime(o, false, (2024, 1, 2, 3, 4, 5, 123_450))),
            r#"{"_type":"datetime","value":"2024-01-02T03:04:05.12345"}"#
        );
        assert_eq!(
            s(|o| datetime(o, true, (1970, 1, 1, 0, 0, 1, 0))),
            r#"{"_type":"datetime","value":"1970-01-01T00:00:01Z"}"#
        );
        assert_eq!(
            s(|o| time(o, true, 34, 22, 59, 59, 0)),
            r#"{"_type":"time","value":"-838:59:59"}"#
        );
        assert_eq!(s(|o| bit(o, 4, 5)), r#"{"_type":"bit","value":"0101"}"#);
        assert_eq!(bits(&[1, 0]), 256);
    }
}
