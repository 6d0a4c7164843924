//! Parquet files as a source: one table per file or per directory of same-schema files, one
//! partition per row group, the Arrow schema from the file footer (never from data).

use crate::discover::{self, TableFiles};
use crate::schema::{self, ROW_COLUMN};
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::SchemaRef;
use futures::StreamExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::ParquetMetaData;
use pipeline::{
    BatchStream, ColumnInfo, Error, ErrorKind, Partition, Result, Side, Source, SourceOptions,
    TableInfo,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Parquet files read as tables.
pub struct ParquetSource {
    location: String,
    options: SourceOptions,
    tables: BTreeMap<String, Table>,
}

/// One table: its files with their row groups, and its description.
struct Table {
    files: Vec<FileRowGroups>,
    info: TableInfo,
}

/// A file's path and the `(rows, uncompressed bytes)` of each of its row groups.
struct FileRowGroups {
    path: PathBuf,
    row_groups: Vec<(u64, u64)>,
}

/// Where a partition reads: a row group of one of the table's files (none for an empty table),
/// and the table-wide number of its first row.
#[derive(Debug, Serialize, Deserialize)]
struct Bounds {
    file: usize,
    row_group: Option<usize>,
    first_row: i64,
}

impl ParquetSource {
    /// Find the tables at `location` (a file, a directory or a glob) and read every file's
    /// footer: schemas must agree within a table.
    pub fn open(location: &str, options: SourceOptions) -> Result<ParquetSource> {
        let mut tables = BTreeMap::new();
        for found in discover::tables(location)? {
            let table = Table::open(&found, &options)?;
            tables.insert(found.name, table);
        }
        Ok(ParquetSource {
            location: location.to_string(),
            options,
            tables,
        })
    }

    fn table(&self, name: &str) -> Result<&Table> {
        self.tables.get(name).ok_or_else(|| {
            Error::new(
                ErrorKind::Schema,
                Side::Source,
                format!("table {name} is not in Parquet source {}", self.location),
            )
        })
    }
}

/// Read a file's footer, or say that it is not a readable Parquet file.
pub(crate) fn footer(path: &Path) -> Result<(SchemaRef, Arc<ParquetMetaData>)> {
    let file = File::open(path).map_err(|e| {
        Error::new(
            ErrorKind::Connect,
            Side::Source,
            format!("cannot open Parquet file {}: {e}", path.display()),
        )
        .retryable(false)
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
        Error::new(
            ErrorKind::Schema,
            Side::Source,
            format!(
                "{} is not a readable Parquet file ({e}); remove it from the source or fix it",
                path.display()
            ),
        )
    })?;
    Ok((builder.schema().clone(), builder.metadata().clone()))
}

impl Table {
    fn open(found: &TableFiles, options: &SourceOptions) -> Result<Table> {
        let mut files = Vec::with_capacity(found.files.len());
        let mut first: Option<(SchemaRef, &PathBuf)> = None;
        let mut nullable: Vec<bool> = Vec::new();
        let (mut rows, mut bytes) = (0u64, 0u64);
        for path in &found.files {
            let (file_schema, metadata) = footer(path)?;
            match &first {
                None => {
                    nullable = file_schema
                        .fields()
                        .iter()
                        .map(|f| f.is_nullable())
                        .collect();
                    first = Some((file_schema.clone(), path));
                }
                Some((schema, first_path)) => {
                    schema::check_same(&found.name, schema, first_path, &file_schema, path)?;
                    for (n, f) in nullable.iter_mut().zip(file_schema.fields()) {
                        *n &= f.is_nullable();
                    }
                }
            }
            let row_groups: Vec<(u64, u64)> = metadata
                .row_groups()
                .iter()
                .map(|rg| {
                    (
                        rg.num_rows().max(0) as u64,
                        rg.total_byte_size().max(0) as u64,
                    )
                })
                .collect();
            rows += row_groups.iter().map(|r| r.0).sum::<u64>();
            bytes += row_groups.iter().map(|r| r.1).sum::<u64>();
            files.push(FileRowGroups {
                path: path.clone(),
                row_groups,
            });
        }
        let (file_schema, _) = first.expect("a table has at least one file");
        let schema = schema::table_schema(&found.name, &file_schema, options.mode)?;
        let columns = file_schema
            .fields()
            .iter()
            .zip(&nullable)
            .map(|(f, n)| ColumnInfo {
                name: f.name().clone(),
                source_type: f.data_type().to_string(),
                nullable: *n,
            })
            .chain(std::iter::once(ColumnInfo {
                name: ROW_COLUMN.into(),
                source_type: "row number".into(),
                nullable: false,
            }))
            .collect();
        let info = TableInfo {
            name: found.name.clone(),
            schema,
            columns,
            hidden_columns: vec![ROW_COLUMN.into()],
            rows,
            rows_exact: true,
            bytes,
            ..Default::default()
        };
        Ok(Table { files, info })
    }

    /// One partition per non-empty row group, in file and row-group order; one empty partition
    /// when the table has no rows.
    fn partitions(&self) -> Vec<Partition> {
        let mut parts = Vec::new();
        let mut first_row = 0i64;
        for (f, file) in self.files.iter().enumerate() {
            let name = file.path.file_name().unwrap_or_default().to_string_lossy();
            for (g, &(rows, _)) in file.row_groups.iter().enumerate() {
                if rows == 0 {
                    continue;
                }
                let bounds = Bounds {
                    file: f,
                    row_group: Some(g),
                    first_row,
                };
                parts.push((format!("{name} row group {g}"), rows, bounds));
                first_row += rows as i64;
            }
        }
        if parts.is_empty() {
            let bounds = Bounds {
                file: 0,
                row_group: None,
                first_row: 0,
            };
            parts.push(("no rows".into(), 0, bounds));
        }
        let count = parts.len();
        parts
            .into_iter()
            .enumerate()
            .map(|(index, (description, rows, bounds))| Partition {
                table: self.info.name.clone(),
                index,
                count,
                description,
                estimated_rows: rows,
                bounds: serde_json::to_value(bounds).expect("bounds serialise"),
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl Source for ParquetSource {
    fn kind(&self) -> &'static str {
        "parquet"
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    async fn list_tables(&self) -> Result<Vec<String>> {
        Ok(self.tables.keys().cloned().collect())
    }

    async fn describe(&self, table: &str) -> Result<TableInfo> {
        Ok(self.table(table)?.info.clone())
    }

    async fn plan(&self, table: &TableInfo, filter: Option<&str>) -> Result<Vec<Partition>> {
        if filter.is_some() {
            return Err(Error::config(format!(
                "--table-filter: Parquet source {} has no query language to filter table \"{}\" \
                 with; filter after loading, or select whole tables",
                self.location, table.name
            )));
        }
        Ok(self.table(&table.name)?.partitions())
    }

    async fn open(&self, table: &TableInfo, partition: &Partition) -> Result<BatchStream> {
        let t = self.table(&table.name)?;
        let bounds: Bounds = partition.bounds_as("parquet")?;
        let (Some(file), Some(group)) = (t.files.get(bounds.file), bounds.row_group) else {
            return Ok(futures::stream::empty().boxed());
        };
        let (rows, bytes) = *file.row_groups.get(group).ok_or_else(|| {
            Error::config(format!(
                "{} has no row group {group}; the file changed since planning",
                file.path.display()
            ))
        })?;
        // Rows per batch bounded by rows and (estimated) bytes.
        let row_bytes = (bytes / rows.max(1)).max(1) as usize;
        let batch_rows = (self.options.batch_bytes / row_bytes).clamp(1, self.options.batch_rows);
        let what = format!("reading {} row group {group}", file.path.display());
        let reader = File::open(&file.path)
            .map_err(|e| read_error(&what, e))
            .and_then(|f| {
                ParquetRecordBatchReaderBuilder::try_new(f)
                    .and_then(|b| {
                        b.with_row_groups(vec![group])
                            .with_batch_size(batch_rows)
                            .build()
                    })
                    .map_err(|e| read_error(&what, e))
            })?;
        let schema = t.info.schema.clone();
        let mut next_row = bounds.first_row;
        let batches = reader.map(move |batch| {
            let batch = batch.map_err(|e| read_error(&what, e))?;
            let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
            for (column, field) in batch.columns().iter().zip(schema.fields()) {
                columns
                    .push(schema::to_table_type(column, field).map_err(|e| read_error(&what, e))?);
            }
            let n = batch.num_rows() as i64;
            columns.push(Arc::new(Int64Array::from_iter_values(
                next_row..next_row + n,
            )));
            next_row += n;
            RecordBatch::try_new(schema.clone(), columns).map_err(|e| read_error(&what, e))
        });
        Ok(futures::stream::iter(batches).boxed())
    }
}

fn read_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Query, Side::Source, format!("{what}: {e}"))
}

/// Opens Parquet sources from the registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParquetFactory;

/// The 4-byte magic that starts (and ends) every Parquet file.
const MAGIC: &[u8; 4] = b"PAR1";

#[async_trait::async_trait]
impl pipeline::SourceFactory for ParquetFactory {
    fn name(&self) -> &'static str {
        "parquet"
    }

    fn forms(&self) -> &'static [&'static str] {
        &[
            "PATH.parquet",
            "a glob such as 'data/*.parquet'",
            "a directory of .parquet files",
        ]
    }

    fn accepts(&self, location: &str) -> bool {
        if location.contains("://") {
            return false;
        }
        let lower = location.to_ascii_lowercase();
        if lower.ends_with(".parquet") || discover::is_glob(location) {
            return true;
        }
        let path = Path::new(location);
        if path.is_dir() {
            return true;
        }
        let mut magic = [0u8; 4];
        File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok_and(|_| &magic == MAGIC)
    }

    async fn open(&self, location: &str, options: &SourceOptions) -> Result<Arc<dyn Source>> {
        let (location, options) = (location.to_string(), options.clone());
        let source = tokio::task::spawn_blocking(move || ParquetSource::open(&location, options))
            .await
            .map_err(|e| Error::config(format!("opening the Parquet source failed: {e}")))??;
        Ok(Arc::new(source))
    }
}
