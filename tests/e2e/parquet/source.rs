//! Parquet files as a source: the type map in native and JSONB mode, row groups, directories,
//! globs and the errors.

use super::{column_types, write_parquet};
use crate::harness::{fresh_db, psql, run, run_ok, tempdir};
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::types::Int32Type;
use arrow_array::*;
use arrow_buffer::i256;
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use std::collections::HashMap;
use std::sync::Arc;

/// Three rows of every type family: two with values, one of NULLs (id aside).
fn every_type() -> RecordBatch {
    let uuid_meta = HashMap::from([("ARROW:extension:name".to_string(), "arrow.uuid".to_string())]);
    let mut texts = ListBuilder::new(StringBuilder::new());
    texts.append_value([Some("a"), Some("b c")]);
    texts.append_value(Vec::<Option<&str>>::new());
    texts.append_null();
    let st_fields = Fields::from(vec![
        Field::new("x", DataType::Int32, true),
        Field::new("y", DataType::Utf8, true),
    ]);
    let st = StructArray::new(
        st_fields.clone(),
        vec![
            Arc::new(Int32Array::from(vec![Some(1), None, None])),
            Arc::new(StringArray::from(vec![Some("p"), Some("q"), None])),
        ],
        Some(vec![true, true, false].into()),
    );
    let columns: Vec<(Field, ArrayRef)> = vec![
        (
            Field::new("id", DataType::Int32, false),
            Arc::new(Int32Array::from(vec![1, 2, 3])),
        ),
        (
            Field::new("b", DataType::Boolean, true),
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        ),
        (
            Field::new("i8", DataType::Int8, true),
            Arc::new(Int8Array::from(vec![Some(-128), Some(127), None])),
        ),
        (
            Field::new("i64", DataType::Int64, true),
            Arc::new(Int64Array::from(vec![Some(i64::MAX), Some(-1), None])),
        ),
        (
            Field::new("u64", DataType::UInt64, true),
            Arc::new(UInt64Array::from(vec![Some(u64::MAX), Some(0), None])),
        ),
        (
            Field::new("f32", DataType::Float32, true),
            Arc::new(Float32Array::from(vec![Some(1.5), Some(-0.25), None])),
        ),
        (
            Field::new("f64", DataType::Float64, true),
            Arc::new(Float64Array::from(vec![
                Some(0.1),
                Some(f64::INFINITY),
                None,
            ])),
        ),
        (
            Field::new("dec", DataType::Decimal128(10, 2), true),
            Arc::new(
                Decimal128Array::from(vec![Some(1_234_567), Some(-1), None])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
        ),
        (
            Field::new("big", DataType::Decimal256(40, 5), true),
            Arc::new(
                Decimal256Array::from(vec![
                    Some(i256::from_string("1234567890123456789012345678901234512345").unwrap()),
                    Some(i256::from_i128(-5)),
                    None,
                ])
                .with_precision_and_scale(40, 5)
                .unwrap(),
            ),
        ),
        (
            Field::new("s", DataType::Utf8, true),
            Arc::new(StringArray::from(vec![Some("héllo"), Some(""), None])),
        ),
        (
            Field::new("ls", DataType::LargeUtf8, true),
            Arc::new(LargeStringArray::from(vec![Some("large"), Some("x"), None])),
        ),
        (
            Field::new("vs", DataType::Utf8View, true),
            Arc::new(StringViewArray::from(vec![Some("view"), Some("y"), None])),
        ),
        (
            Field::new("bin", DataType::Binary, true),
            Arc::new(BinaryArray::from(vec![
                Some(&[0xde, 0xad][..]),
                Some(&[][..]),
                None,
            ])),
        ),
        (
            Field::new("d", DataType::Date32, true),
            Arc::new(Date32Array::from(vec![Some(19_782), Some(0), None])),
        ),
        (
            Field::new("t", DataType::Time64(TimeUnit::Microsecond), true),
            Arc::new(Time64MicrosecondArray::from(vec![
                Some(3_723_000_001),
                Some(0),
                None,
            ])),
        ),
        (
            Field::new("t32", DataType::Time32(TimeUnit::Millisecond), true),
            Arc::new(Time32MillisecondArray::from(vec![
                Some(1_000),
                Some(1),
                None,
            ])),
        ),
        (
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(1_700_000_000_123_456),
                Some(0),
                None,
            ])),
        ),
        (
            Field::new(
                "tz",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                true,
            ),
            Arc::new(
                TimestampNanosecondArray::from(vec![
                    Some(1_700_000_000_123_456_789),
                    Some(-1_000),
                    None,
                ])
                .with_timezone("UTC"),
            ),
        ),
        (
            Field::new("u", DataType::FixedSizeBinary(16), true).with_metadata(uuid_meta),
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    vec![Some([0x11u8; 16]), Some([0u8; 16]), None].into_iter(),
                    16,
                )
                .unwrap(),
            ),
        ),
        (
            Field::new(
                "dict",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Arc::new(
                vec![Some("red"), Some("blue"), None]
                    .into_iter()
                    .collect::<DictionaryArray<Int32Type>>(),
            ),
        ),
        (
            Field::new(
                "li",
                DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
                true,
            ),
            Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                Some(vec![Some(1), None, Some(3)]),
                Some(vec![]),
                None,
            ])),
        ),
        {
            let texts = texts.finish();
            (
                Field::new("lt", texts.data_type().clone(), true),
                Arc::new(texts),
            )
        },
        (
            Field::new("st", DataType::Struct(st_fields), true),
            Arc::new(st),
        ),
    ];
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

#[test]
fn native_mode_maps_every_type_family() {
    let dir = tempdir();
    let file = dir.path().join("every.parquet");
    write_parquet(&file, &every_type(), 2);
    let (url, db) = fresh_db();
    let out = run_ok(&[
        "init",
        "--source",
        file.to_str().unwrap(),
        "--target",
        &url,
        "--mode",
        "native",
        "-y",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(report["rows"], 3, "{out}");
    assert_eq!(
        column_types(&db, "every"),
        "id integer not null, b boolean, i8 smallint, i64 bigint, u64 numeric(20,0), f32 real, \
         f64 double precision, dec numeric(10,2), big numeric(40,5), s text, ls text, vs text, \
         bin bytea, d date, t time without time zone, t32 time without time zone, \
         ts timestamp without time zone, tz timestamp with time zone, u uuid, dict text, \
         li integer[], lt text[], st jsonb"
    );
    let row = |id: i32| {
        psql(
            &db,
            &format!(
                "SET TIME ZONE 'UTC'; SELECT concat_ws('|', b, i8, i64, u64, f32, f64, dec, big, s, \
                 ls, vs, encode(bin, 'hex'), d, t, t32, ts, tz, u, dict, li, lt, st) \
                 FROM every WHERE id = {id}"
            ),
        )
    };
    assert_eq!(
        row(1),
        "t|-128|9223372036854775807|18446744073709551615|1.5|0.1|12345.67|\
         12345678901234567890123456789012345.12345|héllo|large|view|dead|2024-02-29|\
         01:02:03.000001|00:00:01|2023-11-14 22:13:20.123456|2023-11-14 22:13:20.123457+00|\
         11111111-1111-1111-1111-111111111111|red|{1,NULL,3}|{a,\"b c\"}|{\"x\": 1, \"y\": \"p\"}"
    );
    assert_eq!(
        row(2),
        "f|127|-1|0|-0.25|Infinity|-0.01|-0.00005||x|y||1970-01-01|00:00:00|00:00:00.001|\
         1970-01-01 00:00:00|1969-12-31 23:59:59.999999+00|00000000-0000-0000-0000-000000000000|\
         blue|{}|{}|{\"x\": null, \"y\": \"q\"}"
    );
    assert_eq!(row(3), "", "every column of row 3 is NULL");
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM every WHERE b IS NULL AND li IS NULL AND st IS NULL"
        ),
        "1"
    );
}

#[test]
fn jsonb_mode_numbers_rows_across_row_groups_and_files() {
    let dir = tempdir();
    let batch = every_type();
    // Two same-schema files in one directory: one table, rows numbered across both.
    write_parquet(&dir.path().join("events/a.parquet"), &batch, 1);
    write_parquet(&dir.path().join("events/b.parquet"), &batch.slice(0, 2), 1);
    let (url, db) = fresh_db();
    run_ok(&[
        "init",
        "--source",
        dir.path().join("events").to_str().unwrap(),
        "--target",
        &url,
        "-y",
    ]);
    assert_eq!(
        psql(
            &db,
            "SELECT string_agg(id, ',' ORDER BY id::int) FROM events"
        ),
        "0,1,2,3,4"
    );
    assert_eq!(
        psql(&db, "SELECT DISTINCT _source_type FROM events"),
        "parquet"
    );
    assert_eq!(
        psql(
            &db,
            "SELECT concat_ws('|', data->>'dict', data->'li', data->'st', data->'dec') \
             FROM events WHERE id = '3'"
        ),
        "red|[1, null, 3]|{\"x\": 1, \"y\": \"p\"}|{\"_type\": \"decimal\", \"value\": \"12345.67\"}"
    );
}

#[test]
fn globs_empty_files_and_many_row_groups() {
    let dir = tempdir();
    let n = 1000;
    let ids: Vec<i64> = (0..n).collect();
    let names: Vec<String> = ids.iter().map(|i| format!("name {}", i % 7)).collect();
    let dict: DictionaryArray<Int32Type> = names.iter().map(|s| s.as_str()).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("name", dict.data_type().clone(), false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(ids)), Arc::new(dict)],
    )
    .unwrap();
    write_parquet(&dir.path().join("big.parquet"), &batch, 64);
    write_parquet(&dir.path().join("empty.parquet"), &batch.slice(0, 0), 64);
    let (url, db) = fresh_db();
    let glob = format!("{}/*.parquet", dir.path().display());
    let out = run_ok(&[
        "init",
        "--source",
        &glob,
        "--target",
        &url,
        "--mode",
        "native",
        "-y",
        "--dry-run",
        "--json",
    ]);
    let plan: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let parts: Vec<_> = plan["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["partitions"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(parts, [("big".to_string(), 16), ("empty".to_string(), 1)]);
    run_ok(&[
        "init", "--source", &glob, "--target", &url, "--mode", "native", "-y",
    ]);
    assert_eq!(
        psql(
            &db,
            "SELECT count(*), sum(n), count(DISTINCT name), min(name) FROM big"
        ),
        "1000|499500|7|name 0"
    );
    assert_eq!(
        column_types(&db, "big"),
        "n bigint not null, name text not null"
    );
    assert_eq!(psql(&db, "SELECT count(*) FROM empty"), "0");
    assert_eq!(
        column_types(&db, "empty"),
        "n bigint not null, name text not null"
    );
}

#[test]
fn bad_sources_fail_with_clear_errors() {
    let dir = tempdir();
    let ints = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, true)])),
        vec![Arc::new(Int32Array::from(vec![1]))],
    )
    .unwrap();
    let texts = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true)])),
        vec![Arc::new(StringArray::from(vec!["x"]))],
    )
    .unwrap();
    write_parquet(&dir.path().join("mixed/one.parquet"), &ints, 10);
    write_parquet(&dir.path().join("mixed/two.parquet"), &texts, 10);
    std::fs::write(dir.path().join("fake.parquet"), b"not parquet at all").unwrap();
    let (url, _db) = fresh_db();

    let mixed = dir.path().join("mixed");
    let (code, _, err) = run(&[
        "init",
        "--source",
        mixed.to_str().unwrap(),
        "--target",
        &url,
        "-y",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("one.parquet")
            && err.contains("two.parquet")
            && err.contains("different schemas"),
        "{err}"
    );
    // The glob form loads each file as its own table.
    run_ok(&[
        "init",
        "--source",
        &format!("{}/*.parquet", mixed.display()),
        "--target",
        &url,
        "-y",
    ]);

    let fake = dir.path().join("fake.parquet");
    let (code, _, err) = run(&[
        "init",
        "--source",
        fake.to_str().unwrap(),
        "--target",
        &url,
        "-y",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("fake.parquet") && err.contains("not a readable Parquet file"),
        "{err}"
    );

    let none = format!("{}/nothing/*.parquet", dir.path().display());
    let (code, _, err) = run(&["init", "--source", &none, "--target", &url, "-y"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("matches no files"), "{err}");
}
