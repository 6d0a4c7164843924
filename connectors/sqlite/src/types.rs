//! The SQLite → Arrow type map, and the rules that say whether one stored value fits a column.
//!
//! SQLite values are dynamically typed: a column's declared type only gives it an *affinity*, and
//! any column may hold any storage class (NULL, INTEGER, REAL, TEXT, BLOB). So:
//!
//! * JSONB mode reads every column as a dense union with one child per storage class, and
//!   nothing can fail to fit.
//! * Native mode picks one Arrow type per column from the declared type, following SQLite's own
//!   affinity rules (first match wins), then checks every stored value against it (the census):
//!
//! | declared type | Arrow (PostgreSQL) | values that fit |
//! |---|---|---|
//! | contains `INT` | Int64 (bigint) | INTEGER |
//! | contains `CHAR`, `CLOB` or `TEXT` | Utf8 (text) | TEXT without NUL bytes, valid UTF-8 |
//! | contains `BLOB` | Binary (bytea) | BLOB |
//! | contains `REAL`, `FLOA` or `DOUB` | Float64 (double precision) | REAL, INTEGER within ±2^53 |
//! | `BOOL`, `BOOLEAN` | Boolean | INTEGER 0 or 1 |
//! | `DATE` | Date32 (date) | TEXT `YYYY-MM-DD` |
//! | `DATETIME…`, `TIMESTAMP…` | Timestamp(µs) | TEXT `YYYY-MM-DD[ T]HH:MM[:SS[.f]]` or a date |
//! | `TIME…` | Time64(µs) (time) | TEXT `HH:MM[:SS[.f]]` |
//! | any other name (`NUMERIC`, `DECIMAL(p,s)`, …) | Utf8, `seren.pg_type=numeric` | INTEGER, REAL, decimal TEXT |
//! | none, or `ANY` | decided by the census: Int64, Float64, Utf8 or Binary | |
//!
//! Fractions finer than a microsecond fit only when the extra digits are zeros: nothing is
//! rounded away. A date-like column with a value that does not parse is stored as text (with a
//! warning) rather than failing: SQLite has no date type, so text dates are its normal form.

use arrow_schema::{DataType, Field, TimeUnit, UnionFields, UnionMode};
use pipeline::types::{META_JSON_TAG, META_PG_TYPE};
use rusqlite::types::ValueRef;
use std::collections::HashMap;

/// How one column is read into Arrow: the Arrow type and which stored values it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conv {
    /// JSONB mode: a dense union over the five storage classes.
    Union,
    /// Int64: INTEGER only.
    Int,
    /// Float64: REAL, and INTEGER within ±2^53 (exact as a double).
    Real,
    /// Boolean: INTEGER 0 or 1.
    Bool,
    /// Utf8: TEXT that PostgreSQL text can hold; INTEGER and REAL as their decimal text.
    Text,
    /// Utf8 written as `numeric`: INTEGER, REAL (±Infinity included) and decimal TEXT.
    Numeric,
    /// Binary: BLOB only (a declared BLOB column, or an untyped column of blobs).
    Blob,
    /// Binary, widened: BLOB, TEXT as its bytes, INTEGER and REAL as their text.
    Bytes,
    /// Date32 from `YYYY-MM-DD` text.
    Date,
    /// Time64(µs) from `HH:MM[:SS[.f]]` text.
    Time,
    /// Timestamp(µs) from `YYYY-MM-DD[ T]HH:MM[:SS[.f]]` text.
    Timestamp,
}

/// Doubles hold every integer up to this magnitude exactly.
const MAX_EXACT_INT: i64 = 1 << 53;

impl Conv {
    /// The Arrow type of a column read this way.
    pub(crate) fn data_type(self) -> DataType {
        match self {
            Conv::Union => DataType::Union(union_fields(), UnionMode::Dense),
            Conv::Int => DataType::Int64,
            Conv::Real => DataType::Float64,
            Conv::Bool => DataType::Boolean,
            Conv::Text | Conv::Numeric => DataType::Utf8,
            Conv::Blob | Conv::Bytes => DataType::Binary,
            Conv::Date => DataType::Date32,
            Conv::Time => DataType::Time64(TimeUnit::Microsecond),
            Conv::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        }
    }

    /// The Arrow field for column `name`.
    pub(crate) fn field(self, name: &str, nullable: bool) -> Field {
        let field = Field::new(name, self.data_type(), nullable);
        if self == Conv::Numeric {
            field.with_metadata(HashMap::from([(META_PG_TYPE.into(), "numeric".into())]))
        } else {
            field
        }
    }

    /// How a reader converts values for `field` (a field this connector described). A Binary
    /// field accepts every storage class: a declared BLOB column was checked by the census.
    pub(crate) fn for_field(field: &Field) -> Option<Conv> {
        Some(match field.data_type() {
            DataType::Union(..) => Conv::Union,
            DataType::Int64 => Conv::Int,
            DataType::Float64 => Conv::Real,
            DataType::Boolean => Conv::Bool,
            DataType::Utf8 if field.metadata().get(META_PG_TYPE).is_some() => Conv::Numeric,
            DataType::Utf8 => Conv::Text,
            DataType::Binary => Conv::Bytes,
            DataType::Date32 => Conv::Date,
            DataType::Time64(TimeUnit::Microsecond) => Conv::Time,
            DataType::Timestamp(TimeUnit::Microsecond, None) => Conv::Timestamp,
            _ => return None,
        })
    }

    /// The PostgreSQL type name, for messages.
    pub(crate) fn pg_name(self) -> &'static str {
        match self {
            Conv::Union => "jsonb",
            Conv::Int => "bigint",
            Conv::Real => "double precision",
            Conv::Bool => "boolean",
            Conv::Text => "text",
            Conv::Numeric => "numeric",
            Conv::Blob | Conv::Bytes => "bytea",
            Conv::Date => "date",
            Conv::Time => "time",
            Conv::Timestamp => "timestamp",
        }
    }

    /// For date-like types, what the values must look like (for warnings).
    pub(crate) fn date_format(self) -> Option<&'static str> {
        match self {
            Conv::Date => Some("YYYY-MM-DD dates"),
            Conv::Time => Some("HH:MM:SS times"),
            Conv::Timestamp => Some("YYYY-MM-DD HH:MM:SS timestamps"),
            _ => None,
        }
    }

    /// Whether `value` can be stored in a column read this way without loss.
    pub(crate) fn fits(self, value: ValueRef<'_>) -> bool {
        match (self, value) {
            (_, ValueRef::Null) | (Conv::Union | Conv::Bytes, _) => true,
            (Conv::Int, ValueRef::Integer(_)) => true,
            (Conv::Real, ValueRef::Real(_)) => true,
            (Conv::Real, ValueRef::Integer(i)) => (-MAX_EXACT_INT..=MAX_EXACT_INT).contains(&i),
            (Conv::Bool, ValueRef::Integer(i)) => i == 0 || i == 1,
            (Conv::Text, ValueRef::Integer(_) | ValueRef::Real(_)) => true,
            (Conv::Text, ValueRef::Text(t)) => pg_text(t).is_some(),
            (Conv::Numeric, ValueRef::Integer(_) | ValueRef::Real(_)) => true,
            (Conv::Numeric, ValueRef::Text(t)) => is_decimal(t),
            (Conv::Blob, ValueRef::Blob(_)) => true,
            (Conv::Date, ValueRef::Text(t)) => parse_date(t).is_some(),
            (Conv::Time, ValueRef::Text(t)) => parse_time(t).is_some(),
            (Conv::Timestamp, ValueRef::Text(t)) => parse_timestamp(t).is_some(),
            _ => false,
        }
    }
}

/// The native-mode reading of a declared type, by SQLite's affinity rules; `None` for a column
/// without a declared type, whose type the census decides.
pub(crate) fn declared(declared: &str) -> Option<Conv> {
    let upper = declared.trim().to_ascii_uppercase();
    let has = |words: &[&str]| words.iter().any(|w| upper.contains(w));
    if upper.is_empty() || upper == "ANY" {
        return None; // no type, or a STRICT table's ANY: any storage class, kept as stored
    }
    Some(if has(&["INT"]) {
        Conv::Int
    } else if has(&["CHAR", "CLOB", "TEXT"]) {
        Conv::Text
    } else if has(&["BLOB"]) {
        Conv::Blob
    } else if has(&["REAL", "FLOA", "DOUB"]) {
        Conv::Real
    } else {
        // NUMERIC affinity: pick out the names with a better PostgreSQL type than numeric.
        let base = upper.split('(').next().unwrap_or_default().trim();
        match base {
            "BOOL" | "BOOLEAN" => Conv::Bool,
            "DATE" => Conv::Date,
            _ if base.starts_with("DATETIME") || base.starts_with("TIMESTAMP") => Conv::Timestamp,
            _ if base == "TIME" || base.starts_with("TIME ") => Conv::Time,
            _ => Conv::Numeric,
        }
    })
}

/// The six children of a JSONB-mode column, one per storage class (TEXT split in two).
pub(crate) fn union_fields() -> UnionFields {
    let tagged = |name: &str, tag: &str| {
        Field::new(name, DataType::Binary, false)
            .with_metadata(HashMap::from([(META_JSON_TAG.into(), tag.into())]))
    };
    // Type ids 0..=5 in this order: `union_id`.
    UnionFields::from_fields([
        Field::new("null", DataType::Null, true),
        Field::new("integer", DataType::Int64, false),
        Field::new("real", DataType::Float64, false),
        Field::new("text", DataType::Utf8, false),
        tagged("blob", "blob"),
        tagged("text_bytes", "bytes"),
    ])
}

/// Union type ids, in `union_fields` order.
pub(crate) mod union_id {
    pub(crate) const NULL: i8 = 0;
    pub(crate) const INTEGER: i8 = 1;
    pub(crate) const REAL: i8 = 2;
    pub(crate) const TEXT: i8 = 3;
    pub(crate) const BLOB: i8 = 4;
    pub(crate) const TEXT_BYTES: i8 = 5;
}

/// TEXT bytes as a `&str` PostgreSQL `text` can hold: valid UTF-8 without NUL bytes.
pub(crate) fn pg_text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|s| !s.contains('\0'))
}

/// A REAL as exact decimal text: the shortest text that reads back as the same double, and
/// `Infinity`/`-Infinity` as PostgreSQL spells them (SQLite never stores NaN).
pub(crate) fn real_text(value: f64, buf: &mut ryu::Buffer) -> &str {
    if value.is_finite() {
        buf.format_finite(value)
    } else if value.is_nan() {
        "NaN"
    } else if value > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// Whether TEXT is a decimal number PostgreSQL's numeric input accepts:
/// `[+-]digits[.digits][e[+-]digits]` (digits on at least one side of the point).
fn is_decimal(text: &[u8]) -> bool {
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut rest = text
        .strip_prefix(b"-")
        .or(text.strip_prefix(b"+"))
        .unwrap_or(text);
    let whole = digits(rest);
    rest = &rest[whole..];
    let mut frac = 0;
    if let Some(r) = rest.strip_prefix(b".") {
        frac = digits(r);
        rest = &r[frac..];
    }
    if whole + frac == 0 {
        return false;
    }
    if let Some(r) = rest.strip_prefix(b"e").or(rest.strip_prefix(b"E")) {
        let r = r.strip_prefix(b"-").or(r.strip_prefix(b"+")).unwrap_or(r);
        // PostgreSQL rejects exponents beyond ±1000 with "value overflows numeric format".
        let exp = digits(r);
        return exp == r.len() && (1..=4).contains(&exp) && parse_u32(r) <= 1000;
    }
    rest.is_empty()
}

fn parse_u32(digits: &[u8]) -> u32 {
    digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

/// `n` ASCII digits at the start of `s`, as a number.
fn fixed_digits(s: &[u8], n: usize) -> Option<u32> {
    let d = s.get(..n)?;
    d.iter().all(u8::is_ascii_digit).then(|| parse_u32(d))
}

/// Days since 1970-01-01 of `YYYY-MM-DD` text (a real calendar date).
pub(crate) fn parse_date(text: &[u8]) -> Option<i32> {
    if text.len() != 10 || text[4] != b'-' || text[7] != b'-' {
        return None;
    }
    let (y, m, d) = (
        fixed_digits(text, 4)?,
        fixed_digits(&text[5..], 2)?,
        fixed_digits(&text[8..], 2)?,
    );
    let date = chrono::NaiveDate::from_ymd_opt(y as i32, m, d)?;
    Some((date - chrono::NaiveDate::default()).num_days() as i32)
}

/// Microseconds since midnight of `HH:MM[:SS[.f{1,9}]]` text; digits past the sixth of the
/// fraction must be zeros.
pub(crate) fn parse_time(text: &[u8]) -> Option<i64> {
    let (h, m) = (fixed_digits(text, 2)?, fixed_digits(text.get(3..)?, 2)?);
    if text[2] != b':' || h > 23 || m > 59 {
        return None;
    }
    let mut micros = (i64::from(h) * 60 + i64::from(m)) * 60_000_000;
    let rest = &text[5..];
    if rest.is_empty() {
        return Some(micros);
    }
    let s = fixed_digits(rest.strip_prefix(b":")?, 2)?;
    if s > 59 {
        return None;
    }
    micros += i64::from(s) * 1_000_000;
    let rest = &rest[3..];
    if rest.is_empty() {
        return Some(micros);
    }
    let frac = rest.strip_prefix(b".")?;
    if !(1..=9).contains(&frac.len()) || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if frac
        .get(6..)
        .is_some_and(|extra| extra.iter().any(|&d| d != b'0'))
    {
        return None; // finer than a microsecond: would be rounded away
    }
    let scaled = (0..6).fold(0, |n, i| {
        n * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'))
    });
    Some(micros + scaled)
}

/// Microseconds since 1970-01-01 00:00 of `YYYY-MM-DD[( |T)HH:MM[:SS[.f{1,9}]]]` text.
pub(crate) fn parse_timestamp(text: &[u8]) -> Option<i64> {
    let days = parse_date(text.get(..10)?)?;
    let time = match text.get(10) {
        None => 0,
        Some(b' ' | b'T') => parse_time(&text[11..])?,
        Some(_) => return None,
    };
    Some(i64::from(days) * 86_400_000_000 + time)
}

/// A short rendering of a value for messages: numbers as they are, text quoted and cut, blobs
/// and undecodable text in hex.
pub(crate) fn render(value: ValueRef<'_>) -> String {
    const MAX_CHARS: usize = 40;
    const MAX_BYTES: usize = 16;
    let hex = |b: &[u8]| {
        let shown: String = b
            .iter()
            .take(MAX_BYTES)
            .map(|x| format!("{x:02x}"))
            .collect();
        let more = if b.len() > MAX_BYTES { "…" } else { "" };
        format!("x'{shown}{more}' ({} bytes)", b.len())
    };
    match value {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => real_text(f, &mut ryu::Buffer::new()).into(),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => {
                let mut out = String::from("'");
                for c in s.chars().take(MAX_CHARS) {
                    match c {
                        '\'' => out.push_str("''"),
                        '\0' => out.push_str("\\0"),
                        c if c.is_control() => out.extend(c.escape_default()),
                        c => out.push(c),
                    }
                }
                out.push('\'');
                if s.chars().nth(MAX_CHARS).is_some() {
                    out.push('…');
                }
                out
            }
            Err(_) => format!("text that is not UTF-8 {}", hex(t)),
        },
        ValueRef::Blob(b) => format!("blob {}", hex(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_rules_pick_the_first_match() {
        let cases = [
            ("INTEGER", Some(Conv::Int)),
            ("unsigned big int", Some(Conv::Int)),
            ("POINT", Some(Conv::Int)), // SQLite's own rule: contains INT
            ("VARCHAR(20)", Some(Conv::Text)),
            ("nchar(5)", Some(Conv::Text)),
            ("CLOB", Some(Conv::Text)),
            ("BLOB", Some(Conv::Blob)),
            ("REAL", Some(Conv::Real)),
            ("DOUBLE PRECISION", Some(Conv::Real)),
            ("FLOAT", Some(Conv::Real)),
            ("BOOLEAN", Some(Conv::Bool)),
            ("bool", Some(Conv::Bool)),
            ("DATE", Some(Conv::Date)),
            ("DATETIME", Some(Conv::Timestamp)),
            ("TIMESTAMP(3)", Some(Conv::Timestamp)),
            ("TIME", Some(Conv::Time)),
            ("NUMERIC", Some(Conv::Numeric)),
            ("DECIMAL(10,2)", Some(Conv::Numeric)),
            ("MONEY", Some(Conv::Numeric)),
            ("", None),
            ("ANY", None),
            ("  ", None),
        ];
        for (decl, want) in cases {
            assert_eq!(declared(decl), want, "{decl}");
        }
    }

    #[test]
    fn dates_times_and_timestamps_parse_strictly() {
        assert_eq!(parse_date(b"1970-01-02"), Some(1));
        assert_eq!(parse_date(b"2024-02-29"), Some(19782));
        assert_eq!(parse_date(b"1969-12-31"), Some(-1));
        for bad in [
            &b"2023-02-29"[..],
            b"2024-1-01",
            b"2024-01-01 ",
            b"yesterday",
            b"20240101",
        ] {
            assert_eq!(parse_date(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_time(b"00:00"), Some(0));
        assert_eq!(parse_time(b"01:02:03"), Some(3_723_000_000));
        assert_eq!(parse_time(b"01:02:03.5"), Some(3_723_500_000));
        assert_eq!(parse_time(b"01:02:03.123456000"), Some(3_723_123_456));
        for bad in [
            &b"24:00"[..],
            b"01:02:03.1234567",
            b"01:02:60",
            b"1:02",
            b"01:02:03.",
        ] {
            assert_eq!(parse_time(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_timestamp(b"1970-01-02"), Some(86_400_000_000));
        assert_eq!(parse_timestamp(b"1970-01-01T00:00:01"), Some(1_000_000));
        assert_eq!(parse_timestamp(b"1970-01-01 00:01"), Some(60_000_000));
        assert_eq!(parse_timestamp(b"1969-12-31 23:59:59.999999"), Some(-1));
        for bad in [
            &b"1970-01-01X00:00"[..],
            b"1970-01-01 00:00Z",
            b"1970-01-01 ",
        ] {
            assert_eq!(
                parse_timestamp(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn decimals_follow_postgres_numeric_input() {
        for good in [
            "0",
            "-12",
            "+3.5",
            ".5",
            "5.",
            "1e10",
            "1.5E-3",
            "3.14159265358979323846",
        ] {
            assert!(is_decimal(good.as_bytes()), "{good}");
        }
        for bad in [
            "", ".", "-", "1e", "1e1001", "0x1A", " 1", "1 ", "abc", "1.2.3", "e5",
        ] {
            assert!(!is_decimal(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn values_fit_by_storage_class() {
        use ValueRef::*;
        assert!(Conv::Int.fits(Integer(1)) && !Conv::Int.fits(Real(1.5)));
        assert!(!Conv::Int.fits(Text(b"abc")) && Conv::Int.fits(Null));
        assert!(Conv::Real.fits(Integer(MAX_EXACT_INT)) && !Conv::Real.fits(Integer(i64::MAX)));
        assert!(Conv::Bool.fits(Integer(1)) && !Conv::Bool.fits(Integer(2)));
        assert!(Conv::Text.fits(Text("é".as_bytes())) && Conv::Text.fits(Integer(3)));
        assert!(!Conv::Text.fits(Text(b"a\0b")) && !Conv::Text.fits(Text(b"\xff")));
        assert!(!Conv::Text.fits(Blob(b"x")));
        assert!(Conv::Numeric.fits(Real(f64::INFINITY)) && Conv::Numeric.fits(Text(b"1.25")));
        assert!(!Conv::Numeric.fits(Text(b"lots")) && !Conv::Numeric.fits(Blob(b"1")));
        assert!(Conv::Blob.fits(Blob(b"")) && !Conv::Blob.fits(Text(b"x")));
        assert!(Conv::Bytes.fits(Text(b"\xff")) && Conv::Union.fits(Blob(b"")));
    }

    #[test]
    fn reals_render_exactly() {
        let mut buf = ryu::Buffer::new();
        assert_eq!(real_text(0.1, &mut buf), "0.1");
        assert_eq!(real_text(19.99, &mut buf), "19.99");
        assert_eq!(real_text(1e300, &mut buf), "1e300");
        assert_eq!(real_text(f64::NEG_INFINITY, &mut buf), "-Infinity");
        assert_eq!(render(ValueRef::Text(b"it's\0")), "'it''s\\0'");
        assert_eq!(render(ValueRef::Blob(&[0, 255])), "blob x'00ff' (2 bytes)");
    }
}
