//! How Arrow fields describe PostgreSQL values: the field-metadata keys connectors set, and the
//! Arrow → PostgreSQL type map used by native mode.
//!
//! | Arrow type | PostgreSQL type |
//! |---|---|
//! | Boolean | boolean |
//! | Int8, Int16, UInt8 | smallint |
//! | Int32, UInt16 | integer |
//! | Int64, UInt32 | bigint |
//! | UInt64 | numeric(20,0) |
//! | Float16, Float32 | real |
//! | Float64 | double precision |
//! | Decimal128/256(p, s) | numeric(p, s) |
//! | Utf8, LargeUtf8, Utf8View | text |
//! | Binary, LargeBinary, BinaryView, FixedSizeBinary(n≠16) | bytea |
//! | FixedSizeBinary(16) with `ARROW:extension:name = arrow.uuid` | uuid |
//! | Date32 | date |
//! | Time64 | time |
//! | Timestamp(unit, None) | timestamp |
//! | Timestamp(unit, Some(_)) | timestamptz |
//! | Duration(Microsecond) | interval |
//! | List, LargeList of any type above (or of Struct) | a one-dimensional array of it, e.g. `text[]` |
//! | Struct, and lists of lists | jsonb (the JSONB-mode encoding of the value) |
//! | Dictionary(_, V) | the type of V (values are unpacked) |
//!
//! A Utf8 field whose metadata says `seren.pg_type = numeric` holds exact decimal strings and is
//! written as `numeric`; `seren.pg_type = jsonb` (or the `arrow.json` extension) holds JSON text.
//!
//! Dates and times: `Date32` values `i32::MAX` / `i32::MIN` and `Timestamp` values `i64::MAX` /
//! `i64::MIN` (any unit) stand for PostgreSQL's `infinity` / `-infinity`; nanoseconds are
//! rounded half to even to PostgreSQL's microseconds; other values outside PostgreSQL's range are
//! conversion errors naming the table, column and row.

use arrow_schema::{DataType, Field, TimeUnit};

/// Field-metadata key: the PostgreSQL type a Utf8 field is written as (`numeric` or `jsonb`).
pub const META_PG_TYPE: &str = "seren.pg_type";
/// Field-metadata key: the `_type` tag used for a binary field in JSONB mode (default `bytes`).
pub const META_JSON_TAG: &str = "seren.json_tag";
/// Field-metadata key: when `true` on a JSON-text field (`seren.pg_type = jsonb`) that is the
/// table's only data column, each value is a whole JSON object written as the JSONB `data`
/// itself, not as a member of it (document sources such as MongoDB).
pub const META_JSONB_DOCUMENT: &str = "seren.jsonb_document";
/// Arrow's extension-name metadata key.
pub const META_EXTENSION: &str = "ARROW:extension:name";

/// A PostgreSQL type the native encoder can write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgType {
    /// `boolean`
    Bool,
    /// `smallint`
    Int2,
    /// `integer`
    Int4,
    /// `bigint`
    Int8,
    /// `real`
    Float4,
    /// `double precision`
    Float8,
    /// `numeric`, optionally with precision and scale.
    Numeric(Option<(u8, i8)>),
    /// `text`
    Text,
    /// `bytea`
    Bytea,
    /// `date`
    Date,
    /// `time`
    Time,
    /// `timestamp` (without time zone)
    Timestamp,
    /// `timestamptz`
    Timestamptz,
    /// `jsonb`
    Jsonb,
    /// `uuid`
    Uuid,
    /// `interval` (from a signed microsecond duration, e.g. MySQL `TIME`).
    Interval,
    /// A one-dimensional array of the element type (never itself an array).
    Array(Box<PgType>),
}

impl PgType {
    /// The PostgreSQL type for an Arrow field, or `None` when native mode cannot hold it.
    pub fn for_field(field: &Field) -> Option<PgType> {
        let meta = field.metadata();
        if matches!(
            field.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            match meta.get(META_PG_TYPE).map(String::as_str) {
                Some("numeric") => return Some(PgType::Numeric(None)),
                Some("jsonb") => return Some(PgType::Jsonb),
                _ => {}
            }
            if meta.get(META_EXTENSION).map(String::as_str) == Some("arrow.json") {
                return Some(PgType::Jsonb);
            }
        }
        Some(match field.data_type() {
            DataType::Boolean => PgType::Bool,
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => PgType::Int2,
            DataType::Int32 | DataType::UInt16 => PgType::Int4,
            DataType::Int64 | DataType::UInt32 => PgType::Int8,
            DataType::UInt64 => PgType::Numeric(Some((20, 0))),
            DataType::Float16 | DataType::Float32 => PgType::Float4,
            DataType::Float64 => PgType::Float8,
            DataType::Decimal128(p, s) | DataType::Decimal256(p, s) if *p <= 127 => {
                PgType::Numeric(Some((*p, *s)))
            }
            DataType::Decimal128(..) | DataType::Decimal256(..) => PgType::Numeric(None),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => PgType::Text,
            DataType::FixedSizeBinary(16)
                if meta.get(META_EXTENSION).map(String::as_str) == Some("arrow.uuid") =>
            {
                PgType::Uuid
            }
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => PgType::Bytea,
            DataType::Date32 => PgType::Date,
            DataType::Time64(TimeUnit::Microsecond | TimeUnit::Nanosecond) => PgType::Time,
            DataType::Timestamp(_, None) => PgType::Timestamp,
            DataType::Timestamp(_, Some(_)) => PgType::Timestamptz,
            DataType::Duration(TimeUnit::Microsecond) => PgType::Interval,
            DataType::List(child) | DataType::LargeList(child) => match PgType::for_field(child)? {
                PgType::Array(_) => PgType::Jsonb,
                element => PgType::Array(Box::new(element)),
            },
            DataType::Struct(_) => PgType::Jsonb,
            DataType::Dictionary(_, value) => {
                let values = Field::new(field.name(), (**value).clone(), field.is_nullable())
                    .with_metadata(meta.clone());
                return PgType::for_field(&values);
            }
            _ => return None,
        })
    }

    /// The type as written in `CREATE TABLE`.
    pub fn sql_name(&self) -> String {
        match self {
            PgType::Bool => "boolean".into(),
            PgType::Int2 => "smallint".into(),
            PgType::Int4 => "integer".into(),
            PgType::Int8 => "bigint".into(),
            PgType::Float4 => "real".into(),
            PgType::Float8 => "double precision".into(),
            PgType::Numeric(Some((p, s))) if *s >= 0 && *s as u16 <= *p as u16 && *p >= 1 => {
                format!("numeric({p},{s})")
            }
            PgType::Numeric(_) => "numeric".into(),
            PgType::Text => "text".into(),
            PgType::Bytea => "bytea".into(),
            PgType::Date => "date".into(),
            PgType::Time => "time".into(),
            PgType::Timestamp => "timestamp".into(),
            PgType::Timestamptz => "timestamptz".into(),
            PgType::Jsonb => "jsonb".into(),
            PgType::Uuid => "uuid".into(),
            PgType::Interval => "interval".into(),
            PgType::Array(element) => format!("{}[]", element.sql_name()),
        }
    }

    /// The type's OID, as written in binary arrays' element-type field; `None` for arrays.
    pub fn oid(&self) -> Option<u32> {
        Some(match self {
            PgType::Bool => 16,
            PgType::Int2 => 21,
            PgType::Int4 => 23,
            PgType::Int8 => 20,
            PgType::Float4 => 700,
            PgType::Float8 => 701,
            PgType::Numeric(_) => 1700,
            PgType::Text => 25,
            PgType::Bytea => 17,
            PgType::Date => 1082,
            PgType::Time => 1083,
            PgType::Timestamp => 1114,
            PgType::Timestamptz => 1184,
            PgType::Jsonb => 3802,
            PgType::Uuid => 2950,
            PgType::Interval => 1186,
            PgType::Array(_) => return None,
        })
    }
}
