//! The census: one bounded-memory scan of a table (native mode) that checks every stored value
//! against the type map and decides each column's Arrow type before a single batch is read.
//!
//! Per column it counts, for each candidate reading, the values that do not fit, and keeps only
//! the first offender (its row and a short rendering). Then [`decide`] applies the rules: the
//! declared type when everything fits; text for date-like columns that do not parse; otherwise
//! fail or widen, as `OnTypeMismatch` says. Untyped columns get the narrowest type that holds
//! every value they have, with a warning when that mixes storage classes.

use crate::catalog::{ident, Column, Table};
use crate::error::sqlite;
use crate::types::{render, Conv};
use pipeline::{Error, ErrorKind, OnTypeMismatch, Result, Side};
use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// Values of one column that do not fit one reading.
#[derive(Debug, Default)]
struct Misfits {
    count: u64,
    /// Where the first one is (`rowid 17`, `key (a=1)`) and how it looks.
    first: Option<(String, String)>,
}

/// What the scan learnt about one column.
#[derive(Debug)]
struct ColumnCensus {
    /// The readings checked, each with its misfits.
    candidates: Vec<(Conv, Misfits)>,
    /// Non-null values per storage class: integer, real, text, blob.
    classes: [u64; 4],
}

impl ColumnCensus {
    fn misfits(&self, conv: Conv) -> &Misfits {
        &self
            .candidates
            .iter()
            .find(|c| c.0 == conv)
            .expect("candidate checked")
            .1
    }
}

/// The outcome of a table's census.
#[derive(Debug)]
pub(crate) struct Census {
    /// Exact row count.
    pub rows: u64,
    columns: Vec<ColumnCensus>,
}

/// Readings worth checking for a column declared as `declared` (see [`crate::types::declared`]).
fn candidates(declared: Option<Conv>) -> Vec<Conv> {
    match declared {
        None => vec![Conv::Int, Conv::Real, Conv::Text, Conv::Blob],
        Some(Conv::Text) => vec![Conv::Text],
        Some(conv) => vec![conv, Conv::Text],
    }
}

/// Scan `table` once, checking every column against the readings its declared type allows.
pub(crate) fn take(conn: &Connection, table: &Table, declared: &[Option<Conv>]) -> Result<Census> {
    let what = format!("checking the values of table \"{}\"", table.name);
    // The row's identity comes first: the rowid, or the key of a WITHOUT ROWID table.
    let key: Vec<String> = match table.rowid {
        Some(rowid) => vec![rowid.to_string()],
        None => table.primary_key.iter().map(|c| ident(c)).collect(),
    };
    let cols: Vec<String> = table.columns.iter().map(|c| ident(&c.name)).collect();
    let select: Vec<&str> = key.iter().chain(&cols).map(String::as_str).collect();
    let sql = format!("SELECT {} FROM {}", select.join(", "), ident(&table.name));
    let mut st = conn.prepare(&sql).map_err(|e| sqlite(e, &what))?;
    let mut rows = st.query([]).map_err(|e| sqlite(e, &what))?;
    let mut columns: Vec<ColumnCensus> = declared
        .iter()
        .map(|d| ColumnCensus {
            candidates: candidates(*d)
                .into_iter()
                .map(|c| (c, Misfits::default()))
                .collect(),
            classes: [0; 4],
        })
        .collect();
    let mut count = 0u64;
    while let Some(row) = rows.next().map_err(|e| sqlite(e, &what))? {
        count += 1;
        for (i, column) in columns.iter_mut().enumerate() {
            let value = row.get_ref(key.len() + i).map_err(|e| sqlite(e, &what))?;
            match value {
                ValueRef::Null => continue,
                ValueRef::Integer(_) => column.classes[0] += 1,
                ValueRef::Real(_) => column.classes[1] += 1,
                ValueRef::Text(_) => column.classes[2] += 1,
                ValueRef::Blob(_) => column.classes[3] += 1,
            }
            for (conv, misfits) in &mut column.candidates {
                if !conv.fits(value) {
                    misfits.count += 1;
                    if misfits.first.is_none() {
                        let at = row_identity(row, table).map_err(|e| sqlite(e, &what))?;
                        misfits.first = Some((at, render(value)));
                    }
                }
            }
        }
    }
    Ok(Census {
        rows: count,
        columns,
    })
}

/// `rowid 17`, or `key (a=1, b='x')` for a WITHOUT ROWID table: the first columns of the row.
fn row_identity(row: &rusqlite::Row<'_>, table: &Table) -> rusqlite::Result<String> {
    if table.rowid.is_some() {
        return Ok(format!("rowid {}", render(row.get_ref(0)?)));
    }
    let parts = table
        .primary_key
        .iter()
        .enumerate()
        .map(|(i, c)| Ok(format!("{c}={}", render(row.get_ref(i)?))))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(format!("key ({})", parts.join(", ")))
}

/// A column's reading, and a warning when it is not what its declared type says.
#[derive(Debug)]
pub(crate) struct Decision {
    /// How the column is read.
    pub conv: Conv,
    /// What the user should know, if anything.
    pub warning: Option<String>,
}

/// Decide how column `index` of `table` is read, given its declared reading and the census.
/// With `OnTypeMismatch::Fail`, values that do not fit are a conversion error.
pub(crate) fn decide(
    table: &Table,
    index: usize,
    declared: Option<Conv>,
    census: &Census,
    policy: OnTypeMismatch,
) -> Result<Decision> {
    let column = &table.columns[index];
    let seen = &census.columns[index];
    let Some(conv) = declared else {
        return Ok(untyped(column, seen));
    };
    let misfits = seen.misfits(conv);
    if misfits.count == 0 {
        return Ok(Decision {
            conv,
            warning: None,
        });
    }
    let (mut target, mut misfits, mut warning) = (conv, misfits, None);
    if let Some(format) = conv.date_format() {
        // Dates stored some other way stay text: SQLite's own normal form for them.
        warning = Some(format!(
            "column \"{}\" (declared {}) holds {} value(s) that are not {format}{}; stored as \
             text",
            column.name,
            column.declared,
            misfits.count,
            first(misfits)
        ));
        target = Conv::Text;
        misfits = seen.misfits(Conv::Text);
        if misfits.count == 0 {
            return Ok(Decision {
                conv: Conv::Text,
                warning,
            });
        }
    }
    let widened = if target != Conv::Text && seen.misfits(Conv::Text).count == 0 {
        Conv::Text
    } else {
        Conv::Bytes
    };
    let problem = format!(
        "table \"{}\" column \"{}\" (declared {}) holds {} value(s) that do not fit {}{}",
        table.name,
        column.name,
        column.declared,
        misfits.count,
        target.pg_name(),
        first(misfits)
    );
    match policy {
        OnTypeMismatch::Fail => Err(Error::new(
            ErrorKind::Conversion,
            Side::Source,
            format!(
                "{problem}; fix the data or rerun with --on-type-mismatch text to store this \
                 column as {}",
                widened.pg_name()
            ),
        )),
        OnTypeMismatch::Text => {
            let widening = format!("{problem}; stored as {}", widened.pg_name());
            let warning = match warning {
                Some(w) => format!("{w}; {widening}"),
                None => widening,
            };
            Ok(Decision {
                conv: widened,
                warning: Some(warning),
            })
        }
    }
}

/// `, first at rowid 17: 'abc'`
fn first(misfits: &Misfits) -> String {
    misfits
        .first
        .as_ref()
        .map_or(String::new(), |(at, v)| format!(", first at {at}: {v}"))
}

/// The narrowest reading that holds every value of an untyped column: Int64, Float64, text,
/// bytea for blobs only, and bytea for anything else (text as its bytes, numbers as text).
fn untyped(column: &Column, seen: &ColumnCensus) -> Decision {
    let [ints, reals, texts, blobs] = seen.classes;
    if ints + reals + texts + blobs == 0 {
        return Decision {
            conv: Conv::Text,
            warning: None,
        };
    }
    let conv = [Conv::Int, Conv::Real, Conv::Text, Conv::Blob]
        .into_iter()
        .find(|c| seen.misfits(*c).count == 0)
        .unwrap_or(Conv::Bytes);
    let names = ["integer", "real", "text", "blob"];
    let held: Vec<&str> = (0..4)
        .filter(|&i| seen.classes[i] > 0)
        .map(|i| names[i])
        .collect();
    let mixed = held.len() > 1 && held != ["integer", "real"];
    let warning = if mixed || (conv == Conv::Text && ints + reals > 0) {
        Some(format!(
            "column \"{}\" (no declared type) holds {} values; stored as {}",
            column.name,
            held.join(" and "),
            conv.pg_name()
        ))
    } else if conv == Conv::Bytes {
        Some(format!(
            "column \"{}\" (no declared type) holds {} text value(s) that PostgreSQL text cannot \
             hold (NUL bytes or invalid UTF-8){}; stored as bytea",
            column.name,
            seen.misfits(Conv::Text).count,
            first(seen.misfits(Conv::Text))
        ))
    } else {
        None
    };
    Decision { conv, warning }
}
