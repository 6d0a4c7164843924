//! Binlog values → the values the binary protocol gives for the same column, so the snapshot
//! reader's conversion (and so the encoders) produce the same bytes for both.
//!
//! Differences handled (mysql_common 0.37.3 and MariaDB 10.11): TIMESTAMP arrives as epoch
//! seconds (`"sec[.usec]"`), ENUM as its 1-based index, SET as a little-endian bitmask, YEAR as
//! text with 1900 added (so 0 reads `"1900"`), MEDIUMINT unsigned-or-not regardless of sign,
//! GEOMETRY with its 4-byte SRID prefix, BINARY(n) without its trailing zero padding, and CHAR
//! with trailing spaces the server strips on SELECT.

use crate::catalog::Column;
use chrono::{DateTime, Datelike, Timelike};
use mysql_async::Value;

/// Bring a binlog value of `column` to its binary-protocol form.
pub(crate) fn normalize(column: &Column, value: Value) -> Result<Value, String> {
    if matches!(value, Value::NULL) {
        return Ok(value);
    }
    let bad = |v: &Value| {
        format!(
            "unexpected binlog value {v:?} for a {} column",
            column.column_type
        )
    };
    Ok(match column.data_type.as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => {
            let bits = match column.data_type.as_str() {
                "tinyint" => 8,
                "smallint" => 16,
                "mediumint" => 24,
                "bigint" => 64,
                _ => 32,
            };
            integer(value, bits, column.unsigned()).ok_or_else(|| bad(&Value::NULL))?
        }
        "year" => match value {
            Value::Bytes(b) => {
                let y: i64 = std::str::from_utf8(&b)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or("bad YEAR")?;
                Value::Int(if y == 1900 { 0 } else { y })
            }
            v => v,
        },
        "timestamp" => match value {
            Value::Int(secs) => timestamp(secs, 0),
            Value::Bytes(b) => {
                let text = String::from_utf8_lossy(&b).into_owned();
                let (secs, frac) = text.split_once('.').unwrap_or((&text, "0"));
                let secs: i64 = secs.parse().map_err(|_| bad(&Value::Bytes(b.clone())))?;
                let us: u32 = format!("{frac:0<6}")[..6].parse().unwrap_or(0);
                timestamp(secs, us)
            }
            v => v,
        },
        "enum" => match value {
            Value::Int(i) => {
                let labels = column.labels();
                let label = usize::try_from(i - 1)
                    .ok()
                    .and_then(|k| labels.get(k).cloned());
                Value::Bytes(label.unwrap_or_default().into_bytes())
            }
            v => v,
        },
        "set" => match value {
            Value::Bytes(mask) => {
                let bits = mask
                    .iter()
                    .rev()
                    .fold(0u64, |acc, b| acc << 8 | u64::from(*b));
                let labels: Vec<String> = column
                    .labels()
                    .into_iter()
                    .enumerate()
                    .filter(|(k, _)| bits >> k & 1 == 1)
                    .map(|(_, l)| l)
                    .collect();
                Value::Bytes(labels.join(",").into_bytes())
            }
            Value::Int(bits) => {
                let labels: Vec<String> = column
                    .labels()
                    .into_iter()
                    .enumerate()
                    .filter(|(k, _)| bits >> k & 1 == 1)
                    .map(|(_, l)| l)
                    .collect();
                Value::Bytes(labels.join(",").into_bytes())
            }
            v => v,
        },
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => match value {
            Value::Bytes(b) if b.len() >= 4 => Value::Bytes(b[4..].to_vec()),
            v => v,
        },
        "binary" => match value {
            Value::Bytes(mut b) => {
                let width = declared_length(&column.column_type).unwrap_or(b.len());
                if b.len() < width {
                    b.resize(width, 0);
                }
                Value::Bytes(b)
            }
            v => v,
        },
        "char" if column.charset.as_deref() != Some("binary") => match value {
            Value::Bytes(mut b) => {
                while b.last() == Some(&b' ') {
                    b.pop();
                }
                Value::Bytes(b)
            }
            v => v,
        },
        _ => value,
    })
}

/// An integer of `bits` width read without regard to sign, as the column's signedness says.
fn integer(value: Value, bits: u32, unsigned: bool) -> Option<Value> {
    let raw: i128 = match value {
        Value::Int(v) => i128::from(v),
        Value::UInt(v) => i128::from(v),
        Value::Bytes(b) => std::str::from_utf8(&b).ok()?.parse().ok()?,
        _ => return None,
    };
    let modulus = 1i128 << bits;
    let v = match unsigned {
        true if raw < 0 => raw + modulus,
        false if raw >= modulus / 2 => raw - modulus,
        _ => raw,
    };
    Some(match i64::try_from(v) {
        Ok(i) => Value::Int(i),
        Err(_) => Value::UInt(u64::try_from(v).ok()?),
    })
}

/// A TIMESTAMP (seconds since the epoch, UTC) as the protocol's date value; 0 is the zero date.
fn timestamp(secs: i64, us: u32) -> Value {
    if secs == 0 && us == 0 {
        return Value::Date(0, 0, 0, 0, 0, 0, 0);
    }
    match DateTime::from_timestamp(secs, 0) {
        Some(t) => Value::Date(
            t.year() as u16,
            t.month() as u8,
            t.day() as u8,
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
            us,
        ),
        None => Value::NULL,
    }
}

/// `n` of a `binary(n)` declaration.
fn declared_length(column_type: &str) -> Option<usize> {
    column_type
        .split_once('(')?
        .1
        .split_once(')')?
        .0
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_widths_are_restored() {
        assert_eq!(
            integer(Value::Int(16_777_215), 24, false),
            Some(Value::Int(-1))
        );
        assert_eq!(
            integer(Value::Int(-1), 64, true),
            Some(Value::UInt(u64::MAX))
        );
        assert_eq!(integer(Value::Int(255), 8, true), Some(Value::Int(255)));
        assert_eq!(timestamp(1, 500), Value::Date(1970, 1, 1, 0, 0, 1, 500));
        assert_eq!(declared_length("binary(4)"), Some(4));
    }
}
