//! Encoder micro-benchmark: 100k rows × 10 mixed columns (integers, floats, short text,
//! timestamps, a boolean and a nullable column) through the native and the JSONB COPY encoders.
//!
//! Rows arrive in batches of the pipeline's default size and each batch is encoded into a buffer
//! that is cleared, not reallocated, between batches (the pipeline sizes its buffers from the
//! previous batch, so allocation is not what this measures). Throughput is reported in rows and
//! in bytes of COPY data produced.
//!
//! Run: `cargo bench -p seren-bench --bench encode`

use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pipeline::encode::{JsonbEncoder, NativeEncoder};
use pipeline::source::DEFAULT_BATCH_ROWS;
use pipeline::{BatchEncoder, TableInfo};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const ROWS: usize = 100_000;

/// A small deterministic generator (64-bit LCG), so every run encodes the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }
}

fn schema() -> Schema {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
    let tstz = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("quantity", DataType::Int32, false),
        Field::new("price", DataType::Float64, false),
        Field::new("discount", DataType::Float32, false),
        Field::new("sku", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("created_at", ts, false),
        Field::new("updated_at", tstz, false),
        Field::new("shipped", DataType::Boolean, false),
        Field::new("parent_id", DataType::Int64, true),
    ])
}

/// `ROWS` rows of order-like data, split into pipeline-sized batches.
fn batches() -> (TableInfo, Vec<RecordBatch>) {
    let schema = Arc::new(schema());
    let mut rng = Lcg(42);
    const NAMES: [&str; 6] = [
        "Ada",
        "Grace Hopper",
        "Zoë",
        "Linus",
        "Edsger W.",
        "Barbara",
    ];
    let start = 1_704_067_200_000_000i64; // 2024-01-01
    let mut out = Vec::new();
    let mut first = 0;
    while first < ROWS {
        let n = DEFAULT_BATCH_ROWS.min(ROWS - first);
        let ids: Vec<i64> = (first as i64..(first + n) as i64).collect();
        let mut ints = |m: u64| (0..n).map(|_| rng.next() % m).collect::<Vec<u64>>();
        let quantity = ints(100).into_iter().map(|v| v as i32);
        let price = ints(1_000_000).into_iter().map(|v| v as f64 / 100.0);
        let discount = ints(100).into_iter().map(|v| v as f32 / 200.0);
        let sku: Vec<String> = ints(100_000)
            .iter()
            .map(|v| format!("SKU-{v:05}"))
            .collect();
        let name = ints(6).into_iter().map(|v| NAMES[v as usize]);
        let created: Vec<i64> = ints(31_536_000_000_000)
            .iter()
            .map(|&v| start + v as i64)
            .collect();
        let updated: Vec<i64> = created.iter().map(|c| c + 3_600_000_123).collect();
        let shipped = ints(2).into_iter().map(|v| v == 1);
        let parent = ids.iter().map(|&id| (id % 3 != 0).then_some(id / 3));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(Int32Array::from_iter_values(quantity)),
            Arc::new(Float64Array::from_iter_values(price)),
            Arc::new(Float32Array::from_iter_values(discount)),
            Arc::new(StringArray::from_iter_values(sku)),
            Arc::new(StringArray::from_iter_values(name)),
            Arc::new(TimestampMicrosecondArray::from(created)),
            Arc::new(TimestampMicrosecondArray::from(updated).with_timezone("UTC")),
            Arc::new(BooleanArray::from_iter(shipped.map(Some))),
            Arc::new(Int64Array::from_iter(parent)),
        ];
        out.push(RecordBatch::try_new(schema.clone(), columns).expect("valid batch"));
        first += n;
    }
    let table = TableInfo {
        name: "orders".into(),
        schema,
        columns: Vec::new(),
        primary_key: vec!["id".into()],
        hidden_columns: Vec::new(),
        unique_keys: Vec::new(),
        indexes: Vec::new(),
        foreign_keys: Vec::new(),
        rows: ROWS as u64,
        rows_exact: true,
        bytes: 0,
        warnings: Vec::new(),
        ..Default::default()
    };
    (table, out)
}

/// Encode every batch; returns the bytes produced.
fn encode_all(encoder: &dyn BatchEncoder, batches: &[RecordBatch], out: &mut BytesMut) -> u64 {
    let mut total = 0;
    for batch in batches {
        out.clear();
        encoder.encode(batch, out).expect("encodes");
        total += out.len() as u64;
        black_box(&out[..]);
    }
    total
}

fn bench_encoders(c: &mut Criterion) {
    let (table, batches) = batches();
    let encoders: [(&str, Box<dyn BatchEncoder>); 2] = [
        (
            "native",
            Box::new(NativeEncoder::new(&table).expect("native encoder")),
        ),
        (
            "jsonb",
            Box::new(JsonbEncoder::new(&table, "bench").expect("jsonb encoder")),
        ),
    ];
    let mut group = c.benchmark_group("encode_100k_rows_x10");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    for (name, encoder) in &encoders {
        let mut out = BytesMut::new();
        let bytes = encode_all(encoder.as_ref(), &batches, &mut out);
        group.throughput(Throughput::ElementsAndBytes {
            elements: ROWS as u64,
            bytes,
        });
        group.bench_function(*name, |b| {
            b.iter(|| encode_all(encoder.as_ref(), black_box(&batches), &mut out))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_encoders);
criterion_main!(benches);
