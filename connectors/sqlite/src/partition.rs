//! Planning: a table's rows split into rowid ranges that cover every rowid exactly once.
//!
//! A rowid table with more than `partition_rows` rows (after the filter) gets
//! k = ⌈rows / partition_rows⌉ partitions bounded at exact rowid quantiles, so each holds
//! rows / k rows however sparse the rowids are: `rowid <= b1`, `b1 < rowid <= b2`, …,
//! `rowid > b(k-1)`. The outer ranges are open, so nothing outside `[min, max]` is ever missed.
//! When the rowids are contiguous the quantiles are computed; otherwise one ordered scan of the
//! rowids alone picks them (an even split of `[min, max]` would leave partitions empty or huge
//! on tables with gaps, and `OFFSET` probes cost a scan each). WITHOUT ROWID tables, whose keys
//! need not be integers, are read in one partition.

use crate::catalog::{ident, Table};
use crate::error::{is_sql_error, message, sqlite};
use pipeline::{Error, Partition, Result};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

/// What a partition reads, stored in `Partition::bounds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Bounds {
    /// The user's row filter, a SQLite SQL predicate.
    pub filter: Option<String>,
    /// The name that reads the rowid, which orders the rows; `None` for WITHOUT ROWID tables.
    pub rowid: Option<String>,
    /// Rows with a rowid greater than this.
    pub after: Option<i64>,
    /// Rows with a rowid up to this.
    pub upto: Option<i64>,
}

impl Bounds {
    /// ` WHERE …` selecting this partition's rows, or nothing.
    pub(crate) fn where_clause(&self) -> String {
        let mut terms = Vec::new();
        if let Some(filter) = &self.filter {
            terms.push(format!("({filter})"));
        }
        if let Some(rowid) = &self.rowid {
            if let Some(after) = self.after {
                terms.push(format!("{rowid} > {after}"));
            }
            if let Some(upto) = self.upto {
                terms.push(format!("{rowid} <= {upto}"));
            }
        }
        if terms.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", terms.join(" AND "))
        }
    }
}

/// Split `table` into partitions of about `partition_rows` rows matching `filter`. A filter
/// SQLite rejects is a config error naming the table.
pub(crate) fn plan(
    conn: &Connection,
    table: &Table,
    filter: Option<&str>,
    partition_rows: u64,
) -> Result<Vec<Partition>> {
    let whole = Bounds {
        filter: filter.map(str::to_string),
        rowid: table.rowid.map(str::to_string),
        after: None,
        upto: None,
    };
    let from = format!("{}{}", ident(&table.name), whole.where_clause());
    let query_error = |e: rusqlite::Error| match filter {
        Some(f) if is_sql_error(&e) => Error::config(format!(
            "table \"{}\": SQLite rejects the row filter `{f}`: {}",
            table.name,
            message(&e)
        ))
        .with_cause(e),
        _ => sqlite(e, format!("planning table \"{}\"", table.name)),
    };
    let Some(rowid) = table.rowid else {
        let rows: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {from}"), [], |r| r.get(0))
            .map_err(query_error)?;
        return Ok(vec![partition(
            table,
            0,
            1,
            "all rows".into(),
            rows as u64,
            &whole,
        )]);
    };
    let sql = format!("SELECT min({rowid}), max({rowid}), count(*) FROM {from}");
    let (min, max, rows): (Option<i64>, Option<i64>, i64) = conn
        .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(query_error)?;
    let rows = rows as u64;
    let (Some(min), Some(max)) = (min, max) else {
        return Ok(vec![partition(table, 0, 1, "no rows".into(), 0, &whole)]);
    };
    let k = rows.div_ceil(partition_rows.max(1));
    if k <= 1 {
        let description = format!("rowid {min}..{max}");
        return Ok(vec![partition(table, 0, 1, description, rows, &whole)]);
    }
    // Partition i ends at the rowid at 0-based position ends[i] - 1.
    let ends: Vec<u64> = (1..k).map(|i| i * rows / k).collect();
    let bounds: Vec<i64> =
        if max.checked_sub(min).and_then(|d| d.checked_add(1)) == Some(rows as i64) {
            ends.iter().map(|&e| min + e as i64 - 1).collect()
        } else {
            rowids_at(
                conn,
                &format!("SELECT {rowid} FROM {from} ORDER BY {rowid}"),
                &ends,
            )
            .map_err(query_error)?
        };
    // Rows deleted between the count and the scan can leave fewer bounds: fewer partitions,
    // still covering everything since the last one is open-ended.
    let k = bounds.len() + 1;
    let starts: Vec<u64> = std::iter::once(0)
        .chain(ends.iter().copied().take(k - 1))
        .collect();
    Ok((0..k)
        .map(|i| {
            let after = i.checked_sub(1).map(|j| bounds[j]);
            let upto = bounds.get(i).copied();
            let first = after.map_or(min, |a| a + 1);
            let last = upto.unwrap_or(max);
            let estimated = starts.get(i + 1).copied().unwrap_or(rows) - starts[i];
            let b = Bounds {
                after,
                upto,
                ..whole.clone()
            };
            partition(table, i, k, format!("rowid {first}..{last}"), estimated, &b)
        })
        .collect())
}

/// The rowids at 0-based positions `ends[i] - 1` of an ordered rowid scan.
fn rowids_at(conn: &Connection, sql: &str, ends: &[u64]) -> rusqlite::Result<Vec<i64>> {
    let mut st = conn.prepare(sql)?;
    let mut rows = st.query([])?;
    let (mut found, mut position) = (Vec::with_capacity(ends.len()), 0u64);
    while let Some(row) = rows.next()? {
        position += 1;
        if ends.get(found.len()) == Some(&position) {
            found.push(row.get(0)?);
            if found.len() == ends.len() {
                break;
            }
        }
    }
    Ok(found)
}

fn partition(
    table: &Table,
    index: usize,
    count: usize,
    description: String,
    estimated_rows: u64,
    bounds: &Bounds,
) -> Partition {
    Partition {
        table: table.name.clone(),
        index,
        count,
        description,
        estimated_rows,
        bounds: serde_json::to_value(bounds).expect("bounds serialise"),
    }
}
