//! Parquet as a destination (`export`): each partition of a source table becomes one zstd
//! Parquet file, `<dir>/<table>/part-00000.parquet` …, with row groups closed by size in bytes.
//!
//! A file is written under a temporary name and renamed once complete, so a failed or
//! interrupted export never leaves a truncated file under a final name. Memory per open file is
//! bounded by the row group size (the writer buffers one encoded row group) plus one batch.

use arrow_array::RecordBatch;
use arrow_schema::{Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use pipeline::{Error, ErrorKind, Result, Side, TableInfo};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Row group size: large enough for good compression and fast scans, small enough that
/// `--jobs` writers buffering one each stay well within memory.
pub const DEFAULT_ROW_GROUP_BYTES: usize = 64 << 20;
/// zstd level: level 3 (zstd's default) compresses nearly as well as higher levels at a
/// fraction of their CPU cost.
const ZSTD_LEVEL: i32 = 3;

/// The Arrow schema written for `table`: its data columns (hidden ones dropped), nullable as
/// the catalog says, with their field metadata (which records `seren.pg_type`).
pub fn export_schema(table: &TableInfo) -> SchemaRef {
    let fields: Vec<Field> = table
        .schema
        .fields()
        .iter()
        .filter(|f| table.is_data_column(f.name()))
        .map(|f| {
            let nullable = table
                .columns
                .iter()
                .find(|c| &c.name == f.name())
                .is_none_or(|c| c.nullable);
            f.as_ref().clone().with_nullable(nullable)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// The directory name of a table: the name with `%`, `/` and `\` percent-encoded (and a
/// leading `.`), so any table name is one safe path component. [`table_name`] reverses it.
pub fn table_dir(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, c) in name.chars().enumerate() {
        match c {
            '%' | '/' | '\\' | '\0' => out.push_str(&format!("%{:02X}", c as u32)),
            '.' if i == 0 => out.push_str("%2E"),
            c => out.push(c),
        }
    }
    out
}

/// The table name of a directory written by [`table_dir`].
pub fn table_name(dir: &str) -> String {
    let mut out = String::with_capacity(dir.len());
    let mut rest = dir;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest
            .get(at + 1..at + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .filter(|b| matches!(b, b'%' | b'/' | b'\\' | 0 | b'.'));
        match code {
            Some(b) => {
                out.push(b as char);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The file of partition `index`: `part-00000.parquet` ….
pub fn part_file_name(index: usize) -> String {
    format!("part-{index:05}.parquet")
}

/// One Parquet file being written from one partition's batches.
pub struct PartWriter {
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    /// Schema indexes of the data columns in the source batches.
    columns: Vec<usize>,
    temp: PathBuf,
    path: PathBuf,
    rows: u64,
}

impl PartWriter {
    /// Start writing `path` for `table`'s batches, closing row groups at `row_group_bytes`.
    pub fn create(path: &Path, table: &TableInfo, row_group_bytes: usize) -> Result<PartWriter> {
        let schema = export_schema(table);
        let columns = table
            .schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| table.is_data_column(f.name()))
            .map(|(i, _)| i)
            .collect();
        let level = ZstdLevel::try_new(ZSTD_LEVEL).expect("a valid zstd level");
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(None)
            .set_max_row_group_bytes(Some(row_group_bytes.max(1)))
            .build();
        let mut temp = path.as_os_str().to_owned();
        temp.push(".partial");
        let temp = PathBuf::from(temp);
        let file = File::create(&temp).map_err(|e| io_error(&temp, e))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|e| write_error(&table.name, &temp, e))?;
        Ok(PartWriter {
            writer,
            schema,
            columns,
            temp,
            path: path.to_path_buf(),
            rows: 0,
        })
    }

    /// Append a batch of the table (hidden columns are dropped).
    pub fn write(&mut self, table: &str, batch: &RecordBatch) -> Result<()> {
        let columns = self
            .columns
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| write_error(table, &self.temp, e))?;
        self.writer
            .write(&batch)
            .map_err(|e| write_error(table, &self.temp, e))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Finish the file and move it to its final name; returns its rows and bytes.
    pub fn finish(self, table: &str) -> Result<(u64, u64)> {
        self.writer
            .close()
            .map_err(|e| write_error(table, &self.temp, e))?;
        std::fs::rename(&self.temp, &self.path).map_err(|e| io_error(&self.path, e))?;
        let bytes = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        Ok((self.rows, bytes))
    }

    /// Give up on the file: remove what was written.
    pub fn abort(self) {
        drop(self.writer);
        let _ = std::fs::remove_file(&self.temp);
    }
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Io,
        Side::Target,
        format!("writing {}: {e}", path.display()),
    )
}

fn write_error(table: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Conversion,
        Side::Target,
        format!("table \"{table}\": writing {}: {e}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_dirs_are_one_safe_component_and_reversible() {
        for name in [
            "users",
            "public.My Table",
            "a/b",
            "50%",
            ".hidden",
            "x\\y",
            "é",
        ] {
            let dir = table_dir(name);
            assert!(!dir.contains('/') && !dir.starts_with('.'), "{dir}");
            assert_eq!(table_name(&dir), name);
        }
        assert_eq!(table_dir("a/b"), "a%2Fb");
        assert_eq!(table_name("100%"), "100%");
    }
}
