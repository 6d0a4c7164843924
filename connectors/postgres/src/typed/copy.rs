//! A binary COPY stream cut into tuples and decoded into Arrow batches bounded by rows and
//! bytes. Chunks from the server split tuples anywhere: an incomplete tuple waits in the buffer
//! for the next chunk.

use super::decode::{Column, Kind};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use pipeline::encode::COPY_HEADER;
use pipeline::{Error, Result};

/// What a partition's reader decodes.
pub struct Plan {
    /// Table name, for messages.
    pub table: String,
    /// The schema of every batch.
    pub schema: SchemaRef,
    /// How each column is read.
    pub kinds: Vec<Kind>,
    /// Rows per batch at most.
    pub batch_rows: usize,
    /// Bytes of COPY data per batch at most (roughly).
    pub batch_bytes: usize,
}

/// Decodes one binary COPY stream.
pub struct CopyDecoder {
    plan: Plan,
    columns: Vec<Column>,
    buf: Vec<u8>,
    pos: usize,
    header_done: bool,
    ended: bool,
    rows: usize,
    bytes: usize,
    /// Rows of earlier batches, so errors give the row's number in the partition.
    rows_before: usize,
}

impl CopyDecoder {
    /// A decoder for `plan`.
    pub fn new(plan: Plan) -> CopyDecoder {
        CopyDecoder {
            columns: plan.kinds.iter().map(Column::new).collect(),
            plan,
            buf: Vec::new(),
            pos: 0,
            header_done: false,
            ended: false,
            rows: 0,
            bytes: 0,
            rows_before: 0,
        }
    }

    /// Take in a chunk of the stream, decoding every complete tuple.
    pub fn push(&mut self, chunk: &[u8]) -> Result<()> {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
        self.decode()
    }

    /// A batch, when enough rows or bytes are gathered.
    pub fn full_batch(&mut self) -> Option<Result<RecordBatch>> {
        (self.rows >= self.plan.batch_rows || self.bytes >= self.plan.batch_bytes)
            .then(|| self.take_batch())
    }

    /// At the end of the stream: the last batch, if any rows remain, or an error when the
    /// stream ended early.
    pub fn finish(&mut self) -> Option<Result<RecordBatch>> {
        if !self.ended {
            return Some(Err(self.error(
                "the COPY stream ended before its trailer; the connection was probably lost, \
                 run the command again",
            )));
        }
        (self.rows > 0).then(|| self.take_batch())
    }

    fn take_batch(&mut self) -> Result<RecordBatch> {
        let arrays = self.columns.iter_mut().map(Column::finish).collect();
        self.rows_before += self.rows;
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(self.plan.schema.clone(), arrays)
            .map_err(|e| self.error(&format!("building a batch: {e}")))
    }

    fn decode(&mut self) -> Result<()> {
        if !self.header_done {
            if self.buf.len() < COPY_HEADER.len() {
                return Ok(());
            }
            if self.buf[..11] != COPY_HEADER[..11] {
                return Err(self.error("the server did not send a binary COPY header"));
            }
            let ext = u32::from_be_bytes(self.buf[15..19].try_into().expect("4 bytes")) as usize;
            if self.buf.len() < 19 + ext {
                return Ok(());
            }
            self.pos = 19 + ext;
            self.header_done = true;
        }
        while !self.ended {
            let Some(end) = self.tuple_end()? else {
                return Ok(());
            };
            if end == usize::MAX {
                self.pos += 2;
                self.ended = true;
                break;
            }
            let mut at = self.pos + 2;
            for c in 0..self.columns.len() {
                let len = i32::from_be_bytes(self.buf[at..at + 4].try_into().expect("4 bytes"));
                at += 4;
                let value = if len < 0 {
                    None
                } else {
                    let v = &self.buf[at..at + len as usize];
                    at += len as usize;
                    Some(v)
                };
                if let Err(problem) = self.columns[c].push(value) {
                    let column = self.plan.schema.field(c).name().clone();
                    let row = self.rows_before + self.rows;
                    return Err(Error::conversion(format!(
                        "table {}, column {column}, row {row} of the partition: {problem}",
                        self.plan.table
                    )));
                }
            }
            self.bytes += end - self.pos;
            self.rows += 1;
            self.pos = end;
        }
        Ok(())
    }

    /// Where the tuple at `pos` ends, `None` when it is not complete yet, `usize::MAX` for the
    /// trailer.
    fn tuple_end(&self) -> Result<Option<usize>> {
        let buf = &self.buf;
        let Some(count) = buf.get(self.pos..self.pos + 2) else {
            return Ok(None);
        };
        let count = i16::from_be_bytes([count[0], count[1]]);
        if count == -1 {
            return Ok(Some(usize::MAX));
        }
        if count as usize != self.columns.len() {
            return Err(self.error(&format!(
                "a row has {count} fields where {} were expected",
                self.columns.len()
            )));
        }
        let mut at = self.pos + 2;
        for _ in 0..count {
            let Some(len) = buf.get(at..at + 4) else {
                return Ok(None);
            };
            let len = i32::from_be_bytes(len.try_into().expect("4 bytes"));
            at += 4 + len.max(0) as usize;
            if at > buf.len() {
                return Ok(None);
            }
        }
        Ok(Some(at))
    }

    fn error(&self, message: &str) -> Error {
        Error::new(
            pipeline::ErrorKind::Query,
            pipeline::Side::Source,
            format!("table {}: {message}", self.plan.table),
        )
    }
}
