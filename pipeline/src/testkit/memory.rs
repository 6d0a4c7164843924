//! In-memory connectors: a source that serves given Arrow batches and a sink that keeps the COPY
//! bytes the pipeline's encoders produce. Both keep the contract in `connectors/SPEC.md`, so
//! they are the reference the conformance checks are tested against.

use crate::catalog::{ColumnInfo, TableInfo};
use crate::encode::{JsonbEncoder, NativeEncoder, COPY_HEADER, COPY_TRAILER};
use crate::error::{Error, ErrorKind, Result, Side};
use crate::registry::SourceFactory;
use crate::sink::{BatchEncoder, Chunk, PartitionWriter, Sink};
use crate::source::{BatchStream, Mode, Partition, Source, SourceOptions};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One table of a [`MemorySource`]: a schema and the batches that hold its rows.
#[derive(Debug, Clone)]
pub struct MemoryTable {
    /// Table name.
    pub name: String,
    /// Schema of every batch.
    pub schema: SchemaRef,
    /// The rows, in order (any batch sizes; the source re-slices them to its bounds).
    pub batches: Vec<RecordBatch>,
}

impl MemoryTable {
    /// A table named `name` holding `batches`, which must all have exactly `schema`.
    pub fn new(name: impl Into<String>, schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        let name = name.into();
        for b in &batches {
            assert_eq!(
                b.schema(),
                schema,
                "a batch of table {name} differs from its schema"
            );
        }
        MemoryTable {
            name,
            schema,
            batches,
        }
    }

    /// Total rows.
    pub fn rows(&self) -> u64 {
        self.batches.iter().map(|b| b.num_rows() as u64).sum()
    }

    /// The catalog description: the schema, the column named `id` (if any) as primary key.
    pub fn info(&self) -> TableInfo {
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|f| ColumnInfo {
                name: f.name().clone(),
                source_type: f.data_type().to_string(),
                nullable: f.is_nullable(),
            })
            .collect();
        let key = self
            .schema
            .fields()
            .iter()
            .find(|f| f.name() == "id" && !f.is_nullable());
        TableInfo {
            name: self.name.clone(),
            schema: self.schema.clone(),
            columns,
            primary_key: key.map(|f| vec![f.name().clone()]).unwrap_or_default(),
            rows: self.rows(),
            rows_exact: true,
            bytes: self
                .batches
                .iter()
                .map(|b| b.get_array_memory_size() as u64)
                .sum(),
            ..Default::default()
        }
    }

    /// Rows `start..end` as slices of the stored batches, at most `max_rows` rows each.
    fn slices(&self, start: u64, end: u64, max_rows: usize) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        for batch in &self.batches {
            let (lo, hi) = (offset, offset + batch.num_rows() as u64);
            offset = hi;
            let (from, to) = (start.max(lo), end.min(hi));
            let mut at = from;
            while at < to {
                let len = ((to - at) as usize).min(max_rows.max(1));
                out.push(batch.slice((at - lo) as usize, len));
                at += len as u64;
            }
        }
        out
    }
}

/// Creates [`MemorySource`]s over a fixed set of tables; accepts any `memory://NAME` location.
#[derive(Debug, Clone)]
pub struct MemoryFactory {
    tables: Arc<Vec<MemoryTable>>,
}

impl MemoryFactory {
    /// A factory whose sources all serve `tables`.
    pub fn new(tables: Vec<MemoryTable>) -> Self {
        MemoryFactory {
            tables: Arc::new(tables),
        }
    }
}

#[async_trait::async_trait]
impl SourceFactory for MemoryFactory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn forms(&self) -> &'static [&'static str] {
        &["memory://NAME"]
    }

    fn accepts(&self, location: &str) -> bool {
        location.starts_with("memory://")
    }

    async fn open(&self, location: &str, options: &SourceOptions) -> Result<Arc<dyn Source>> {
        Ok(Arc::new(MemorySource {
            location: location.to_string(),
            tables: self.tables.clone(),
            options: options.clone(),
        }))
    }
}

/// A source serving in-memory tables: partitions of `partition_rows` rows (bounds are row
/// offsets), batches of at most `batch_rows` rows and about `batch_bytes` bytes.
#[derive(Debug, Clone)]
pub struct MemorySource {
    location: String,
    tables: Arc<Vec<MemoryTable>>,
    options: SourceOptions,
}

impl MemorySource {
    fn table(&self, name: &str) -> Result<&MemoryTable> {
        self.tables.iter().find(|t| t.name == name).ok_or_else(|| {
            Error::new(
                ErrorKind::Schema,
                Side::Source,
                format!("table \"{name}\" does not exist in {}", self.location),
            )
        })
    }
}

#[async_trait::async_trait]
impl Source for MemorySource {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    async fn list_tables(&self) -> Result<Vec<String>> {
        Ok(self.tables.iter().map(|t| t.name.clone()).collect())
    }

    async fn describe(&self, table: &str) -> Result<TableInfo> {
        Ok(self.table(table)?.info())
    }

    async fn plan(&self, table: &TableInfo, filter: Option<&str>) -> Result<Vec<Partition>> {
        if let Some(filter) = filter {
            return Err(Error::config(format!(
                "table \"{}\": the memory source cannot filter rows (got `{filter}`)",
                table.name
            )));
        }
        let rows = self.table(&table.name)?.rows();
        let step = self.options.partition_rows.max(1);
        let count = rows.div_ceil(step).max(1) as usize;
        Ok((0..count as u64)
            .map(|i| {
                let (start, end) = (i * step, ((i + 1) * step).min(rows));
                Partition {
                    table: table.name.clone(),
                    index: i as usize,
                    count,
                    description: format!("rows {start}..{end}"),
                    estimated_rows: end.saturating_sub(start),
                    bounds: serde_json::json!({ "start": start, "end": end }),
                }
            })
            .collect())
    }

    async fn open(&self, table: &TableInfo, partition: &Partition) -> Result<BatchStream> {
        let stored = self.table(&table.name)?;
        let bound = |key: &str| {
            partition.bounds[key].as_u64().ok_or_else(|| {
                Error::config(format!(
                    "table \"{}\" partition {}: bounds lack `{key}`",
                    table.name, partition.index
                ))
            })
        };
        let (start, end) = (bound("start")?, bound("end")?);
        // Rows per batch from the average row size, so batches stay near `batch_bytes`.
        let rows = stored.rows().max(1) as usize;
        let bytes: usize = stored
            .batches
            .iter()
            .map(|b| b.get_array_memory_size())
            .sum();
        let per_row = (bytes / rows).max(1);
        let max_rows = self
            .options
            .batch_rows
            .min(self.options.batch_bytes / per_row)
            .max(1);
        let batches = stored.slices(start, end, max_rows);
        Ok(Box::pin(futures::stream::iter(batches.into_iter().map(Ok))))
    }
}

/// What a [`MemorySink`] holds for one table.
#[derive(Default)]
struct Stored {
    /// Committed partitions not yet made final by `finish_table`.
    staged: Vec<Bytes>,
    /// Set by `finish_table`: the table's tuples, visible to readers.
    done: Option<Vec<Bytes>>,
    /// Column count of the encoder's tuples.
    fields: usize,
}

/// A sink that keeps each table's COPY tuples in memory, encoded by the pipeline's JSONB or
/// native encoder, and shows a table only once `finish_table` made it final.
#[derive(Clone)]
pub struct MemorySink {
    mode: Mode,
    tables: Arc<Mutex<BTreeMap<String, Stored>>>,
}

impl MemorySink {
    /// An empty sink encoding rows the way `mode` stores them.
    pub fn new(mode: Mode) -> Self {
        MemorySink {
            mode,
            tables: Arc::default(),
        }
    }

    /// The finished tables, by name.
    pub fn tables(&self) -> Vec<String> {
        let tables = self.tables.lock().unwrap();
        tables
            .iter()
            .filter(|(_, s)| s.done.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The whole COPY stream of a finished table (header, tuples, trailer), as PostgreSQL would
    /// receive it; `None` for a table that is not finished.
    pub fn copy_stream(&self, table: &str) -> Option<Vec<u8>> {
        let tables = self.tables.lock().unwrap();
        let parts = tables.get(table)?.done.as_ref()?;
        let mut out = COPY_HEADER.to_vec();
        parts.iter().for_each(|p| out.extend_from_slice(p));
        out.extend_from_slice(COPY_TRAILER);
        Some(out)
    }

    /// The decoded tuples of a finished table; `None` for a table that is not finished.
    /// Panics if the encoded bytes are not well-formed COPY tuples.
    pub fn tuples(&self, table: &str) -> Option<Vec<super::Tuple>> {
        let tables = self.tables.lock().unwrap();
        let stored = tables.get(table)?;
        let mut tuples = Vec::new();
        for part in stored.done.as_ref()? {
            let decoded = super::decode_tuples(part, stored.fields)
                .unwrap_or_else(|e| panic!("table {table}: malformed COPY data: {e}"));
            tuples.extend(decoded);
        }
        Some(tuples)
    }
}

#[async_trait::async_trait]
impl Sink for MemorySink {
    async fn prepare(&self, tables: &[TableInfo]) -> Result<()> {
        let mut stored = self.tables.lock().unwrap();
        if let Some(t) = tables
            .iter()
            .find(|t| stored.get(&t.name).is_some_and(|s| s.done.is_some()))
        {
            return Err(Error::new(
                ErrorKind::Conflict,
                Side::Target,
                format!("table \"{}\" already holds data in the memory sink", t.name),
            ));
        }
        for t in tables {
            let fields = match self.mode {
                Mode::Jsonb => crate::encode::jsonb_columns(t)?.len(),
                Mode::Native => crate::encode::native_columns(t)?.len(),
            };
            stored.insert(
                t.name.clone(),
                Stored {
                    fields,
                    ..Stored::default()
                },
            );
        }
        Ok(())
    }

    fn encoder(&self, table: &TableInfo) -> Result<Arc<dyn BatchEncoder>> {
        Ok(match self.mode {
            Mode::Jsonb => Arc::new(JsonbEncoder::new(table, "memory")?),
            Mode::Native => Arc::new(NativeEncoder::new(table)?),
        })
    }

    async fn writer(&self, table: &TableInfo, _: &Partition) -> Result<Box<dyn PartitionWriter>> {
        if !self.tables.lock().unwrap().contains_key(&table.name) {
            return Err(Error::new(
                ErrorKind::Schema,
                Side::Target,
                format!("table \"{}\" was not prepared", table.name),
            ));
        }
        Ok(Box::new(MemoryWriter {
            sink: self.clone(),
            table: table.name.clone(),
            data: Vec::new(),
            rows: 0,
        }))
    }

    async fn finish_table(&self, table: &TableInfo) -> Result<()> {
        let mut tables = self.tables.lock().unwrap();
        let stored = tables.get_mut(&table.name).ok_or_else(|| {
            Error::new(
                ErrorKind::Schema,
                Side::Target,
                format!("table \"{}\" was not prepared", table.name),
            )
        })?;
        stored.done = Some(std::mem::take(&mut stored.staged));
        Ok(())
    }

    async fn finish(&self, _: &[TableInfo]) -> Result<()> {
        Ok(())
    }

    async fn abort(&self) {
        self.tables.lock().unwrap().retain(|_, s| s.done.is_some());
    }
}

/// Buffers one partition; `finish` hands it to the sink, dropping it discards it.
struct MemoryWriter {
    sink: MemorySink,
    table: String,
    data: Vec<u8>,
    rows: u64,
}

#[async_trait::async_trait]
impl PartitionWriter for MemoryWriter {
    async fn write(&mut self, chunk: Chunk) -> Result<()> {
        self.data.extend_from_slice(&chunk.data);
        self.rows += chunk.rows;
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<u64> {
        let mut tables = self.sink.tables.lock().unwrap();
        match tables.get_mut(&self.table) {
            Some(stored) if stored.done.is_none() => {
                stored.staged.push(Bytes::from(self.data));
                Ok(self.rows)
            }
            _ => Err(Error::new(
                ErrorKind::Schema,
                Side::Target,
                format!(
                    "table \"{}\" is no longer being copied (aborted or finished)",
                    self.table
                ),
            )),
        }
    }
}
