//! Rows to Arrow: one builder per column, fed server values (binary protocol, or binlog values
//! brought to the same form), cut into batches bounded by rows and bytes.

use crate::render;
use crate::types::{Conv, Render};
use arrow_array::builder::*;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_buffer::i256;
use arrow_schema::SchemaRef;
use chrono::NaiveDate;
use mysql_async::Value;
use pipeline::{Error, Result};
use std::sync::Arc;

/// Why one value could not be converted (prefixed with table, column and row by the caller).
pub(crate) type Problem = String;

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// One column's builder.
enum Builder {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    D128(Decimal128Builder),
    D256(Decimal256Builder),
    Str(StringBuilder),
    Bin(BinaryBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    Dur(DurationMicrosecondBuilder),
    List(ListBuilder<StringBuilder>),
}

/// Builders for a whole row, and the batch limits.
pub(crate) struct Batches {
    schema: SchemaRef,
    convs: Vec<Conv>,
    builders: Vec<Builder>,
    /// Scratch for rendered JSON values.
    text: String,
    pub rows: usize,
    bytes: usize,
    max_rows: usize,
    max_bytes: usize,
    /// Zero dates written as NULL (native mode).
    pub zero_dates: u64,
    /// Whether a zero date is an error instead (`--zero-dates error`).
    pub reject_zero_dates: bool,
}

impl Batches {
    pub(crate) fn new(
        schema: SchemaRef,
        convs: Vec<Conv>,
        max_rows: usize,
        max_bytes: usize,
    ) -> Self {
        let builders = schema
            .fields()
            .iter()
            .map(|f| Builder::new(f.data_type()))
            .collect();
        Batches {
            schema,
            convs,
            builders,
            text: String::new(),
            rows: 0,
            bytes: 0,
            max_rows: max_rows.max(1),
            max_bytes: max_bytes.max(1),
            zero_dates: 0,
            reject_zero_dates: false,
        }
    }

    /// Append a row of values, one per column in schema order.
    pub(crate) fn push_row(&mut self, values: Vec<Value>) -> Result<(), (usize, Problem)> {
        for (i, value) in values.into_iter().enumerate() {
            self.push(i, value).map_err(|p| (i, p))?;
        }
        self.rows += 1;
        Ok(())
    }

    /// The name of column `i`, for messages.
    pub(crate) fn column_name(&self, i: usize) -> &str {
        self.schema.field(i).name()
    }

    /// Whether the batch reached its row or byte bound.
    pub(crate) fn full(&self) -> bool {
        self.rows >= self.max_rows || self.bytes >= self.max_bytes
    }

    /// The batch built so far; the builders start over.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| Error::conversion(format!("building a batch: {e}")))
    }

    fn push(&mut self, i: usize, value: Value) -> Result<(), Problem> {
        let conv = self.convs[i];
        self.bytes += match &value {
            Value::Bytes(b) => b.len() + 4,
            _ => 8,
        };
        let b = &mut self.builders[i];
        if matches!(value, Value::NULL) {
            b.append_null();
            return Ok(());
        }
        let wrong = |v: &Value| format!("unexpected value {} for {conv:?}", render::describe(v));
        match (b, conv) {
            (Builder::Bool(b), _) => {
                b.append_value(bits_of(&value).ok_or_else(|| wrong(&value))? != 0)
            }
            (Builder::I8(b), _) => b.append_value(int(&value)?),
            (Builder::I16(b), _) => b.append_value(int(&value)?),
            (Builder::I32(b), _) => b.append_value(int(&value)?),
            (Builder::I64(b), Conv::BitInt) => {
                let v = bits_of(&value).ok_or_else(|| wrong(&value))?;
                b.append_value(v as i64)
            }
            (Builder::I64(b), _) => b.append_value(int(&value)?),
            (Builder::U8(b), _) => b.append_value(int(&value)?),
            (Builder::U16(b), _) => b.append_value(int(&value)?),
            (Builder::U32(b), _) => b.append_value(int(&value)?),
            (Builder::U64(b), Conv::BitWide) => {
                b.append_value(bits_of(&value).ok_or_else(|| wrong(&value))?)
            }
            (Builder::U64(b), _) => b.append_value(int(&value)?),
            (Builder::F32(b), _) => match value {
                Value::Float(f) => b.append_value(f),
                Value::Double(f) => b.append_value(f as f32),
                v => return Err(wrong(&v)),
            },
            (Builder::F64(b), _) => match value {
                Value::Double(f) => b.append_value(f),
                Value::Float(f) => b.append_value(f64::from(f)),
                v => return Err(wrong(&v)),
            },
            (Builder::D128(b), Conv::Decimal(_, s)) => {
                let digits = decimal_digits(&value, s)?;
                b.append_value(digits.parse::<i128>().map_err(|_| wrong(&value))?)
            }
            (Builder::D256(b), Conv::Decimal(_, s)) => {
                let digits = decimal_digits(&value, s)?;
                b.append_value(i256::from_string(&digits).ok_or_else(|| wrong(&value))?)
            }
            (Builder::Str(b), Conv::Rendered(kind)) => {
                self.text.clear();
                rendered(&mut self.text, kind, &value).ok_or_else(|| wrong(&value))?;
                b.append_value(&self.text)
            }
            (Builder::Str(b), _) => b.append_value(utf8(value)?),
            (Builder::Bin(b), _) => match value {
                Value::Bytes(v) => b.append_value(v),
                v => return Err(wrong(&v)),
            },
            (Builder::Date(b), _) => match value {
                Value::Date(y, m, d, ..) => match days(y, m, d) {
                    Some(days) => b.append_value(days),
                    None => {
                        zero_date(&mut self.zero_dates, self.reject_zero_dates)?;
                        b.append_null()
                    }
                },
                v => return Err(wrong(&v)),
            },
            (Builder::Ts(b), _) => match value {
                Value::Date(y, mo, d, h, mi, s, us) => match days(y, mo, d) {
                    Some(days) => {
                        let secs = i64::from(days) * 86_400
                            + i64::from(h) * 3600
                            + i64::from(mi) * 60
                            + i64::from(s);
                        b.append_value(secs * 1_000_000 + i64::from(us))
                    }
                    None => {
                        zero_date(&mut self.zero_dates, self.reject_zero_dates)?;
                        b.append_null()
                    }
                },
                v => return Err(wrong(&v)),
            },
            (Builder::Dur(b), _) => match value {
                Value::Time(neg, days, h, m, s, us) => {
                    let secs = (i64::from(days) * 24 + i64::from(h)) * 3600
                        + i64::from(m) * 60
                        + i64::from(s);
                    let micros = secs * 1_000_000 + i64::from(us);
                    b.append_value(if neg { -micros } else { micros })
                }
                v => return Err(wrong(&v)),
            },
            (Builder::List(b), _) => {
                let labels = utf8(value)?;
                if !labels.is_empty() {
                    for label in labels.split(',') {
                        b.values().append_value(label);
                    }
                }
                b.append(true)
            }
            (_, conv) => return Err(format!("no builder for {conv:?} (a connector bug)")),
        }
        Ok(())
    }
}

impl Builder {
    fn new(data_type: &arrow_schema::DataType) -> Builder {
        use arrow_schema::DataType as D;
        match data_type {
            D::Boolean => Builder::Bool(BooleanBuilder::new()),
            D::Int8 => Builder::I8(Int8Builder::new()),
            D::Int16 => Builder::I16(Int16Builder::new()),
            D::Int32 => Builder::I32(Int32Builder::new()),
            D::Int64 => Builder::I64(Int64Builder::new()),
            D::UInt8 => Builder::U8(UInt8Builder::new()),
            D::UInt16 => Builder::U16(UInt16Builder::new()),
            D::UInt32 => Builder::U32(UInt32Builder::new()),
            D::UInt64 => Builder::U64(UInt64Builder::new()),
            D::Float32 => Builder::F32(Float32Builder::new()),
            D::Float64 => Builder::F64(Float64Builder::new()),
            D::Decimal128(p, s) => {
                Builder::D128(Decimal128Builder::new().with_data_type(D::Decimal128(*p, *s)))
            }
            D::Decimal256(p, s) => {
                Builder::D256(Decimal256Builder::new().with_data_type(D::Decimal256(*p, *s)))
            }
            D::Binary => Builder::Bin(BinaryBuilder::new()),
            D::Date32 => Builder::Date(Date32Builder::new()),
            D::Timestamp(_, tz) => {
                Builder::Ts(TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()))
            }
            D::Duration(_) => Builder::Dur(DurationMicrosecondBuilder::new()),
            D::List(item) => {
                Builder::List(ListBuilder::new(StringBuilder::new()).with_field(item.clone()))
            }
            _ => Builder::Str(StringBuilder::new()),
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Bool(b) => b.append_null(),
            Builder::I8(b) => b.append_null(),
            Builder::I16(b) => b.append_null(),
            Builder::I32(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::U8(b) => b.append_null(),
            Builder::U16(b) => b.append_null(),
            Builder::U32(b) => b.append_null(),
            Builder::U64(b) => b.append_null(),
            Builder::F32(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::D128(b) => b.append_null(),
            Builder::D256(b) => b.append_null(),
            Builder::Str(b) => b.append_null(),
            Builder::Bin(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Ts(b) => b.append_null(),
            Builder::Dur(b) => b.append_null(),
            Builder::List(b) => b.append(false),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::I8(b) => Arc::new(b.finish()),
            Builder::I16(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::U8(b) => Arc::new(b.finish()),
            Builder::U16(b) => Arc::new(b.finish()),
            Builder::U32(b) => Arc::new(b.finish()),
            Builder::U64(b) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::D128(b) => Arc::new(b.finish()),
            Builder::D256(b) => Arc::new(b.finish()),
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Bin(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Ts(b) => Arc::new(b.finish()),
            Builder::Dur(b) => Arc::new(b.finish()),
            Builder::List(b) => Arc::new(b.finish()),
        }
    }
}

/// An integer value converted to the column's Arrow width.
fn int<T: TryFrom<i64> + TryFrom<u64> + std::str::FromStr>(value: &Value) -> Result<T, Problem> {
    let out = match value {
        Value::Int(v) => T::try_from(*v).ok(),
        Value::UInt(v) => T::try_from(*v).ok(),
        Value::Bytes(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()),
        _ => None,
    };
    out.ok_or_else(|| {
        format!(
            "the integer {} does not fit its column",
            render::describe(value)
        )
    })
}

/// A BIT value as an integer.
fn bits_of(value: &Value) -> Option<u64> {
    match value {
        Value::Bytes(b) if b.len() <= 8 => Some(render::bits(b)),
        Value::Int(v) => u64::try_from(*v).ok(),
        Value::UInt(v) => Some(*v),
        _ => None,
    }
}

/// The digits of an exact decimal text scaled by 10^scale, with its sign (`-12.5`, scale 2 →
/// `-1250`).
fn decimal_digits(value: &Value, scale: i8) -> Result<String, Problem> {
    let Value::Bytes(b) = value else {
        return Err(format!(
            "unexpected decimal value {}",
            render::describe(value)
        ));
    };
    let text = std::str::from_utf8(b).map_err(|_| "a decimal that is not text".to_string())?;
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let scale = scale.max(0) as usize;
    if frac.len() > scale || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "the decimal {text:?} does not fit its declared scale {scale}"
        ));
    }
    let mut digits = String::with_capacity(int.len() + scale + 1);
    digits.push_str(sign);
    digits.push_str(if int.is_empty() { "0" } else { int });
    digits.push_str(frac);
    digits.extend(std::iter::repeat_n('0', scale - frac.len()));
    Ok(digits)
}

/// A string value (server sends utf8mb4).
fn utf8(value: Value) -> Result<String, Problem> {
    match value {
        Value::Bytes(b) => String::from_utf8(b).map_err(|e| {
            format!(
                "the server sent text that is not UTF-8 ({} bytes); check the column's character set",
                e.as_bytes().len()
            )
        }),
        other => Err(format!("unexpected text value {}", render::describe(&other))),
    }
}

/// Days since 1970-01-01, or `None` for a zero or otherwise impossible date.
pub(crate) fn days(y: u16, m: u8, d: u8) -> Option<i32> {
    let date = NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d))?;
    Some(chrono::Datelike::num_days_from_ce(&date) - UNIX_EPOCH_DAYS_FROM_CE)
}

/// Render a JSONB-mode value that Arrow cannot tag; `None` when the value has the wrong shape.
fn rendered(out: &mut String, kind: Render, value: &Value) -> Option<()> {
    match (kind, value) {
        (Render::Date, Value::Date(y, m, d, ..)) => render::date(out, *y, *m, *d),
        (Render::DateTime { utc }, Value::Date(y, mo, d, h, mi, s, us)) => {
            render::datetime(out, utc, (*y, *mo, *d, *h, *mi, *s, *us))
        }
        (Render::Time, Value::Time(neg, days, h, m, s, us)) => {
            render::time(out, *neg, *days, *h, *m, *s, *us)
        }
        (Render::Bit(n), v) => render::bit(out, n, bits_of(v)?),
        _ => return None,
    }
    Some(())
}

/// Count a zero date about to be written as NULL; an error when they are rejected.
fn zero_date(count: &mut u64, reject: bool) -> Result<(), Problem> {
    if reject {
        return Err("a zero date (0000-00-00), which PostgreSQL cannot hold; \
                    `--zero-dates null` writes NULL instead"
            .into());
    }
    *count += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_scale_exactly() {
        let v = |s: &str| Value::Bytes(s.as_bytes().to_vec());
        assert_eq!(decimal_digits(&v("-12.5"), 2).unwrap(), "-1250");
        assert_eq!(decimal_digits(&v("0.000"), 3).unwrap(), "0000");
        assert!(decimal_digits(&v("1.234"), 2).is_err());
        assert_eq!(days(1970, 1, 1), Some(0));
        assert_eq!(days(0, 0, 0), None);
    }
}
