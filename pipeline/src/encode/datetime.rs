//! Dates and times: Arrow's integers counted from 1970-01-01 to PostgreSQL's binary values
//! (counted from 2000-01-01, in days or microseconds), and to ISO 8601 text for JSON.
//!
//! Conventions, shared by both encoders:
//! - Nanoseconds are rounded to microseconds half to even, as PostgreSQL rounds fractional
//!   seconds on input.
//! - Arrow has no infinite dates or timestamps, so the extreme values stand for them: `i32::MAX`
//!   / `i32::MIN` days and `i64::MAX` / `i64::MIN` timestamps (any unit) are written as
//!   PostgreSQL's `infinity` / `-infinity`.
//! - Text uses the proleptic Gregorian calendar with astronomical year numbering, as ISO 8601
//!   does: year 0 is 1 BC, years before it are written `-0001`, years after 9999 `+10000`.

use super::Problem;
use arrow_schema::TimeUnit;
use bytes::{BufMut, BytesMut};

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const PG_EPOCH_DAYS: i64 = 10_957;
const SECONDS_PER_DAY: i64 = 86_400;
const MICROS_PER_DAY: i64 = SECONDS_PER_DAY * 1_000_000;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS * MICROS_PER_DAY;
/// First valid PostgreSQL date, in days since 2000-01-01: 4714-11-24 BC (Julian day 0).
const DATE_MIN: i64 = -2_451_545;
/// First date past PostgreSQL's range, in days since 2000-01-01: 5874898-01-01.
const DATE_END: i64 = 2_147_483_494 - 2_451_545;
/// First valid PostgreSQL timestamp, in µs since 2000-01-01: 4714-11-24 BC 00:00.
const TIMESTAMP_MIN: i64 = -211_813_488_000_000_000;
/// First timestamp past PostgreSQL's range, in µs since 2000-01-01: 294277-01-01 00:00.
const TIMESTAMP_END: i64 = 9_223_371_331_200_000_000;

/// A `Date32` (days since 1970) as PostgreSQL's binary `date` (days since 2000).
pub(crate) fn pg_date(days: i32) -> Result<i32, Problem> {
    if days == i32::MAX || days == i32::MIN {
        return Ok(days);
    }
    let pg = i64::from(days) - PG_EPOCH_DAYS;
    if (DATE_MIN..DATE_END).contains(&pg) {
        Ok(pg as i32)
    } else {
        Err(format!(
            "the date {days} days from 1970-01-01 is outside PostgreSQL's range \
             (4714-11-24 BC to 5874897-12-31); fix the value in the source or use JSONB mode"
        ))
    }
}

/// A `Timestamp(unit)` as PostgreSQL's binary `timestamp`/`timestamptz` (µs since 2000).
pub(crate) fn pg_timestamp(value: i64, unit: TimeUnit) -> Result<i64, Problem> {
    if value == i64::MAX || value == i64::MIN {
        return Ok(value);
    }
    let micros = match unit {
        TimeUnit::Second => value.checked_mul(1_000_000),
        TimeUnit::Millisecond => value.checked_mul(1_000),
        TimeUnit::Microsecond => Some(value),
        TimeUnit::Nanosecond => Some(round_nanos(value)),
    };
    micros
        .and_then(|m| m.checked_sub(PG_EPOCH_MICROS))
        .filter(|m| (TIMESTAMP_MIN..TIMESTAMP_END).contains(m))
        .ok_or_else(|| {
            format!(
                "the timestamp {value} {} from 1970-01-01 is outside PostgreSQL's range \
                 (4714-11-24 BC to 294276-12-31); fix the value in the source or use JSONB mode",
                unit_name(unit)
            )
        })
}

/// A `Time64(unit)` as PostgreSQL's binary `time` (µs since midnight, up to 24:00:00).
pub(crate) fn pg_time(value: i64, unit: TimeUnit) -> Result<i64, Problem> {
    let micros = match unit {
        TimeUnit::Nanosecond => round_nanos(value),
        _ => value,
    };
    if (0..=MICROS_PER_DAY).contains(&micros) {
        Ok(micros)
    } else {
        Err(time_out_of_range(value, unit))
    }
}

/// Nanoseconds to microseconds, rounding half to even.
fn round_nanos(nanos: i64) -> i64 {
    let (q, r) = (nanos.div_euclid(1000), nanos.rem_euclid(1000));
    if r > 500 || (r == 500 && q % 2 != 0) {
        q + 1
    } else {
        q
    }
}

fn unit_name(unit: TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "µs",
        TimeUnit::Nanosecond => "ns",
    }
}

/// Ticks per second and fraction digits of a unit.
fn ticks(unit: TimeUnit) -> (i64, usize) {
    match unit {
        TimeUnit::Second => (1, 0),
        TimeUnit::Millisecond => (1_000, 3),
        TimeUnit::Microsecond => (1_000_000, 6),
        TimeUnit::Nanosecond => (1_000_000_000, 9),
    }
}

#[cold]
fn time_out_of_range(value: i64, unit: TimeUnit) -> Problem {
    format!(
        "the time of day {value} {} is outside 00:00:00–24:00:00; fix the value in the source",
        unit_name(unit)
    )
}

/// Write a `Date32` as `YYYY-MM-DD` (or `infinity`/`-infinity`, see the module docs).
pub(crate) fn write_date(out: &mut BytesMut, days: i32) {
    match days {
        i32::MAX => out.extend_from_slice(b"infinity"),
        i32::MIN => out.extend_from_slice(b"-infinity"),
        _ => write_civil_date(out, i64::from(days)),
    }
}

/// Write a `Timestamp(unit)` as `YYYY-MM-DDTHH:MM:SS[.fraction]`, with a trailing `Z` when
/// `utc`. The fraction appears only when non-zero, without trailing zeros, to the unit's
/// precision.
pub(crate) fn write_timestamp(out: &mut BytesMut, value: i64, unit: TimeUnit, utc: bool) {
    match value {
        i64::MAX => return out.extend_from_slice(b"infinity"),
        i64::MIN => return out.extend_from_slice(b"-infinity"),
        _ => {}
    }
    let (per_second, digits) = ticks(unit);
    let per_day = per_second * SECONDS_PER_DAY;
    write_civil_date(out, value.div_euclid(per_day));
    out.put_u8(b'T');
    let of_day = value.rem_euclid(per_day);
    write_clock(out, of_day / per_second, of_day % per_second, digits);
    if utc {
        out.put_u8(b'Z');
    }
}

/// Write a `Time64(unit)` as `HH:MM:SS[.fraction]`.
pub(crate) fn write_time(out: &mut BytesMut, value: i64, unit: TimeUnit) -> Result<(), Problem> {
    let (per_second, digits) = ticks(unit);
    if !(0..=per_second * SECONDS_PER_DAY).contains(&value) {
        return Err(time_out_of_range(value, unit));
    }
    write_clock(out, value / per_second, value % per_second, digits);
    Ok(())
}

fn write_clock(out: &mut BytesMut, seconds: i64, fraction: i64, digits: usize) {
    let mut clock = *b"00:00:00";
    put_2(&mut clock[0..2], seconds / 3600);
    put_2(&mut clock[3..5], seconds / 60 % 60);
    put_2(&mut clock[6..8], seconds % 60);
    out.extend_from_slice(&clock);
    if fraction != 0 {
        let mut buf = *b".000000000";
        let mut rest = fraction;
        for slot in buf[1..=digits].iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        let end = buf.iter().rposition(|&b| b != b'0').map_or(0, |p| p + 1);
        out.extend_from_slice(&buf[..end]);
    }
}

fn write_civil_date(out: &mut BytesMut, days: i64) {
    let (year, month, day) = civil_from_days(days);
    let mut date = *b"0000-00-00";
    if (0..=9999).contains(&year) {
        put_2(&mut date[0..2], year / 100);
        put_2(&mut date[2..4], year % 100);
    } else if year > 9999 {
        out.put_u8(b'+');
        out.extend_from_slice(itoa::Buffer::new().format(year).as_bytes());
    } else {
        out.put_u8(b'-');
        let y = year.unsigned_abs();
        if y < 1000 {
            out.put_bytes(b'0', 4 - itoa_len(y));
        }
        out.extend_from_slice(itoa::Buffer::new().format(y).as_bytes());
    }
    let start = if (0..=9999).contains(&year) { 0 } else { 4 };
    put_2(&mut date[5..7], month);
    put_2(&mut date[8..10], day);
    out.extend_from_slice(&date[start..]);
}

fn itoa_len(v: u64) -> usize {
    match v {
        0..=9 => 1,
        10..=99 => 2,
        _ => 3,
    }
}

/// Two decimal digits of `v` (0..=99) into `slot`.
fn put_2(slot: &mut [u8], v: i64) {
    slot[0] = b'0' + (v / 10) as u8;
    slot[1] = b'0' + (v % 10) as u8;
}

/// (year, month, day) of a day count from 1970-01-01 in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn text(f: impl FnOnce(&mut BytesMut)) -> String {
        let mut out = BytesMut::new();
        f(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    fn days(y: i32, m: u32, d: u32) -> i32 {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        (NaiveDate::from_ymd_opt(y, m, d).unwrap() - epoch).num_days() as i32
    }

    #[test]
    fn dates_match_chrono_across_its_range() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let lo = i64::from(days(-262_000, 1, 1));
        let hi = i64::from(days(262_000, 12, 31));
        let mut d = lo;
        while d <= hi {
            let expected = (epoch + chrono::Duration::days(d))
                .format("%Y-%m-%d")
                .to_string();
            assert_eq!(text(|o| write_date(o, d as i32)), expected, "day {d}");
            d += 997;
        }
    }

    #[test]
    fn date_edges() {
        assert_eq!(text(|o| write_date(o, days(1, 1, 1))), "0001-01-01");
        assert_eq!(text(|o| write_date(o, days(0, 12, 31))), "0000-12-31");
        assert_eq!(text(|o| write_date(o, days(-1, 3, 1))), "-0001-03-01");
        assert_eq!(text(|o| write_date(o, days(9999, 12, 31))), "9999-12-31");
        assert_eq!(text(|o| write_date(o, days(10000, 1, 1))), "+10000-01-01");
        assert_eq!(text(|o| write_date(o, days(1969, 12, 31))), "1969-12-31");
        assert_eq!(text(|o| write_date(o, days(1999, 12, 31))), "1999-12-31");
        assert_eq!(text(|o| write_date(o, i32::MAX)), "infinity");
        assert_eq!(pg_date(0), Ok(-10_957));
        assert_eq!(pg_date(days(2000, 1, 1)), Ok(0));
        assert_eq!(pg_date(days(1, 1, 1)), Ok(-730_119));
        assert_eq!(pg_date(days(9999, 12, 31)), Ok(2_921_939));
        assert_eq!(pg_date(days(-4713, 11, 24)), Ok(-2_451_545));
        assert!(pg_date(days(-4713, 11, 23))
            .unwrap_err()
            .contains("outside"));
        assert_eq!(pg_date(i32::MIN), Ok(i32::MIN));
        assert!(pg_date(i32::MAX - 1).is_err());
    }

    /// µs since 1970 of a UTC date and time.
    fn us(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micro: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_micro_opt(h, mi, s, micro)
            .unwrap()
            .and_utc()
            .timestamp_micros()
    }

    #[test]
    fn timestamps() {
        let show = |v: i64, unit, utc| text(|o| write_timestamp(o, v, unit, utc));
        let v = us(2024, 1, 2, 3, 4, 5, 123_456);
        assert_eq!(
            show(v, TimeUnit::Microsecond, false),
            "2024-01-02T03:04:05.123456"
        );
        assert_eq!(
            show(v, TimeUnit::Microsecond, true),
            "2024-01-02T03:04:05.123456Z"
        );
        let ns = show(v * 1000 + 7, TimeUnit::Nanosecond, false);
        assert_eq!(ns, "2024-01-02T03:04:05.123456007");
        let ms = show(v / 1000, TimeUnit::Millisecond, false);
        assert_eq!(ms, "2024-01-02T03:04:05.123");
        assert_eq!(
            show(v / 1_000_000, TimeUnit::Second, true),
            "2024-01-02T03:04:05Z"
        );
        let tenth = us(2024, 1, 2, 3, 4, 5, 100_000);
        assert_eq!(
            show(tenth, TimeUnit::Microsecond, false),
            "2024-01-02T03:04:05.1"
        );
        assert_eq!(
            show(-1, TimeUnit::Microsecond, false),
            "1969-12-31T23:59:59.999999"
        );
        let v1900 = us(1900, 2, 28, 23, 0, 0, 0);
        assert_eq!(
            show(v1900, TimeUnit::Microsecond, true),
            "1900-02-28T23:00:00Z"
        );
        let year1 = us(1, 1, 1, 0, 0, 0, 0);
        assert_eq!(
            show(year1, TimeUnit::Microsecond, false),
            "0001-01-01T00:00:00"
        );
        let before = show(year1 - 1, TimeUnit::Microsecond, false);
        assert_eq!(before, "0000-12-31T23:59:59.999999");
        let end = us(9999, 12, 31, 23, 59, 59, 999_999);
        assert_eq!(
            show(end, TimeUnit::Microsecond, false),
            "9999-12-31T23:59:59.999999"
        );
        assert_eq!(
            show(end + 1, TimeUnit::Microsecond, false),
            "+10000-01-01T00:00:00"
        );
        assert_eq!(show(i64::MIN, TimeUnit::Nanosecond, false), "-infinity");

        assert_eq!(
            pg_timestamp(us(2000, 1, 1, 0, 0, 0, 0), TimeUnit::Microsecond),
            Ok(0)
        );
        assert_eq!(pg_timestamp(0, TimeUnit::Second), Ok(-946_684_800_000_000));
        assert_eq!(
            pg_timestamp(-1, TimeUnit::Millisecond),
            Ok(-946_684_800_001_000)
        );
        let pg_year1 = pg_timestamp(year1, TimeUnit::Microsecond);
        assert_eq!(pg_year1, Ok(-63_082_281_600_000_000));
        assert_eq!(pg_timestamp(i64::MAX, TimeUnit::Second), Ok(i64::MAX));
        assert!(pg_timestamp(i64::MAX - 1, TimeUnit::Second)
            .unwrap_err()
            .contains("outside PostgreSQL's range"));
        let first = us(-4713, 11, 24, 0, 0, 0, 0);
        assert_eq!(
            pg_timestamp(first, TimeUnit::Microsecond),
            Ok(TIMESTAMP_MIN)
        );
        assert!(pg_timestamp(first - 1, TimeUnit::Microsecond).is_err());
    }

    #[test]
    fn nanoseconds_round_half_to_even() {
        let ns = |v| pg_timestamp(v, TimeUnit::Nanosecond).unwrap() + PG_EPOCH_MICROS;
        assert_eq!(ns(1_499), 1);
        assert_eq!(ns(1_500), 2);
        assert_eq!(ns(2_500), 2);
        assert_eq!(ns(2_501), 3);
        assert_eq!(ns(-500), 0);
        assert_eq!(ns(-1_500), -2);
        assert_eq!(ns(-1_499), -1);
        assert_eq!(
            pg_time(86_399_999_999_600, TimeUnit::Nanosecond),
            Ok(MICROS_PER_DAY)
        );
    }

    #[test]
    fn times() {
        let show = |v: i64, unit| text(|o| write_time(o, v, unit).unwrap());
        assert_eq!(show(11_045_123_000, TimeUnit::Microsecond), "03:04:05.123");
        assert_eq!(
            show(11_045_000_000_001, TimeUnit::Nanosecond),
            "03:04:05.000000001"
        );
        assert_eq!(show(0, TimeUnit::Microsecond), "00:00:00");
        assert_eq!(show(MICROS_PER_DAY, TimeUnit::Microsecond), "24:00:00");
        assert!(write_time(&mut BytesMut::new(), -1, TimeUnit::Microsecond).is_err());
        assert!(write_time(
            &mut BytesMut::new(),
            MICROS_PER_DAY + 1,
            TimeUnit::Microsecond
        )
        .unwrap_err()
        .contains("outside 00:00:00–24:00:00"));
        assert_eq!(
            pg_time(11_045_123_456, TimeUnit::Microsecond),
            Ok(11_045_123_456)
        );
        assert!(pg_time(MICROS_PER_DAY + 1, TimeUnit::Microsecond).is_err());
    }
}
