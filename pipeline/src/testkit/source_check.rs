//! `assert_source_conformance`: the source rules of `connectors/SPEC.md`, checked against a
//! live source.

use super::rows::row_keys;
use crate::catalog::TableInfo;
use crate::registry::SourceFactory;
use crate::source::{Partition, Source, SourceOptions};
use arrow_array::{Array, RecordBatch};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A name no source holds, for the unknown-table check.
const MISSING_TABLE: &str = "seren_testkit_no_such_table";

/// What the check saw of one table, for assertions the connector's test adds (e.g. that some
/// table was split into several partitions, or that an empty table was among them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    /// Table name.
    pub name: String,
    /// Rows read (the same through the partitioned and the whole read).
    pub rows: u64,
    /// Partitions planned with the given options.
    pub partitions: usize,
    /// Batches the partitioned read yielded.
    pub batches: usize,
    /// Rows in the largest batch.
    pub max_batch_rows: usize,
}

/// What the check saw of every table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceReport {
    /// One entry per table, in `list_tables` order.
    pub tables: Vec<TableReport>,
}

impl SourceReport {
    /// The report of table `name`.
    pub fn table(&self, name: &str) -> Option<&TableReport> {
        self.tables.iter().find(|t| t.name == name)
    }
}

/// Check that the connector behind `factory` keeps the source contract for the data at
/// `location`, panicking with the table, partition and rule at the first violation.
///
/// The source is opened twice: with `options` (give a small `partition_rows` so tables split,
/// and small batch bounds so they are exercised) and with `partition_rows = u64::MAX`, whose
/// read is the reference. Checked, for every table `list_tables` gives:
/// * `accepts(location)` holds, `kind()` equals the factory's `name()`, `location()` and errors
///   never show the password of a `scheme://user:password@…` location;
/// * `list_tables` is stable and has no duplicates; `describe` of an unknown table fails with
///   a message naming it;
/// * `describe` is stable (same schema twice, and from both openings), names the requested
///   table, has one `ColumnInfo` per schema field, and key and hidden columns in the schema;
/// * `plan` is deterministic, gives at least one partition, numbers them `0..count`, and each
///   survives a JSON round trip; the partitions are opened *from their JSON copies*, all at once;
/// * every batch has exactly the `describe` schema, at most `batch_rows` rows, and without its
///   last row at most twice `batch_bytes` bytes of Arrow buffers;
/// * the multiset of rows read from all partitions equals that of the reference read (no row
///   missing, none twice), and equals `TableInfo::rows` when that count is exact.
pub async fn assert_source_conformance(
    factory: &dyn SourceFactory,
    location: &str,
    options: &SourceOptions,
) -> SourceReport {
    assert!(
        factory.accepts(location),
        "{}: accepts({location:?}) must be true for the location under test",
        factory.name()
    );
    let open = |options: SourceOptions| async move {
        factory
            .open(location, &options)
            .await
            .unwrap_or_else(|e| panic!("{}: open({location:?}) failed: {e}", factory.name()))
    };
    let source = open(options.clone()).await;
    let whole = open(SourceOptions {
        partition_rows: u64::MAX,
        ..options.clone()
    })
    .await;
    assert_eq!(
        source.kind(),
        factory.name(),
        "Source::kind must equal SourceFactory::name"
    );
    let secret = password(location);
    let shown = source.location();
    if let Some(secret) = &secret {
        assert!(
            !shown.contains(secret),
            "Source::location shows the password: {shown}"
        );
    }

    let tables = list(&*source).await;
    assert_eq!(
        tables,
        list(&*source).await,
        "{shown}: list_tables is not stable"
    );
    assert_eq!(
        tables,
        list(&*whole).await,
        "{shown}: list_tables depends on the options"
    );
    let mut unique = tables.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        tables.len(),
        "{shown}: list_tables repeats a name: {tables:?}"
    );
    match source.describe(MISSING_TABLE).await {
        Ok(_) => panic!("{shown}: describe of a table that does not exist must fail"),
        Err(e) => {
            assert!(
                e.message().contains(MISSING_TABLE),
                "{shown}: the error for an unknown table must name it; got: {e}"
            );
            if let Some(secret) = &secret {
                assert!(
                    !e.message().contains(secret),
                    "an error shows the password: {e}"
                );
            }
        }
    }

    let mut report = SourceReport { tables: Vec::new() };
    for name in &tables {
        report
            .tables
            .push(check_table(&source, &whole, name, options).await);
    }
    report
}

async fn list(source: &dyn Source) -> Vec<String> {
    source
        .list_tables()
        .await
        .unwrap_or_else(|e| panic!("{}: list_tables failed: {e}", source.location()))
}

async fn describe(source: &dyn Source, name: &str) -> TableInfo {
    source
        .describe(name)
        .await
        .unwrap_or_else(|e| panic!("table {name}: describe failed: {e}"))
}

async fn plan(source: &dyn Source, table: &TableInfo) -> Vec<Partition> {
    source
        .plan(table, None)
        .await
        .unwrap_or_else(|e| panic!("table {}: plan failed: {e}", table.name))
}

/// Every rule for one table; returns what was read.
async fn check_table(
    source: &Arc<dyn Source>,
    whole: &Arc<dyn Source>,
    name: &str,
    options: &SourceOptions,
) -> TableReport {
    let info = describe(&**source, name).await;
    assert_eq!(info.name, name, "describe({name}) describes another table");
    let again = describe(&**source, name).await;
    assert_eq!(
        info.schema, again.schema,
        "table {name}: describe gives a different schema each call"
    );
    let whole_info = describe(&**whole, name).await;
    assert_eq!(
        info.schema, whole_info.schema,
        "table {name}: the schema depends on partition_rows"
    );
    let fields: Vec<&String> = info.schema.fields().iter().map(|f| f.name()).collect();
    let columns: Vec<&String> = info.columns.iter().map(|c| &c.name).collect();
    assert_eq!(
        fields, columns,
        "table {name}: `columns` must describe the schema's fields, in order"
    );
    for key in info.primary_key.iter().chain(&info.hidden_columns) {
        assert!(
            fields.contains(&key),
            "table {name}: key or hidden column {key} is not in the schema"
        );
    }

    let parts = plan(&**source, &info).await;
    assert_eq!(
        parts,
        plan(&**source, &info).await,
        "table {name}: plan is not deterministic"
    );
    assert!(
        !parts.is_empty(),
        "table {name}: plan must give at least one partition"
    );
    let mut copies = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(
            (p.table.as_str(), p.index, p.count),
            (name, i, parts.len()),
            "table {name}: partition {i} is mislabelled (table, index, count)"
        );
        let json = serde_json::to_string(p).expect("a partition serialises");
        let copy: Partition = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("table {name}: partition {i} does not deserialise: {e}"));
        assert_eq!(
            &copy, p,
            "table {name}: partition {i} changes in a JSON round trip"
        );
        copies.push(copy);
    }

    // All partitions at once, as the runtime may open them.
    let reads = copies.iter().map(|p| read(&**source, &info, p, options));
    let per_partition = futures::future::join_all(reads).await;
    let mut rows = BTreeMap::<String, u64>::new();
    let (mut batches, mut max_batch_rows) = (0, 0);
    for (keys, stats) in per_partition {
        for k in keys {
            *rows.entry(k).or_default() += 1;
        }
        batches += stats.0;
        max_batch_rows = max_batch_rows.max(stats.1);
    }
    let mut reference = BTreeMap::<String, u64>::new();
    for p in plan(&**whole, &whole_info).await {
        for k in read(&**whole, &whole_info, &p, options).await.0 {
            *reference.entry(k).or_default() += 1;
        }
    }
    compare(name, &rows, &reference);
    let total: u64 = rows.values().sum();
    if info.rows_exact {
        assert_eq!(
            total, info.rows,
            "table {name}: describe says {} rows (exact) but {total} were read",
            info.rows
        );
    }
    TableReport {
        name: name.to_string(),
        rows: total,
        partitions: parts.len(),
        batches,
        max_batch_rows,
    }
}

/// The row keys of one partition, and (batches, largest batch's rows); checks every batch.
async fn read(
    source: &dyn Source,
    info: &TableInfo,
    partition: &Partition,
    options: &SourceOptions,
) -> (Vec<String>, (usize, usize)) {
    let (name, i) = (&info.name, partition.index);
    let mut stream = source
        .open(info, partition)
        .await
        .unwrap_or_else(|e| panic!("table {name} partition {i}: open failed: {e}"));
    let (mut keys, mut batches, mut largest) = (Vec::new(), 0, 0);
    while let Some(batch) = stream.next().await {
        let batch =
            batch.unwrap_or_else(|e| panic!("table {name} partition {i}: read failed: {e}"));
        assert_eq!(
            batch.schema(),
            info.schema,
            "table {name} partition {i}: a batch's schema differs from describe"
        );
        let n = batch.num_rows();
        assert!(
            n <= options.batch_rows,
            "table {name} partition {i}: a batch of {n} rows exceeds batch_rows = {}",
            options.batch_rows
        );
        if n > 1 {
            let bytes = arrow_bytes(&batch.slice(0, n - 1));
            assert!(
                bytes <= 2 * options.batch_bytes,
                "table {name} partition {i}: a batch holds {bytes} bytes before its last row; \
                 batch_bytes = {} (the source must close a batch once it reaches the bound)",
                options.batch_bytes
            );
        }
        batches += 1;
        largest = largest.max(n);
        keys.extend(row_keys(&batch));
    }
    (keys, (batches, largest))
}

/// Bytes of Arrow buffers the rows of `batch` span.
fn arrow_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size())
        })
        .sum()
}

/// Panic naming rows missing from, or extra or repeated in, the partitioned read.
fn compare(name: &str, partitioned: &BTreeMap<String, u64>, reference: &BTreeMap<String, u64>) {
    if partitioned == reference {
        return;
    }
    let mut problems = Vec::new();
    for (row, &want) in reference {
        let got = partitioned.get(row).copied().unwrap_or(0);
        if got != want {
            problems.push(format!(
                "row ({row}) read {got} time(s) across partitions, {want} in one full read"
            ));
        }
    }
    for (row, &got) in partitioned {
        if !reference.contains_key(row) {
            problems.push(format!(
                "row ({row}) read {got} time(s) across partitions, never in one full read"
            ));
        }
    }
    let shown: Vec<&String> = problems.iter().take(5).collect();
    panic!(
        "table {name}: the partitions do not cover every row exactly once ({} difference(s)): {shown:#?}",
        problems.len()
    );
}

/// The password of a `scheme://user:password@host…` location, if it has one.
fn password(location: &str) -> Option<String> {
    let rest = &location[location.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let secret = &userinfo[userinfo.find(':')? + 1..];
    (!secret.is_empty()).then(|| secret.to_string())
}

#[cfg(test)]
mod tests {
    use super::password;

    #[test]
    fn finds_the_password_of_a_url() {
        assert_eq!(
            password("postgresql://u:s3cret@h:5432/db").as_deref(),
            Some("s3cret")
        );
        assert_eq!(password("mysql://u@h/db"), None);
        assert_eq!(password("./file.db"), None);
    }
}
