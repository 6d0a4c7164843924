//! Pass-through of rows that are already in PostgreSQL's COPY format.
//!
//! A PostgreSQL source copying into PostgreSQL needs no conversion: it reads `COPY … TO STDOUT`
//! and the sink writes the same bytes with `COPY … FROM STDIN`. Such a table's Arrow schema is a
//! single non-null `Binary` column whose every value is one whole COPY row (a binary tuple, or a
//! text line with its newline), and whose schema metadata names the format. The batches still
//! flow through the bounded pipeline, so memory, progress and cancellation work as for any
//! source; the encoder only concatenates the rows.

use crate::error::{Error, ErrorKind, Result, Side};
use crate::sink::BatchEncoder;
use arrow_array::{Array, BinaryArray, RecordBatch};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::{Buf, Bytes, BytesMut};
use std::collections::HashMap;
use std::sync::Arc;

/// Schema metadata key holding the COPY format of a pass-through table.
pub const META_COPY_FORMAT: &str = "seren.copy_format";
/// Name of the single column of a pass-through schema.
pub const RAW_COLUMN: &str = "copy_row";

/// The COPY format rows are carried in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    /// `FORMAT binary`: fastest, but only for types with binary I/O whose encoding holds no
    /// server-specific OIDs.
    Binary,
    /// `FORMAT text`: works for every type.
    Text,
}

impl CopyFormat {
    /// The format's name in a `COPY … (FORMAT …)` option list.
    pub fn sql(self) -> &'static str {
        match self {
            CopyFormat::Binary => "binary",
            CopyFormat::Text => "text",
        }
    }
}

/// The Arrow schema of a pass-through table in `format`.
pub fn raw_schema(format: CopyFormat) -> SchemaRef {
    let meta = HashMap::from([(META_COPY_FORMAT.to_string(), format.sql().to_string())]);
    Arc::new(Schema::new(vec![Field::new(RAW_COLUMN, DataType::Binary, false)]).with_metadata(meta))
}

/// The COPY format of a pass-through schema, or `None` for an ordinary schema.
pub fn raw_format(schema: &Schema) -> Option<CopyFormat> {
    match schema.metadata().get(META_COPY_FORMAT).map(String::as_str) {
        Some("binary") => Some(CopyFormat::Binary),
        Some("text") => Some(CopyFormat::Text),
        _ => None,
    }
}

/// Concatenates the rows of pass-through batches.
#[derive(Debug, Default)]
pub struct RawEncoder;

impl RawEncoder {
    /// The bytes of every row of `batch`: one slice of its value buffer.
    fn rows(batch: &RecordBatch) -> Result<Buffer> {
        let rows = batch
            .column(0)
            .as_any()
            .downcast_ref::<BinaryArray>()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Schema,
                    Side::Local,
                    "a pass-through batch must hold one Binary column",
                )
            })?;
        let offsets = rows.value_offsets();
        let (start, end) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
        Ok(rows.values().slice_with_length(start, end - start))
    }
}

impl BatchEncoder for RawEncoder {
    fn encode(&self, batch: &RecordBatch, out: &mut BytesMut) -> Result<()> {
        out.extend_from_slice(&Self::rows(batch)?);
        Ok(())
    }

    /// The rows as they are, without a copy: the chunk shares the batch's buffer.
    fn encode_chunk(&self, batch: &RecordBatch, _size_hint: usize) -> Result<Bytes> {
        Ok(Bytes::from_owner(Self::rows(batch)?))
    }
}

/// Splits a `COPY … TO STDOUT` byte stream (in messages of any size) into batches of whole rows,
/// dropping the binary header and trailer. Rows are not copied: each batch shares the buffer.
pub struct RowSplitter {
    format: CopyFormat,
    schema: SchemaRef,
    buf: BytesMut,
    /// Row ends found in `buf` so far (offsets from its start).
    ends: Vec<usize>,
    /// Where scanning for the next row starts.
    scanned: usize,
    header_seen: bool,
    ended: bool,
}

/// The fixed part of the binary header: signature, flags, extension length.
const BINARY_HEADER_LEN: usize = 19;
const BINARY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

impl RowSplitter {
    /// A splitter for a stream in `format`.
    pub fn new(format: CopyFormat) -> Self {
        RowSplitter {
            format,
            schema: raw_schema(format),
            buf: BytesMut::with_capacity(1 << 20),
            ends: Vec::new(),
            scanned: 0,
            header_seen: format == CopyFormat::Text,
            ended: false,
        }
    }

    /// Append one message of the stream and find the rows it completes.
    pub fn push(&mut self, data: &[u8]) -> Result<()> {
        if self.ended && !data.is_empty() {
            return Err(malformed("data after the end-of-copy trailer"));
        }
        self.buf.extend_from_slice(data);
        if !self.header_seen {
            if self.buf.len() < BINARY_HEADER_LEN {
                return Ok(());
            }
            if &self.buf[..BINARY_SIGNATURE.len()] != BINARY_SIGNATURE {
                return Err(malformed("missing PGCOPY signature"));
            }
            let ext = u32::from_be_bytes(self.buf[15..19].try_into().unwrap()) as usize;
            if self.buf.len() < BINARY_HEADER_LEN + ext {
                return Ok(());
            }
            self.buf.advance(BINARY_HEADER_LEN + ext);
            self.header_seen = true;
        }
        match self.format {
            CopyFormat::Text => self.scan_text(),
            CopyFormat::Binary => self.scan_binary(),
        }
    }

    /// Append one `CopyData` message of a server's `COPY … TO STDOUT`. The protocol sends
    /// each row in its own message ("always one per row"), so once the binary header is past
    /// and no partial row is pending, the message is taken as one row without reading its
    /// fields; anything else goes through [`push`](Self::push). (Were a server to put two rows
    /// in one message, the bytes would still pass through whole; only the row count would be
    /// short.)
    pub fn push_message(&mut self, message: &[u8]) -> Result<()> {
        if !self.header_seen || self.ended || self.scanned != self.buf.len() {
            return self.push(message);
        }
        let row = match self.format {
            CopyFormat::Binary => message.len() >= 2 && message[..2] != [0xff, 0xff],
            CopyFormat::Text => message.last() == Some(&b'\n'),
        };
        if !row {
            return self.push(message);
        }
        self.buf.extend_from_slice(message);
        self.scanned = self.buf.len();
        self.ends.push(self.scanned);
        Ok(())
    }

    fn scan_text(&mut self) -> Result<()> {
        let mut from = self.scanned;
        while let Some(i) = memchr(b'\n', &self.buf[from..]) {
            from += i + 1;
            self.ends.push(from);
        }
        self.scanned = self.buf.len();
        Ok(())
    }

    fn scan_binary(&mut self) -> Result<()> {
        let buf = &self.buf[..];
        let mut at = self.scanned;
        loop {
            if self.ended || buf.len() < at + 2 {
                break;
            }
            let fields = i16::from_be_bytes([buf[at], buf[at + 1]]);
            if fields == -1 {
                self.ended = true;
                if buf.len() != at + 2 {
                    return Err(malformed("data after the end-of-copy trailer"));
                }
                break;
            }
            let mut p = at + 2;
            let mut complete = true;
            for _ in 0..fields.max(0) {
                if buf.len() < p + 4 {
                    complete = false;
                    break;
                }
                let len = i32::from_be_bytes(buf[p..p + 4].try_into().unwrap());
                p += 4 + len.max(0) as usize;
                if buf.len() < p {
                    complete = false;
                    break;
                }
            }
            if !complete {
                break;
            }
            at = p;
            self.ends.push(at);
        }
        self.scanned = at;
        Ok(())
    }

    /// Rows found and not yet taken.
    pub fn pending_rows(&self) -> usize {
        self.ends.len()
    }

    /// Bytes of the rows found and not yet taken.
    pub fn pending_bytes(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }

    /// Take every complete row found so far as one batch (`None` when there is none).
    pub fn take_batch(&mut self) -> Option<RecordBatch> {
        let end = *self.ends.last()?;
        let data: Bytes = self.buf.split_to(end).freeze();
        let mut offsets = Vec::with_capacity(self.ends.len() + 1);
        offsets.push(0i32);
        offsets.extend(self.ends.drain(..).map(|e| e as i32));
        self.scanned -= end;
        let array = BinaryArray::new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from(data),
            None,
        );
        Some(
            RecordBatch::try_new(self.schema.clone(), vec![Arc::new(array)])
                .expect("a Binary column matches the pass-through schema"),
        )
    }

    /// Check the stream ended cleanly (whole rows, and the trailer for binary).
    pub fn finish(&self) -> Result<()> {
        let complete = match self.format {
            CopyFormat::Text => self.buf.len() == self.pending_bytes(),
            CopyFormat::Binary => self.ended || (!self.header_seen && self.buf.is_empty()),
        };
        if complete {
            Ok(())
        } else {
            Err(malformed("the stream ended in the middle of a row"))
        }
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

fn malformed(what: &str) -> Error {
    Error::new(
        ErrorKind::Conversion,
        Side::Source,
        format!("malformed COPY stream from the source: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{COPY_HEADER, COPY_TRAILER};

    fn tuple(fields: &[Option<&[u8]>]) -> Vec<u8> {
        let mut t = (fields.len() as i16).to_be_bytes().to_vec();
        for f in fields {
            match f {
                Some(v) => {
                    t.extend((v.len() as i32).to_be_bytes());
                    t.extend(*v);
                }
                None => t.extend((-1i32).to_be_bytes()),
            }
        }
        t
    }

    fn collect(format: CopyFormat, stream: &[u8], step: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut s = RowSplitter::new(format);
        let mut rows = Vec::new();
        let mut encoded = BytesMut::new();
        for piece in stream.chunks(step) {
            s.push(piece).unwrap();
            if let Some(b) = s.take_batch() {
                let from = encoded.len();
                RawEncoder.encode(&b, &mut encoded).unwrap();
                let chunk = RawEncoder.encode_chunk(&b, 0).unwrap();
                assert_eq!(
                    &chunk[..],
                    &encoded[from..],
                    "the shared chunk equals the copy"
                );
                let a = b.column(0).as_any().downcast_ref::<BinaryArray>().unwrap();
                rows.extend(a.iter().map(|v| v.unwrap().to_vec()));
            }
        }
        s.finish().unwrap();
        (rows, encoded.to_vec())
    }

    #[test]
    fn binary_rows_are_split_whatever_the_message_sizes() {
        let t1 = tuple(&[Some(b"abc"), None]);
        let t2 = tuple(&[Some(b""), Some(&[0xff; 300])]);
        let mut stream = COPY_HEADER.to_vec();
        stream.extend(&t1);
        stream.extend(&t2);
        stream.extend(COPY_TRAILER);
        for step in [1, 2, 7, 19, 20, 1000] {
            let (rows, encoded) = collect(CopyFormat::Binary, &stream, step);
            assert_eq!(rows, vec![t1.clone(), t2.clone()], "step {step}");
            assert_eq!(encoded, [t1.clone(), t2.clone()].concat());
        }
    }

    #[test]
    fn server_messages_are_taken_a_row_each() {
        let rows: Vec<Vec<u8>> = vec![
            tuple(&[Some(b"abc"), None]),
            tuple(&[Some(b""), Some(&[0xff; 300])]),
            tuple(&[]),
        ];
        // As PostgreSQL sends it: the header rides with the first row, the trailer alone.
        let mut messages = vec![[COPY_HEADER, &rows[0][..]].concat()];
        messages.extend(rows[1..].iter().cloned());
        messages.push(COPY_TRAILER.to_vec());
        let mut s = RowSplitter::new(CopyFormat::Binary);
        for m in &messages {
            s.push_message(m).unwrap();
        }
        s.finish().unwrap();
        let b = s.take_batch().unwrap();
        let a = b.column(0).as_any().downcast_ref::<BinaryArray>().unwrap();
        let got: Vec<Vec<u8>> = a.iter().map(|v| v.unwrap().to_vec()).collect();
        assert_eq!(got, rows);
        // A header in its own message works too.
        let mut s = RowSplitter::new(CopyFormat::Binary);
        s.push_message(COPY_HEADER).unwrap();
        s.push_message(&rows[1]).unwrap();
        s.push_message(&rows[0]).unwrap();
        s.push_message(COPY_TRAILER).unwrap();
        s.finish().unwrap();
        assert_eq!(s.pending_rows(), 2);
        assert!(s.push_message(&rows[0]).is_err(), "data after the trailer");
    }

    #[test]
    fn a_sliced_batch_passes_only_its_own_rows() {
        let rows: Vec<Vec<u8>> = (0..5u8).map(|i| tuple(&[Some(&[i; 3])])).collect();
        let mut s = RowSplitter::new(CopyFormat::Binary);
        s.push(COPY_HEADER).unwrap();
        s.push(&rows.concat()).unwrap();
        let batch = s.take_batch().unwrap().slice(1, 3);
        let chunk = RawEncoder.encode_chunk(&batch, 0).unwrap();
        assert_eq!(&chunk[..], &rows[1..4].concat()[..]);
    }

    #[test]
    fn text_rows_end_at_newlines() {
        let stream = b"1\tab\\nc\n2\t\\N\n";
        let (rows, _) = collect(CopyFormat::Text, stream, 3);
        assert_eq!(rows, vec![b"1\tab\\nc\n".to_vec(), b"2\t\\N\n".to_vec()]);
    }

    #[test]
    fn truncated_streams_are_errors() {
        let mut s = RowSplitter::new(CopyFormat::Binary);
        let mut stream = COPY_HEADER.to_vec();
        stream.extend(&tuple(&[Some(b"abc")])[..5]);
        s.push(&stream).unwrap();
        assert!(s.finish().is_err());
        let mut s = RowSplitter::new(CopyFormat::Binary);
        assert!(s.push(b"NOTCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0").is_err());
        let mut s = RowSplitter::new(CopyFormat::Text);
        s.push(b"1\n2").unwrap();
        assert!(s.finish().is_err());
    }

    #[test]
    fn empty_binary_stream_is_complete() {
        let (rows, _) = collect(CopyFormat::Binary, &[COPY_HEADER, COPY_TRAILER].concat(), 4);
        assert!(rows.is_empty());
    }
}
