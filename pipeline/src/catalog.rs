//! What a source knows about its tables before reading a row: the catalog.
//!
//! A [`TableInfo`] is built from the source's catalog (never from the first batch), so an empty
//! table has a schema too. Its Arrow schema is exactly the schema of every batch `open` yields.

use arrow_schema::SchemaRef;
use serde::Serialize;

/// One source table, as the catalog describes it.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// The table's name in the source (unquoted, exactly as the source spells it).
    pub name: String,
    /// The Arrow schema of every batch read from this table (hidden columns included).
    pub schema: SchemaRef,
    /// Source-side description of each column of `schema`, in the same order.
    pub columns: Vec<ColumnInfo>,
    /// Primary-key column names, in key order; empty when the table has none.
    pub primary_key: Vec<String>,
    /// Columns read only to identify rows (e.g. SQLite's `rowid`): part of the Arrow schema, used
    /// as the JSONB `id` when there is no primary key, never written as data.
    pub hidden_columns: Vec<String>,
    /// Data columns JSONB mode writes as typed columns of their own beside `data`, not inside it
    /// (a document source's `--flatten` fields); native mode writes them like any column.
    pub flat_columns: Vec<String>,
    /// Unique constraints other than the primary key.
    pub unique_keys: Vec<Vec<String>>,
    /// Secondary indexes to rebuild after the data.
    pub indexes: Vec<IndexInfo>,
    /// Foreign keys to recreate after the data.
    pub foreign_keys: Vec<ForeignKeyInfo>,
    /// Row count, exact or estimated (see `rows_exact`).
    pub rows: u64,
    /// Whether `rows` is an exact count.
    pub rows_exact: bool,
    /// Approximate size of the table's data in bytes.
    pub bytes: u64,
    /// Things the user should know about this table (lossy or widened columns, skipped objects).
    pub warnings: Vec<String>,
    /// The column the source numbers automatically, and the next number it would hand out
    /// (native mode makes it an identity column continuing from there).
    pub auto_increment: Option<AutoIncrement>,
    /// Value lists a column is restricted to (e.g. MySQL `ENUM`), enforced in native mode.
    pub checks: Vec<CheckInfo>,
}

impl Default for TableInfo {
    /// An empty description (no columns): start from this and set what the source knows, so
    /// connectors keep compiling when fields are added.
    fn default() -> Self {
        TableInfo {
            name: String::new(),
            schema: std::sync::Arc::new(arrow_schema::Schema::empty()),
            columns: Vec::new(),
            primary_key: Vec::new(),
            hidden_columns: Vec::new(),
            flat_columns: Vec::new(),
            unique_keys: Vec::new(),
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
            rows: 0,
            rows_exact: false,
            bytes: 0,
            warnings: Vec::new(),
            auto_increment: None,
            checks: Vec::new(),
        }
    }
}

impl TableInfo {
    /// The columns that identify a row in JSONB mode: the primary key, else the hidden row id.
    pub fn id_columns(&self) -> &[String] {
        if self.primary_key.is_empty() {
            &self.hidden_columns
        } else {
            &self.primary_key
        }
    }

    /// Whether column `name` carries data (is not a hidden identifier column).
    pub fn is_data_column(&self, name: &str) -> bool {
        !self.hidden_columns.iter().any(|h| h == name)
    }
}

/// Source-side facts about one column.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnInfo {
    /// Column name as the source spells it.
    pub name: String,
    /// The type as declared in the source (e.g. `VARCHAR(20)`, `INTEGER`, or empty).
    pub source_type: String,
    /// Whether the column may hold NULL.
    pub nullable: bool,
}

/// A secondary index.
#[derive(Debug, Clone, Serialize)]
pub struct IndexInfo {
    /// Index name in the source.
    pub name: String,
    /// Indexed column names, in order.
    pub columns: Vec<String>,
    /// Whether the index enforces uniqueness.
    pub unique: bool,
}

/// A foreign key from this table to another.
#[derive(Debug, Clone, Serialize)]
pub struct ForeignKeyInfo {
    /// Referencing columns in this table.
    pub columns: Vec<String>,
    /// Referenced table (source name).
    pub referenced_table: String,
    /// Referenced columns.
    pub referenced_columns: Vec<String>,
}

/// An automatically numbered column.
#[derive(Debug, Clone, Serialize)]
pub struct AutoIncrement {
    /// The numbered column.
    pub column: String,
    /// The next value the source would assign.
    pub next_value: i64,
}

/// A column restricted to a list of values.
#[derive(Debug, Clone, Serialize)]
pub struct CheckInfo {
    /// The restricted column.
    pub column: String,
    /// Every value the column may hold (NULL aside).
    pub allowed: Vec<String>,
}
