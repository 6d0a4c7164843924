//! The hand-written COPY encoder against the reference: random batches are loaded into a real
//! PostgreSQL once with tokio-postgres' `BinaryCopyInWriter` and once with our `NativeEncoder`;
//! PostgreSQL must accept ours, and its binary dump of both tables must equal our bytes.

use crate::harness::{fresh_db, pg_url};
use arrow_array::builder::*;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use futures::{SinkExt, StreamExt};
use pipeline::encode::{NativeEncoder, COPY_HEADER, COPY_TRAILER};
use pipeline::{BatchEncoder, TableInfo};
use proptest::prelude::*;
use std::sync::Arc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

#[derive(Debug, Clone)]
struct Row {
    b: Option<bool>,
    i2: Option<i16>,
    i4: Option<i32>,
    i8: Option<i64>,
    f4: Option<f32>,
    f8: Option<f64>,
    text: Option<String>,
    bytes: Option<Vec<u8>>,
    day: Option<i32>,
    ts: Option<i64>,
    tstz: Option<i64>,
}

fn float8() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("NaN payloads vary", |f| !f.is_nan()),
        Just(f64::NAN),
        Just(-0.0),
        Just(f64::INFINITY)
    ]
}

fn row() -> impl Strategy<Value = Row> {
    (
        (
            any::<Option<bool>>(),
            any::<Option<i16>>(),
            any::<Option<i32>>(),
            any::<Option<i64>>(),
        ),
        (
            proptest::option::of(any::<f32>().prop_filter("NaN payloads vary", |f| !f.is_nan())),
            proptest::option::of(float8()),
        ),
        (
            proptest::option::of("[^\u{0}]{0,40}"),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        ),
        // Dates and timestamps across years 1..9999.
        (
            proptest::option::of(-719_162i32..2_932_896),
            proptest::option::of(-62_135_596_800_000_000i64..253_402_300_799_000_000),
            proptest::option::of(-62_135_596_800_000_000i64..253_402_300_799_000_000),
        ),
    )
        .prop_map(
            |((b, i2, i4, i8), (f4, f8), (text, bytes), (day, ts, tstz))| Row {
                b,
                i2,
                i4,
                i8,
                f4,
                f8,
                text,
                bytes,
                day,
                ts,
                tstz,
            },
        )
}

fn batch(rows: &[Row]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("b", DataType::Boolean, true),
        Field::new("i2", DataType::Int16, true),
        Field::new("i4", DataType::Int32, true),
        Field::new("i8", DataType::Int64, true),
        Field::new("f4", DataType::Float32, true),
        Field::new("f8", DataType::Float64, true),
        Field::new("text", DataType::Utf8, true),
        Field::new("bytes", DataType::Binary, true),
        Field::new("day", DataType::Date32, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new(
            "tstz",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(
            rows.iter()
                .map(|r| r.b)
                .collect::<arrow_array::BooleanArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.i2)
                .collect::<arrow_array::Int16Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.i4)
                .collect::<arrow_array::Int32Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.i8)
                .collect::<arrow_array::Int64Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.f4)
                .collect::<arrow_array::Float32Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.f8)
                .collect::<arrow_array::Float64Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.text.clone())
                .collect::<arrow_array::StringArray>(),
        ),
        Arc::new({
            let mut b = BinaryBuilder::new();
            for r in rows {
                b.append_option(r.bytes.as_deref());
            }
            b.finish()
        }),
        Arc::new(
            rows.iter()
                .map(|r| r.day)
                .collect::<arrow_array::Date32Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.ts)
                .collect::<arrow_array::TimestampMicrosecondArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.tstz)
                .collect::<arrow_array::TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        ),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

fn table_info(batch: &RecordBatch) -> TableInfo {
    TableInfo {
        name: "oracle".into(),
        schema: batch.schema(),
        columns: vec![],
        primary_key: vec![],
        hidden_columns: vec![],
        unique_keys: vec![],
        indexes: vec![],
        foreign_keys: vec![],
        rows: batch.num_rows() as u64,
        rows_exact: true,
        bytes: 0,
        warnings: vec![],
        ..Default::default()
    }
}

const COLUMNS: &str =
    "b boolean, i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision, \
     text text, bytes bytea, day date, ts timestamp, tstz timestamptz";

async fn dump(client: &tokio_postgres::Client, table: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let stream = client
        .copy_out(&format!("COPY {table} TO STDOUT (FORMAT binary)"))
        .await
        .unwrap();
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

async fn check(client: &tokio_postgres::Client, rows: Vec<Row>) {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS a, b; CREATE TABLE a ({COLUMNS}); CREATE TABLE b ({COLUMNS});"
        ))
        .await
        .unwrap();
    // Reference: BinaryCopyInWriter with the same values.
    let types = [
        Type::BOOL,
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::TEXT,
        Type::BYTEA,
        Type::DATE,
        Type::TIMESTAMP,
        Type::TIMESTAMPTZ,
    ];
    let sink = client
        .copy_in("COPY a FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    let writer = BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    for r in &rows {
        let day = r.day.map(|d| epoch + chrono::Duration::days(d as i64));
        let ts: Option<NaiveDateTime> =
            r.ts.map(|t| DateTime::from_timestamp_micros(t).unwrap().naive_utc());
        let tstz: Option<DateTime<Utc>> =
            r.tstz.map(|t| DateTime::from_timestamp_micros(t).unwrap());
        let values: [&(dyn ToSql + Sync); 11] = [
            &r.b, &r.i2, &r.i4, &r.i8, &r.f4, &r.f8, &r.text, &r.bytes, &day, &ts, &tstz,
        ];
        writer.as_mut().write(&values).await.unwrap();
    }
    writer.finish().await.unwrap();
    // Ours.
    let batch = batch(&rows);
    let mut ours = BytesMut::from(COPY_HEADER);
    NativeEncoder::new(&table_info(&batch))
        .unwrap()
        .encode(&batch, &mut ours)
        .unwrap();
    ours.extend_from_slice(COPY_TRAILER);
    let sink = client
        .copy_in::<_, bytes::Bytes>("COPY b FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    let mut sink = std::pin::pin!(sink);
    sink.send(ours.clone().freeze()).await.unwrap();
    sink.as_mut().finish().await.unwrap();

    let reference = dump(client, "a").await;
    assert_eq!(
        dump(client, "b").await,
        reference,
        "PostgreSQL stores different values"
    );
    assert_eq!(
        &ours[..],
        &reference[..],
        "our bytes differ from BinaryCopyInWriter's"
    );
}

#[test]
fn native_encoder_matches_binary_copy_in_writer() {
    let (_, db) = fresh_db();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&pg_url(&db), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    });
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    });
    runner
        .run(&proptest::collection::vec(row(), 0..60), |rows| {
            rt.block_on(check(&client, rows));
            Ok(())
        })
        .unwrap();
}
