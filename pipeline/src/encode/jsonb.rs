//! JSONB mode: each row becomes `(id text, data jsonb, _source_type text)`; see
//! `docs/jsonb-encoding.md` for the value encoding.

use crate::catalog::TableInfo;
use crate::error::Result;
use crate::sink::BatchEncoder;
use arrow_array::RecordBatch;
use bytes::BytesMut;

/// Target columns the JSONB encoder writes, in tuple order (`_migrated_at` takes its default).
pub const JSONB_COLUMNS: [&str; 3] = ["id", "data", "_source_type"];

/// Encodes batches as JSONB-mode tuples.
pub struct JsonbEncoder {}

impl JsonbEncoder {
    /// An encoder for `table`'s batches, tagging rows with `source_type`.
    pub fn new(table: &TableInfo, source_type: &str) -> Result<Self> {
        let _ = (table, source_type);
        todo!("encoder helper")
    }
}

impl BatchEncoder for JsonbEncoder {
    fn encode(&self, batch: &RecordBatch, out: &mut BytesMut) -> Result<()> {
        let _ = (batch, out);
        todo!("encoder helper")
    }
}
