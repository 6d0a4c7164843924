//! `--flatten`: chosen top-level fields also written as typed columns beside `data` (which keeps
//! the whole document). A missing field, `null` and `undefined` are NULL; any other value that
//! the column's type cannot hold exactly is an error naming the document, never a silent NULL.
//!
//! | column type | takes |
//! |---|---|
//! | text | strings and symbols as they are, an ObjectId as its 24 hex digits, any other value as its `data` JSON |
//! | integer, bigint | Int32, Int64 and integral Doubles within the type's range |
//! | double precision | Doubles (NaN and ±Infinity too), Int32, Int64 within ±2^53 |
//! | numeric | Int32, Int64, Double, Decimal128 (exact; NaN and ±Infinity too) |
//! | boolean | Booleans |
//! | timestamptz | DateTimes |
//! | jsonb | any value, as its `data` JSON |

use crate::encode::{self, Element, Problem};
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::ArrayRef;
use arrow_schema::{DataType, Field, TimeUnit};
use pipeline::types::META_PG_TYPE;
use pipeline::{FlatColumn, PgType};
use std::collections::HashMap;
use std::sync::Arc;

/// The Arrow field of a flat column.
pub(crate) fn field(column: &FlatColumn) -> Field {
    let utc = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let (data_type, pg_type) = match column.pg_type {
        PgType::Int4 => (DataType::Int32, None),
        PgType::Int8 => (DataType::Int64, None),
        PgType::Float8 => (DataType::Float64, None),
        PgType::Numeric(_) => (DataType::Utf8, Some("numeric")),
        PgType::Bool => (DataType::Boolean, None),
        PgType::Timestamptz => (utc(), None),
        PgType::Jsonb => (DataType::Utf8, Some("jsonb")),
        _ => (DataType::Utf8, None),
    };
    let field = Field::new(&column.name, data_type, true);
    match pg_type {
        Some(ty) => field.with_metadata(HashMap::from([(META_PG_TYPE.into(), ty.into())])),
        None => field,
    }
}

/// Builds one flat column's array.
pub(crate) struct FlatBuilder {
    name: String,
    values: Values,
}

enum Values {
    Text(StringBuilder),
    Int4(Int32Builder),
    Int8(Int64Builder),
    Float8(Float64Builder),
    Numeric(StringBuilder),
    Bool(BooleanBuilder),
    Timestamptz(TimestampMicrosecondBuilder),
    Jsonb(StringBuilder),
}

/// 2^53: integers beyond it are not all doubles.
const EXACT_DOUBLE: i64 = 1 << 53;

impl FlatBuilder {
    /// A builder for the column `field` (made by [`field`]).
    pub(crate) fn new(field: &Field) -> FlatBuilder {
        let values = match PgType::for_field(field) {
            Some(PgType::Int4) => Values::Int4(Int32Builder::new()),
            Some(PgType::Int8) => Values::Int8(Int64Builder::new()),
            Some(PgType::Float8) => Values::Float8(Float64Builder::new()),
            Some(PgType::Numeric(_)) => Values::Numeric(StringBuilder::new()),
            Some(PgType::Bool) => Values::Bool(BooleanBuilder::new()),
            Some(PgType::Timestamptz) => {
                Values::Timestamptz(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            }
            Some(PgType::Jsonb) => Values::Jsonb(StringBuilder::new()),
            _ => Values::Text(StringBuilder::new()),
        };
        FlatBuilder {
            name: field.name().clone(),
            values,
        }
    }

    /// The field (column) name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Append the field's value (`None`: the document lacks the field), or say why its column
    /// cannot hold it; nothing is appended then.
    pub(crate) fn push(&mut self, value: Option<Element<'_>>) -> Result<(), Problem> {
        let Some(e) = value.filter(|e| !matches!(e.kind, 0x06 | 0x0A)) else {
            self.push_null();
            return Ok(());
        };
        let v = e.value;
        let int64 = || i64::from_le_bytes(v.try_into().expect("8 bytes"));
        let int32 = || i32::from_le_bytes(v.try_into().expect("4 bytes"));
        let double = || f64::from_le_bytes(v.try_into().expect("8 bytes"));
        let json = || {
            let mut out = String::new();
            encode::write_value(&mut out, e).map(|()| out)
        };
        let wrong = |sql: &str| mismatch(&self.name, e, sql);
        match &mut self.values {
            Values::Text(b) => match e.kind {
                0x02 | 0x0E => {
                    let bytes = encode::string_bytes(v)?;
                    match std::str::from_utf8(bytes) {
                        Ok(s) if !s.contains('\0') => b.append_value(s),
                        _ => {
                            return Err(format!(
                                "field `{}` holds a string with a NUL character or invalid \
                                 UTF-8, which PostgreSQL text cannot hold; flatten it as jsonb \
                                 (which tags such strings) instead",
                                self.name
                            ))
                        }
                    }
                }
                0x07 => b.append_value(encode::hex(v)),
                _ => b.append_value(json()?),
            },
            Values::Int4(b) => match e.kind {
                0x10 => b.append_value(int32()),
                0x12 => b.append_value(i32::try_from(int64()).map_err(|_| wrong("integer"))?),
                0x01 => {
                    let d = double();
                    let bound = -(i32::MIN as f64);
                    if d.fract() != 0.0 || !(-bound..bound).contains(&d) {
                        return Err(wrong("integer"));
                    }
                    b.append_value(d as i32)
                }
                _ => return Err(wrong("integer")),
            },
            Values::Int8(b) => match e.kind {
                0x10 => b.append_value(int32().into()),
                0x12 => b.append_value(int64()),
                0x01 => {
                    let d = double();
                    // -2^63 ≤ d < 2^63, both bounds exact doubles.
                    let bound = -(i64::MIN as f64);
                    if d.fract() != 0.0 || !(-bound..bound).contains(&d) {
                        return Err(wrong("bigint"));
                    }
                    b.append_value(d as i64)
                }
                _ => return Err(wrong("bigint")),
            },
            Values::Float8(b) => match e.kind {
                0x01 => b.append_value(double()),
                0x10 => b.append_value(int32().into()),
                0x12 if int64().abs() <= EXACT_DOUBLE => b.append_value(int64() as f64),
                _ => return Err(wrong("double precision")),
            },
            Values::Numeric(b) => match e.kind {
                0x10 => b.append_value(int32().to_string()),
                0x12 => b.append_value(int64().to_string()),
                0x01 => {
                    let d = double();
                    if d.is_nan() {
                        b.append_value("NaN")
                    } else if d.is_infinite() {
                        b.append_value(if d > 0.0 { "Infinity" } else { "-Infinity" })
                    } else {
                        let mut out = String::new();
                        encode::write_double(&mut out, d.abs());
                        if d.is_sign_negative() && d != 0.0 {
                            out.insert(0, '-');
                        }
                        b.append_value(out)
                    }
                }
                0x13 => {
                    let bytes: [u8; 16] = v.try_into().expect("16 bytes");
                    b.append_value(mongodb::bson::Decimal128::from_bytes(bytes).to_string())
                }
                _ => return Err(wrong("numeric")),
            },
            Values::Bool(b) => match e.kind {
                0x08 => b.append_value(v[0] != 0),
                _ => return Err(wrong("boolean")),
            },
            Values::Timestamptz(b) => match e.kind {
                0x09 => b.append_value(
                    int64()
                        .checked_mul(1000)
                        .ok_or_else(|| wrong("timestamptz"))?,
                ),
                _ => return Err(wrong("timestamptz")),
            },
            Values::Jsonb(b) => b.append_value(json()?),
        }
        Ok(())
    }

    /// Append NULL (a deletion's row, or a document without the field).
    pub(crate) fn push_null(&mut self) {
        match &mut self.values {
            Values::Text(b) | Values::Numeric(b) | Values::Jsonb(b) => b.append_null(),
            Values::Int4(b) => b.append_null(),
            Values::Int8(b) => b.append_null(),
            Values::Float8(b) => b.append_null(),
            Values::Bool(b) => b.append_null(),
            Values::Timestamptz(b) => b.append_null(),
        }
    }

    /// The array built so far; the builder starts over empty.
    pub(crate) fn finish(&mut self) -> ArrayRef {
        match &mut self.values {
            Values::Text(b) | Values::Numeric(b) | Values::Jsonb(b) => Arc::new(b.finish()),
            Values::Int4(b) => Arc::new(b.finish()),
            Values::Int8(b) => Arc::new(b.finish()),
            Values::Float8(b) => Arc::new(b.finish()),
            Values::Bool(b) => Arc::new(b.finish()),
            Values::Timestamptz(b) => Arc::new(b.finish()),
        }
    }
}

/// Why the column of field `name` (of type `sql`) cannot hold `e`.
fn mismatch(name: &str, e: Element<'_>, sql: &str) -> Problem {
    let mut shown = String::new();
    if encode::write_value(&mut shown, e).is_err() {
        shown = "(malformed)".into();
    }
    if shown.chars().count() > 80 {
        shown = shown.chars().take(77).collect::<String>() + "…";
    }
    format!(
        "field `{name}` holds {} {shown}, which a column of type {sql} cannot hold exactly; \
         flatten it with another type (text and jsonb take any value), or correct the document",
        encode::type_name(e.kind)
    )
}
