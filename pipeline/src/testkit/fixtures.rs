//! Arrow tables per type family, with the values connectors get wrong: extremes, NaN and the
//! infinities, `-0.0`, NUL bytes and emoji, empty strings and lists, times around the epoch,
//! zones, nulls in every column, and a table without rows.
//!
//! Each fixture is a [`MemoryTable`] (named after its family) with one batch of a few rows, for
//! a [`MemorySource`](super::MemorySource) or a sink test. [`postgres_safe`] is the subset every
//! PostgreSQL type can hold in native mode (no NUL in text, no nested types).

use super::MemoryTable;
use arrow_array::builder::{Int64Builder, ListBuilder};
use arrow_array::types::Int32Type;
use arrow_array::*;
use arrow_buffer::i256;
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use std::collections::HashMap;
use std::sync::Arc;

/// A table of `columns`; a column named `id` is a non-null primary key, the rest are nullable.
fn table(name: &str, columns: Vec<(&str, ArrayRef)>) -> MemoryTable {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), *n != "id"))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).expect("a consistent fixture");
    MemoryTable::new(name, schema, vec![batch])
}

/// Booleans and every integer width, signed and unsigned, at their extremes, zero and NULL.
pub fn ints() -> MemoryTable {
    table(
        "ints",
        vec![
            ("id", Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5]))),
            (
                "b",
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                    Some(false),
                ])),
            ),
            (
                "i8",
                Arc::new(Int8Array::from(vec![
                    Some(i8::MIN),
                    Some(i8::MAX),
                    Some(0),
                    Some(-1),
                    None,
                ])),
            ),
            (
                "i16",
                Arc::new(Int16Array::from(vec![
                    Some(i16::MIN),
                    Some(i16::MAX),
                    Some(0),
                    None,
                    Some(-1),
                ])),
            ),
            (
                "i32",
                Arc::new(Int32Array::from(vec![
                    Some(i32::MIN),
                    Some(i32::MAX),
                    None,
                    Some(0),
                    Some(-1),
                ])),
            ),
            (
                "i64",
                Arc::new(Int64Array::from(vec![
                    Some(i64::MIN),
                    Some(i64::MAX),
                    Some(0),
                    Some(-1),
                    None,
                ])),
            ),
            (
                "u8",
                Arc::new(UInt8Array::from(vec![
                    Some(0),
                    Some(u8::MAX),
                    None,
                    Some(1),
                    Some(128),
                ])),
            ),
            (
                "u16",
                Arc::new(UInt16Array::from(vec![
                    Some(0),
                    Some(u16::MAX),
                    Some(1),
                    None,
                    Some(32768),
                ])),
            ),
            (
                "u32",
                Arc::new(UInt32Array::from(vec![
                    Some(0),
                    Some(u32::MAX),
                    Some(1),
                    Some(1 << 31),
                    None,
                ])),
            ),
            (
                "u64",
                Arc::new(UInt64Array::from(vec![
                    Some(0),
                    Some(u64::MAX),
                    None,
                    Some(1 << 63),
                    Some(1),
                ])),
            ),
        ],
    )
}

/// `real` and `double precision` values: NaN, ±Inf, `-0.0`, extremes, subnormals, NULL.
pub fn floats() -> MemoryTable {
    let f64s = vec![
        Some(f64::NAN),
        Some(f64::INFINITY),
        Some(f64::NEG_INFINITY),
        Some(-0.0),
        Some(f64::MAX),
        Some(f64::MIN_POSITIVE / 2.0),
        Some(0.1),
        None,
    ];
    let f32s = vec![
        Some(f32::NAN),
        Some(f32::INFINITY),
        Some(f32::NEG_INFINITY),
        Some(-0.0),
        Some(f32::MIN),
        None,
        Some(f32::EPSILON),
        Some(1.5),
    ];
    table(
        "floats",
        vec![
            (
                "id",
                Arc::new(Int64Array::from((1..=8).collect::<Vec<i64>>())),
            ),
            ("f32", Arc::new(Float32Array::from(f32s))),
            ("f64", Arc::new(Float64Array::from(f64s))),
        ],
    )
}

/// Exact decimals: 38 digits at both signs, a small scale, a negative scale and 76 digits.
pub fn decimals() -> MemoryTable {
    let max38 = 10i128.pow(38) - 1;
    let d38 = Decimal128Array::from(vec![Some(max38), Some(-max38), Some(0), Some(1), None])
        .with_precision_and_scale(38, 10)
        .expect("valid precision");
    let d5 = Decimal128Array::from(vec![Some(-99999), Some(12345), None, Some(0), Some(1)])
        .with_precision_and_scale(5, 2)
        .expect("valid precision");
    let neg = Decimal128Array::from(vec![Some(12), Some(-7), Some(0), None, Some(99)])
        .with_precision_and_scale(4, -3)
        .expect("valid precision");
    let max76 = i256::from_string(&"9".repeat(76)).expect("76 nines fit");
    let d76 = Decimal256Array::from(vec![
        Some(max76),
        Some(max76.wrapping_neg()),
        None,
        Some(i256::ONE),
        Some(i256::ZERO),
    ])
    .with_precision_and_scale(76, 20)
    .expect("valid precision");
    table(
        "decimals",
        vec![
            ("id", Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5]))),
            ("d38", Arc::new(d38)),
            ("d5", Arc::new(d5)),
            ("d_neg_scale", Arc::new(neg)),
            ("d76", Arc::new(d76)),
        ],
    )
}

/// Text: empty, NUL inside, emoji and combining marks, quotes, backslashes, newlines, NULL.
pub fn strings() -> MemoryTable {
    strings_of(vec![
        Some(""),
        Some("nul \0 inside"),
        Some("emoji 🦀 and e\u{301}"),
        Some("quote \" ' backslash \\ tab\t newline\n"),
        Some("plain"),
        None,
    ])
}

fn strings_of(values: Vec<Option<&str>>) -> MemoryTable {
    let ids = (1..=values.len() as i64).collect::<Vec<i64>>();
    table(
        "strings",
        vec![
            ("id", Arc::new(Int64Array::from(ids))),
            ("s", Arc::new(StringArray::from(values.clone()))),
            ("large", Arc::new(LargeStringArray::from(values))),
        ],
    )
}

/// Bytes: empty, every byte value, invalid UTF-8, NULL; a UUID column.
pub fn binary() -> MemoryTable {
    let all: Vec<u8> = (0..=255).collect();
    let values: Vec<Option<&[u8]>> = vec![Some(b""), Some(&all), Some(b"\xff\xfe\0"), None];
    let uuid = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
        vec![
            Some([0u8; 16]),
            Some([0xff; 16]),
            None,
            Some(*b"0123456789abcdef"),
        ]
        .into_iter(),
        16,
    )
    .expect("16-byte values");
    let uuid_field =
        Field::new("uuid", DataType::FixedSizeBinary(16), true).with_metadata(HashMap::from([(
            crate::types::META_EXTENSION.to_string(),
            "arrow.uuid".to_string(),
        )]));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("bin", DataType::Binary, true),
        Field::new("large", DataType::LargeBinary, true),
        uuid_field,
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            Arc::new(BinaryArray::from(values.clone())),
            Arc::new(LargeBinaryArray::from(values)),
            Arc::new(uuid),
        ],
    )
    .expect("a consistent fixture");
    MemoryTable::new("binary", schema, vec![batch])
}

/// Dates, times and timestamps: before and after the epoch, microseconds and nanoseconds,
/// without a zone, in UTC and at an offset; the infinities' sentinels; NULL.
pub fn temporal() -> MemoryTable {
    let day = 86_400_000_000i64;
    let micros = vec![
        Some(0),
        Some(-1),
        Some(1_700_000_000_123_456),
        Some(-day * 365 * 100),
        None,
    ];
    table(
        "temporal",
        vec![
            ("id", Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5]))),
            (
                "d",
                Arc::new(Date32Array::from(vec![
                    Some(0),
                    Some(-1),
                    Some(19_000),
                    Some(i32::MAX),
                    None,
                ])),
            ),
            (
                "t",
                Arc::new(Time64MicrosecondArray::from(vec![
                    Some(0),
                    Some(86_399_999_999),
                    None,
                    Some(1),
                    Some(43_200_000_000),
                ])),
            ),
            (
                "ts",
                Arc::new(TimestampMicrosecondArray::from(micros.clone())),
            ),
            (
                "ts_utc",
                Arc::new(TimestampMicrosecondArray::from(micros).with_timezone("UTC")),
            ),
            (
                "ts_ns_offset",
                Arc::new(
                    TimestampNanosecondArray::from(vec![
                        Some(1),
                        Some(-1_500),
                        None,
                        Some(i64::MAX),
                        Some(0),
                    ])
                    .with_timezone("+02:00"),
                ),
            ),
        ],
    )
}

/// Nested values: lists (empty, NULL, with NULL elements) and structs (NULL, with NULL fields).
pub fn nested() -> MemoryTable {
    let mut lists = ListBuilder::new(Int64Builder::new());
    lists.append_value([Some(1), Some(2), Some(3)]);
    lists.append_value([]);
    lists.append_null();
    lists.append_value([None, Some(-1)]);
    let fields = Fields::from(vec![
        Field::new("a", DataType::Int32, true),
        Field::new("b", DataType::Utf8, true),
    ]);
    let structs = StructArray::new(
        fields,
        vec![
            Arc::new(Int32Array::from(vec![Some(1), None, Some(3), Some(4)])),
            Arc::new(StringArray::from(vec![
                Some("x"),
                Some("y"),
                None,
                Some("🦀"),
            ])),
        ],
        Some(vec![true, true, true, false].into()),
    );
    table(
        "nested",
        vec![
            ("id", Arc::new(Int64Array::from(vec![1, 2, 3, 4]))),
            ("list", Arc::new(lists.finish())),
            ("record", Arc::new(structs)),
        ],
    )
}

/// Dictionary-encoded strings (as Parquet files hold them). Not in [`all`]: the pipeline's
/// encoders take plain strings, so a source decodes dictionaries before yielding batches.
pub fn dictionary() -> MemoryTable {
    let tags =
        DictionaryArray::<Int32Type>::from_iter([Some("red"), Some("blue"), None, Some("red")]);
    table(
        "dictionary",
        vec![
            ("id", Arc::new(Int64Array::from(vec![1, 2, 3, 4]))),
            ("tag", Arc::new(tags)),
        ],
    )
}

/// A NULL in every column of every family, next to a row of ordinary values.
pub fn nulls() -> MemoryTable {
    table(
        "nulls",
        vec![
            ("id", Arc::new(Int64Array::from(vec![1, 2]))),
            ("b", Arc::new(BooleanArray::from(vec![None, Some(true)]))),
            ("f", Arc::new(Float64Array::from(vec![None, Some(1.0)]))),
            ("s", Arc::new(StringArray::from(vec![None, Some("x")]))),
            (
                "bin",
                Arc::new(BinaryArray::from(vec![None, Some(b"x".as_ref())])),
            ),
            ("d", Arc::new(Date32Array::from(vec![None, Some(1)]))),
            (
                "ts",
                Arc::new(TimestampMicrosecondArray::from(vec![None, Some(1)]).with_timezone("UTC")),
            ),
            ("null", Arc::new(NullArray::new(2))),
        ],
    )
}

/// A table with columns and no rows: its schema comes from the catalog alone.
pub fn empty() -> MemoryTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
    ]));
    MemoryTable::new("empty", schema, Vec::new())
}

/// Every fixture, one table per family.
pub fn all() -> Vec<MemoryTable> {
    vec![
        ints(),
        floats(),
        decimals(),
        strings(),
        binary(),
        temporal(),
        nested(),
        nulls(),
        empty(),
    ]
}

/// The fixtures PostgreSQL's native types hold exactly (no NUL in text, no nested or NULL-typed
/// columns, timestamps within PostgreSQL's range): for sink round trips against a server.
pub fn postgres_safe() -> Vec<MemoryTable> {
    // PostgreSQL text cannot hold NUL.
    let strings = strings_of(vec![
        Some(""),
        Some("emoji 🦀 and e\u{301}"),
        Some("quote \" ' backslash \\ tab\t newline\n"),
        None,
    ]);
    let mut temporal = temporal();
    // Nanosecond timestamps round to microseconds in PostgreSQL: leave that column out.
    let schema = Arc::new(
        temporal
            .schema
            .project(&[0, 1, 2, 3, 4])
            .expect("columns exist"),
    );
    temporal.batches = temporal
        .batches
        .iter()
        .map(|b| b.project(&[0, 1, 2, 3, 4]).expect("columns exist"))
        .collect();
    temporal.schema = schema;
    vec![
        ints(),
        floats(),
        decimals(),
        strings,
        binary(),
        temporal,
        empty(),
    ]
}
