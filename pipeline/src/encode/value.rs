//! One Arrow column as JSON values: the array is downcast once per batch into a [`JsonColumn`]
//! (nested types become a tree of them), which then writes any row's value without looking at
//! types again. The rules are those of `docs/jsonb-encoding.md`.

use super::column::{BinCol, StrCol, F16};
use super::json::{
    bytes_tag_open, close_tagged, float_special, object_key, tag_open, write_base64, write_f16,
    write_float, write_string,
};
use super::{datetime, numeric, Problem};
use crate::types::{META_EXTENSION, META_JSON_TAG, META_PG_TYPE};
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::Array;
use arrow_buffer::{i256, BooleanBuffer, NullBuffer};
use arrow_schema::{DataType, Field, TimeUnit};
use bytes::{BufMut, BytesMut};

/// A column ready to write JSON values.
pub(crate) struct JsonColumn<'a> {
    nulls: Option<&'a NullBuffer>,
    kind: Kind<'a>,
}

enum Kind<'a> {
    Null,
    Bool(&'a BooleanBuffer),
    I8(&'a [i8]),
    I16(&'a [i16]),
    I32(&'a [i32]),
    I64(&'a [i64]),
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
    U64(&'a [u64]),
    F16(&'a [F16]),
    F32(&'a [f32]),
    F64(&'a [f64]),
    Str(StrCol<'a>),
    /// JSON text, embedded as is.
    Json(StrCol<'a>),
    /// Exact decimal text (`seren.pg_type = numeric`).
    DecimalText(StrCol<'a>),
    /// Binary values, with the opening of their tagged object (`{"_type":"blob","data":"`).
    Binary(BinCol<'a>, Vec<u8>),
    Decimal128(&'a [i128], i8),
    Decimal256(&'a [i256], i8),
    Date(&'a [i32]),
    Timestamp(&'a [i64], TimeUnit, bool),
    Time(&'a [i64], TimeUnit),
    List(&'a [i32], Box<JsonColumn<'a>>),
    LargeList(&'a [i64], Box<JsonColumn<'a>>),
    /// Members with their escaped `"name":` keys (comma-prefixed after the first).
    Struct(Vec<(Vec<u8>, JsonColumn<'a>)>),
    /// Children indexed by type id; dense unions carry per-row offsets into them.
    Union(&'a [i8], Option<&'a [i32]>, Vec<Option<JsonColumn<'a>>>),
}

impl<'a> JsonColumn<'a> {
    /// Downcast `array`, described by `field`, or say why its type has no JSON encoding.
    pub(crate) fn new(field: &'a Field, array: &'a dyn Array) -> Result<Self, Problem> {
        let wrong = || super::column_type_mismatch(field, array);
        if !array.data_type().equals_datatype(field.data_type()) {
            return Err(wrong());
        }
        let meta = field.metadata();
        let is_json = meta.get(META_PG_TYPE).is_some_and(|t| t == "jsonb")
            || meta.get(META_EXTENSION).is_some_and(|e| e == "arrow.json");
        let is_numeric = meta.get(META_PG_TYPE).is_some_and(|t| t == "numeric");
        macro_rules! prim {
            ($variant:ident, $t:ty) => {
                array
                    .as_primitive_opt::<$t>()
                    .map(|a| Kind::$variant(&a.values()[..]))
            };
        }
        let kind = match field.data_type() {
            DataType::Null => Some(Kind::Null),
            DataType::Boolean => array.as_boolean_opt().map(|a| Kind::Bool(a.values())),
            DataType::Int8 => prim!(I8, Int8Type),
            DataType::Int16 => prim!(I16, Int16Type),
            DataType::Int32 => prim!(I32, Int32Type),
            DataType::Int64 => prim!(I64, Int64Type),
            DataType::UInt8 => prim!(U8, UInt8Type),
            DataType::UInt16 => prim!(U16, UInt16Type),
            DataType::UInt32 => prim!(U32, UInt32Type),
            DataType::UInt64 => prim!(U64, UInt64Type),
            DataType::Float16 => prim!(F16, Float16Type),
            DataType::Float32 => prim!(F32, Float32Type),
            DataType::Float64 => prim!(F64, Float64Type),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                StrCol::new(array).map(|s| match (is_json, is_numeric) {
                    (true, _) => Kind::Json(s),
                    (false, true) => Kind::DecimalText(s),
                    (false, false) => Kind::Str(s),
                })
            }
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => {
                let tag = meta.get(META_JSON_TAG).map_or("bytes", String::as_str);
                let Some(open) = bytes_tag_open(tag) else {
                    return Err(format!(
                        "its `{META_JSON_TAG}` metadata contains U+0000; the connector must set \
                         a plain tag such as `blob`"
                    ));
                };
                BinCol::new(array).map(|b| Kind::Binary(b, open))
            }
            DataType::Decimal128(_, s) => array
                .as_primitive_opt::<Decimal128Type>()
                .map(|a| Kind::Decimal128(&a.values()[..], *s)),
            DataType::Decimal256(_, s) => array
                .as_primitive_opt::<Decimal256Type>()
                .map(|a| Kind::Decimal256(&a.values()[..], *s)),
            DataType::Date32 => prim!(Date, Date32Type),
            DataType::Timestamp(unit, tz) => {
                let values = match unit {
                    TimeUnit::Second => array
                        .as_primitive_opt::<TimestampSecondType>()
                        .map(|a| &a.values()[..]),
                    TimeUnit::Millisecond => array
                        .as_primitive_opt::<TimestampMillisecondType>()
                        .map(|a| &a.values()[..]),
                    TimeUnit::Microsecond => array
                        .as_primitive_opt::<TimestampMicrosecondType>()
                        .map(|a| &a.values()[..]),
                    TimeUnit::Nanosecond => array
                        .as_primitive_opt::<TimestampNanosecondType>()
                        .map(|a| &a.values()[..]),
                };
                values.map(|v| Kind::Timestamp(v, *unit, tz.is_some()))
            }
            DataType::Time64(TimeUnit::Microsecond) => array
                .as_primitive_opt::<Time64MicrosecondType>()
                .map(|a| Kind::Time(&a.values()[..], TimeUnit::Microsecond)),
            DataType::Time64(TimeUnit::Nanosecond) => array
                .as_primitive_opt::<Time64NanosecondType>()
                .map(|a| Kind::Time(&a.values()[..], TimeUnit::Nanosecond)),
            DataType::List(child) => match array.as_list_opt::<i32>() {
                Some(list) => {
                    let values = JsonColumn::new(child, list.values().as_ref())?;
                    Some(Kind::List(list.value_offsets(), Box::new(values)))
                }
                None => None,
            },
            DataType::LargeList(child) => match array.as_list_opt::<i64>() {
                Some(list) => {
                    let values = JsonColumn::new(child, list.values().as_ref())?;
                    Some(Kind::LargeList(list.value_offsets(), Box::new(values)))
                }
                None => None,
            },
            DataType::Struct(fields) => match array.as_struct_opt() {
                Some(st) => {
                    let mut members = Vec::with_capacity(fields.len());
                    for (k, (child, values)) in fields.iter().zip(st.columns()).enumerate() {
                        let key = object_key(child.name(), k == 0)?;
                        let column = JsonColumn::new(child, values.as_ref())
                            .map_err(|p| format!("member `{}`: {p}", child.name()))?;
                        members.push((key, column));
                    }
                    Some(Kind::Struct(members))
                }
                None => None,
            },
            DataType::Union(fields, _) => match array.as_union_opt() {
                Some(union) => {
                    let mut children = Vec::new();
                    for (type_id, child) in fields.iter() {
                        let slot = usize::try_from(type_id).map_err(|_| wrong())?;
                        if children.len() <= slot {
                            children.resize_with(slot + 1, || None);
                        }
                        let column = JsonColumn::new(child, union.child(type_id).as_ref())
                            .map_err(|p| format!("union member `{}`: {p}", child.name()))?;
                        children[slot] = Some(column);
                    }
                    let offsets = union.offsets().map(|o| &o[..]);
                    Some(Kind::Union(union.type_ids(), offsets, children))
                }
                None => None,
            },
            other => {
                return Err(format!(
                    "JSONB mode has no encoding for Arrow type {other}; convert the column to a \
                     supported type in the source (see docs/jsonb-encoding.md)"
                ))
            }
        };
        let kind = kind.ok_or_else(wrong)?;
        Ok(JsonColumn {
            nulls: array.nulls(),
            kind,
        })
    }

    /// Whether row `i` is NULL (for a union: whether its selected child's value is).
    pub(crate) fn is_null(&self, i: usize) -> bool {
        match &self.kind {
            Kind::Null => true,
            Kind::Union(..) => self.union_child(i).is_none_or(|(c, j)| c.is_null(j)),
            _ => self.nulls.is_some_and(|n| n.is_null(i)),
        }
    }

    /// The child a union row selects, and the row within it.
    fn union_child(&self, i: usize) -> Option<(&JsonColumn<'a>, usize)> {
        let Kind::Union(type_ids, offsets, children) = &self.kind else {
            return None;
        };
        let child = children.get(usize::try_from(type_ids[i]).ok()?)?.as_ref()?;
        Some((child, offsets.map_or(i, |o| o[i] as usize)))
    }

    /// Bytes of string or binary data (for sizing the output buffer).
    pub(crate) fn data_len(&self) -> usize {
        match &self.kind {
            Kind::Str(s) | Kind::Json(s) | Kind::DecimalText(s) => s.data_len(),
            Kind::Binary(b, _) => b.data_len() / 3 * 4,
            Kind::List(_, c) | Kind::LargeList(_, c) => c.data_len(),
            Kind::Struct(members) => members.iter().map(|(_, c)| c.data_len()).sum(),
            Kind::Union(_, _, children) => children.iter().flatten().map(|c| c.data_len()).sum(),
            _ => 0,
        }
    }

    /// Write row `i` as a JSON value.
    pub(crate) fn write(&self, i: usize, out: &mut BytesMut) -> Result<(), Problem> {
        if self.nulls.is_some_and(|n| n.is_null(i)) {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        match &self.kind {
            Kind::Null => out.extend_from_slice(b"null"),
            Kind::Bool(b) => out.extend_from_slice(if b.value(i) { b"true" } else { b"false" }),
            Kind::I8(v) => put_integer(out, v[i]),
            Kind::I16(v) => put_integer(out, v[i]),
            Kind::I32(v) => put_integer(out, v[i]),
            Kind::I64(v) => put_integer(out, v[i]),
            Kind::U8(v) => put_integer(out, v[i]),
            Kind::U16(v) => put_integer(out, v[i]),
            Kind::U32(v) => put_integer(out, v[i]),
            Kind::U64(v) => put_integer(out, v[i]),
            Kind::F16(v) => write_float(out, v[i].to_f64(), |o| write_f16(o, v[i])),
            Kind::F32(v) => write_float(out, f64::from(v[i]), |o| {
                o.extend_from_slice(ryu::Buffer::new().format_finite(v[i]).as_bytes())
            }),
            Kind::F64(v) => write_float(out, v[i], |o| {
                o.extend_from_slice(ryu::Buffer::new().format_finite(v[i]).as_bytes())
            }),
            Kind::Str(s) => {
                let s = s.value(i);
                if !write_string(out, s) {
                    out.extend_from_slice(tag_open!("bytes", "data"));
                    write_base64(out, s.as_bytes());
                    close_tagged(out);
                }
            }
            Kind::Json(s) => out.extend_from_slice(s.value(i).as_bytes()),
            Kind::Binary(b, open) => {
                out.extend_from_slice(open);
                write_base64(out, b.value(i));
                close_tagged(out);
            }
            Kind::DecimalText(_) | Kind::Decimal128(..) | Kind::Decimal256(..) => {
                self.tagged(out, tag_open!("decimal", "value"), i)?
            }
            Kind::Date(_) => self.tagged(out, tag_open!("date", "value"), i)?,
            Kind::Timestamp(..) => self.tagged(out, tag_open!("datetime", "value"), i)?,
            Kind::Time(..) => self.tagged(out, tag_open!("time", "value"), i)?,
            Kind::List(offsets, values) => write_list(out, offsets[i], offsets[i + 1], values)?,
            Kind::LargeList(offsets, values) => {
                write_list(out, offsets[i], offsets[i + 1], values)?
            }
            Kind::Struct(members) => {
                out.put_u8(b'{');
                for (key, member) in members {
                    out.extend_from_slice(key);
                    member.write(i, out)?;
                }
                out.put_u8(b'}');
            }
            Kind::Union(..) => match self.union_child(i) {
                Some((child, j)) => child.write(j, out)?,
                None => return Err(bad_type_id()),
            },
        }
        Ok(())
    }

    fn tagged(&self, out: &mut BytesMut, open: &[u8], i: usize) -> Result<(), Problem> {
        out.extend_from_slice(open);
        self.write_text(i, out)?;
        close_tagged(out);
        Ok(())
    }

    /// Write row `i` as plain text, for the JSONB `id` column: strings as themselves, numbers as
    /// their digits, binary as base64, dates and times as in their tagged `value`, anything
    /// nested as its JSON. NULL and strings PostgreSQL `text` cannot hold are errors.
    pub(crate) fn write_text(&self, i: usize, out: &mut BytesMut) -> Result<(), Problem> {
        if self.is_null(i) {
            return Err(null_id());
        }
        match &self.kind {
            Kind::F16(v) => float_text(out, v[i].to_f64(), |o| write_f16(o, v[i])),
            Kind::F32(v) => float_text(out, f64::from(v[i]), |o| {
                o.extend_from_slice(ryu::Buffer::new().format_finite(v[i]).as_bytes())
            }),
            Kind::F64(v) => float_text(out, v[i], |o| {
                o.extend_from_slice(ryu::Buffer::new().format_finite(v[i]).as_bytes())
            }),
            Kind::DecimalText(s) => {
                let s = s.value(i);
                numeric::parse(s)?;
                out.extend_from_slice(s.as_bytes());
            }
            Kind::Str(s) | Kind::Json(s) => {
                let s = s.value(i);
                if s.contains('\0') {
                    return Err(
                        "the id contains U+0000, which PostgreSQL text cannot hold; \
                         fix the key in the source, or use native mode"
                            .into(),
                    );
                }
                out.extend_from_slice(s.as_bytes());
            }
            Kind::Binary(b, _) => write_base64(out, b.value(i)),
            Kind::Decimal128(v, scale) => {
                numeric::write_text(out, &numeric::Digits::from_i128(v[i]), *scale)
            }
            Kind::Decimal256(v, scale) => {
                numeric::write_text(out, &numeric::Digits::from_i256(v[i]), *scale)
            }
            Kind::Date(v) => datetime::write_date(out, v[i]),
            Kind::Timestamp(v, unit, utc) => datetime::write_timestamp(out, v[i], *unit, *utc),
            Kind::Time(v, unit) => datetime::write_time(out, v[i], *unit)?,
            Kind::Union(..) => match self.union_child(i) {
                Some((child, j)) => child.write_text(j, out)?,
                None => return Err(bad_type_id()),
            },
            _ => self.write(i, out)?,
        }
        Ok(())
    }
}

fn put_integer(out: &mut BytesMut, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn write_list<O: arrow_array::OffsetSizeTrait>(
    out: &mut BytesMut,
    start: O,
    end: O,
    values: &JsonColumn<'_>,
) -> Result<(), Problem> {
    out.put_u8(b'[');
    for (k, j) in (start.as_usize()..end.as_usize()).enumerate() {
        if k > 0 {
            out.put_u8(b',');
        }
        values.write(j, out)?;
    }
    out.put_u8(b']');
    Ok(())
}

/// A float as id text: its shortest digits, or `NaN`, `Infinity`, `-Infinity`, `-0.0`.
fn float_text(out: &mut BytesMut, x: f64, finite: impl FnOnce(&mut BytesMut)) {
    match float_special(x) {
        Some(name) => out.extend_from_slice(name.as_bytes()),
        None => finite(out),
    }
}

/// Why a row whose key is NULL cannot be written.
#[cold]
pub(crate) fn null_id() -> Problem {
    "the row's key is NULL, so it has no `id` in JSONB mode; give the table a primary key \
     without NULLs in the source, or use native mode"
        .into()
}

#[cold]
fn bad_type_id() -> Problem {
    "the union's type id names no member of the union; the source connector built an invalid \
     union array (please report this)"
        .into()
}
