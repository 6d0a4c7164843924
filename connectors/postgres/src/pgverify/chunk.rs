//! One table's comparison: key ranges planned from a sample of the source's primary key, a row
//! count and multiset hash per range on both sides, and bisection of a differing range until it
//! holds few enough rows to compare key by key.
//!
//! Statements run with the simple protocol: one round trip each, every value as text.

use super::sql::{ranges_between, split_points, KeyColumn, Range, TableSql};
use super::{RowKey, TableReport, VerifyOptions};
use crate::catalog::PgTable;
use crate::conn::query_error;
use crate::ddl::quote_ident;
use pipeline::{Error, ErrorKind, Result, Side};
use std::collections::{HashMap, HashSet};
use tokio_postgres::{Client, SimpleQueryMessage};

/// Sampled keys per planned range: enough that the sample's quantiles are close to the real
/// ones, few enough that the sample stays small.
const SAMPLES_PER_RANGE: u64 = 40;
/// Upper bound on the sampled keys held in memory while planning a table.
const MAX_SAMPLE_KEYS: u64 = 100_000;
/// `TABLESAMPLE SYSTEM` picks whole blocks: sample at least this many so that a few blocks of
/// clustered keys do not decide the bounds.
const MIN_SAMPLE_BLOCKS: u64 = 64;
/// Rows per block assumed for a table the planner has no row estimate for yet.
const GUESSED_ROWS_PER_BLOCK: u64 = 100;

/// Row count and multiset hash of a set of rows: the sum of the first 60 bits of each row's
/// md5. Both are additive, so a range's digest minus one half's is the other half's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Digest {
    pub rows: u64,
    pub sum: u128,
}

impl Digest {
    fn plus(self, other: Digest) -> Digest {
        Digest {
            rows: self.rows + other.rows,
            sum: self.sum.wrapping_add(other.sum),
        }
    }

    fn minus(self, other: Digest) -> Digest {
        Digest {
            rows: self.rows.saturating_sub(other.rows),
            sum: self.sum.wrapping_sub(other.sum),
        }
    }
}

/// The two connections a comparison runs on, each in a read-only transaction under its side's
/// snapshot.
pub(super) struct Sides<'a> {
    pub source: &'a Client,
    pub target: &'a Client,
}

impl Sides<'_> {
    fn client(&self, side: Side) -> &Client {
        match side {
            Side::Target => self.target,
            _ => self.source,
        }
    }
}

/// Compare `table` (source) with `target` (its copy), only rows matching `filter` on both.
pub(super) async fn compare(
    sides: &Sides<'_>,
    table: &PgTable,
    target: &PgTable,
    filter: Option<&str>,
    opts: &VerifyOptions,
) -> Result<TableReport> {
    let key = key_columns(sides, table, target).await?;
    let columns: Vec<String> = table.columns.iter().map(|c| quote_ident(c)).collect();
    let sql = TableSql {
        from: format!("ONLY {}", table.sql_name()),
        row_text: format!("ROW({})::text", columns.join(", ")),
        filter: filter.map(String::from),
        key,
    };
    let ranges = if sql.key.is_empty() {
        vec![Range::default()]
    } else {
        plan_ranges(sides.source, &sql, table, opts).await?
    };
    let mut totals = (Digest::default(), Digest::default());
    let mut differing = Vec::new();
    for range in &ranges {
        let (s, t) = digests(sides, &sql, range).await?;
        totals = (totals.0.plus(s), totals.1.plus(t));
        if s != t {
            differing.push((range.clone(), s, t));
        }
    }
    let mut report = TableReport {
        table: table.display(),
        key: table.primary_key.clone(),
        source_rows: totals.0.rows,
        target_rows: Some(totals.1.rows),
        matches: differing.is_empty(),
        missing: Vec::new(),
        extra: Vec::new(),
        different: Vec::new(),
        truncated: false,
        problem: None,
        source_digest: format!("{:x}", totals.0.sum),
        target_digest: format!("{:x}", totals.1.sum),
        ranges: ranges.len(),
    };
    if !sql.key.is_empty() {
        for (range, s, t) in differing {
            if report.truncated {
                break;
            }
            bisect(sides, &sql, range, s, t, opts, &mut report).await?;
        }
    }
    Ok(report)
}

/// Row count of `table` on one side (rows matching `filter`).
pub(super) async fn count(
    client: &Client,
    side: Side,
    table: &PgTable,
    filter: Option<&str>,
) -> Result<u64> {
    let sql = format!(
        "SELECT count(*)::text FROM ONLY {}{}",
        table.sql_name(),
        filter.map(|f| format!(" WHERE ({f})")).unwrap_or_default()
    );
    let what = format!("counting the rows of {}", table.display());
    let rows = text_rows(client, side, &sql, &what).await?;
    number(side, &what, first(&rows, 0))
}

/// The primary key's columns, their types, and whether they compare under `COLLATE "C"`: only
/// when a column's collation (the database default resolved to its locale) differs between the
/// sides, since that makes the same key range select different rows on each; otherwise the
/// column's own collation, which lets range scans use the key's index.
async fn key_columns(
    sides: &Sides<'_>,
    table: &PgTable,
    target: &PgTable,
) -> Result<Vec<KeyColumn>> {
    if table.primary_key.is_empty() {
        return Ok(Vec::new());
    }
    let sql = |oid: u32| {
        format!(
            "SELECT a.attname::text, format_type(a.atttypid, NULL),
                    CASE WHEN a.attcollation = 0 THEN NULL
                         WHEN co.collname = 'default' THEN (
                             SELECT concat_ws('/', j->>'datlocprovider', j->>'datcollate',
                                              j->>'daticulocale', j->>'datlocale')
                             FROM pg_database d, to_jsonb(d) j
                             WHERE d.datname = current_database())
                         ELSE co.collname::text END
             FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation
             WHERE a.attrelid = {oid} AND a.attnum > 0 AND NOT a.attisdropped"
        )
    };
    let what = format!("reading the key columns of {}", table.display());
    let (on_source, on_target) = (sql(table.oid), sql(target.oid));
    let (s, t) = futures::try_join!(
        text_rows(sides.source, Side::Source, &on_source, &what),
        text_rows(sides.target, Side::Target, &on_target, &what),
    )?;
    let find = |rows: &[Vec<Option<String>>], name: &str| {
        rows.iter()
            .find(|r| r[0].as_deref() == Some(name))
            .map(|r| (r[1].clone().unwrap_or_default(), r[2].clone()))
    };
    let mut key = Vec::new();
    let mut same_collation = true;
    for name in &table.primary_key {
        let (cast, collation) = find(&s, name).ok_or_else(|| {
            Error::new(
                ErrorKind::Schema,
                Side::Source,
                format!("primary key column {name} of {} not found", table.display()),
            )
        })?;
        let target_collation = find(&t, name).and_then(|c| c.1);
        same_collation &= collation == target_collation;
        key.push((name.clone(), cast, collation.is_some()));
    }
    Ok(key
        .into_iter()
        .map(|(name, cast, collatable)| KeyColumn {
            expr: format!(
                "{}.{}{}",
                table.sql_name(),
                quote_ident(&name),
                if collatable && !same_collation {
                    " COLLATE \"C\""
                } else {
                    ""
                }
            ),
            name,
            cast,
        })
        .collect())
}

/// Split the key space into ranges of about `opts.range_rows` rows, from the quantiles of a
/// block sample of the source's keys (cheap on any size: it reads a small share of the blocks).
/// A small table is one range.
async fn plan_ranges(
    client: &Client,
    sql: &TableSql,
    table: &PgTable,
    opts: &VerifyOptions,
) -> Result<Vec<Range>> {
    let (guess, big) = if table.rows > 0 {
        (table.rows, table.rows > opts.range_rows)
    } else {
        // Never analysed: judge by size, and let the sample tell the row count.
        (
            table.blocks * GUESSED_ROWS_PER_BLOCK,
            table.blocks > MIN_SAMPLE_BLOCKS,
        )
    };
    if !big {
        return Ok(vec![Range::default()]);
    }
    let want = ((guess / opts.range_rows.max(1) + 1) * SAMPLES_PER_RANGE).min(MAX_SAMPLE_KEYS);
    let by_rows = want as f64 * 100.0 / guess.max(1) as f64;
    let by_blocks = MIN_SAMPLE_BLOCKS as f64 * 100.0 / table.blocks.max(1) as f64;
    let percent = by_rows.max(by_blocks).clamp(0.0001, 100.0);
    let what = format!("sampling the keys of {}", table.display());
    let keys = text_rows(client, Side::Source, &sql.sample_sql(percent), &what).await?;
    let keys: Vec<Vec<String>> = keys
        .into_iter()
        .map(|r| r.into_iter().map(Option::unwrap_or_default).collect())
        .collect();
    let estimated = keys.len() as f64 * 100.0 / percent;
    let count = (estimated / opts.range_rows.max(1) as f64).ceil() as usize;
    Ok(ranges_between(split_points(&keys, count)))
}

/// A range's digest on both sides, queried concurrently.
async fn digests(sides: &Sides<'_>, sql: &TableSql, range: &Range) -> Result<(Digest, Digest)> {
    let statement = sql.digest_sql(range);
    futures::try_join!(
        digest(sides.source, Side::Source, &statement),
        digest(sides.target, Side::Target, &statement),
    )
}

async fn digest(client: &Client, side: Side, sql: &str) -> Result<Digest> {
    let what = "hashing a key range";
    let rows = text_rows(client, side, sql, what).await?;
    Ok(Digest {
        rows: number(side, what, first(&rows, 0))?,
        sum: first(&rows, 1).parse().map_err(|_| {
            Error::new(
                ErrorKind::Query,
                side,
                format!("{what}: unexpected hash {}", first(&rows, 1)),
            )
        })?,
    })
}

/// Narrow a differing range down: split it at the median key of the side with more rows, hash
/// one half on both sides (the other half's digest follows by subtraction) and keep the halves
/// that differ, until a range has at most `opts.leaf_rows` rows on each side; then list keys
/// and row hashes on both sides and compare them. Stops once `opts.max_diffs` keys are found.
async fn bisect(
    sides: &Sides<'_>,
    sql: &TableSql,
    range: Range,
    source: Digest,
    target: Digest,
    opts: &VerifyOptions,
    report: &mut TableReport,
) -> Result<()> {
    let mut stack = vec![(range, source, target)];
    while let Some((range, s, t)) = stack.pop() {
        if report.found() >= opts.max_diffs {
            report.truncated = true;
            return Ok(());
        }
        if s.rows.max(t.rows) <= opts.leaf_rows {
            compare_rows(sides, sql, &range, opts, report).await?;
            continue;
        }
        let (side, rows) = if s.rows >= t.rows {
            (Side::Source, s.rows)
        } else {
            (Side::Target, t.rows)
        };
        let what = "finding a median key";
        let found = text_rows(
            sides.client(side),
            side,
            &sql.key_at_sql(&range, rows / 2),
            what,
        )
        .await?;
        let Some(median) = found.into_iter().next() else {
            // The range holds fewer rows than it did a moment ago: only possible without a
            // snapshot; compare it as it is.
            compare_rows(sides, sql, &range, opts, report).await?;
            continue;
        };
        let median: Vec<String> = median.into_iter().map(Option::unwrap_or_default).collect();
        let left = Range {
            lo: range.lo.clone(),
            hi: Some(median.clone()),
        };
        let right = Range {
            lo: Some(median),
            hi: range.hi,
        };
        let (ls, lt) = digests(sides, sql, &left).await?;
        let (rs, rt) = (s.minus(ls), t.minus(lt));
        // Last in, first out: the left half is examined first, so keys come out in order.
        if rs != rt {
            stack.push((right, rs, rt));
        }
        if ls != lt {
            stack.push((left, ls, lt));
        }
    }
    Ok(())
}

/// List `(key, md5(row))` of a small range on both sides and record the keys missing on the
/// target, extra on the target and different.
async fn compare_rows(
    sides: &Sides<'_>,
    sql: &TableSql,
    range: &Range,
    opts: &VerifyOptions,
    report: &mut TableReport,
) -> Result<()> {
    let statement = sql.listing_sql(range);
    let what = "listing the rows of a differing key range";
    let (s, t) = futures::try_join!(
        text_rows(sides.source, Side::Source, &statement, what),
        text_rows(sides.target, Side::Target, &statement, what),
    )?;
    let n = sql.key.len();
    let split = |row: Vec<Option<String>>| {
        let mut values: Vec<String> = row.into_iter().map(Option::unwrap_or_default).collect();
        let hash = values.pop().unwrap_or_default();
        values.truncate(n);
        (values, hash)
    };
    let s: Vec<(Vec<String>, String)> = s.into_iter().map(split).collect();
    let t: Vec<(Vec<String>, String)> = t.into_iter().map(split).collect();
    let on_target: HashMap<&Vec<String>, &String> = t.iter().map(|(k, h)| (k, h)).collect();
    let on_source: HashSet<&Vec<String>> = s.iter().map(|(k, _)| k).collect();
    let names: Vec<String> = sql.key.iter().map(|k| k.name.clone()).collect();
    let key = |values: &[String]| RowKey::new(&names, values);
    for (k, hash) in &s {
        match on_target.get(k) {
            None => report.add(Diff::Missing, key(k), opts.max_diffs),
            Some(h) if *h != hash => report.add(Diff::Different, key(k), opts.max_diffs),
            Some(_) => {}
        }
    }
    for (k, _) in &t {
        if !on_source.contains(k) {
            report.add(Diff::Extra, key(k), opts.max_diffs);
        }
    }
    Ok(())
}

/// How a row differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Diff {
    /// In the source, not in the target.
    Missing,
    /// In the target, not in the source.
    Extra,
    /// On both sides with different contents.
    Different,
}

/// Run `sql` with the simple protocol; every value comes back as text.
async fn text_rows(
    client: &Client,
    side: Side,
    sql: &str,
    what: &str,
) -> Result<Vec<Vec<Option<String>>>> {
    let messages = client
        .simple_query(sql)
        .await
        .map_err(|e| query_error(side, what, e))?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(String::from)).collect())
            }
            _ => None,
        })
        .collect())
}

fn first(rows: &[Vec<Option<String>>], column: usize) -> &str {
    rows.first()
        .and_then(|r| r.get(column))
        .and_then(|v| v.as_deref())
        .unwrap_or("")
}

fn number(side: Side, what: &str, text: &str) -> Result<u64> {
    text.parse().map_err(|_| {
        Error::new(
            ErrorKind::Query,
            side,
            format!("{what}: unexpected count `{text}`"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_subtract_to_the_other_half() {
        let whole = Digest { rows: 10, sum: 100 };
        let left = Digest { rows: 4, sum: 30 };
        assert_eq!(whole.minus(left), Digest { rows: 6, sum: 70 });
        assert_eq!(left.plus(whole.minus(left)), whole);
    }
}
