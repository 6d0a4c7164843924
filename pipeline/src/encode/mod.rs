//! Arrow → PostgreSQL COPY BINARY encoders, hand-written for speed: each batch is encoded in one
//! pass, with every column's Arrow array downcast once per batch rather than once per value.
//!
//! The COPY stream is `COPY_HEADER`, then tuples, then `COPY_TRAILER`. Encoders append tuples
//! only; the writer sends the header and trailer. A tuple is an `i16` field count, then per field
//! an `i32` byte length (`-1` for NULL) and the value in PostgreSQL's binary format, big-endian.
//!
//! Variable-length values are written straight into the output buffer behind a length
//! placeholder that is patched once the value is complete, so no value is built in a temporary
//! allocation first.

mod column;
mod datetime;
mod json;
mod jsonb;
mod native;
mod numeric;
mod value;

pub use jsonb::{jsonb_columns, JsonbEncoder, JSONB_COLUMNS};
pub use native::{native_columns, NativeEncoder};

use crate::error::Error;
use bytes::{BufMut, BytesMut};

/// The 19-byte header that opens a binary COPY stream (signature, flags, extension length).
pub const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The trailer that closes a binary COPY stream (a field count of -1).
pub const COPY_TRAILER: &[u8] = &[0xff, 0xff];

/// The largest field PostgreSQL accepts: a value may not exceed 1 GB (`MaxAllocSize`).
const MAX_FIELD_BYTES: usize = 0x3FFF_FFFF;

/// Why one value could not be encoded: a sentence the encoder prefixes with table, column, row.
type Problem = String;

/// The problem of a batch column whose type differs from its schema field.
fn column_type_mismatch(field: &arrow_schema::Field, array: &dyn arrow_array::Array) -> Problem {
    format!(
        "the batch holds {} where the schema says {}; the source connector must yield \
         batches matching its schema (please report this)",
        array.data_type(),
        field.data_type()
    )
}

/// The error for a batch column no writer can be built for (its array differs from the schema).
fn column_error(table: &str, column: &str, problem: &str) -> Error {
    Error::conversion(format!("table `{table}`, column `{column}`: {problem}"))
}

/// Write a NULL field.
#[inline]
fn put_null(out: &mut BytesMut) {
    out.put_i32(-1);
}

/// Start a variable-length field: write a length placeholder and return its position, for
/// [`end_field`] to patch.
#[inline]
fn begin_field(out: &mut BytesMut) -> usize {
    let start = out.len();
    out.put_i32(0);
    start
}

/// Finish the field started at `start` by writing its real length into the placeholder.
#[inline]
fn end_field(out: &mut BytesMut, start: usize) -> Result<(), Problem> {
    let len = out.len() - start - 4;
    if len > MAX_FIELD_BYTES {
        return Err(too_large(len));
    }
    out[start..start + 4].copy_from_slice(&(len as i32).to_be_bytes());
    Ok(())
}

/// Write a field whose bytes are already at hand.
#[inline]
fn put_bytes_field(out: &mut BytesMut, bytes: &[u8]) -> Result<(), Problem> {
    if bytes.len() > MAX_FIELD_BYTES {
        return Err(too_large(bytes.len()));
    }
    out.put_i32(bytes.len() as i32);
    out.extend_from_slice(bytes);
    Ok(())
}

#[cold]
fn too_large(len: usize) -> Problem {
    format!(
        "the encoded value is {len} bytes, more than the 1 GB PostgreSQL accepts in one field; \
         split or shrink the value in the source, or leave the table out"
    )
}

/// The error for a value that failed to encode: names where it is and carries what to do.
#[cold]
fn value_error(table: &str, column: &str, row: usize, problem: &str) -> Error {
    Error::conversion(format!(
        "table `{table}`, column `{column}`, row {row} of the batch: {problem}"
    ))
}

/// The error for a batch whose columns do not match the table's schema (a connector bug).
#[cold]
fn schema_mismatch(table: &str, expected: usize, got: usize) -> Error {
    Error::conversion(format!(
        "table `{table}`: a batch has {got} columns but the table's schema has {expected}; \
         the source connector must yield batches matching `describe` (please report this)"
    ))
}

#[cfg(test)]
pub(crate) mod tuples {
    //! Test support: split encoded COPY tuples back into fields.

    /// The fields of every tuple in `bytes` (`None` for NULL).
    pub(crate) fn parse(mut bytes: &[u8]) -> Vec<Vec<Option<Vec<u8>>>> {
        let mut rows = Vec::new();
        while !bytes.is_empty() {
            let count = i16::from_be_bytes([bytes[0], bytes[1]]);
            bytes = &bytes[2..];
            let mut fields = Vec::new();
            for _ in 0..count {
                let len = i32::from_be_bytes(bytes[..4].try_into().unwrap());
                bytes = &bytes[4..];
                if len < 0 {
                    fields.push(None);
                } else {
                    fields.push(Some(bytes[..len as usize].to_vec()));
                    bytes = &bytes[len as usize..];
                }
            }
            rows.push(fields);
        }
        rows
    }

    /// A table description around `schema` with the given primary key and hidden columns.
    pub(crate) fn table(
        schema: arrow_schema::Schema,
        primary_key: &[&str],
        hidden: &[&str],
    ) -> crate::TableInfo {
        crate::TableInfo {
            name: "t".into(),
            schema: std::sync::Arc::new(schema),
            columns: Vec::new(),
            primary_key: primary_key.iter().map(|s| s.to_string()).collect(),
            hidden_columns: hidden.iter().map(|s| s.to_string()).collect(),
            unique_keys: Vec::new(),
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
            rows: 0,
            rows_exact: false,
            bytes: 0,
            warnings: Vec::new(),
            ..Default::default()
        }
    }
}
