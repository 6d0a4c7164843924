//! The CSV source: one table per file, catalog from a scan of the file, partitions cut between
//! records, one reader thread per partition.

use crate::catalog;
use crate::read::{self, Bounds};
use crate::ROW_COLUMN;
use pipeline::arrow_schema::{DataType, Field, Schema};
use pipeline::futures::channel::oneshot;
use pipeline::{
    BatchStream, ColumnInfo, Error, ErrorKind, Mode, Partition, Result, Side, Source,
    SourceOptions, TableInfo,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// A directory of CSV files (or one file), read-only.
pub struct CsvSource {
    /// What messages show: the directory or file.
    location: String,
    /// Table name → file.
    tables: BTreeMap<String, PathBuf>,
    options: SourceOptions,
}

/// Run blocking file work on a thread of its own, never on the async runtime's workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.await
        .map_err(|_| Error::new(ErrorKind::Io, Side::Local, "a CSV task stopped early"))?
}

impl CsvSource {
    /// Open `path`: a `.csv` file (one table) or a directory whose `*.csv` files are the tables,
    /// named after the files without the extension.
    pub async fn open(path: PathBuf, options: SourceOptions) -> Result<CsvSource> {
        let location = path.display().to_string();
        let tables = blocking(move || crate::tables_at(&path)).await?;
        Ok(CsvSource {
            location,
            tables,
            options,
        })
    }

    fn file(&self, table: &str) -> Result<PathBuf> {
        self.tables.get(table).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::Schema,
                Side::Source,
                format!(
                    "table \"{table}\" does not exist in {}: there is no {table}.csv",
                    self.location
                ),
            )
        })
    }
}

#[pipeline::async_trait]
impl Source for CsvSource {
    fn kind(&self) -> &'static str {
        "csv"
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    async fn list_tables(&self) -> Result<Vec<String>> {
        Ok(self.tables.keys().cloned().collect())
    }

    async fn describe(&self, table: &str) -> Result<TableInfo> {
        let (file, name, mode) = (self.file(table)?, table.to_string(), self.options.mode);
        let scan = blocking(move || catalog::scan(&file, u64::MAX)).await?;
        let mut fields: Vec<Field> = Vec::new();
        let mut columns = Vec::new();
        for (name, t) in scan.names.iter().zip(&scan.types) {
            fields.push(Field::new(name, t.arrow(), true));
            columns.push(ColumnInfo {
                name: name.clone(),
                source_type: t.name().to_string(),
                nullable: true,
            });
        }
        // CSV has no keys: JSONB mode identifies rows by their number in the file.
        let mut hidden_columns = Vec::new();
        if mode == Mode::Jsonb {
            if scan.names.iter().any(|n| n == ROW_COLUMN) {
                return Err(Error::new(
                    ErrorKind::Schema,
                    Side::Source,
                    format!("table \"{name}\" has a column named {ROW_COLUMN}, which the csv connector uses for row numbers; rename it or use --mode native"),
                ));
            }
            fields.push(Field::new(ROW_COLUMN, DataType::Int64, false));
            columns.push(ColumnInfo {
                name: ROW_COLUMN.into(),
                source_type: "row number".into(),
                nullable: false,
            });
            hidden_columns.push(ROW_COLUMN.to_string());
        }
        Ok(TableInfo {
            name,
            schema: Arc::new(Schema::new(fields)),
            columns,
            hidden_columns,
            rows: scan.rows,
            rows_exact: true,
            bytes: scan.end,
            ..Default::default()
        })
    }

    async fn plan(&self, table: &TableInfo, filter: Option<&str>) -> Result<Vec<Partition>> {
        if let Some(filter) = filter {
            return Err(Error::config(format!(
                "table \"{}\": the csv connector cannot filter rows (got `{filter}`); leave out \
                 --table-filter for CSV sources",
                table.name
            )));
        }
        let (file, every) = (self.file(&table.name)?, self.options.partition_rows);
        let scan = blocking(move || catalog::scan(&file, every)).await?;
        // Cut between marked records; an empty file is one empty partition.
        let mut cuts: Vec<Bounds> = Vec::new();
        for (i, mark) in scan.marks.iter().enumerate() {
            let end = scan.marks.get(i + 1).map_or(scan.end, |next| next.offset);
            cuts.push(Bounds {
                start: mark.offset,
                end,
                line: mark.line,
                row: mark.row,
            });
        }
        if cuts.is_empty() {
            cuts.push(Bounds {
                start: scan.end,
                end: scan.end,
                line: 0,
                row: 0,
            });
        }
        let count = cuts.len();
        Ok(cuts
            .into_iter()
            .enumerate()
            .map(|(index, b)| {
                let last_row = scan.marks.get(index + 1).map_or(scan.rows, |m| m.row);
                Partition {
                    table: table.name.clone(),
                    index,
                    count,
                    description: format!(
                        "rows {}..{last_row} (bytes {}..{})",
                        b.row + 1,
                        b.start,
                        b.end
                    ),
                    estimated_rows: last_row - b.row,
                    bounds: b.to_json(),
                }
            })
            .collect())
    }

    async fn open(&self, table: &TableInfo, partition: &Partition) -> Result<BatchStream> {
        read::open(
            self.file(&table.name)?,
            table,
            Bounds::of(partition)?,
            &self.options,
        )
    }
}
