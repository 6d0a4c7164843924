//! Reading a partition: a dedicated thread with its own read-only connection steps through the
//! rows, appends each value straight from SQLite's buffer into reused Arrow builders, and sends
//! a batch every `batch_rows` rows or `batch_bytes` bytes over a bounded channel (capacity 2).
//!
//! Dropping the stream closes the channel and interrupts the running query, so the thread stops
//! promptly even inside a long filtered scan. Errors, panics included, arrive as stream items;
//! the stream never just ends early.

use crate::catalog::ident;
use crate::error::sqlite;
use crate::partition::Bounds;
use crate::source::connect;
use crate::types::{pg_text, real_text, union_fields, union_id, Conv};
use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, NullArray, RecordBatch, UnionArray};
use arrow_buffer::ScalarBuffer;
use arrow_schema::SchemaRef;
use futures::Stream;
use pipeline::{BatchStream, Error, ErrorKind, Partition, Result, Side, SourceOptions, TableInfo};
use rusqlite::types::ValueRef;
use rusqlite::InterruptHandle;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Batches buffered between the reader thread and the consumer.
const CHANNEL_BATCHES: usize = 2;

/// Start reading `partition` of `table` from the file at `path`.
pub(crate) fn open(
    path: PathBuf,
    table: &TableInfo,
    partition: &Partition,
    options: &SourceOptions,
) -> Result<BatchStream> {
    let bounds: Bounds = partition.bounds_as("sqlite")?;
    let mut select = Vec::with_capacity(table.columns.len());
    let mut convs = Vec::with_capacity(table.columns.len());
    for field in table.schema.fields() {
        if table.is_data_column(field.name()) {
            select.push(ident(field.name()));
        } else {
            let rowid = bounds.rowid.clone().ok_or_else(|| {
                Error::config(format!(
                    "table \"{}\" has hidden column \"{}\" but no rowid to fill it",
                    table.name,
                    field.name()
                ))
            })?;
            select.push(rowid);
        }
        convs.push(Conv::for_field(field).ok_or_else(|| {
            Error::config(format!(
                "table \"{}\" column \"{}\": the sqlite connector cannot read Arrow type {}",
                table.name,
                field.name(),
                field.data_type()
            ))
        })?);
    }
    let order: Vec<String> = match &bounds.rowid {
        Some(rowid) => vec![rowid.clone()],
        None => table.primary_key.iter().map(|c| ident(c)).collect(),
    };
    let order = match order.is_empty() {
        true => String::new(),
        false => format!(" ORDER BY {}", order.join(", ")),
    };
    let sql = format!(
        "SELECT {} FROM {}{}{order}",
        select.join(", "),
        ident(&table.name),
        bounds.where_clause()
    );
    let context = format!(
        "reading table \"{}\" partition {}/{} ({})",
        table.name,
        partition.index + 1,
        partition.count,
        partition.description
    );
    let conn = connect(&path)?;
    let interrupt = conn.get_interrupt_handle();
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    let mut batches = Batches::new(table.schema.clone(), &convs, options);
    let thread = format!("sqlite-read-{}", partition.index);
    std::thread::Builder::new()
        .name(thread)
        .spawn(move || {
            let run = std::panic::AssertUnwindSafe(|| {
                let _span = tracing::debug_span!("sqlite_read", %context).entered();
                read(&conn, &sql, &mut batches, &tx).map_err(|e| e.context(&context))
            });
            let failure = match std::panic::catch_unwind(run) {
                Ok(result) => result.err(),
                Err(_) => Some(Error::new(
                    ErrorKind::Query,
                    Side::Local,
                    format!("{context}: the reader thread panicked (please report this)"),
                )),
            };
            if let Some(e) = failure {
                let _ = tx.blocking_send(Err(e)); // a dropped receiver wants nothing more
            }
        })
        .map_err(|e| {
            Error::new(
                ErrorKind::Io,
                Side::Local,
                format!("cannot start a reader thread: {e}"),
            )
        })?;
    Ok(Box::pin(PartitionStream { rx, interrupt }))
}

/// Step through the rows, sending full batches; stops quietly when the receiver is gone.
fn read(
    conn: &rusqlite::Connection,
    sql: &str,
    batches: &mut Batches,
    tx: &mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    let mut st = conn
        .prepare(sql)
        .map_err(|e| sqlite(e, "preparing the query"))?;
    let mut rows = st.query([]).map_err(|e| sqlite(e, "running the query"))?;
    loop {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(_) if tx.is_closed() => return Ok(()), // interrupted because nobody listens
            Err(e) => return Err(sqlite(e, "reading a row")),
        };
        for i in 0..batches.columns.len() {
            let value = row.get_ref(i).map_err(|e| sqlite(e, "reading a value"))?;
            batches.push(i, value)?;
        }
        batches.rows += 1;
        batches.total += 1;
        if batches.full() && tx.blocking_send(batches.finish()).is_err() {
            return Ok(());
        }
    }
    if batches.rows > 0 {
        let _ = tx.blocking_send(batches.finish());
    }
    tracing::debug!(rows = batches.total, "partition read");
    Ok(())
}

/// The receiving end, which interrupts the query when dropped.
struct PartitionStream {
    rx: mpsc::Receiver<Result<RecordBatch>>,
    interrupt: InterruptHandle,
}

impl Stream for PartitionStream {
    type Item = Result<RecordBatch>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for PartitionStream {
    fn drop(&mut self) {
        self.rx.close();
        self.interrupt.interrupt();
    }
}

/// One batch under construction: a builder per column, reused from batch to batch.
struct Batches {
    schema: SchemaRef,
    columns: Vec<Builder>,
    rows: usize,
    bytes: usize,
    /// Rows read so far in the partition.
    total: u64,
    max_rows: usize,
    max_bytes: usize,
}

impl Batches {
    fn new(schema: SchemaRef, convs: &[Conv], options: &SourceOptions) -> Self {
        Batches {
            schema,
            columns: convs.iter().map(|&c| Builder::new(c)).collect(),
            rows: 0,
            bytes: 0,
            total: 0,
            max_rows: options.batch_rows.max(1),
            max_bytes: options.batch_bytes.max(1),
        }
    }

    fn full(&self) -> bool {
        self.rows >= self.max_rows || self.bytes >= self.max_bytes
    }

    /// Append `value` to column `i`; a value that does not fit means the file changed after
    /// the census (or a bug), and is an error rather than a silent conversion.
    fn push(&mut self, i: usize, value: ValueRef<'_>) -> Result<()> {
        match self.columns[i].push(value) {
            Some(bytes) => {
                self.bytes += bytes;
                Ok(())
            }
            None => Err(Error::new(
                ErrorKind::Conversion,
                Side::Source,
                format!(
                    "column \"{}\" row {} of this batch holds {}, which does not fit {}; the \
                     file changed after it was described: run again",
                    self.schema.field(i).name(),
                    self.rows + 1,
                    crate::types::render(value),
                    self.columns[i].conv.pg_name()
                ),
            )),
        }
    }

    /// The batch so far; the builders start over empty.
    fn finish(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(Builder::finish).collect();
        let rows = std::mem::take(&mut self.rows);
        self.bytes = 0;
        RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| {
            Error::new(
                ErrorKind::Conversion,
                Side::Local,
                format!("a batch of {rows} rows does not match the table's schema: {e}"),
            )
        })
    }
}

/// An Arrow builder for one column, with its conversion.
struct Builder {
    conv: Conv,
    values: Values,
    text: ryu::Buffer,
}

enum Values {
    Union(Box<UnionBuilder>),
    Int(Int64Builder),
    Real(Float64Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
    Binary(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
}

/// A dense union of the five storage classes (TEXT split into valid and invalid UTF-8).
#[derive(Default)]
struct UnionBuilder {
    type_ids: Vec<i8>,
    offsets: Vec<i32>,
    nulls: usize,
    integers: Int64Builder,
    reals: Float64Builder,
    texts: StringBuilder,
    blobs: BinaryBuilder,
    text_bytes: BinaryBuilder,
}

/// Fixed bytes counted per value, on top of the payload, for the batch size bound.
const VALUE_OVERHEAD: usize = 8;

impl Builder {
    fn new(conv: Conv) -> Self {
        let values = match conv {
            Conv::Union => Values::Union(Box::default()),
            Conv::Int => Values::Int(Int64Builder::new()),
            Conv::Real => Values::Real(Float64Builder::new()),
            Conv::Bool => Values::Bool(BooleanBuilder::new()),
            Conv::Text | Conv::Numeric => Values::Text(StringBuilder::new()),
            Conv::Blob | Conv::Bytes => Values::Binary(BinaryBuilder::new()),
            Conv::Date => Values::Date(Date32Builder::new()),
            Conv::Time => Values::Time(Time64MicrosecondBuilder::new()),
            Conv::Timestamp => Values::Timestamp(TimestampMicrosecondBuilder::new()),
        };
        Builder {
            conv,
            values,
            text: ryu::Buffer::new(),
        }
    }

    /// Append one value; returns the bytes it adds, or `None` when it does not fit.
    fn push(&mut self, value: ValueRef<'_>) -> Option<usize> {
        if let Values::Union(u) = &mut self.values {
            return Some(u.push(value));
        }
        if let ValueRef::Null = value {
            self.values.append_null();
            return Some(VALUE_OVERHEAD);
        }
        // Checked first, with the same rule as the census, though the conversions below then
        // validate text again: UTF-8 checks and date parses cost little next to SQLite's step.
        if !self.conv.fits(value) {
            return None;
        }
        let mut ints = itoa::Buffer::new();
        let size = match value {
            ValueRef::Text(t) | ValueRef::Blob(t) => t.len(),
            _ => 0,
        };
        match (&mut self.values, value) {
            (Values::Int(b), ValueRef::Integer(i)) => b.append_value(i),
            (Values::Real(b), ValueRef::Integer(i)) => b.append_value(i as f64),
            (Values::Real(b), ValueRef::Real(f)) => b.append_value(f),
            (Values::Bool(b), ValueRef::Integer(i)) => b.append_value(i == 1),
            (Values::Text(b), ValueRef::Integer(i)) => b.append_value(ints.format(i)),
            (Values::Text(b), ValueRef::Real(f)) => b.append_value(real_text(f, &mut self.text)),
            (Values::Text(b), ValueRef::Text(t)) => b.append_value(pg_text(t)?),
            (Values::Binary(b), ValueRef::Integer(i)) => b.append_value(ints.format(i)),
            (Values::Binary(b), ValueRef::Real(f)) => b.append_value(real_text(f, &mut self.text)),
            (Values::Binary(b), ValueRef::Text(t) | ValueRef::Blob(t)) => b.append_value(t),
            (Values::Date(b), ValueRef::Text(t)) => b.append_value(crate::types::parse_date(t)?),
            (Values::Time(b), ValueRef::Text(t)) => b.append_value(crate::types::parse_time(t)?),
            (Values::Timestamp(b), ValueRef::Text(t)) => {
                b.append_value(crate::types::parse_timestamp(t)?)
            }
            _ => return None,
        }
        Some(size + VALUE_OVERHEAD)
    }

    fn finish(&mut self) -> ArrayRef {
        match &mut self.values {
            Values::Union(u) => u.finish(),
            Values::Int(b) => Arc::new(b.finish()),
            Values::Real(b) => Arc::new(b.finish()),
            Values::Bool(b) => Arc::new(b.finish()),
            Values::Text(b) => Arc::new(b.finish()),
            Values::Binary(b) => Arc::new(b.finish()),
            Values::Date(b) => Arc::new(b.finish()),
            Values::Time(b) => Arc::new(b.finish()),
            Values::Timestamp(b) => Arc::new(b.finish()),
        }
    }
}

impl Values {
    fn append_null(&mut self) {
        match self {
            Values::Union(u) => {
                u.push(ValueRef::Null);
            }
            Values::Int(b) => b.append_null(),
            Values::Real(b) => b.append_null(),
            Values::Bool(b) => b.append_null(),
            Values::Text(b) => b.append_null(),
            Values::Binary(b) => b.append_null(),
            Values::Date(b) => b.append_null(),
            Values::Time(b) => b.append_null(),
            Values::Timestamp(b) => b.append_null(),
        }
    }
}

impl UnionBuilder {
    fn push(&mut self, value: ValueRef<'_>) -> usize {
        let (id, offset, size) = match value {
            ValueRef::Null => {
                self.nulls += 1;
                (union_id::NULL, self.nulls - 1, 0)
            }
            ValueRef::Integer(i) => {
                self.integers.append_value(i);
                (union_id::INTEGER, self.integers.len() - 1, 0)
            }
            ValueRef::Real(f) => {
                self.reals.append_value(f);
                (union_id::REAL, self.reals.len() - 1, 0)
            }
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(s) => {
                    self.texts.append_value(s);
                    (union_id::TEXT, self.texts.len() - 1, t.len())
                }
                Err(_) => {
                    self.text_bytes.append_value(t);
                    (union_id::TEXT_BYTES, self.text_bytes.len() - 1, t.len())
                }
            },
            ValueRef::Blob(b) => {
                self.blobs.append_value(b);
                (union_id::BLOB, self.blobs.len() - 1, b.len())
            }
        };
        self.type_ids.push(id);
        self.offsets.push(offset as i32);
        size + VALUE_OVERHEAD
    }

    fn finish(&mut self) -> ArrayRef {
        let children: Vec<ArrayRef> = vec![
            Arc::new(NullArray::new(std::mem::take(&mut self.nulls))),
            Arc::new(self.integers.finish()),
            Arc::new(self.reals.finish()),
            Arc::new(self.texts.finish()),
            Arc::new(self.blobs.finish()),
            Arc::new(self.text_bytes.finish()),
        ];
        let type_ids = ScalarBuffer::from(std::mem::take(&mut self.type_ids));
        let offsets = ScalarBuffer::from(std::mem::take(&mut self.offsets));
        let union = UnionArray::try_new(union_fields(), type_ids, Some(offsets), children)
            .expect("type ids and offsets are built with their children");
        Arc::new(union)
    }
}
