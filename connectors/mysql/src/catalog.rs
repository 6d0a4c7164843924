//! What `information_schema` says about the database: tables (views set aside), columns with
//! their declared types, keys, indexes, foreign keys and the AUTO_INCREMENT counter.

use crate::error::mysql;
use mysql_async::prelude::Queryable;
use mysql_async::{from_value_opt, Conn, Row, Value};
use pipeline::{ForeignKeyInfo, IndexInfo, Result};
use std::collections::BTreeMap;

/// One column as the catalog declares it.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub name: String,
    /// `DATA_TYPE`, lower case (`int`, `varchar`, `enum`, …).
    pub data_type: String,
    /// `COLUMN_TYPE`, the full declaration (`int(10) unsigned`, `enum('a','b')`).
    pub column_type: String,
    pub nullable: bool,
    pub precision: Option<u64>,
    pub scale: Option<u64>,
    /// Character set of a string column (`binary` for BINARY/VARBINARY/BLOB).
    pub charset: Option<String>,
    /// Whether the column holds JSON (MySQL `json`, or MariaDB's `longtext` with `json_valid`).
    pub json: bool,
    /// Whether the server numbers it (`auto_increment` in `EXTRA`).
    pub auto_increment: bool,
}

impl Column {
    /// Whether the declared type is unsigned.
    pub fn unsigned(&self) -> bool {
        self.column_type.to_ascii_lowercase().contains("unsigned")
    }

    /// The labels of an `enum(…)` or `set(…)` declaration, unquoted.
    pub fn labels(&self) -> Vec<String> {
        let inner = self
            .column_type
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map_or("", |(inner, _)| inner);
        let mut labels = Vec::new();
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\'' {
                continue;
            }
            let mut label = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\'' if chars.peek() == Some(&'\'') => {
                        chars.next();
                        label.push('\'');
                    }
                    '\'' => break,
                    '\\' => {
                        if let Some(n) = chars.next() {
                            label.push(n);
                        }
                    }
                    c => label.push(c),
                }
            }
            labels.push(label);
        }
        labels
    }
}

/// One table as the catalog describes it.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    /// Unique indexes other than the primary key, whose columns are all NOT NULL or not.
    pub unique_keys: Vec<Vec<String>>,
    pub indexes: Vec<IndexInfo>,
    pub foreign_keys: Vec<ForeignKeyInfo>,
    /// The next AUTO_INCREMENT value, when the table has such a column.
    pub auto_increment: Option<u64>,
    /// `TABLE_ROWS`: an estimate for InnoDB.
    pub rows_estimate: u64,
    pub data_length: u64,
    /// Indexes that cannot be rebuilt in PostgreSQL, described for a warning.
    pub skipped_indexes: Vec<String>,
}

/// Quote an identifier with backticks, doubling embedded backticks.
pub(crate) fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn text(row: &Row, i: usize) -> Option<String> {
    match row.as_ref(i)? {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        other => from_value_opt::<String>(other.clone()).ok(),
    }
}

fn number(row: &Row, i: usize) -> Option<u64> {
    match row.as_ref(i)? {
        Value::NULL => None,
        Value::Int(v) => u64::try_from(*v).ok(),
        Value::UInt(v) => Some(*v),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// Base tables and views of `db`: (tables, views), each sorted by name.
pub(crate) async fn list(conn: &mut Conn, db: &str) -> Result<(Vec<String>, Vec<String>)> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
            (db,),
        )
        .await
        .map_err(|e| mysql(e, format!("listing the tables of database `{db}`")))?;
    let (mut tables, mut views) = (Vec::new(), Vec::new());
    for row in rows {
        let (Some(name), Some(kind)) = (text(&row, 0), text(&row, 1)) else {
            continue;
        };
        match kind.as_str() {
            "VIEW" => views.push(name),
            "BASE TABLE" | "SYSTEM VERSIONED" => tables.push(name),
            _ => {} // sequences, temporary and system tables
        }
    }
    Ok((tables, views))
}

/// Everything the catalog says about table `name` of `db`.
pub(crate) async fn table(conn: &mut Conn, db: &str, name: &str) -> Result<Table> {
    let what = |part: &str| format!("reading the {part} of table `{db}`.`{name}`");
    let info: Option<Row> = conn
        .exec_first(
            "SELECT TABLE_ROWS, DATA_LENGTH, AUTO_INCREMENT FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (db, name),
        )
        .await
        .map_err(|e| mysql(e, what("description")))?;
    let Some(info) = info else {
        return Err(pipeline::Error::config(format!(
            "table `{name}` does not exist in database `{db}`"
        )));
    };
    let json_checks = json_columns(conn, db, name).await;
    let rows: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, NUMERIC_PRECISION, \
             NUMERIC_SCALE, CHARACTER_SET_NAME, EXTRA FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, name),
        )
        .await
        .map_err(|e| mysql(e, what("columns")))?;
    let columns: Vec<Column> = rows
        .iter()
        .map(|r| {
            let name = text(r, 0).unwrap_or_default();
            let data_type = text(r, 1).unwrap_or_default().to_ascii_lowercase();
            Column {
                json: data_type == "json" || json_checks.contains(&name),
                auto_increment: text(r, 7).is_some_and(|e| e.contains("auto_increment")),
                column_type: text(r, 2).unwrap_or_default(),
                nullable: text(r, 3).as_deref() == Some("YES"),
                precision: number(r, 4),
                scale: number(r, 5),
                charset: text(r, 6),
                data_type,
                name,
            }
        })
        .collect();

    let rows: Vec<Row> = conn
        .exec(
            "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, INDEX_TYPE \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (db, name),
        )
        .await
        .map_err(|e| mysql(e, what("indexes")))?;
    let mut grouped: BTreeMap<String, (bool, Vec<String>, Option<String>)> = BTreeMap::new();
    for r in &rows {
        let index = text(r, 0).unwrap_or_default();
        let entry = grouped.entry(index).or_insert((true, Vec::new(), None));
        entry.0 = number(r, 1) == Some(0);
        let kind = text(r, 4).unwrap_or_default();
        match (text(r, 2), number(r, 3)) {
            (Some(column), None) if kind == "BTREE" || kind == "HASH" => entry.1.push(column),
            (Some(column), Some(prefix)) => {
                entry.2 = Some(format!("prefix of {prefix} characters on `{column}`"))
            }
            (_, _) if kind != "BTREE" && kind != "HASH" => entry.2 = Some(kind.to_lowercase()),
            _ => entry.2 = Some("an expression".into()),
        }
    }
    let (mut primary_key, mut unique_keys, mut indexes, mut skipped) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (index, (unique, cols, problem)) in grouped {
        if let Some(problem) = problem {
            skipped.push(format!("index `{index}` ({problem})"));
        } else if index == "PRIMARY" {
            primary_key = cols;
        } else if unique {
            unique_keys.push(cols);
        } else {
            indexes.push(IndexInfo {
                name: index,
                columns: cols,
                unique: false,
            });
        }
    }

    let rows: Vec<Row> = conn
        .exec(
            "SELECT CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME \
             FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             AND REFERENCED_TABLE_NAME IS NOT NULL AND REFERENCED_TABLE_SCHEMA = TABLE_SCHEMA \
             ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION",
            (db, name),
        )
        .await
        .map_err(|e| mysql(e, what("foreign keys")))?;
    let mut fks: BTreeMap<String, ForeignKeyInfo> = BTreeMap::new();
    for r in &rows {
        let fk = fks
            .entry(text(r, 0).unwrap_or_default())
            .or_insert_with(|| ForeignKeyInfo {
                columns: Vec::new(),
                referenced_table: text(r, 2).unwrap_or_default(),
                referenced_columns: Vec::new(),
            });
        fk.columns.push(text(r, 1).unwrap_or_default());
        fk.referenced_columns.push(text(r, 3).unwrap_or_default());
    }
    let has_auto = columns.iter().any(|c| c.auto_increment);
    Ok(Table {
        name: name.to_string(),
        columns,
        primary_key,
        unique_keys,
        indexes,
        foreign_keys: fks.into_values().collect(),
        auto_increment: number(&info, 2).filter(|_| has_auto),
        rows_estimate: number(&info, 0).unwrap_or(0),
        data_length: number(&info, 1).unwrap_or(0),
        skipped_indexes: skipped,
    })
}

/// MariaDB stores `JSON` columns as `longtext` with a `json_valid(col)` check: the names of the
/// columns of `name` with such a check. (MySQL has no such table; its JSON type says so itself.)
async fn json_columns(conn: &mut Conn, db: &str, name: &str) -> Vec<String> {
    let clauses: Vec<String> = conn
        .exec(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (db, name),
        )
        .await
        .unwrap_or_default();
    clauses
        .iter()
        .filter_map(|c| {
            let inner = c.trim().strip_prefix("json_valid(`")?.strip_suffix("`)")?;
            Some(inner.replace("``", "`"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(column_type: &str) -> Column {
        Column {
            name: "c".into(),
            data_type: "enum".into(),
            column_type: column_type.into(),
            nullable: true,
            precision: None,
            scale: None,
            charset: None,
            json: false,
            auto_increment: false,
        }
    }

    #[test]
    fn enum_labels_are_unquoted() {
        assert_eq!(
            column("enum('a','it''s','x,y','')").labels(),
            ["a", "it's", "x,y", ""]
        );
        assert_eq!(ident("a`b"), "`a``b`");
    }
}
