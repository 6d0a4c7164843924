//! `verify` for PostgreSQL sources: compare every selected table of a source database with its
//! copy in the target, hashing on the servers so that no table passes through this process.
//!
//! Each side is read under one snapshot (exported by a session held open for the run and
//! imported by every worker), so a busy database is compared as of one instant per side.
//! Tables with a primary key are cut into key ranges of about [`DEFAULT_RANGE_ROWS`] rows; each
//! range's row count and order-independent hash (the sum of the first 60 bits of every row's
//! `md5(ROW(…)::text)`) are computed on both sides at once. A range that differs is bisected at
//! its median key until a piece holds at most [`DEFAULT_LEAF_ROWS`] rows, whose keys and row
//! hashes are then compared one by one to name the rows missing, extra or different on the
//! target. A table without a primary key is one range: its counts and hashes say whether it
//! matches, not which rows differ.
//!
//! Row text depends on session settings (time zone, date and interval styles, float digits,
//! bytea and money formats); every session pins them, so two servers configured differently
//! still print equal values alike.

mod chunk;
mod sql;

use crate::catalog::{self, PgTable};
use crate::clone::{check_named, TableRules};
use crate::conn::{query_error, PgTarget};
use crate::ddl::{quote_ident, quote_literal};
use chunk::{Diff, Sides};
use pipeline::{Error, ErrorKind, Result, Side};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tokio_postgres::{Client, SimpleQueryMessage};

/// Rows per key range: big enough that per-statement overhead is small, small enough that a
/// differing range is narrowed down in a few bisection steps.
pub const DEFAULT_RANGE_ROWS: u64 = 100_000;
/// Bisection stops at ranges of at most this many rows, whose keys are then listed.
pub const DEFAULT_LEAF_ROWS: u64 = 1_000;
/// Differing rows named per table; more only say that there are more.
pub const DEFAULT_MAX_DIFFS: usize = 20;

/// Settings pinned in every session so that both servers print values the same way.
const SESSION_SETTINGS: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; \
    SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'; \
    SET lc_monetary = 'C'; SET statement_timeout = 0; \
    SET idle_in_transaction_session_timeout = 0;";

/// How to compare.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Tables compared at once (each holds one connection per side).
    pub jobs: usize,
    /// Differing rows named per table.
    pub max_diffs: usize,
    /// Rows per key range.
    pub range_rows: u64,
    /// Largest range whose rows are listed instead of bisected.
    pub leaf_rows: u64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            jobs: 1,
            max_diffs: DEFAULT_MAX_DIFFS,
            range_rows: DEFAULT_RANGE_ROWS,
            leaf_rows: DEFAULT_LEAF_ROWS,
        }
    }
}

/// A primary key's value, column by column as text. JSON: an object `{"column": "value"}` in key
/// order; text: `id=5`, or `(a, b)=(1, 'x')` for a composite key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowKey(pub Vec<(String, String)>);

impl RowKey {
    fn new(columns: &[String], values: &[String]) -> RowKey {
        RowKey(
            columns
                .iter()
                .cloned()
                .zip(values.iter().cloned())
                .collect(),
        )
    }
}

impl Serialize for RowKey {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl std::fmt::Display for RowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.0.iter().map(|(k, _)| shown_ident(k)).collect();
        let values: Vec<String> = self.0.iter().map(|(_, v)| shown_value(v)).collect();
        if self.0.len() == 1 {
            write!(f, "{}={}", names[0], values[0])
        } else {
            write!(f, "({})=({})", names.join(", "), values.join(", "))
        }
    }
}

fn shown_ident(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        quote_ident(s)
    }
}

/// A key value as written in SQL: bare when it is a number or a plain word, else quoted.
fn shown_value(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+:".contains(c));
    if plain {
        s.to_string()
    } else {
        quote_literal(s)
    }
}

/// The outcome of comparing one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    /// `schema.table`.
    pub table: String,
    /// Its primary key columns (empty: rows cannot be named).
    pub key: Vec<String>,
    /// Rows in the source (matching the table's filter).
    pub source_rows: u64,
    /// Rows in the target (matching the same filter); null when the table is missing there.
    pub target_rows: Option<u64>,
    /// Whether both sides hold the same rows.
    pub matches: bool,
    /// Keys in the source and not in the target.
    pub missing: Vec<RowKey>,
    /// Keys in the target and not in the source.
    pub extra: Vec<RowKey>,
    /// Keys on both sides whose rows differ.
    pub different: Vec<RowKey>,
    /// More rows differ than are named.
    pub truncated: bool,
    /// What keeps the table from being compared row by row (missing on the target, columns
    /// that differ).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Multiset hash of the source rows (hex).
    pub source_digest: String,
    /// Multiset hash of the target rows (hex).
    pub target_digest: String,
    /// Key ranges compared.
    pub ranges: usize,
}

impl TableReport {
    fn found(&self) -> usize {
        self.missing.len() + self.extra.len() + self.different.len()
    }

    fn add(&mut self, diff: Diff, key: RowKey, max: usize) {
        if self.found() >= max {
            self.truncated = true;
            return;
        }
        match diff {
            Diff::Missing => self.missing.push(key),
            Diff::Extra => self.extra.push(key),
            Diff::Different => self.different.push(key),
        }
    }

    fn not_compared(
        table: &PgTable,
        source_rows: u64,
        target_rows: Option<u64>,
        why: String,
    ) -> Self {
        TableReport {
            table: table.display(),
            key: table.primary_key.clone(),
            source_rows,
            target_rows,
            matches: false,
            missing: Vec::new(),
            extra: Vec::new(),
            different: Vec::new(),
            truncated: false,
            problem: Some(why),
            source_digest: String::new(),
            target_digest: String::new(),
            ranges: 0,
        }
    }
}

/// One table to compare.
struct Job {
    source: PgTable,
    target: Option<PgTable>,
    filter: Option<String>,
}

/// A session that exported its snapshot and holds it (and reads the catalog under it).
struct Snapshot {
    holder: Client,
    name: String,
}

impl Snapshot {
    async fn export(server: &PgTarget) -> Result<Snapshot> {
        let side = server.side();
        let holder = server.connect().await?;
        let sql = format!(
            "{SESSION_SETTINGS} BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
             SELECT pg_export_snapshot()"
        );
        let messages = holder
            .simple_query(&sql)
            .await
            .map_err(|e| query_error(side, "exporting a snapshot", e))?;
        let name = messages
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
                _ => None,
            })
            .ok_or_else(|| Error::new(ErrorKind::Query, side, "no snapshot was exported"))?;
        Ok(Snapshot { holder, name })
    }

    /// A new session on `server` seeing this snapshot.
    async fn session(&self, server: &PgTarget) -> Result<Client> {
        let client = server.connect().await?;
        let sql = format!(
            "{SESSION_SETTINGS} BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
             SET TRANSACTION SNAPSHOT {}",
            quote_literal(&self.name)
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| query_error(server.side(), "importing the snapshot", e))?;
        Ok(client)
    }
}

/// Compare every table of `source`'s database that `rules` select and whose rows are copied
/// (schema-only tables are skipped; a partition follows its partitioned table's rules) with the
/// same-named table of `target`, reading only rows that match each table's filter on both
/// sides. Reports come back in catalog order (schema, name). Tables missing on the target are
/// reported, not errors; tables only on the target are not looked at.
pub async fn verify_database(
    source: &PgTarget,
    target: &PgTarget,
    rules: &dyn TableRules,
    opts: &VerifyOptions,
) -> Result<Vec<TableReport>> {
    let (src_snap, dst_snap) =
        futures::try_join!(Snapshot::export(source), Snapshot::export(target))?;
    let all = catalog::tables(&src_snap.holder).await?;
    check_named(rules, &all, &source.display())?;
    let on_target = catalog::tables(&dst_snap.holder).await?;

    let mut jobs = Vec::new();
    for t in all.into_iter().filter(|t| t.relkind == 'r') {
        let selected = match &t.partition_root {
            Some((s, n)) => rules.selects(s, n),
            None => rules.selects(&t.schema, &t.name),
        };
        let schema_only = rules.schema_only(&t.schema, &t.name)
            || t.partition_root
                .as_ref()
                .is_some_and(|(s, n)| rules.schema_only(s, n));
        if !selected || schema_only {
            continue;
        }
        let filter = rules.predicate(&t.schema, &t.name).or_else(|| {
            t.partition_root
                .as_ref()
                .and_then(|(s, n)| rules.predicate(s, n))
        });
        let target = on_target
            .iter()
            .find(|o| o.schema == t.schema && o.name == t.name)
            .cloned();
        jobs.push(Job {
            source: t,
            target,
            filter,
        });
    }

    // Biggest first, so that a large table does not start last and run alone.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].source.bytes));
    let free = crate::clone::free_connections(source)
        .await?
        .min(crate::clone::free_connections(target).await?);
    let workers = opts.jobs.min(jobs.len()).min(free.saturating_sub(1)).max(1);
    if workers < opts.jobs.min(jobs.len()) {
        tracing::warn!(
            workers,
            wanted = opts.jobs,
            "fewer tables compared at once than asked: max_connections leaves room for no more"
        );
    }
    let shared = Shared {
        source,
        target,
        snapshots: (&src_snap, &dst_snap),
        jobs: &jobs,
        order: &order,
        next: AtomicUsize::new(0),
        reports: Mutex::new(vec![None; jobs.len()]),
        opts,
    };
    futures::future::try_join_all((0..workers).map(|_| shared.work())).await?;
    let reports = shared
        .reports
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    Ok(reports.into_iter().flatten().collect())
}

/// What the workers of one run share: they take tables from `order` one at a time.
struct Shared<'a> {
    source: &'a PgTarget,
    target: &'a PgTarget,
    snapshots: (&'a Snapshot, &'a Snapshot),
    jobs: &'a [Job],
    order: &'a [usize],
    next: AtomicUsize,
    reports: Mutex<Vec<Option<TableReport>>>,
    opts: &'a VerifyOptions,
}

impl Shared<'_> {
    /// One worker: a session per side, then tables until none is left.
    async fn work(&self) -> Result<()> {
        let (s, t) = futures::try_join!(
            self.snapshots.0.session(self.source),
            self.snapshots.1.session(self.target)
        )?;
        let sides = Sides {
            source: &s,
            target: &t,
        };
        while let Some(&i) = self.order.get(self.next.fetch_add(1, Ordering::SeqCst)) {
            let job = &self.jobs[i];
            let report = compare_job(&sides, job, self.opts)
                .await
                .map_err(|e| e.context(format!("comparing {}", job.source.display())))?;
            tracing::info!(
                table = %report.table,
                source_rows = report.source_rows,
                ranges = report.ranges,
                matches = report.matches,
                "table compared"
            );
            self.reports.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(report);
        }
        Ok(())
    }
}

async fn compare_job(sides: &Sides<'_>, job: &Job, opts: &VerifyOptions) -> Result<TableReport> {
    let t = &job.source;
    let filter = job.filter.as_deref();
    let Some(target) = &job.target else {
        let rows = chunk::count(sides.source, Side::Source, t, filter).await?;
        return Ok(TableReport::not_compared(
            t,
            rows,
            None,
            "missing on target".into(),
        ));
    };
    let only_source: Vec<&String> = t
        .columns
        .iter()
        .filter(|c| !target.columns.contains(c))
        .collect();
    let only_target: Vec<&String> = target
        .columns
        .iter()
        .filter(|c| !t.columns.contains(c))
        .collect();
    if only_source.is_empty() && only_target.is_empty() {
        return chunk::compare(sides, t, target, filter, opts).await;
    }
    let names = |cols: &[&String]| {
        cols.iter()
            .map(|c| shown_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut why = Vec::new();
    if !only_source.is_empty() {
        why.push(format!(
            "columns missing on target: {}",
            names(&only_source)
        ));
    }
    if !only_target.is_empty() {
        why.push(format!("columns only on target: {}", names(&only_target)));
    }
    // Counting on the target may fail if the filter names a missing column: count without it.
    let (s, d) = futures::try_join!(
        chunk::count(sides.source, Side::Source, t, filter),
        chunk::count(
            sides.target,
            Side::Target,
            target,
            filter.filter(|_| only_source.is_empty())
        ),
    )?;
    Ok(TableReport::not_compared(t, s, Some(d), why.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_as_sql_and_serialise_in_key_order() {
        let one = RowKey::new(&["id".into()], &["5".into()]);
        assert_eq!(one.to_string(), "id=5");
        let text = RowKey::new(&["Code".into()], &["it's".into()]);
        assert_eq!(text.to_string(), "\"Code\"='it''s'");
        let two = RowKey::new(&["b".into(), "a".into()], &["1".into(), "".into()]);
        assert_eq!(two.to_string(), "(b, a)=(1, '')");
        assert_eq!(serde_json::to_string(&two).unwrap(), r#"{"b":"1","a":""}"#);
    }

    #[test]
    fn reports_stop_naming_rows_at_the_limit() {
        let t = PgTable {
            oid: 1,
            schema: "public".into(),
            name: "t".into(),
            relkind: 'r',
            partition_root: None,
            columns: vec!["id".into()],
            primary_key: vec!["id".into()],
            format: pipeline::raw::CopyFormat::Binary,
            bytes: 0,
            blocks: 0,
            rows: 0,
        };
        let mut r = TableReport::not_compared(&t, 0, Some(0), String::new());
        let key = RowKey::new(&["id".into()], &["1".into()]);
        r.add(Diff::Missing, key.clone(), 2);
        r.add(Diff::Extra, key.clone(), 2);
        assert!(!r.truncated);
        r.add(Diff::Different, key, 2);
        assert!(r.truncated);
        assert_eq!(r.found(), 2);
    }
}
