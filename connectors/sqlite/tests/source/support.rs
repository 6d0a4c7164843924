//! Shared helpers: throwaway SQLite files, opening them through the factory, reading whole
//! tables through `plan` + `open`, and pulling values back out of Arrow arrays.

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use futures::StreamExt;
use pipeline::{Mode, OnTypeMismatch, Partition, Source, SourceFactory, SourceOptions, TableInfo};
use seren_sqlite::SqliteFactory;
use std::path::PathBuf;
use std::sync::Arc;
use tempfile::TempDir;

/// A new SQLite file in its own temporary directory, built by `sql`.
pub fn db(sql: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
    (dir, path)
}

pub fn options(mode: Mode) -> SourceOptions {
    SourceOptions {
        mode,
        ..SourceOptions::default()
    }
}

pub fn native(on_type_mismatch: OnTypeMismatch) -> SourceOptions {
    SourceOptions {
        mode: Mode::Native,
        on_type_mismatch,
        ..SourceOptions::default()
    }
}

pub async fn open(path: &std::path::Path, options: &SourceOptions) -> Arc<dyn Source> {
    SqliteFactory
        .open(path.to_str().unwrap(), options)
        .await
        .unwrap()
}

/// Every batch of one partition; all must match the table's schema exactly.
pub async fn read_partition(
    source: &dyn Source,
    table: &TableInfo,
    partition: &Partition,
) -> Vec<RecordBatch> {
    let mut stream = source.open(table, partition).await.unwrap();
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch.unwrap();
        assert_eq!(
            batch.schema(),
            table.schema,
            "batch schema differs from the table's"
        );
        assert!(batch.num_rows() > 0, "empty batch");
        batches.push(batch);
    }
    batches
}

/// Describe, plan (with `filter`) and read every partition of `table`.
pub async fn read_table(
    source: &dyn Source,
    table: &str,
    filter: Option<&str>,
) -> (TableInfo, Vec<Partition>, Vec<RecordBatch>) {
    let info = source.describe(table).await.unwrap();
    let partitions = source.plan(&info, filter).await.unwrap();
    assert!(!partitions.is_empty());
    let mut batches = Vec::new();
    for p in &partitions {
        assert_eq!(p.count, partitions.len());
        batches.extend(read_partition(source, &info, p).await);
    }
    (info, partitions, batches)
}

/// One stored value, as a JSONB-mode union reports it (child name, value).
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    TextBytes(Vec<u8>),
}

/// The values of union column `name`, checking each child's name against its type id.
pub fn union_column(batches: &[RecordBatch], name: &str) -> Vec<Val> {
    let mut out = Vec::new();
    for batch in batches {
        let union = batch.column_by_name(name).unwrap().as_union();
        for i in 0..union.len() {
            let id = union.type_id(i);
            let child = union.child(id);
            let j = union.value_offset(i);
            let field = match union.data_type() {
                arrow_schema::DataType::Union(fields, _) => fields
                    .iter()
                    .find(|(t, _)| *t == id)
                    .unwrap()
                    .1
                    .name()
                    .clone(),
                _ => unreachable!(),
            };
            out.push(match field.as_str() {
                "null" => Val::Null,
                "integer" => Val::Integer(child.as_primitive::<Int64Type>().value(j)),
                "real" => Val::Real(child.as_primitive::<Float64Type>().value(j)),
                "text" => Val::Text(child.as_string::<i32>().value(j).to_string()),
                "blob" => Val::Blob(child.as_binary::<i32>().value(j).to_vec()),
                "text_bytes" => Val::TextBytes(child.as_binary::<i32>().value(j).to_vec()),
                other => panic!("unexpected union child {other}"),
            });
        }
    }
    out
}

pub fn ints(batches: &[RecordBatch], name: &str) -> Vec<Option<i64>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(name)
                .unwrap()
                .as_primitive::<Int64Type>()
                .iter()
        })
        .collect()
}

pub fn floats(batches: &[RecordBatch], name: &str) -> Vec<Option<f64>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(name)
                .unwrap()
                .as_primitive::<Float64Type>()
                .iter()
        })
        .collect()
}

pub fn strings(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column_by_name(name).unwrap().as_string::<i32>();
            a.iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>()
        })
        .collect()
}

pub fn binaries(batches: &[RecordBatch], name: &str) -> Vec<Option<Vec<u8>>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column_by_name(name).unwrap().as_binary::<i32>();
            a.iter().map(|v| v.map(<[u8]>::to_vec)).collect::<Vec<_>>()
        })
        .collect()
}

pub fn bools(batches: &[RecordBatch], name: &str) -> Vec<Option<bool>> {
    batches
        .iter()
        .flat_map(|b| b.column_by_name(name).unwrap().as_boolean().iter())
        .collect()
}

pub fn dates(batches: &[RecordBatch], name: &str) -> Vec<Option<i32>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(name)
                .unwrap()
                .as_primitive::<Date32Type>()
                .iter()
        })
        .collect()
}

pub fn timestamps(batches: &[RecordBatch], name: &str) -> Vec<Option<i64>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(name)
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
        })
        .collect()
}

pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}
