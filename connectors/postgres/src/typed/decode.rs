//! PostgreSQL binary values to Arrow: one [`Column`] per result column accumulates values
//! decoded from binary COPY fields and finishes into an Arrow array.
//!
//! | PostgreSQL | Arrow |
//! |---|---|
//! | boolean | Boolean |
//! | smallint, integer, bigint | Int16, Int32, Int64 |
//! | real, double precision | Float32, Float64 |
//! | numeric(p,s), p ≤ 38 / ≤ 76 | Decimal128(p,s) / Decimal256(p,s) |
//! | numeric (no precision, or p > 76) | Utf8, `seren.pg_type = numeric` (exact text) |
//! | text, varchar, char, name | Utf8 |
//! | bytea | Binary |
//! | date | Date32 (`infinity` → `i32::MAX`, `-infinity` → `i32::MIN`) |
//! | time | Time64(µs) |
//! | timestamp, timestamptz | Timestamp(µs), with zone `UTC` for timestamptz (infinities → `i64::MAX`/`MIN`) |
//! | uuid | FixedSizeBinary(16), extension `arrow.uuid` |
//! | json, jsonb | Utf8, `seren.pg_type = jsonb` |
//! | one-dimensional arrays of the above | List of the element type |
//! | anything else | read as text (`column::text`), Utf8 |

use arrow_array::builder::*;
use arrow_array::{ArrayRef, ListArray};
use arrow_buffer::{i256, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, FieldRef, TimeUnit};
use pipeline::types::{META_EXTENSION, META_PG_TYPE};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

/// Days from 1970-01-01 to 2000-01-01.
const EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// How a column's binary values are read, decided from its type in the catalog.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// boolean
    Bool,
    /// smallint
    Int2,
    /// integer
    Int4,
    /// bigint
    Int8,
    /// real
    Float4,
    /// double precision
    Float8,
    /// numeric with precision and scale, as a decimal
    Decimal(u8, i8),
    /// numeric as exact text
    NumericText,
    /// text-like types, and columns cast to text
    Text,
    /// bytea
    Bytea,
    /// date
    Date,
    /// time
    Time,
    /// timestamp
    Timestamp,
    /// timestamptz
    Timestamptz,
    /// uuid
    Uuid,
    /// json (text)
    Json,
    /// jsonb (version byte, then text)
    Jsonb,
    /// one-dimensional array of the element kind
    Array(Box<Kind>),
}

impl Kind {
    /// The kind of a scalar type OID with its type modifier, or `None` when it is read as text.
    pub fn of_scalar(oid: u32, typmod: i32) -> Option<Kind> {
        Some(match oid {
            16 => Kind::Bool,
            21 => Kind::Int2,
            23 => Kind::Int4,
            20 => Kind::Int8,
            700 => Kind::Float4,
            701 => Kind::Float8,
            1700 => match numeric_typmod(typmod) {
                Some((p, s)) if p <= 76 && s >= 0 && s <= i16::from(p) => Kind::Decimal(p, s as i8),
                _ => Kind::NumericText,
            },
            25 | 1043 | 1042 | 19 => Kind::Text,
            17 => Kind::Bytea,
            1082 => Kind::Date,
            1083 => Kind::Time,
            1114 => Kind::Timestamp,
            1184 => Kind::Timestamptz,
            2950 => Kind::Uuid,
            114 => Kind::Json,
            3802 => Kind::Jsonb,
            _ => return None,
        })
    }

    /// The Arrow field for a column of this kind.
    pub fn field(&self, name: &str, nullable: bool) -> Field {
        let meta = |k: &str, v: &str| HashMap::from([(k.to_string(), v.to_string())]);
        let data_type = match self {
            Kind::Bool => DataType::Boolean,
            Kind::Int2 => DataType::Int16,
            Kind::Int4 => DataType::Int32,
            Kind::Int8 => DataType::Int64,
            Kind::Float4 => DataType::Float32,
            Kind::Float8 => DataType::Float64,
            Kind::Decimal(p, s) if *p <= 38 => DataType::Decimal128(*p, *s),
            Kind::Decimal(p, s) => DataType::Decimal256(*p, *s),
            Kind::NumericText => {
                return Field::new(name, DataType::Utf8, nullable)
                    .with_metadata(meta(META_PG_TYPE, "numeric"))
            }
            Kind::Json | Kind::Jsonb => {
                return Field::new(name, DataType::Utf8, nullable)
                    .with_metadata(meta(META_PG_TYPE, "jsonb"))
            }
            Kind::Text => DataType::Utf8,
            Kind::Bytea => DataType::Binary,
            Kind::Date => DataType::Date32,
            Kind::Time => DataType::Time64(TimeUnit::Microsecond),
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Uuid => {
                return Field::new(name, DataType::FixedSizeBinary(16), nullable)
                    .with_metadata(meta(META_EXTENSION, "arrow.uuid"))
            }
            Kind::Array(element) => DataType::List(Arc::new(element.field("item", true))),
        };
        Field::new(name, data_type, nullable)
    }
}

/// Precision and scale of a `numeric` type modifier.
fn numeric_typmod(typmod: i32) -> Option<(u8, i16)> {
    if typmod < 4 {
        return None;
    }
    let t = typmod - 4;
    let precision = u8::try_from((t >> 16) & 0xffff).ok()?;
    // The scale is an 11-bit signed number (negative scales exist since PostgreSQL 15).
    let scale = (((t & 0x7ff) ^ 0x400) - 0x400) as i16;
    Some((precision, scale))
}

/// Values of one column being gathered into an Arrow array.
pub struct Column {
    kind: Kind,
    values: Values,
}

enum Values {
    Bool(BooleanBuilder),
    Int2(Int16Builder),
    Int4(Int32Builder),
    Int8(Int64Builder),
    Float4(Float32Builder),
    Float8(Float64Builder),
    Decimal128(Decimal128Builder, i8),
    Decimal256(Decimal256Builder, i8),
    Str(StringBuilder),
    Bytes(BinaryBuilder),
    Uuid(FixedSizeBinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    List {
        field: FieldRef,
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        elements: Box<Column>,
    },
}

impl Column {
    /// An empty column of `kind`.
    pub fn new(kind: &Kind) -> Column {
        let values = match kind {
            Kind::Bool => Values::Bool(BooleanBuilder::new()),
            Kind::Int2 => Values::Int2(Int16Builder::new()),
            Kind::Int4 => Values::Int4(Int32Builder::new()),
            Kind::Int8 => Values::Int8(Int64Builder::new()),
            Kind::Float4 => Values::Float4(Float32Builder::new()),
            Kind::Float8 => Values::Float8(Float64Builder::new()),
            Kind::Decimal(p, s) if *p <= 38 => Values::Decimal128(
                Decimal128Builder::new()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision ≤ 38 and 0 ≤ scale ≤ precision"),
                *s,
            ),
            Kind::Decimal(p, s) => Values::Decimal256(
                Decimal256Builder::new()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision ≤ 76 and 0 ≤ scale ≤ precision"),
                *s,
            ),
            Kind::NumericText | Kind::Text | Kind::Json | Kind::Jsonb => {
                Values::Str(StringBuilder::new())
            }
            Kind::Bytea => Values::Bytes(BinaryBuilder::new()),
            Kind::Uuid => Values::Uuid(FixedSizeBinaryBuilder::new(16)),
            Kind::Date => Values::Date(Date32Builder::new()),
            Kind::Time => Values::Time(Time64MicrosecondBuilder::new()),
            Kind::Timestamp => Values::Timestamp(TimestampMicrosecondBuilder::new()),
            Kind::Timestamptz => {
                Values::Timestamp(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            }
            Kind::Array(element) => Values::List {
                field: Arc::new(element.field("item", true)),
                offsets: vec![0],
                nulls: NullBufferBuilder::new(0),
                elements: Box::new(Column::new(element)),
            },
        };
        Column {
            kind: kind.clone(),
            values,
        }
    }

    /// Append one value (`None` for NULL) in PostgreSQL's binary format, or say why it cannot
    /// be read.
    pub fn push(&mut self, value: Option<&[u8]>) -> Result<(), String> {
        let Some(v) = value else {
            self.push_null();
            return Ok(());
        };
        match &mut self.values {
            Values::Bool(b) => b.append_value(fixed::<1>(v)?[0] != 0),
            Values::Int2(b) => b.append_value(i16::from_be_bytes(fixed(v)?)),
            Values::Int4(b) => b.append_value(i32::from_be_bytes(fixed(v)?)),
            Values::Int8(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
            Values::Float4(b) => b.append_value(f32::from_be_bytes(fixed(v)?)),
            Values::Float8(b) => b.append_value(f64::from_be_bytes(fixed(v)?)),
            Values::Decimal128(b, scale) => {
                let scaled = scaled_decimal(v, *scale)?;
                let n = scaled.parse::<i128>().map_err(|e| e.to_string())?;
                b.append_value(n)
            }
            Values::Decimal256(b, scale) => {
                let scaled = scaled_decimal(v, *scale)?;
                let n = i256::from_string(&scaled).ok_or("numeric out of range")?;
                b.append_value(n)
            }
            Values::Str(b) => match self.kind {
                Kind::NumericText => b.append_value(numeric_text(v)?),
                Kind::Jsonb => {
                    b.append_value(utf8(v.strip_prefix(&[1]).ok_or("unknown jsonb version")?)?)
                }
                _ => b.append_value(utf8(v)?),
            },
            Values::Bytes(b) => b.append_value(v),
            Values::Uuid(b) => b.append_value(v).map_err(|e| e.to_string())?,
            Values::Date(b) => {
                let days = i32::from_be_bytes(fixed(v)?);
                b.append_value(match days {
                    i32::MAX | i32::MIN => days,
                    d => d.checked_add(EPOCH_DAYS).ok_or("date out of range")?,
                })
            }
            Values::Time(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
            Values::Timestamp(b) => {
                let micros = i64::from_be_bytes(fixed(v)?);
                b.append_value(match micros {
                    i64::MAX | i64::MIN => micros,
                    m => m
                        .checked_add(EPOCH_MICROS)
                        .ok_or("timestamp out of range")?,
                })
            }
            Values::List {
                offsets,
                nulls,
                elements,
                ..
            } => {
                let count = read_array(v, |element| elements.push(element))?;
                let last = *offsets.last().expect("offsets start with 0");
                let next = i32::try_from(count)
                    .ok()
                    .and_then(|c| last.checked_add(c))
                    .ok_or("too many array elements in one batch")?;
                offsets.push(next);
                nulls.append_non_null();
            }
        }
        Ok(())
    }

    fn push_null(&mut self) {
        match &mut self.values {
            Values::Bool(b) => b.append_null(),
            Values::Int2(b) => b.append_null(),
            Values::Int4(b) => b.append_null(),
            Values::Int8(b) => b.append_null(),
            Values::Float4(b) => b.append_null(),
            Values::Float8(b) => b.append_null(),
            Values::Decimal128(b, _) => b.append_null(),
            Values::Decimal256(b, _) => b.append_null(),
            Values::Str(b) => b.append_null(),
            Values::Bytes(b) => b.append_null(),
            Values::Uuid(b) => b.append_null(),
            Values::Date(b) => b.append_null(),
            Values::Time(b) => b.append_null(),
            Values::Timestamp(b) => b.append_null(),
            Values::List { offsets, nulls, .. } => {
                offsets.push(*offsets.last().expect("offsets start with 0"));
                nulls.append_null();
            }
        }
    }

    /// The values gathered so far as an array; the column starts empty again.
    pub fn finish(&mut self) -> ArrayRef {
        match &mut self.values {
            Values::Bool(b) => Arc::new(b.finish()),
            Values::Int2(b) => Arc::new(b.finish()),
            Values::Int4(b) => Arc::new(b.finish()),
            Values::Int8(b) => Arc::new(b.finish()),
            Values::Float4(b) => Arc::new(b.finish()),
            Values::Float8(b) => Arc::new(b.finish()),
            Values::Decimal128(b, _) => Arc::new(b.finish()),
            Values::Decimal256(b, _) => Arc::new(b.finish()),
            Values::Str(b) => Arc::new(b.finish()),
            Values::Bytes(b) => Arc::new(b.finish()),
            Values::Uuid(b) => Arc::new(b.finish()),
            Values::Date(b) => Arc::new(b.finish()),
            Values::Time(b) => Arc::new(b.finish()),
            Values::Timestamp(b) => Arc::new(b.finish()),
            Values::List {
                field,
                offsets,
                nulls,
                elements,
            } => {
                let offsets =
                    OffsetBuffer::new(ScalarBuffer::from(std::mem::replace(offsets, vec![0])));
                Arc::new(ListArray::new(
                    field.clone(),
                    offsets,
                    elements.finish(),
                    nulls.finish(),
                ))
            }
        }
    }
}

fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
    v.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
}

fn utf8(v: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(v).map_err(|e| format!("invalid UTF-8: {e}"))
}

/// Read a binary array's elements, calling `element` for each; returns their count. Only
/// one-dimensional arrays (or empty ones) are accepted.
fn read_array(
    v: &[u8],
    mut element: impl FnMut(Option<&[u8]>) -> Result<(), String>,
) -> Result<usize, String> {
    let word = |at: usize| -> Result<i32, String> {
        v.get(at..at + 4)
            .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| "truncated array".to_string())
    };
    let ndim = word(0)?;
    match ndim {
        0 => return Ok(0),
        1 => {}
        n => {
            return Err(format!(
                "a {n}-dimensional array; only one-dimensional arrays map to Parquet lists, so \
                 leave the table out or convert the column in the source (e.g. a view)"
            ))
        }
    }
    let count = usize::try_from(word(12)?).map_err(|_| "negative array length")?;
    let mut at = 20;
    for _ in 0..count {
        let len = word(at)?;
        at += 4;
        if len < 0 {
            element(None)?;
        } else {
            let end = at + len as usize;
            element(Some(v.get(at..end).ok_or("truncated array element")?))?;
            at = end;
        }
    }
    Ok(count)
}

/// A binary `numeric` as its exact decimal text, e.g. `-12.340`.
pub fn numeric_text(v: &[u8]) -> Result<String, String> {
    let half = |at: usize| -> Result<i16, String> {
        v.get(at..at + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".to_string())
    };
    let (ndigits, weight, sign, dscale) = (half(0)?, half(2)?, half(4)? as u16, half(6)?);
    let digits: Vec<i16> = (0..ndigits.max(0) as usize)
        .map(|i| half(8 + 2 * i))
        .collect::<Result<_, _>>()?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        other => return Err(format!("unknown numeric sign {other:#x}")),
    }
    let digit = |i: i32| -> i16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=i32::from(weight) {
            if i == 0 {
                write!(out, "{}", digit(i)).expect("write to a String");
            } else {
                write!(out, "{:04}", digit(i)).expect("write to a String");
            }
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut i = i32::from(weight) + 1;
        while fraction.len() < dscale as usize {
            write!(fraction, "{:04}", digit(i)).expect("write to a String");
            i += 1;
        }
        fraction.truncate(dscale as usize);
        out.push('.');
        out.push_str(&fraction);
    }
    Ok(out)
}

/// A binary `numeric` as the digits of an integer scaled by 10^`scale` (for decimals).
fn scaled_decimal(v: &[u8], scale: i8) -> Result<String, String> {
    let text = numeric_text(v)?;
    if text.ends_with("NaN") || text.ends_with("Infinity") {
        return Err(format!(
            "{text} has no decimal representation in Parquet; change the value in the source \
             or leave the table out"
        ));
    }
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let scale = usize::try_from(scale).map_err(|_| "negative scale")?;
    if frac.len() > scale {
        return Err(format!("{text} has more than {scale} decimal places"));
    }
    Ok(format!("{int}{frac}{}", "0".repeat(scale - frac.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        for h in [ndigits, weight, sign as i16, dscale] {
            v.extend_from_slice(&h.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_become_exact_text() {
        // 12345.678 = groups [1, 2345, 6780], weight 1, dscale 3
        let v = numeric(3, 1, 0, 3, &[1, 2345, 6780]);
        assert_eq!(numeric_text(&v).unwrap(), "12345.678");
        // -0.00012 = groups [0001, 2000] from weight -1 (0.0001 2000), dscale 5
        let v = numeric(2, -1, 0x4000, 5, &[1, 2000]);
        assert_eq!(numeric_text(&v).unwrap(), "-0.00012");
        // 0 with dscale 2
        assert_eq!(numeric_text(&numeric(0, 0, 0, 2, &[])).unwrap(), "0.00");
        // 1e8 = group [1] at weight 2
        assert_eq!(
            numeric_text(&numeric(1, 2, 0, 0, &[1])).unwrap(),
            "100000000"
        );
        assert_eq!(numeric_text(&numeric(0, 0, 0xC000, 0, &[])).unwrap(), "NaN");
        assert_eq!(
            scaled_decimal(&numeric(1, 0, 0, 1, &[5]), 3).unwrap(),
            "5000"
        );
    }

    #[test]
    fn numeric_typmods_decode() {
        // numeric(10,2): ((10 << 16) | 2) + 4
        assert_eq!(numeric_typmod((10 << 16 | 2) + 4), Some((10, 2)));
        assert_eq!(numeric_typmod(-1), None);
        assert_eq!(Kind::of_scalar(1700, -1), Some(Kind::NumericText));
        assert_eq!(
            Kind::of_scalar(1700, (40 << 16 | 5) + 4),
            Some(Kind::Decimal(40, 5))
        );
    }
}
