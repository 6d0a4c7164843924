//! Reading a partition: a thread of its own reads the partition's byte range record by record,
//! appends values to Arrow builders, and hands over a batch every `batch_rows` rows or
//! `batch_bytes` bytes through a channel holding one batch. Dropping the stream closes the
//! channel; the thread notices at its next batch and stops. Errors arrive as stream items.

use crate::catalog::{self, check_width};
use crate::types::{ColumnBuilder, ColumnType};
use crate::ROW_COLUMN;
use pipeline::arrow_array::builder::Int64Builder;
use pipeline::arrow_array::{ArrayRef, RecordBatch};
use pipeline::arrow_schema::SchemaRef;
use pipeline::futures::channel::mpsc;
use pipeline::futures::{executor, SinkExt, StreamExt};
use pipeline::{BatchStream, Error, ErrorKind, Partition, Result, Side, SourceOptions, TableInfo};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A partition's slice of its file: records starting in `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Byte offset of the first record.
    pub start: u64,
    /// Byte offset after the last record.
    pub end: u64,
    /// Lines before `start` (for messages).
    pub line: u64,
    /// Data records before `start` (row numbers continue from it).
    pub row: u64,
}

impl Bounds {
    /// The bounds as a partition carries them.
    pub fn to_json(self) -> pipeline::serde_json::Value {
        pipeline::serde_json::json!({
            "start": self.start, "end": self.end, "line": self.line, "row": self.row
        })
    }

    /// The bounds a partition carries.
    pub fn of(partition: &Partition) -> Result<Bounds> {
        let get = |key: &str| {
            partition.bounds[key].as_u64().ok_or_else(|| {
                Error::config(format!(
                    "table \"{}\" partition {}: its bounds lack `{key}`; plan the table again",
                    partition.table, partition.index
                ))
            })
        };
        Ok(Bounds {
            start: get("start")?,
            end: get("end")?,
            line: get("line")?,
            row: get("row")?,
        })
    }
}

/// How one schema field is filled.
enum Cell {
    /// From the record's field at this position.
    Value(usize, ColumnBuilder),
    /// The record's row number (the hidden row id).
    Row(Int64Builder),
}

/// Start reading `bounds` of the file at `path` as batches of `table`'s schema.
pub fn open(
    path: PathBuf,
    table: &TableInfo,
    bounds: Bounds,
    options: &SourceOptions,
) -> Result<BatchStream> {
    let mut cells = Vec::new();
    for (i, field) in table.schema.fields().iter().enumerate() {
        if field.name() == ROW_COLUMN {
            cells.push(Cell::Row(Int64Builder::new()));
            continue;
        }
        let t = ColumnType::of_arrow(field.data_type()).ok_or_else(|| {
            Error::config(format!(
                "table \"{}\" column \"{}\": the csv connector cannot read Arrow type {}",
                table.name,
                field.name(),
                field.data_type()
            ))
        })?;
        cells.push(Cell::Value(i, ColumnBuilder::new(t)));
    }
    let (mut tx, rx) = mpsc::channel::<Result<RecordBatch>>(0);
    let (schema, options) = (table.schema.clone(), options.clone());
    std::thread::Builder::new()
        .name(format!("csv {}", table.name))
        .spawn(move || {
            let mut send = |batch: Result<RecordBatch>| executor::block_on(tx.send(batch)).is_ok();
            if let Err(e) = read(&path, bounds, schema, cells, &options, &mut send) {
                send(Err(e));
            }
        })
        .map_err(|e| {
            let what = format!("cannot start a reader thread: {e}");
            Error::new(ErrorKind::Io, Side::Local, what).with_cause(e)
        })?;
    Ok(rx.boxed())
}

/// Read the records of `bounds`, calling `send` per batch until it returns false.
fn read(
    path: &Path,
    bounds: Bounds,
    schema: SchemaRef,
    mut cells: Vec<Cell>,
    options: &SourceOptions,
    send: &mut dyn FnMut(Result<RecordBatch>) -> bool,
) -> Result<()> {
    let data_columns = cells
        .iter()
        .filter(|c| matches!(c, Cell::Value(..)))
        .count();
    let mut records = catalog::records(path, bounds.start, bounds.line)?;
    let (mut rows, mut bytes, mut row) = (0usize, 0usize, bounds.row);
    while records.offset() < bounds.end {
        let Some(record) = records.next_record()? else {
            break;
        };
        check_width(path, &record, data_columns)?;
        row += 1;
        for cell in &mut cells {
            match cell {
                Cell::Row(b) => b.append_value(row as i64),
                Cell::Value(i, b) => {
                    let field = &record.fields[*i];
                    bytes += field.text.len();
                    b.append(field).map_err(|problem| {
                        let name = schema.field(*i).name();
                        Error::new(
                            ErrorKind::Conversion,
                            Side::Source,
                            format!(
                                "{} line {}, column \"{name}\": {problem}; the file changed \
                                 after it was described, run again",
                                path.display(),
                                record.line
                            ),
                        )
                    })?;
                }
            }
        }
        rows += 1;
        if rows >= options.batch_rows || bytes >= options.batch_bytes {
            if !send(finish(&schema, &mut cells)) {
                return Ok(()); // the stream was dropped
            }
            (rows, bytes) = (0, 0);
        }
    }
    if rows > 0 {
        send(finish(&schema, &mut cells));
    }
    Ok(())
}

/// The batch built so far; the builders start over.
fn finish(schema: &SchemaRef, cells: &mut [Cell]) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = cells
        .iter_mut()
        .map(|c| match c {
            Cell::Row(b) => Arc::new(b.finish()) as ArrayRef,
            Cell::Value(_, b) => b.finish(),
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| {
        let what = format!("building a batch failed: {e}");
        Error::new(ErrorKind::Conversion, Side::Local, what).with_cause(e)
    })
}
