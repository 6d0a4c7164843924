//! The SQLite source: catalog, census, planner and partition readers behind `pipeline::Source`.
//!
//! Every operation opens its own read-only connection (cheap for a local file), so all methods
//! may run concurrently. The file is never written: connections are opened with
//! `SQLITE_OPEN_READ_ONLY` and `PRAGMA query_only`, so not even a WAL checkpoint can touch it.
//! SQLite cannot share one snapshot across connections, so partitions read at different moments:
//! the copy is exact when nothing writes to the file while it runs.

use crate::catalog::{self, Table};
use crate::census;
use crate::error::sqlite;
use crate::partition;
use crate::read;
use crate::types::{self, Conv};
use arrow_schema::{DataType, Field, Schema};
use pipeline::{
    BatchStream, ColumnInfo, Error, ErrorKind, Mode, Partition, Result, Side, Source,
    SourceOptions, TableInfo,
};
use rusqlite::{Connection, OpenFlags};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The 16 bytes every SQLite database file starts with.
pub(crate) const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// How long a read waits on another process's lock before failing with a retryable error: long
/// enough to ride out ordinary write transactions, short enough to report a stuck writer.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The hidden column that carries the rowid of tables without a usable primary key (JSONB mode).
pub const ROWID_COLUMN: &str = "seren:rowid";

/// A SQLite database file, opened read-only.
pub struct SqliteSource {
    path: PathBuf,
    options: SourceOptions,
}

/// The first 16 bytes of the file at `path`.
pub(crate) fn read_header(path: &Path) -> std::io::Result<[u8; 16]> {
    let mut header = [0; 16];
    std::fs::File::open(path)?.read_exact(&mut header)?;
    Ok(header)
}

/// A new read-only connection to the file at `path`.
pub(crate) fn connect(path: &Path) -> Result<Connection> {
    let what = || format!("opening SQLite file {}", path.display());
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| sqlite(e, what()))?;
    conn.busy_timeout(DEFAULT_BUSY_TIMEOUT)
        .map_err(|e| sqlite(e, what()))?;
    conn.pragma_update(None, "query_only", true)
        .map_err(|e| sqlite(e, what()))?;
    Ok(conn)
}

fn connect_error(message: String) -> Error {
    Error::new(ErrorKind::Connect, Side::Source, message).retryable(false)
}

impl SqliteSource {
    /// Open the database file at `path`: it must exist, be a regular file, start with the
    /// SQLite header and have a readable catalog.
    pub fn open(path: PathBuf, options: SourceOptions) -> Result<Self> {
        let shown = path.display();
        let meta = std::fs::metadata(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => connect_error(format!(
                "SQLite file {shown} does not exist; check the path"
            )),
            _ => connect_error(format!(
                "cannot read SQLite file {shown}: {e}; check the path and its permissions"
            )),
        })?;
        if meta.is_dir() {
            return Err(connect_error(format!(
                "{shown} is a directory, not a SQLite database file; give the path of the file"
            )));
        }
        let header = read_header(&path).or_else(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => Ok([0; 16]),
            _ => Err(connect_error(format!(
                "cannot read SQLite file {shown}: {e}; check the path and its permissions"
            ))),
        })?;
        if &header != SQLITE_HEADER {
            return Err(Error::new(
                ErrorKind::Schema,
                Side::Source,
                format!(
                    "{shown} is not a SQLite database (it does not start with the SQLite header)"
                ),
            ));
        }
        let conn = connect(&path)?;
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| sqlite(e, format!("reading SQLite file {shown}")))?;
        Ok(SqliteSource { path, options })
    }

    /// Run `work` on a blocking thread with a fresh connection.
    async fn blocking<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &SourceOptions) -> Result<T> + Send + 'static,
    {
        let (path, options) = (self.path.clone(), self.options.clone());
        tokio::task::spawn_blocking(move || work(&connect(&path)?, &options))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Query,
                    Side::Local,
                    format!("a SQLite task failed: {e}"),
                )
            })?
    }
}

#[async_trait::async_trait]
impl Source for SqliteSource {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn list_tables(&self) -> Result<Vec<String>> {
        self.blocking(|conn, _| catalog::list_tables(conn)).await
    }

    async fn describe(&self, table: &str) -> Result<TableInfo> {
        let table = table.to_string();
        self.blocking(move |conn, options| describe(conn, &table, options))
            .await
    }

    async fn plan(&self, table: &TableInfo, filter: Option<&str>) -> Result<Vec<Partition>> {
        let (name, filter) = (table.name.clone(), filter.map(str::to_string));
        self.blocking(move |conn, options| {
            let table = catalog::table(conn, &name)?;
            let parts = partition::plan(conn, &table, filter.as_deref(), options.partition_rows)?;
            tracing::debug!(table = %name, partitions = parts.len(), "planned");
            Ok(parts)
        })
        .await
    }

    async fn open(&self, table: &TableInfo, partition: &Partition) -> Result<BatchStream> {
        read::open(self.path.clone(), table, partition, &self.options)
    }
}

/// Describe `name`: catalog facts, then the Arrow schema for the mode (in native mode, after a
/// census of the values), the exact row count and a size estimate.
fn describe(conn: &Connection, name: &str, options: &SourceOptions) -> Result<TableInfo> {
    let table = catalog::table(conn, name)?;
    let mut warnings = table.warnings.clone();
    let mut primary_key = table.primary_key.clone();
    if !table.without_rowid && !table.key_is_rowid && !primary_key.is_empty() {
        let nulls = catalog::rows_with_null_key(conn, &table)?;
        if nulls > 0 {
            let instead = match options.mode {
                Mode::Jsonb => "rows are identified by their rowid instead",
                Mode::Native => "the copy has no primary key",
            };
            warnings.push(format!(
                "primary key ({}) holds NULL in {nulls} row(s), which PostgreSQL does not \
                 allow; {instead}",
                primary_key.join(", ")
            ));
            primary_key.clear();
        }
    }
    let (mut fields, rows) = match options.mode {
        Mode::Jsonb => {
            let union = |c: &catalog::Column| Conv::Union.field(&c.name, c.nullable);
            let fields = table.columns.iter().map(union).collect();
            (fields, catalog::row_count(conn, &table.name)?)
        }
        Mode::Native => native_fields(conn, &table, options, &mut warnings)?,
    };
    let mut columns: Vec<ColumnInfo> = table
        .columns
        .iter()
        .map(|c| ColumnInfo {
            name: c.name.clone(),
            source_type: c.declared.clone(),
            nullable: c.nullable,
        })
        .collect();
    let mut hidden_columns = Vec::new();
    if options.mode == Mode::Jsonb && primary_key.is_empty() {
        if table.rowid.is_none() || table.columns.iter().any(|c| c.name == ROWID_COLUMN) {
            return Err(Error::new(
                ErrorKind::Schema,
                Side::Source,
                format!(
                    "table \"{}\" has no usable primary key and its rowid cannot be read (its \
                     columns shadow rowid, _rowid_ and oid, or one is named {ROWID_COLUMN}); \
                     add a primary key or use --mode native",
                    table.name
                ),
            ));
        }
        fields.push(Field::new(ROWID_COLUMN, DataType::Int64, false));
        columns.push(ColumnInfo {
            name: ROWID_COLUMN.into(),
            source_type: "rowid".into(),
            nullable: false,
        });
        hidden_columns.push(ROWID_COLUMN.to_string());
    }
    let bytes = catalog::estimate_bytes(conn, &table, rows)?;
    Ok(TableInfo {
        name: table.name,
        schema: Arc::new(Schema::new(fields)),
        columns,
        primary_key,
        hidden_columns,
        unique_keys: table.unique_keys,
        indexes: table.indexes,
        foreign_keys: table.foreign_keys,
        rows,
        rows_exact: true,
        bytes,
        warnings,
        ..Default::default()
    })
}

/// Native-mode fields of `table` from its declared types and a census of its values, and the
/// exact row count the census took. Every column that cannot be stored is reported at once.
fn native_fields(
    conn: &Connection,
    table: &Table,
    options: &SourceOptions,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Field>, u64)> {
    let declared: Vec<Option<Conv>> = table
        .columns
        .iter()
        .map(|c| types::declared(&c.declared))
        .collect();
    let census = census::take(conn, table, &declared)?;
    let mut fields = Vec::with_capacity(table.columns.len());
    let mut failures: Vec<(String, Error)> = Vec::new();
    for (i, column) in table.columns.iter().enumerate() {
        match census::decide(table, i, declared[i], &census, options.on_type_mismatch) {
            Ok(decision) => {
                fields.push(decision.conv.field(&column.name, column.nullable));
                warnings.extend(decision.warning);
            }
            Err(e) => failures.push((column.name.clone(), e)),
        }
    }
    let mut failures = failures.into_iter();
    match failures.next() {
        None => Ok((fields, census.rows)),
        Some((_, first)) => {
            let others: Vec<String> = failures.map(|(c, _)| format!("\"{c}\"")).collect();
            if others.is_empty() {
                return Err(first);
            }
            Err(Error::new(
                first.kind(),
                first.side(),
                format!(
                    "{} (column(s) {} also hold values that do not fit their declared type)",
                    first.message(),
                    others.join(", ")
                ),
            ))
        }
    }
}
