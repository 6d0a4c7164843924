//! The Parquet source against files written here: partitions are row groups that cover every
//! row once, row numbers run across files, and export files read back identically.

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use pipeline::{Mode, Source, SourceOptions, TableInfo};
use seren_parquet::{ParquetSource, PartWriter, ROW_COLUMN};
use std::path::Path;
use std::sync::Arc;

fn batch(from: i64, rows: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("s", DataType::Utf8, true),
    ]));
    let n = Int64Array::from_iter_values(from..from + rows);
    let s: StringArray = (from..from + rows)
        .map(|i| (i % 3 != 0).then(|| format!("v{i}")))
        .collect();
    RecordBatch::try_new(schema, vec![Arc::new(n), Arc::new(s)]).unwrap()
}

fn write(path: &Path, batch: &RecordBatch, group_rows: usize) {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(group_rows))
        .build();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        batch.schema(),
        Some(props),
    )
    .unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// Every batch of every partition of `table`, in plan order.
async fn read_all(source: &ParquetSource, table: &TableInfo) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for p in source.plan(table, None).await.unwrap() {
        let mut stream = source.open(table, &p).await.unwrap();
        while let Some(b) = stream.next().await {
            let b = b.unwrap();
            assert_eq!(
                b.schema(),
                table.schema,
                "batches match the described schema"
            );
            out.push(b);
        }
    }
    out
}

#[tokio::test]
async fn row_groups_partition_a_directory_and_rows_are_numbered_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let table_dir = dir.path().join("t");
    std::fs::create_dir(&table_dir).unwrap();
    write(&table_dir.join("a.parquet"), &batch(0, 250), 100);
    write(&table_dir.join("b.parquet"), &batch(250, 50), 100);
    let options = SourceOptions {
        mode: Mode::Native,
        batch_rows: 64,
        ..SourceOptions::default()
    };
    let source = ParquetSource::open(table_dir.to_str().unwrap(), options).unwrap();
    assert_eq!(source.list_tables().await.unwrap(), ["t"]);
    let table = source.describe("t").await.unwrap();
    assert_eq!((table.rows, table.rows_exact), (300, true));
    assert_eq!(table.hidden_columns, [ROW_COLUMN]);
    assert!(!table.columns[0].nullable && table.columns[1].nullable);
    let plan = source.plan(&table, None).await.unwrap();
    let rows: Vec<u64> = plan.iter().map(|p| p.estimated_rows).collect();
    assert_eq!(rows, [100, 100, 50, 50]);

    let batches = read_all(&source, &table).await;
    assert!(
        batches.iter().all(|b| b.num_rows() <= 64),
        "batches bounded by rows"
    );
    let mut n = Vec::new();
    let mut row = Vec::new();
    for b in &batches {
        n.extend(
            b.column(0)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .copied(),
        );
        row.extend(
            b.column(2)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .copied(),
        );
    }
    assert_eq!(
        n,
        (0..300).collect::<Vec<_>>(),
        "every row once, in file order"
    );
    assert_eq!(row, n, "row numbers run across row groups and files");
    let nulls: usize = batches.iter().map(|b| b.column(1).null_count()).sum();
    assert_eq!(nulls, 100);
}

#[tokio::test]
async fn exported_files_read_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("src.parquet"), &batch(0, 10), 4);
    let source = ParquetSource::open(
        dir.path().join("src.parquet").to_str().unwrap(),
        SourceOptions {
            mode: Mode::Native,
            ..SourceOptions::default()
        },
    )
    .unwrap();
    let table = source.describe("src").await.unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut writer = PartWriter::create(&out.join("part-00000.parquet"), &table, 64).unwrap();
    for b in read_all(&source, &table).await {
        writer.write("src", &b).unwrap();
    }
    let (rows, bytes) = writer.finish("src").unwrap();
    assert_eq!(rows, 10);
    assert!(bytes > 0);
    assert!(!out.join("part-00000.parquet.partial").exists());

    let back = ParquetSource::open(out.to_str().unwrap(), SourceOptions::default()).unwrap();
    let t = back.describe("out").await.unwrap();
    assert!(
        back.plan(&t, None).await.unwrap().len() > 1,
        "a tiny row-group size gives several row groups"
    );
    let batches = read_all(&back, &t).await;
    let original = batch(0, 10);
    let n: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(n, (0..10).collect::<Vec<_>>());
    let s: Vec<Option<String>> = batches
        .iter()
        .flat_map(|b| {
            let a = b.column(1).as_string::<i32>();
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    let expected: Vec<Option<String>> = (0..10)
        .map(|i| {
            let a = original.column(1).as_string::<i32>();
            a.is_valid(i).then(|| a.value(i).to_string())
        })
        .collect();
    assert_eq!(s, expected);
}
