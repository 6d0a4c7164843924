//! Native mode: one typed PostgreSQL column per Arrow data column.

use crate::catalog::TableInfo;
use crate::error::Result;
use crate::sink::BatchEncoder;
use crate::types::PgType;
use arrow_array::RecordBatch;
use bytes::BytesMut;

/// The target columns of native mode: every data column of `table` (hidden columns excluded), in
/// schema order, with its PostgreSQL type. Errors name the table and column native mode cannot
/// hold.
pub fn native_columns(table: &TableInfo) -> Result<Vec<(String, PgType)>> {
    let _ = table;
    todo!("encoder helper")
}

/// Encodes batches as tuples of the columns `native_columns` lists.
pub struct NativeEncoder {}

impl NativeEncoder {
    /// An encoder for `table`'s batches.
    pub fn new(table: &TableInfo) -> Result<Self> {
        let _ = table;
        todo!("encoder helper")
    }
}

impl BatchEncoder for NativeEncoder {
    fn encode(&self, batch: &RecordBatch, out: &mut BytesMut) -> Result<()> {
        let _ = (batch, out);
        todo!("encoder helper")
    }
}
