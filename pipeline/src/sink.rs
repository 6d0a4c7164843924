//! The sink side of the connector contract: a CPU-bound encoder and an async writer.

use crate::catalog::TableInfo;
use crate::error::Result;
use crate::source::Partition;
use arrow_array::RecordBatch;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;

/// Turns batches into the sink's wire format. Runs on the rayon pool.
///
/// Contract: `encode` is called concurrently from several threads for batches of the same table
/// (so it takes `&self`), appends whole rows to `out` and never a partial row on error.
pub trait BatchEncoder: Send + Sync {
    /// Append the encoding of every row of `batch` to `out`.
    fn encode(&self, batch: &RecordBatch, out: &mut BytesMut) -> Result<()>;

    /// The encoding of `batch` as one buffer; `size_hint` is the expected length. The default
    /// runs `encode` into a new buffer; an encoder whose batches already hold the encoded bytes
    /// returns them without copying.
    fn encode_chunk(&self, batch: &RecordBatch, size_hint: usize) -> Result<Bytes> {
        let mut out = BytesMut::with_capacity(size_hint);
        self.encode(batch, &mut out)?;
        Ok(out.freeze())
    }
}

/// An encoded slice of a partition, ready for the writer.
#[derive(Debug)]
pub struct Chunk {
    /// Encoded rows.
    pub data: Bytes,
    /// How many rows `data` holds.
    pub rows: u64,
}

/// Writes one partition. Runs on the async runtime.
///
/// Contract: chunks arrive in any order; nothing is visible to readers of the target until
/// `finish` succeeds, and dropping the writer without `finish` aborts the partition (its rows are
/// rolled back). So a partition is delivered exactly once or not at all.
#[async_trait::async_trait]
pub trait PartitionWriter: Send {
    /// Send one chunk.
    async fn write(&mut self, chunk: Chunk) -> Result<()>;
    /// Commit the partition; returns the number of rows the target accepted.
    async fn finish(self: Box<Self>) -> Result<u64>;
}

/// A writable target.
///
/// Call order: `prepare` once with every table, then for each table `encoder`, any number of
/// concurrent `writer`s (one per partition), then `finish_table` once its partitions are all
/// committed; `finish` once at the end. A failure before `finish_table` leaves any existing data
/// of that table untouched.
#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// Check for conflicts and create what the copy writes into.
    async fn prepare(&self, tables: &[TableInfo]) -> Result<()>;
    /// The encoder for one table's batches.
    fn encoder(&self, table: &TableInfo) -> Result<Arc<dyn BatchEncoder>>;
    /// A writer for one partition.
    async fn writer(
        &self,
        table: &TableInfo,
        partition: &Partition,
    ) -> Result<Box<dyn PartitionWriter>>;
    /// A writer for one partition, or `None` when the partition is not this process's to copy
    /// (another process sharing the copy holds it or has committed it): the runtime then skips
    /// it without reading it. By default every partition is this process's.
    async fn claim(
        &self,
        table: &TableInfo,
        partition: &Partition,
    ) -> Result<Option<Box<dyn PartitionWriter>>> {
        self.writer(table, partition).await.map(Some)
    }
    /// Make a fully copied table final: build its indexes and constraints, put it in place.
    async fn finish_table(&self, table: &TableInfo) -> Result<()>;
    /// Work that needs every table in place (foreign keys between tables).
    async fn finish(&self, tables: &[TableInfo]) -> Result<()>;
    /// Clean up after a failed run: remove what `prepare` made that never became final.
    /// Best effort; never touches tables that were finished.
    async fn abort(&self);
}
