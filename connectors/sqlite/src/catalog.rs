//! Reading SQLite's catalog: which tables exist, and each table's columns, keys, indexes and
//! foreign keys. Every query binds the table name as a parameter of the `pragma_*` table-valued
//! functions, so no name is ever spliced into catalog SQL.

use crate::error::sqlite;
use pipeline::{Error, ErrorKind, ForeignKeyInfo, IndexInfo, Result, Side};
use rusqlite::{Connection, OptionalExtension};

/// A column as `PRAGMA table_xinfo` describes it.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    /// Name as SQLite spells it.
    pub name: String,
    /// Declared type, as written (possibly empty).
    pub declared: String,
    /// Whether the column may hold NULL.
    pub nullable: bool,
}

/// A table as the catalog describes it, before any type decision.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// Name as SQLite spells it.
    pub name: String,
    /// Data columns in table order (generated columns included, hidden virtual-table ones not).
    pub columns: Vec<Column>,
    /// The name that reads the rowid (`rowid`, `_rowid_` or `oid`, whichever no column
    /// shadows); `None` for a WITHOUT ROWID table or when all three are column names.
    pub rowid: Option<&'static str>,
    /// Whether the table is WITHOUT ROWID (its rows are ordered and identified by its key).
    pub without_rowid: bool,
    /// Primary-key columns in key order.
    pub primary_key: Vec<String>,
    /// Whether the primary key is an alias of the rowid (`INTEGER PRIMARY KEY`): never NULL.
    pub key_is_rowid: bool,
    /// UNIQUE constraints.
    pub unique_keys: Vec<Vec<String>>,
    /// Indexes created with CREATE INDEX that PostgreSQL can rebuild.
    pub indexes: Vec<IndexInfo>,
    /// Foreign keys to other tables.
    pub foreign_keys: Vec<ForeignKeyInfo>,
    /// Objects skipped or changed on the way, for the user.
    pub warnings: Vec<String>,
}

/// `name` as a quoted SQL identifier: `"` around it, embedded quotes doubled.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Ordinary tables of the main schema, sorted by name: views, virtual tables, their shadow
/// tables and SQLite's own `sqlite_*` tables are not data to copy.
pub(crate) fn list_tables(conn: &Connection) -> Result<Vec<String>> {
    let sql = "SELECT name FROM pragma_table_list \
               WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'";
    let mut names = query_all(conn, sql, [], "listing the tables", |r| r.get(0))?;
    names.sort();
    Ok(names)
}

/// The catalog facts of table `name` (matched case-insensitively, as SQLite does). A view, a
/// virtual or internal table, or an unknown name is a schema error.
pub(crate) fn table(conn: &Connection, name: &str) -> Result<Table> {
    let what = format!("reading the catalog of table \"{name}\"");
    let found: Option<(String, String, bool)> = conn
        .query_row(
            "SELECT name, type, wr FROM pragma_table_list \
             WHERE schema = 'main' AND name = ?1 COLLATE NOCASE",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(|e| sqlite(e, &what))?;
    let schema_error = |why: &str| Error::new(ErrorKind::Schema, Side::Source, why.to_string());
    let (name, without_rowid) = match found {
        None => {
            let tables = list_tables(conn)?;
            return Err(schema_error(&format!(
                "table \"{name}\" does not exist; the tables are: {}",
                tables.join(", ")
            )));
        }
        Some((n, _, _)) if n.to_ascii_lowercase().starts_with("sqlite_") => {
            return Err(schema_error(&format!(
                "\"{n}\" is an internal SQLite table"
            )))
        }
        Some((n, kind, _)) if kind != "table" => {
            let what = match kind.as_str() {
                "view" => "a view",
                "virtual" => "a virtual table",
                "shadow" => "the storage of a virtual table",
                _ => "not an ordinary table",
            };
            return Err(schema_error(&format!(
                "\"{n}\" is {what}; only ordinary tables are copied"
            )));
        }
        Some((name, _, without_rowid)) => (name, without_rowid),
    };
    let mut warnings = Vec::new();

    let mut columns = Vec::new();
    let mut keyed: Vec<(i64, String, String)> = Vec::new();
    {
        let mut st = conn
            .prepare(
                "SELECT name, type, \"notnull\", pk, hidden FROM pragma_table_xinfo(?1) \
                 ORDER BY cid",
            )
            .map_err(|e| sqlite(e, &what))?;
        let mut rows = st.query([&name]).map_err(|e| sqlite(e, &what))?;
        while let Some(r) = rows.next().map_err(|e| sqlite(e, &what))? {
            let get = |r: &rusqlite::Row<'_>| -> rusqlite::Result<_> {
                let v: (String, String, bool, i64, i64) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
                Ok(v)
            };
            let (col, declared, notnull, pk, hidden) = get(r).map_err(|e| sqlite(e, &what))?;
            if hidden == 1 {
                continue; // hidden column of a virtual table: not data
            }
            if hidden >= 2 {
                let how = if hidden == 2 { "VIRTUAL" } else { "STORED" };
                warnings.push(format!(
                    "column \"{col}\" is a generated ({how}) column; its current values are \
                     copied as plain data"
                ));
            }
            if pk > 0 {
                keyed.push((pk, col.clone(), declared.clone()));
            }
            columns.push(Column {
                name: col,
                declared,
                // WITHOUT ROWID keys are NOT NULL even when not declared so.
                nullable: !(notnull || (pk > 0 && without_rowid)),
            });
        }
    }
    keyed.sort_by_key(|k| k.0);
    let key_is_rowid = !without_rowid
        && keyed.len() == 1
        && keyed[0].2.eq_ignore_ascii_case("INTEGER")
        && !rowid_pk_is_desc(conn, &name).map_err(|e| sqlite(e, &what))?;
    if key_is_rowid {
        let key = &keyed[0].1;
        columns
            .iter_mut()
            .filter(|c| &c.name == key)
            .for_each(|c| c.nullable = false);
    }
    let primary_key: Vec<String> = keyed.into_iter().map(|k| k.1).collect();
    let rowid = if without_rowid {
        None
    } else {
        ["rowid", "_rowid_", "oid"]
            .into_iter()
            .find(|alias| !columns.iter().any(|c| c.name.eq_ignore_ascii_case(alias)))
    };

    let (unique_keys, indexes) = indexes(conn, &name, &mut warnings)?;
    let foreign_keys = foreign_keys(conn, &name, &mut warnings)?;
    Ok(Table {
        name,
        columns,
        rowid,
        without_rowid,
        primary_key,
        key_is_rowid,
        unique_keys,
        indexes,
        foreign_keys,
        warnings,
    })
}

/// SQLite's documented quirk: `INTEGER PRIMARY KEY DESC` in a column definition does not make
/// the column a rowid alias. Such a key has an automatic index of origin `pk`.
fn rowid_pk_is_desc(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM pragma_index_list(?1) WHERE origin = 'pk'",
        [table],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )
}

/// UNIQUE constraints and rebuildable CREATE INDEX indexes of `table`. Indexes on expressions
/// and partial indexes are skipped with a warning: their definitions are SQLite SQL.
fn indexes(
    conn: &Connection,
    table: &str,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Vec<String>>, Vec<IndexInfo>)> {
    let what = format!("reading the indexes of table \"{table}\"");
    let list: Vec<(String, bool, String, bool)> = query_all(
        conn,
        "SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1) ORDER BY name",
        [table],
        &what,
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let (mut unique_keys, mut indexes) = (Vec::new(), Vec::new());
    for (index, unique, origin, partial) in list {
        if origin == "pk" {
            continue; // the primary key
        }
        let keys: Vec<(Option<String>, Option<String>)> = query_all(
            conn,
            "SELECT name, coll FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno",
            [&index],
            &what,
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if partial {
            warnings.push(format!(
                "partial index \"{index}\" skipped: recreate it by hand in PostgreSQL"
            ));
            continue;
        }
        let Some(columns) = keys.iter().map(|k| k.0.clone()).collect::<Option<Vec<_>>>() else {
            warnings.push(format!(
                "index \"{index}\" on an expression skipped: recreate it by hand in PostgreSQL"
            ));
            continue;
        };
        if let Some(coll) = keys
            .iter()
            .filter_map(|k| k.1.as_deref())
            .find(|c| *c != "BINARY")
        {
            warnings.push(format!(
                "index \"{index}\" uses the {coll} collation; PostgreSQL rebuilds it with the \
                 column's default collation"
            ));
        }
        if origin == "u" {
            unique_keys.push(columns);
        } else {
            indexes.push(IndexInfo {
                name: index,
                columns,
                unique,
            });
        }
    }
    Ok((unique_keys, indexes))
}

/// Foreign keys of `table`. A key that names no referenced columns references the other
/// table's primary key; a key to a missing table (SQLite allows it) is skipped with a warning.
fn foreign_keys(
    conn: &Connection,
    table: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<ForeignKeyInfo>> {
    let what = format!("reading the foreign keys of table \"{table}\"");
    let rows: Vec<(i64, String, String, Option<String>)> = query_all(
        conn,
        "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
        [table],
        &what,
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let mut keys: Vec<(i64, ForeignKeyInfo, bool)> = Vec::new();
    for (id, referenced, from, to) in rows {
        if keys.last().is_none_or(|k| k.0 != id) {
            let fk = ForeignKeyInfo {
                columns: Vec::new(),
                referenced_table: referenced,
                referenced_columns: Vec::new(),
            };
            keys.push((id, fk, false));
        }
        let (_, fk, implicit) = keys.last_mut().expect("pushed above");
        fk.columns.push(from);
        match to {
            Some(to) => fk.referenced_columns.push(to),
            None => *implicit = true,
        }
    }
    let mut out = Vec::new();
    for (_, mut fk, implicit) in keys {
        let found: Option<String> = conn
            .query_row(
                "SELECT name FROM pragma_table_list \
                 WHERE schema = 'main' AND type = 'table' AND name = ?1 COLLATE NOCASE",
                [&fk.referenced_table],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| sqlite(e, &what))?;
        let Some(referenced) = found else {
            warnings.push(format!(
                "foreign key ({}) references table \"{}\", which does not exist; skipped",
                fk.columns.join(", "),
                fk.referenced_table
            ));
            continue;
        };
        fk.referenced_table = referenced;
        if implicit {
            fk.referenced_columns = query_all(
                conn,
                "SELECT name FROM pragma_table_xinfo(?1) WHERE pk > 0 ORDER BY pk",
                [&fk.referenced_table],
                &what,
                |r| r.get(0),
            )?;
        }
        if fk.referenced_columns.len() != fk.columns.len() {
            warnings.push(format!(
                "foreign key ({}) to \"{}\" names no matching key there; skipped",
                fk.columns.join(", "),
                fk.referenced_table
            ));
            continue;
        }
        out.push(fk);
    }
    Ok(out)
}

/// How many rows have a NULL in a primary-key column (SQLite allows it in rowid tables whose
/// key is not the rowid).
pub(crate) fn rows_with_null_key(conn: &Connection, table: &Table) -> Result<u64> {
    let nulls: Vec<String> = table
        .primary_key
        .iter()
        .map(|c| format!("{} IS NULL", ident(c)))
        .collect();
    let sql = format!(
        "SELECT count(*) FROM {} WHERE {}",
        ident(&table.name),
        nulls.join(" OR ")
    );
    count(conn, &sql, &table.name)
}

/// The exact row count of `table`.
pub(crate) fn row_count(conn: &Connection, table: &str) -> Result<u64> {
    count(
        conn,
        &format!("SELECT count(*) FROM {}", ident(table)),
        table,
    )
}

/// Approximate bytes of `table`'s data: `rows` × the mean payload (octet length of every value)
/// of its first rows. Chosen over the `dbstat` virtual table, whose page walk reads the whole
/// table once more; an estimate for progress and ETA needs only a small bounded sample.
pub(crate) fn estimate_bytes(conn: &Connection, table: &Table, rows: u64) -> Result<u64> {
    const SAMPLE_ROWS: u32 = 1000;
    let lengths: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("ifnull(octet_length({}), 0)", ident(&c.name)))
        .collect();
    // SQLite caps expression depth at 1,000 and `a + b + …` nests one level per term, so a
    // wide table (PostgreSQL allows 1,600 columns) is summed in parenthesised groups of 50.
    let grouped: Vec<String> = lengths
        .chunks(50)
        .map(|g| format!("({})", g.join(" + ")))
        .collect();
    let sql = format!(
        "SELECT ifnull(sum({}), 0), count(*) FROM (SELECT * FROM {} LIMIT {SAMPLE_ROWS})",
        grouped.join(" + "),
        ident(&table.name)
    );
    let (bytes, sampled): (i64, i64) = conn
        .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| sqlite(e, format!("sampling table \"{}\"", table.name)))?;
    Ok(match sampled {
        0 => 0,
        n => (bytes as f64 / n as f64 * rows as f64) as u64,
    })
}

fn count(conn: &Connection, sql: &str, table: &str) -> Result<u64> {
    conn.query_row(sql, [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .map_err(|e| sqlite(e, format!("counting the rows of table \"{table}\"")))
}

/// Every row of `sql`, each turned into a `T` by `row`; errors say they happened while `what`.
fn query_all<P, T, F>(conn: &Connection, sql: &str, params: P, what: &str, row: F) -> Result<Vec<T>>
where
    P: rusqlite::Params,
    F: FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
{
    let mut st = conn.prepare(sql).map_err(|e| sqlite(e, what))?;
    st.query_map(params, row)
        .and_then(|rows| rows.collect())
        .map_err(|e| sqlite(e, what))
}
