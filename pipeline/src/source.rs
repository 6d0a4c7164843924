//! The source side of the connector contract.

use crate::catalog::TableInfo;
use crate::error::Result;
use crate::types::PgType;
use arrow_array::RecordBatch;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A stream of batches from one partition. Every batch matches the table's `schema`.
pub type BatchStream = BoxStream<'static, Result<RecordBatch>>;

/// How rows from a non-PostgreSQL source are stored in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One `data JSONB` column per row, keyed by `id TEXT` (the spec's layout).
    #[default]
    Jsonb,
    /// Typed columns mapped from the source's declared types.
    Native,
}

/// What to do with a value that does not fit its column's declared type (native mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTypeMismatch {
    /// Stop before writing anything, naming the table, column and row.
    #[default]
    Fail,
    /// Widen the column to `text` (or `bytea` when even text cannot hold a value) and warn.
    Text,
}

/// What to do with a date PostgreSQL cannot hold, such as MySQL's zero date `0000-00-00`
/// (native mode; JSONB mode keeps it as a tagged value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZeroDates {
    /// Write NULL, and warn with the count per table.
    #[default]
    Null,
    /// Stop before writing anything, naming the table, column and row.
    Error,
}

impl std::str::FromStr for ZeroDates {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "null" => Ok(ZeroDates::Null),
            "error" => Ok(ZeroDates::Error),
            other => Err(format!("unknown rule `{other}`: use `null` or `error`")),
        }
    }
}

/// A top-level field of a document source's table, also written as a typed column of its own
/// (`--flatten`); the whole document stays in `data`. Serialised as `[field, type]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "(String, String)", try_from = "(String, String)")]
pub struct FlatColumn {
    /// The field's name, which is also the column's.
    pub name: String,
    /// The column's type: one of [`FlatColumn::TYPES`].
    pub pg_type: PgType,
}

impl FlatColumn {
    /// The types a flat column may have, as written in `--flatten` and the config file
    /// (canonical names first, then accepted spellings).
    pub const TYPES: &'static str = "text, integer (int, int4), bigint (int8), double precision \
        (double, float8), numeric (decimal), boolean (bool), timestamptz, jsonb";

    /// The flat column `name` of type `type_name` (see [`FlatColumn::TYPES`]).
    pub fn parse(name: &str, type_name: &str) -> std::result::Result<FlatColumn, String> {
        let pg_type = match type_name.trim().to_ascii_lowercase().as_str() {
            "text" => PgType::Text,
            "integer" | "int" | "int4" => PgType::Int4,
            "bigint" | "int8" => PgType::Int8,
            "double precision" | "double" | "float8" => PgType::Float8,
            "numeric" | "decimal" => PgType::Numeric(None),
            "boolean" | "bool" => PgType::Bool,
            "timestamptz" | "timestamp with time zone" => PgType::Timestamptz,
            "jsonb" => PgType::Jsonb,
            other => {
                return Err(format!(
                    "field `{name}`: unknown column type `{other}`; use one of {}",
                    Self::TYPES
                ))
            }
        };
        if name.is_empty() {
            return Err("a flattened field needs a name".into());
        }
        Ok(FlatColumn {
            name: name.to_string(),
            pg_type,
        })
    }
}

impl From<FlatColumn> for (String, String) {
    fn from(c: FlatColumn) -> Self {
        (c.name, c.pg_type.sql_name())
    }
}

impl TryFrom<(String, String)> for FlatColumn {
    type Error = String;
    fn try_from((name, ty): (String, String)) -> std::result::Result<Self, String> {
        FlatColumn::parse(&name, &ty)
    }
}

/// Options every source receives when it is opened.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Storage mode, which decides the Arrow schema a source reports.
    pub mode: Mode,
    /// Rule for values that do not fit their declared type.
    pub on_type_mismatch: OnTypeMismatch,
    /// Rule for dates PostgreSQL cannot hold (native mode).
    pub zero_dates: ZeroDates,
    /// Upper bound on rows per batch.
    pub batch_rows: usize,
    /// Upper bound on (approximate) bytes per batch.
    pub batch_bytes: usize,
    /// Tables with more rows than this are split into partitions of about this many rows.
    pub partition_rows: u64,
    /// `partition_rows` was asked for, not defaulted: a source may then split tables it would
    /// otherwise read in one stream (e.g. where its range reads are scans).
    pub partition_rows_given: bool,
    /// Fields written as typed columns beside `data`, by table (document sources only).
    pub flatten: BTreeMap<String, Vec<FlatColumn>>,
}

/// Rows per batch: large enough to amortise per-batch costs, small enough to keep memory flat.
pub const DEFAULT_BATCH_ROWS: usize = 8192;
/// Bytes per batch: bounds memory for wide rows (16 MB documents, big blobs).
pub const DEFAULT_BATCH_BYTES: usize = 8 << 20;
/// Rows per partition: big tables split so that both cores stay busy without tiny COPYs.
pub const DEFAULT_PARTITION_ROWS: u64 = 250_000;

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            mode: Mode::Jsonb,
            on_type_mismatch: OnTypeMismatch::Fail,
            zero_dates: ZeroDates::Null,
            batch_rows: DEFAULT_BATCH_ROWS,
            batch_bytes: DEFAULT_BATCH_BYTES,
            partition_rows: DEFAULT_PARTITION_ROWS,
            partition_rows_given: false,
            flatten: BTreeMap::new(),
        }
    }
}

/// One independently readable slice of a table. Serialisable so a plan can be printed, stored
/// and resumed. Partitions of a table cover all its rows (after the filter) without overlap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    /// The table this partition belongs to (source name).
    pub table: String,
    /// Position of this partition within its table, from 0.
    pub index: usize,
    /// How many partitions the table has.
    pub count: usize,
    /// Human-readable bounds, e.g. `rowid 1..250000`.
    pub description: String,
    /// Rows expected in this partition (an estimate; used for progress and ETA only).
    pub estimated_rows: u64,
    /// Connector-specific bounds, opaque to the pipeline.
    pub bounds: serde_json::Value,
}

impl Partition {
    /// The connector's bounds, read back as the type it stored them as; the error names the
    /// partition and `connector`, for a checkpoint or plan written by something else.
    pub fn bounds_as<T: serde::de::DeserializeOwned>(&self, connector: &str) -> Result<T> {
        serde_json::from_value(self.bounds.clone()).map_err(|e| {
            crate::Error::config(format!(
                "partition {} of table \"{}\" was not planned by the {connector} connector: {e}",
                self.index, self.table
            ))
        })
    }
}

/// A readable source: a catalog, a planner and partition readers.
///
/// Contract: all methods may be called concurrently from several threads; `open` may be called
/// for several partitions at once. Batches within a partition come in the source's order, but no
/// order holds between partitions. A failed `open` or stream error aborts only that partition's
/// copy, which the sink then rolls back: delivery is all-or-nothing per partition.
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// Connector name, e.g. `sqlite`; stored as `_source_type` in JSONB mode.
    fn kind(&self) -> &'static str;

    /// Where the data comes from, for messages: a file path or `host:port/db`, never credentials.
    fn location(&self) -> String;

    /// Names of the tables the source holds (views and internal tables excluded).
    async fn list_tables(&self) -> Result<Vec<String>>;

    /// Catalog description of one table, in the mode the source was opened with.
    async fn describe(&self, table: &str) -> Result<TableInfo>;

    /// Split a table into partitions, reading only rows matching `filter` (a predicate in the
    /// source's own query language) when given. Always at least one partition.
    async fn plan(&self, table: &TableInfo, filter: Option<&str>) -> Result<Vec<Partition>>;

    /// Stream the rows of one partition as Arrow batches.
    async fn open(&self, table: &TableInfo, partition: &Partition) -> Result<BatchStream>;

    /// Change capture for continuous sync, when this source offers it. Without it (the default)
    /// `sync` keeps the target fresh by periodic refresh: re-reading every table.
    fn change_capture(&self) -> Option<&dyn crate::change::ChangeCapture> {
        None
    }

    /// Server-side prerequisites of a copy of `tables`, checked for `validate` without reading
    /// a row: typically the server version and read access to each table. One [`Check`] per
    /// line; a failed check's message says how to fix it (the SQL or config line). Opening the
    /// source already proved connectivity and authentication. The default (file sources) has
    /// nothing to add. Must not change the source.
    async fn preflight(&self, tables: &[TableInfo]) -> Vec<Check> {
        let _ = tables;
        Vec::new()
    }
}

/// One prerequisite checked by [`Source::preflight`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked, e.g. `source version`.
    pub name: String,
    /// What was found, or what is wrong and how to fix it.
    pub outcome: std::result::Result<String, String>,
}

impl Check {
    /// A check named `name` with outcome `outcome`.
    pub fn new(name: impl Into<String>, outcome: std::result::Result<String, String>) -> Self {
        Check {
            name: name.into(),
            outcome,
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "jsonb" => Ok(Mode::Jsonb),
            "native" => Ok(Mode::Native),
            other => Err(format!("unknown mode `{other}`: use `jsonb` or `native`")),
        }
    }
}

impl std::str::FromStr for OnTypeMismatch {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "fail" => Ok(OnTypeMismatch::Fail),
            "text" => Ok(OnTypeMismatch::Text),
            other => Err(format!("unknown rule `{other}`: use `fail` or `text`")),
        }
    }
}
