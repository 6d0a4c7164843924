//! The type map: how each declared MySQL type is read into Arrow, per mode.
//!
//! | MySQL | JSONB mode (Arrow → JSON) | native mode (Arrow → PostgreSQL) |
//! |---|---|---|
//! | TINYINT, SMALLINT, MEDIUMINT, INT, BIGINT (signed) | Int8/16/32/32/64 → number | smallint, smallint, integer, integer, bigint |
//! | … UNSIGNED | UInt8/16, Int32, UInt32/64 → number | smallint, integer, integer, bigint, numeric(20) |
//! | DECIMAL(p,s) | Decimal128/256(p,s) → `decimal` tag | numeric(p,s) |
//! | FLOAT, DOUBLE | Float32, Float64 → number | real, double precision |
//! | BIT(n) | rendered `bit` tag (`"0101"`) | BIT(1) boolean; n ≤ 63 bigint; BIT(64) numeric(20) |
//! | DATE, DATETIME(p), TIMESTAMP(p) | rendered `date`/`datetime` tag (or `zero_date`) | date, timestamp, timestamptz (zero dates NULL) |
//! | TIME(p) | rendered `time` tag, `-838:59:59` … `838:59:59` | interval |
//! | YEAR | Int16 → number | smallint |
//! | CHAR, VARCHAR, TEXT… | Utf8 → string | text |
//! | BINARY, VARBINARY, BLOB… | Binary → `bytes` tag | bytea |
//! | ENUM | Utf8 → string | text + CHECK (col IN (…)) |
//! | SET | List(Utf8) → array of strings | text[] |
//! | JSON (MariaDB: LONGTEXT CHECK json_valid) | Utf8 jsonb → the JSON itself | jsonb |
//! | GEOMETRY… | Binary (WKB) → `wkb` tag | bytea (WKB) |
//! | anything else (INET6, UUID, …) | Utf8 via `CAST(… AS CHAR)` | text |

use crate::catalog::{ident, Column};
use arrow_schema::{DataType, Field, TimeUnit};
use pipeline::types::{META_JSON_TAG, META_PG_TYPE};
use pipeline::Mode;
use std::collections::HashMap;
use std::sync::Arc;

/// How a value rendered as JSON text is tagged (JSONB mode types Arrow cannot tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Render {
    /// `{"_type":"date","value":"2024-01-02"}`
    Date,
    /// `{"_type":"datetime","value":"…"}`, with `Z` for TIMESTAMP (an instant in UTC).
    DateTime { utc: bool },
    /// `{"_type":"time","value":"-838:59:59"}`
    Time,
    /// `{"_type":"bit","value":"0101"}`, `n` digits.
    Bit(u32),
}

/// How one column is read and which Arrow type carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conv {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float32,
    Float64,
    Decimal(u8, i8),
    Text,
    /// Any other type, read through `CAST(… AS CHAR)`.
    CastText,
    Json,
    Bytes,
    /// Geometry, read through `ST_AsBinary` as WKB.
    Geometry,
    Date,
    Timestamp {
        utc: bool,
    },
    /// TIME as a signed duration (native mode: `interval`).
    Interval,
    Year,
    /// BIT(2..63) as an integer.
    BitInt,
    /// BIT(64) as an unsigned integer.
    BitWide,
    /// SET as a list of labels.
    SetList,
    Rendered(Render),
}

/// Arrow's largest `Decimal128` precision.
const DECIMAL128_MAX: u8 = 38;

impl Conv {
    /// The conversion for `column` in `mode`.
    pub(crate) fn of(column: &Column, mode: Mode) -> Conv {
        let unsigned = column.unsigned();
        let native = mode == Mode::Native;
        match column.data_type.as_str() {
            _ if column.json => Conv::Json,
            "tinyint" if unsigned => Conv::UInt8,
            "tinyint" => Conv::Int8,
            "smallint" if unsigned => Conv::UInt16,
            "smallint" => Conv::Int16,
            "mediumint" => Conv::Int32,
            "int" | "integer" if unsigned => Conv::UInt32,
            "int" | "integer" => Conv::Int32,
            "bigint" if unsigned => Conv::UInt64,
            "bigint" => Conv::Int64,
            "decimal" | "numeric" => {
                let p = column.precision.unwrap_or(10).clamp(1, 76) as u8;
                let s = column.scale.unwrap_or(0).min(p as u64) as i8;
                Conv::Decimal(p, s)
            }
            "float" => Conv::Float32,
            "double" | "real" | "double precision" => Conv::Float64,
            "bit" => {
                let n = column.precision.unwrap_or(1).clamp(1, 64) as u32;
                match (native, n) {
                    (false, n) => Conv::Rendered(Render::Bit(n)),
                    (true, 1) => Conv::Bool,
                    (true, 64) => Conv::BitWide,
                    (true, _) => Conv::BitInt,
                }
            }
            "date" if native => Conv::Date,
            "date" => Conv::Rendered(Render::Date),
            "datetime" | "timestamp" => {
                let utc = column.data_type == "timestamp";
                match native {
                    true => Conv::Timestamp { utc },
                    false => Conv::Rendered(Render::DateTime { utc }),
                }
            }
            "time" if native => Conv::Interval,
            "time" => Conv::Rendered(Render::Time),
            "year" => Conv::Year,
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
                match column.charset.as_deref() {
                    Some("binary") => Conv::Bytes,
                    _ => Conv::Text,
                }
            }
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Conv::Bytes,
            "enum" => Conv::Text,
            "set" => Conv::SetList,
            "json" => Conv::Json,
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => Conv::Geometry,
            _ => Conv::CastText,
        }
    }

    /// The Arrow field carrying this column.
    pub(crate) fn field(self, name: &str, nullable: bool) -> Field {
        let rendered_json =
            |f: Field| f.with_metadata(HashMap::from([(META_PG_TYPE.into(), "jsonb".into())]));
        let data_type = match self {
            Conv::Bool => DataType::Boolean,
            Conv::Int8 => DataType::Int8,
            Conv::Int16 | Conv::Year => DataType::Int16,
            Conv::Int32 => DataType::Int32,
            Conv::Int64 | Conv::BitInt => DataType::Int64,
            Conv::UInt8 => DataType::UInt8,
            Conv::UInt16 => DataType::UInt16,
            Conv::UInt32 => DataType::UInt32,
            Conv::UInt64 | Conv::BitWide => DataType::UInt64,
            Conv::Float32 => DataType::Float32,
            Conv::Float64 => DataType::Float64,
            Conv::Decimal(p, s) if p <= DECIMAL128_MAX => DataType::Decimal128(p, s),
            Conv::Decimal(p, s) => DataType::Decimal256(p, s),
            Conv::Text | Conv::CastText => DataType::Utf8,
            Conv::Json | Conv::Rendered(_) => {
                return rendered_json(Field::new(name, DataType::Utf8, nullable))
            }
            Conv::Bytes => DataType::Binary,
            Conv::Geometry => {
                return Field::new(name, DataType::Binary, nullable)
                    .with_metadata(HashMap::from([(META_JSON_TAG.into(), "wkb".into())]))
            }
            Conv::Date => DataType::Date32,
            Conv::Timestamp { utc } => {
                DataType::Timestamp(TimeUnit::Microsecond, utc.then(|| Arc::from("UTC")))
            }
            Conv::Interval => DataType::Duration(TimeUnit::Microsecond),
            Conv::SetList => DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
        };
        // Zero dates become NULL in native mode, so date columns are always nullable there.
        let nullable = nullable || matches!(self, Conv::Date | Conv::Timestamp { .. });
        Field::new(name, data_type, nullable)
    }

    /// The expression that reads the column in a `SELECT`.
    pub(crate) fn select(self, name: &str) -> String {
        match self {
            Conv::Geometry => format!("ST_AsBinary({})", ident(name)),
            Conv::CastText => format!("CAST({} AS CHAR)", ident(name)),
            _ => ident(name),
        }
    }
}
