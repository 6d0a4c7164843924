//! Splitting a table into primary-key ranges: a table with a single integer primary key and more
//! rows than `partition_rows` (by the catalog's estimate) is cut into ranges of equal key span
//! between its smallest and largest key; any other table is read as one stream.
//!
//! The first range is open below and the last open above, so rows inserted outside
//! `[min, max]` after planning are still read (the readers' snapshot decides what they see).

use crate::catalog::{ident, Table};
use crate::error::{mysql, server_code};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use pipeline::{Error, ErrorKind, Partition, Result, Side};
use serde::{Deserialize, Serialize};

/// Integer types whose values order and partition as `i64`.
const INTEGER_TYPES: [&str; 6] = [
    "tinyint",
    "smallint",
    "mediumint",
    "int",
    "integer",
    "bigint",
];

/// Server errors that mean the SQL text is wrong: syntax, unknown column, unknown function.
const SQL_TEXT_ERRORS: [u16; 3] = [1064, 1054, 1305];
/// `SELECT command denied … for table`.
const ER_TABLEACCESS_DENIED: u16 = 1142;

/// Check up front, before anything is copied, that the user may read `table` and that the
/// server accepts `filter` on it (`LIMIT 0` reads no row). A denied read names the GRANT to
/// run; a rejected filter is a config error.
async fn check_readable(
    conn: &mut Conn,
    db: &str,
    table: &Table,
    filter: Option<&str>,
) -> Result<()> {
    let sql = format!(
        "SELECT * FROM {}.{} WHERE ({}) LIMIT 0",
        ident(db),
        ident(&table.name),
        filter.unwrap_or("TRUE")
    );
    let Err(e) = conn.query_drop(sql).await else {
        return Ok(());
    };
    let reason = match &e {
        mysql_async::Error::Server(s) => format!("{} (MySQL error {})", s.message, s.code),
        other => other.to_string(),
    };
    match (server_code(&e), filter) {
        (Some(ER_TABLEACCESS_DENIED), _) => {
            let grantee = crate::preflight::grantee(conn)
                .await
                .unwrap_or_else(|| "the user".to_string());
            Err(Error::new(
                ErrorKind::Auth,
                Side::Source,
                format!(
                    "table `{}`: {reason}; run: GRANT SELECT ON {}.{} TO {grantee}; or leave \
                     the table out with --exclude-tables",
                    table.name,
                    ident(db),
                    ident(&table.name)
                ),
            )
            .with_cause(e))
        }
        (Some(code), Some(filter)) if SQL_TEXT_ERRORS.contains(&code) => {
            Err(Error::config(format!(
                "table `{}`: MySQL rejects the row filter `{filter}`: {reason}; write it in \
                 MySQL's SQL",
                table.name
            ))
            .with_cause(e))
        }
        _ => Err(mysql(e, format!("checking table `{}`", table.name))),
    }
}

/// The slice of a table one partition reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Bounds {
    /// The range column, when the table is split.
    pub column: Option<String>,
    /// Inclusive lower bound.
    pub from: Option<i64>,
    /// Exclusive upper bound.
    pub to: Option<i64>,
    /// The user's row filter (`--table-filter`), in MySQL's SQL.
    pub filter: Option<String>,
}

impl Bounds {
    /// `WHERE …` for these bounds (empty when there are none).
    pub(crate) fn where_clause(&self) -> String {
        let mut terms = Vec::new();
        if let Some(column) = &self.column {
            if let Some(from) = self.from {
                terms.push(format!("{} >= {from}", ident(column)));
            }
            if let Some(to) = self.to {
                terms.push(format!("{} < {to}", ident(column)));
            }
        }
        if let Some(filter) = &self.filter {
            terms.push(format!("({filter})"));
        }
        match terms.is_empty() {
            true => String::new(),
            false => format!(" WHERE {}", terms.join(" AND ")),
        }
    }
}

/// Plan the partitions of `table`, once the user may read it and the server accepts `filter`.
pub(crate) async fn plan(
    conn: &mut Conn,
    db: &str,
    table: &Table,
    filter: Option<&str>,
    partition_rows: u64,
) -> Result<Vec<Partition>> {
    check_readable(conn, db, table, filter).await?;
    let filter = filter.map(str::to_string);
    let single = |rows: u64| {
        let bounds = Bounds {
            filter: filter.clone(),
            ..Bounds::default()
        };
        vec![partition(table, 0, 1, "whole table".into(), rows, &bounds)]
    };
    let key = match table.primary_key.as_slice() {
        [key] => table
            .columns
            .iter()
            .find(|c| &c.name == key && INTEGER_TYPES.contains(&c.data_type.as_str())),
        _ => None,
    };
    let Some(key) = key.filter(|_| table.rows_estimate > partition_rows.max(1)) else {
        return Ok(single(table.rows_estimate));
    };
    let sql = format!(
        "SELECT MIN({k}), MAX({k}) FROM {}.{}",
        ident(db),
        ident(&table.name),
        k = ident(&key.name)
    );
    let row: Option<(Value, Value)> = conn.query_first(sql).await.map_err(|e| {
        mysql(
            e,
            format!("reading the key range of table `{}`", table.name),
        )
    })?;
    let as_i64 = |v: &Value| match v {
        Value::Int(v) => Some(*v),
        Value::UInt(v) => i64::try_from(*v).ok(),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    };
    let Some((Some(min), Some(max))) = row.map(|(a, b)| (as_i64(&a), as_i64(&b))) else {
        return Ok(single(table.rows_estimate));
    };
    let count = table.rows_estimate.div_ceil(partition_rows.max(1)).max(1);
    let span = (i128::from(max) - i128::from(min) + 1) as u128;
    let count = (count as u128).min(span).max(1) as u64;
    let step = span.div_ceil(u128::from(count));
    let mut parts = Vec::with_capacity(count as usize);
    for i in 0..count {
        let from = (i > 0).then(|| (i128::from(min) + step as i128 * i128::from(i)) as i64);
        let to =
            (i + 1 < count).then(|| (i128::from(min) + step as i128 * i128::from(i + 1)) as i64);
        let bounds = Bounds {
            column: Some(key.name.clone()),
            from,
            to,
            filter: filter.clone(),
        };
        let text = |b: Option<i64>| b.map_or(String::new(), |v| v.to_string());
        let description = format!("{} {}..{}", key.name, text(from), text(to));
        parts.push(partition(
            table,
            i as usize,
            count as usize,
            description,
            table.rows_estimate / count,
            &bounds,
        ));
    }
    Ok(parts)
}

fn partition(
    table: &Table,
    index: usize,
    count: usize,
    description: String,
    rows: u64,
    bounds: &Bounds,
) -> Partition {
    Partition {
        table: table.name.clone(),
        index,
        count,
        description,
        estimated_rows: rows,
        bounds: serde_json::to_value(bounds).unwrap_or_default(),
    }
}
