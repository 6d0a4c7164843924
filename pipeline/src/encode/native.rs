//! Native mode: one typed PostgreSQL column per Arrow data column.
//!
//! Binary formats written (all big-endian), by target type: `boolean` 1 byte; `smallint`,
//! `integer`, `bigint` 2, 4, 8 bytes (narrower and unsigned Arrow integers widened to fit);
//! `real`, `double precision` IEEE 754 bits (`Float16` widened exactly to `real`); `numeric` in
//! base-10000 groups (see `numeric.rs`); `text` and `bytea` the raw bytes; `jsonb` a version
//! byte 1 then the JSON text; `uuid` its 16 bytes; `date` days and `time`/`timestamp`/
//! `timestamptz` microseconds, counted from 2000-01-01 (see `datetime.rs` for rounding,
//! infinities and range checks); arrays in PostgreSQL's array format (dimension count 1 (0 when
//! empty), has-null flag, element OID, length and lower bound 1, then each element as a field);
//! structs and lists of lists as `jsonb` holding their JSONB-mode encoding; dictionary-encoded
//! columns as their values.

use super::column::{BinCol, StrCol, F16};
use super::numeric::{self, Digits};
use super::value::JsonColumn;
use super::MAX_FIELD_BYTES;
use super::{begin_field, column_error, end_field};
use super::{datetime, put_bytes_field, put_null, schema_mismatch, value_error, Problem};
use crate::catalog::TableInfo;
use crate::error::{Error, ErrorKind, Result, Side};
use crate::sink::BatchEncoder;
use crate::types::PgType;
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{new_empty_array, Array, RecordBatch};
use arrow_buffer::{i256, BooleanBuffer, NullBuffer};
use arrow_schema::{DataType, Field, SchemaRef, TimeUnit};
use bytes::{BufMut, BytesMut};

/// The target columns of native mode: every data column of `table` (hidden columns excluded), in
/// schema order, with its PostgreSQL type. Errors name the table and column native mode cannot
/// hold.
pub fn native_columns(table: &TableInfo) -> Result<Vec<(String, PgType)>> {
    table
        .schema
        .fields()
        .iter()
        .filter(|field| table.is_data_column(field.name()))
        .map(|field| match PgType::for_field(field) {
            Some(pg) => Ok((field.name().clone(), pg)),
            None => Err(Error::new(
                ErrorKind::Schema,
                Side::Source,
                format!(
                    "table `{}`, column `{}`: native mode has no PostgreSQL type for Arrow type \
                     {}; use JSONB mode, or convert the column in the source",
                    table.name,
                    field.name(),
                    field.data_type()
                ),
            )),
        })
        .collect()
}

/// Encodes batches as tuples of the columns `native_columns` lists.
pub struct NativeEncoder {
    table: String,
    schema: SchemaRef,
    /// Schema indexes of the data columns, in tuple order.
    columns: Vec<usize>,
}

impl NativeEncoder {
    /// An encoder for `table`'s batches.
    pub fn new(table: &TableInfo) -> Result<Self> {
        native_columns(table)?;
        let schema = table.schema.clone();
        let mut columns = Vec::new();
        for (index, field) in schema.fields().iter().enumerate() {
            if table.is_data_column(field.name()) {
                // Build the column's writer over an empty array: proves the encoder handles
                // every type the type map promises, with the very code that encodes batches.
                let empty = new_empty_array(field.data_type());
                NativeColumn::new(field, empty.as_ref()).map_err(|p| {
                    Error::new(
                        ErrorKind::Schema,
                        Side::Source,
                        format!("table `{}`, column `{}`: {p}", table.name, field.name()),
                    )
                })?;
                columns.push(index);
            }
        }
        if columns.len() > i16::MAX as usize {
            return Err(Error::new(
                ErrorKind::Schema,
                Side::Source,
                format!(
                    "table `{}` has {} columns, more than PostgreSQL allows; copy a subset of them",
                    table.name,
                    columns.len()
                ),
            ));
        }
        Ok(NativeEncoder {
            table: table.name.clone(),
            schema,
            columns,
        })
    }
}

impl BatchEncoder for NativeEncoder {
    /// Appends nothing when a value fails: the error names the table, column and row, and why.
    fn encode(&self, batch: &RecordBatch, out: &mut BytesMut) -> Result<()> {
        let fields = self.schema.fields();
        if batch.num_columns() != fields.len() {
            return Err(schema_mismatch(
                &self.table,
                fields.len(),
                batch.num_columns(),
            ));
        }
        let mut columns = Vec::with_capacity(self.columns.len());
        for &index in &self.columns {
            let field = &fields[index];
            let column = NativeColumn::new(field, batch.column(index).as_ref())
                .map_err(|p| column_error(&self.table, field.name(), &p))?;
            columns.push(column);
        }

        let rows = batch.num_rows();
        let fixed: usize = 2 + columns.iter().map(|c| 4 + c.fixed_width()).sum::<usize>();
        let variable: usize = columns.iter().map(NativeColumn::data_len).sum();
        out.reserve(rows * fixed + variable);

        let start = out.len();
        for row in 0..rows {
            out.put_i16(columns.len() as i16);
            for (column, &index) in columns.iter().zip(&self.columns) {
                if let Err(problem) = column.write(row, out) {
                    out.truncate(start);
                    return Err(value_error(
                        &self.table,
                        fields[index].name(),
                        row,
                        &problem,
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One column, downcast for the batch being encoded.
pub(super) struct NativeColumn<'a> {
    nulls: Option<&'a NullBuffer>,
    values: Values<'a>,
}

/// The values of a column, by how they are written.
enum Values<'a> {
    Bool(&'a BooleanBuffer),
    /// `Int8` as `smallint`.
    I8(&'a [i8]),
    /// `UInt8` as `smallint`.
    U8(&'a [u8]),
    I16(&'a [i16]),
    /// `UInt16` as `integer`.
    U16(&'a [u16]),
    I32(&'a [i32]),
    /// `UInt32` as `bigint`.
    U32(&'a [u32]),
    I64(&'a [i64]),
    /// `UInt64` as `numeric(20,0)`.
    U64(&'a [u64]),
    /// `Float16` as `real`.
    F16(&'a [F16]),
    F32(&'a [f32]),
    F64(&'a [f64]),
    Decimal128(&'a [i128], i8),
    Decimal256(&'a [i256], i8),
    /// Exact decimal text as `numeric`.
    NumericText(StrCol<'a>),
    Text(StrCol<'a>),
    /// JSON text as `jsonb`.
    Jsonb(StrCol<'a>),
    /// `bytea`, and `uuid` from 16-byte fixed-size binary (the same raw bytes).
    Bytes(BinCol<'a>),
    Date(&'a [i32]),
    Time(&'a [i64], TimeUnit),
    Timestamp(&'a [i64], TimeUnit),
    /// `Duration(Microsecond)` as `interval` (microseconds, no days or months).
    Interval(&'a [i64]),
    /// A nested value (struct, list of lists) as `jsonb`.
    Json(JsonColumn<'a>),
    /// A list as a one-dimensional array: row `i` holds elements `offsets[i]..offsets[i+1]`.
    Array(Offsets<'a>, Box<NativeColumn<'a>>, u32),
    /// Dictionary-encoded values: row `i` is value `keys[i]`.
    Dictionary(Vec<usize>, Box<NativeColumn<'a>>),
}

/// A list column's offsets.
enum Offsets<'a> {
    Small(&'a [i32]),
    Large(&'a [i64]),
}

impl Offsets<'_> {
    /// The element range of row `i`.
    fn range(&self, i: usize) -> std::ops::Range<usize> {
        match self {
            Offsets::Small(o) => o[i] as usize..o[i + 1] as usize,
            Offsets::Large(o) => o[i] as usize..o[i + 1] as usize,
        }
    }
}

impl<'a> NativeColumn<'a> {
    pub(super) fn new(field: &'a Field, array: &'a dyn Array) -> Result<Self, Problem> {
        let wrong = || super::column_type_mismatch(field, array);
        if !array.data_type().equals_datatype(field.data_type()) {
            return Err(wrong());
        }
        let Some(pg) = PgType::for_field(field) else {
            return Err(format!(
                "native mode has no PostgreSQL type for Arrow type {}; use JSONB mode",
                field.data_type()
            ));
        };
        Self::build(Some(field), &pg, array)
    }

    /// The column writing `array` as `pg`; `field` describes `array` where one is at hand
    /// (nested values written as JSON need it).
    fn build(field: Option<&'a Field>, pg: &PgType, array: &'a dyn Array) -> Result<Self, Problem> {
        let wrong = || {
            format!(
                "the batch holds {} where {} was expected",
                array.data_type(),
                pg.sql_name()
            )
        };
        if let (PgType::Jsonb, Some(field)) = (pg, field) {
            if matches!(
                array.data_type(),
                DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_)
            ) {
                return Ok(NativeColumn {
                    nulls: array.nulls(),
                    values: Values::Json(JsonColumn::new(field, array)?),
                });
            }
        }
        macro_rules! prim {
            ($t:ty) => {
                array.as_primitive_opt::<$t>().map(|a| &a.values()[..])
            };
        }
        let values = match array.data_type() {
            DataType::Boolean => array.as_boolean_opt().map(|a| Values::Bool(a.values())),
            DataType::Int8 => prim!(Int8Type).map(Values::I8),
            DataType::UInt8 => prim!(UInt8Type).map(Values::U8),
            DataType::Int16 => prim!(Int16Type).map(Values::I16),
            DataType::UInt16 => prim!(UInt16Type).map(Values::U16),
            DataType::Int32 => prim!(Int32Type).map(Values::I32),
            DataType::UInt32 => prim!(UInt32Type).map(Values::U32),
            DataType::Int64 => prim!(Int64Type).map(Values::I64),
            DataType::UInt64 => prim!(UInt64Type).map(Values::U64),
            DataType::Float16 => prim!(Float16Type).map(Values::F16),
            DataType::Float32 => prim!(Float32Type).map(Values::F32),
            DataType::Float64 => prim!(Float64Type).map(Values::F64),
            DataType::Decimal128(_, s) => prim!(Decimal128Type).map(|v| Values::Decimal128(v, *s)),
            DataType::Decimal256(_, s) => prim!(Decimal256Type).map(|v| Values::Decimal256(v, *s)),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                StrCol::new(array).map(|s| match pg {
                    PgType::Numeric(_) => Values::NumericText(s),
                    PgType::Jsonb => Values::Jsonb(s),
                    _ => Values::Text(s),
                })
            }
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => BinCol::new(array).map(Values::Bytes),
            DataType::Date32 => prim!(Date32Type).map(Values::Date),
            DataType::Time64(TimeUnit::Microsecond) => {
                prim!(Time64MicrosecondType).map(|v| Values::Time(v, TimeUnit::Microsecond))
            }
            DataType::Time64(TimeUnit::Nanosecond) => {
                prim!(Time64NanosecondType).map(|v| Values::Time(v, TimeUnit::Nanosecond))
            }
            DataType::Timestamp(unit, _) => match unit {
                TimeUnit::Second => prim!(TimestampSecondType),
                TimeUnit::Millisecond => prim!(TimestampMillisecondType),
                TimeUnit::Microsecond => prim!(TimestampMicrosecondType),
                TimeUnit::Nanosecond => prim!(TimestampNanosecondType),
            }
            .map(|v| Values::Timestamp(v, *unit)),
            DataType::Duration(TimeUnit::Microsecond) => {
                prim!(DurationMicrosecondType).map(Values::Interval)
            }
            DataType::List(child) | DataType::LargeList(child) => {
                let PgType::Array(element) = pg else {
                    return Err(wrong());
                };
                let oid = element.oid().ok_or_else(wrong)?;
                let (offsets, values) = match array.as_list_opt::<i32>() {
                    Some(list) => (Offsets::Small(list.value_offsets()), list.values()),
                    None => match array.as_list_opt::<i64>() {
                        Some(list) => (Offsets::Large(list.value_offsets()), list.values()),
                        None => return Err(wrong()),
                    },
                };
                let element = NativeColumn::build(Some(child), element, values.as_ref())
                    .map_err(|p| format!("array element: {p}"))?;
                Some(Values::Array(offsets, Box::new(element), oid))
            }
            DataType::Dictionary(..) => match array.as_any_dictionary_opt() {
                Some(dict) => {
                    let values = dict.values();
                    let keys = if values.is_empty() {
                        if dict.keys().null_count() < dict.keys().len() {
                            return Err(wrong());
                        }
                        vec![0; dict.keys().len()]
                    } else {
                        dict.normalized_keys()
                    };
                    let values = NativeColumn::build(None, pg, values.as_ref())?;
                    Some(Values::Dictionary(keys, Box::new(values)))
                }
                None => None,
            },
            other => {
                return Err(format!(
                    "the native encoder cannot write Arrow type {other} as {}; use JSONB mode",
                    pg.sql_name()
                ))
            }
        };
        Ok(NativeColumn {
            nulls: array.nulls(),
            values: values.ok_or_else(wrong)?,
        })
    }

    /// Bytes of every value of fixed size (0 for variable-size values).
    pub(super) fn fixed_width(&self) -> usize {
        match &self.values {
            Values::Bool(_) => 1,
            Values::I8(_) | Values::U8(_) | Values::I16(_) => 2,
            Values::U16(_) | Values::I32(_) | Values::F16(_) | Values::F32(_) => 4,
            Values::Date(_) => 4,
            Values::U32(_) | Values::I64(_) | Values::F64(_) => 8,
            Values::Time(..) | Values::Timestamp(..) => 8,
            Values::Interval(_) => 16,
            Values::U64(_) | Values::Decimal128(..) | Values::Decimal256(..) => 20,
            Values::NumericText(_) | Values::Text(_) | Values::Jsonb(_) | Values::Bytes(_) => 0,
            Values::Json(_) | Values::Array(..) => 0,
            Values::Dictionary(_, values) => values.fixed_width(),
        }
    }

    /// Bytes of string or binary data (for sizing the output buffer).
    pub(super) fn data_len(&self) -> usize {
        match &self.values {
            Values::Text(s) | Values::Jsonb(s) => s.data_len(),
            Values::Bytes(b) => b.data_len(),
            Values::Json(json) => json.data_len(),
            Values::Array(_, element, _) => element.data_len(),
            _ => 0,
        }
    }

    /// Write row `i` as one field.
    #[inline]
    pub(super) fn write(&self, i: usize, out: &mut BytesMut) -> Result<(), Problem> {
        if self.nulls.is_some_and(|n| n.is_null(i)) {
            put_null(out);
            return Ok(());
        }
        match &self.values {
            Values::Bool(v) => put_fixed::<1, 5>(out, [u8::from(v.value(i))]),
            Values::I8(v) => put_i16(out, i16::from(v[i])),
            Values::U8(v) => put_i16(out, i16::from(v[i])),
            Values::I16(v) => put_i16(out, v[i]),
            Values::U16(v) => put_i32(out, i32::from(v[i])),
            Values::I32(v) => put_i32(out, v[i]),
            Values::U32(v) => put_i64(out, i64::from(v[i])),
            Values::I64(v) => put_i64(out, v[i]),
            Values::U64(v) => numeric::write_binary(out, &Digits::from_u64(v[i]).scaled(0))?,
            Values::F16(v) => put_i32(out, v[i].to_f32().to_bits() as i32),
            Values::F32(v) => put_i32(out, v[i].to_bits() as i32),
            Values::F64(v) => put_i64(out, v[i].to_bits() as i64),
            Values::Decimal128(v, scale) => {
                numeric::write_binary(out, &Digits::from_i128(v[i]).scaled(*scale))?
            }
            Values::Decimal256(v, scale) => {
                numeric::write_binary(out, &Digits::from_i256(v[i]).scaled(*scale))?
            }
            Values::NumericText(s) => numeric::write_binary(out, &numeric::parse(s.value(i))?)?,
            Values::Text(s) => {
                let text = s.value(i).as_bytes();
                if text.contains(&0) {
                    return Err(nul_in_text());
                }
                put_bytes_field(out, text)?;
            }
            Values::Jsonb(s) => {
                let text = s.value(i).as_bytes();
                if text.len() >= MAX_FIELD_BYTES {
                    return Err(super::too_large(text.len() + 1));
                }
                out.put_i32(text.len() as i32 + 1);
                out.put_u8(1);
                out.extend_from_slice(text);
            }
            Values::Bytes(b) => put_bytes_field(out, b.value(i))?,
            Values::Date(v) => put_i32(out, datetime::pg_date(v[i])?),
            Values::Time(v, unit) => put_i64(out, datetime::pg_time(v[i], *unit)?),
            Values::Timestamp(v, unit) => put_i64(out, datetime::pg_timestamp(v[i], *unit)?),
            Values::Interval(v) => {
                // interval: microseconds (i64), days (i32), months (i32).
                let mut value = [0u8; 16];
                value[..8].copy_from_slice(&v[i].to_be_bytes());
                put_fixed::<16, 20>(out, value)
            }
            Values::Json(json) => {
                let start = begin_field(out);
                out.put_u8(1);
                json.write(i, out)?;
                end_field(out, start)?;
            }
            Values::Array(offsets, element, oid) => {
                write_array(out, offsets.range(i), element, *oid)?
            }
            Values::Dictionary(keys, values) => values.write(keys[i], out)?,
        }
        Ok(())
    }
}

/// Write elements `range` of `element` as a one-dimensional PostgreSQL array of type `oid`.
fn write_array(
    out: &mut BytesMut,
    range: std::ops::Range<usize>,
    element: &NativeColumn<'_>,
    oid: u32,
) -> Result<(), Problem> {
    let start = begin_field(out);
    let has_null = element
        .nulls
        .is_some_and(|n| range.clone().any(|j| n.is_null(j)));
    out.put_i32(i32::from(!range.is_empty()));
    out.put_i32(i32::from(has_null));
    out.put_u32(oid);
    if !range.is_empty() {
        let len = i32::try_from(range.len())
            .map_err(|_| format!("the array has {} elements, too many", range.len()))?;
        out.put_i32(len);
        out.put_i32(1);
        for j in range {
            element.write(j, out)?;
        }
    }
    end_field(out, start)
}

/// Write a fixed-size field, length and value, with one bounds check and copy.
#[inline]
fn put_fixed<const N: usize, const F: usize>(out: &mut BytesMut, value: [u8; N]) {
    let mut field = [0u8; F];
    field[..4].copy_from_slice(&(N as i32).to_be_bytes());
    field[4..].copy_from_slice(&value);
    out.extend_from_slice(&field);
}

#[inline]
fn put_i16(out: &mut BytesMut, v: i16) {
    put_fixed::<2, 6>(out, v.to_be_bytes());
}

#[inline]
fn put_i32(out: &mut BytesMut, v: i32) {
    put_fixed::<4, 8>(out, v.to_be_bytes());
}

#[inline]
fn put_i64(out: &mut BytesMut, v: i64) {
    put_fixed::<8, 12>(out, v.to_be_bytes());
}

#[cold]
fn nul_in_text() -> Problem {
    "the text contains a NUL byte (U+0000), which PostgreSQL text cannot store; remove it in \
     the source, or use JSONB mode (which keeps such strings as bytes)"
        .into()
}

#[cfg(test)]
mod tests;
