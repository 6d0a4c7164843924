//! The kit checked against its own reference connectors, and against broken ones it must reject.

use super::*;
use crate::catalog::TableInfo;
use crate::error::Result;
use crate::registry::SourceFactory;
use crate::sink::{BatchEncoder, PartitionWriter, Sink};
use crate::source::{BatchStream, Mode, Partition, Source, SourceOptions};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

fn small() -> SourceOptions {
    SourceOptions {
        partition_rows: 2,
        batch_rows: 3,
        ..SourceOptions::default()
    }
}

/// The panic message of a check that must fail.
async fn fails(check: impl std::future::Future<Output = ()>) -> String {
    let err = AssertUnwindSafe(check)
        .catch_unwind()
        .await
        .expect_err("the check must reject this connector");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[tokio::test]
async fn memory_source_conforms() {
    let mut tables = fixtures::all();
    tables.push(fixtures::dictionary());
    let report =
        assert_source_conformance(&MemoryFactory::new(tables), "memory://all", &small()).await;
    assert_eq!(report.tables.len(), 10);
    assert_eq!(report.table("dictionary").unwrap().rows, 4);
    let floats = report.table("floats").unwrap();
    assert_eq!(
        (floats.rows, floats.partitions, floats.max_batch_rows),
        (8, 4, 2)
    );
    let empty = report.table("empty").unwrap();
    assert_eq!((empty.rows, empty.partitions, empty.batches), (0, 1, 0));
}

#[tokio::test]
async fn byte_bound_splits_wide_rows() {
    let options = SourceOptions {
        batch_bytes: 1,
        ..SourceOptions::default()
    };
    let tables = vec![fixtures::binary()];
    let report =
        assert_source_conformance(&MemoryFactory::new(tables), "memory://b", &options).await;
    assert_eq!(
        report.table("binary").unwrap().batches,
        4,
        "one row per batch: {report:?}"
    );
}

/// What a broken source gets wrong.
#[derive(Clone, Copy)]
enum Fault {
    /// Partition 1 reads partition 0's rows.
    Overlap,
    /// The last partition is left out of the plan.
    Missing,
    /// Batches ignore `batch_rows`.
    Oversized,
    /// Batches lack the last column.
    SchemaDrift,
}

struct Broken(MemoryFactory, Fault);
struct BrokenSource(Arc<dyn Source>, Fault);

#[async_trait::async_trait]
impl SourceFactory for Broken {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn forms(&self) -> &'static [&'static str] {
        self.0.forms()
    }
    fn accepts(&self, location: &str) -> bool {
        self.0.accepts(location)
    }
    async fn open(&self, location: &str, options: &SourceOptions) -> Result<Arc<dyn Source>> {
        let mut options = options.clone();
        if let Fault::Oversized = self.1 {
            (options.batch_rows, options.partition_rows) = (usize::MAX, u64::MAX);
        }
        Ok(Arc::new(BrokenSource(
            self.0.open(location, &options).await?,
            self.1,
        )))
    }
}

#[async_trait::async_trait]
impl Source for BrokenSource {
    fn kind(&self) -> &'static str {
        "memory"
    }
    fn location(&self) -> String {
        self.0.location()
    }
    async fn list_tables(&self) -> Result<Vec<String>> {
        self.0.list_tables().await
    }
    async fn describe(&self, table: &str) -> Result<TableInfo> {
        self.0.describe(table).await
    }
    async fn plan(&self, table: &TableInfo, filter: Option<&str>) -> Result<Vec<Partition>> {
        let mut parts = self.0.plan(table, filter).await?;
        match self.1 {
            Fault::Overlap if parts.len() > 1 => parts[1].bounds = parts[0].bounds.clone(),
            Fault::Missing if parts.len() > 1 => {
                parts.pop();
                let count = parts.len();
                parts.iter_mut().for_each(|p| p.count = count);
            }
            _ => {}
        }
        Ok(parts)
    }
    async fn open(&self, table: &TableInfo, partition: &Partition) -> Result<BatchStream> {
        use futures::StreamExt;
        let stream = self.0.open(table, partition).await?;
        match self.1 {
            Fault::SchemaDrift => Ok(stream
                .map(|b| {
                    b.map(|b| {
                        b.project(&(0..b.num_columns() - 1).collect::<Vec<_>>())
                            .unwrap()
                    })
                })
                .boxed()),
            _ => Ok(stream),
        }
    }
}

#[tokio::test]
async fn broken_sources_are_rejected() {
    let tables = || vec![fixtures::ints(), fixtures::strings()];
    for (fault, expected) in [
        (Fault::Overlap, "exactly once"),
        (Fault::Missing, "exactly once"),
        (Fault::Oversized, "exceeds batch_rows"),
        (Fault::SchemaDrift, "schema differs"),
    ] {
        let factory = Broken(MemoryFactory::new(tables()), fault);
        let message = fails(async {
            assert_source_conformance(&factory, "memory://broken", &small()).await;
        })
        .await;
        assert!(
            message.contains(expected),
            "expected `{expected}` in: {message}"
        );
    }
}

#[tokio::test]
async fn memory_sink_conforms_and_decodes() {
    let sink = MemorySink::new(Mode::Jsonb);
    let make = || Arc::new(sink.clone()) as Arc<dyn Sink>;
    assert_sink_conformance(&make, &sink, &fixtures::all()).await;
    assert_eq!(sink.tables().len(), 9);
    let tuples = sink.tuples("floats").unwrap();
    assert_eq!(tuples.len(), 8);
    assert!(tuples
        .iter()
        .all(|t| t.len() == crate::encode::JSONB_COLUMNS.len()));
    let stream = sink.copy_stream("empty").unwrap();
    assert_eq!(
        stream.len(),
        crate::encode::COPY_HEADER.len() + crate::encode::COPY_TRAILER.len()
    );

    let native = MemorySink::new(Mode::Native);
    let make = || Arc::new(native.clone()) as Arc<dyn Sink>;
    assert_sink_conformance(&make, &native, &fixtures::postgres_safe()).await;
    // ints: id, b, i8 … u64 as typed fields; row 2 holds i64::MAX as 8 big-endian bytes.
    let ints = native.tuples("ints").unwrap();
    assert_eq!(ints[1][5].as_deref(), Some(&i64::MAX.to_be_bytes()[..]));
    assert_eq!(ints[4][5], None);
}

/// A sink whose `abort` forgets to clean up.
struct LeakyAbort(MemorySink);

#[async_trait::async_trait]
impl Sink for LeakyAbort {
    async fn prepare(&self, tables: &[TableInfo]) -> Result<()> {
        self.0.prepare(tables).await
    }
    fn encoder(&self, table: &TableInfo) -> Result<Arc<dyn BatchEncoder>> {
        self.0.encoder(table)
    }
    async fn writer(&self, table: &TableInfo, p: &Partition) -> Result<Box<dyn PartitionWriter>> {
        self.0.writer(table, p).await
    }
    async fn finish_table(&self, table: &TableInfo) -> Result<()> {
        self.0.finish_table(table).await
    }
    async fn finish(&self, tables: &[TableInfo]) -> Result<()> {
        self.0.finish(tables).await
    }
    async fn abort(&self) {
        // Finishes what it should have dropped.
        let info = TableInfo {
            name: "ints_aborted".into(),
            ..Default::default()
        };
        let _ = self.0.finish_table(&info).await;
    }
}

#[tokio::test]
async fn a_sink_that_leaves_tables_after_abort_is_rejected() {
    let sink = MemorySink::new(Mode::Jsonb);
    let make = || Arc::new(LeakyAbort(sink.clone())) as Arc<dyn Sink>;
    let message = fails(assert_sink_conformance(&make, &sink, &[fixtures::ints()])).await;
    assert!(message.contains("abort must leave no table"), "{message}");
}
