//! Periodic refresh: bring the tables `init` wrote up to date with a source that has no change
//! capture, by re-reading each table and applying only the difference.
//!
//! Per table: the source is read through `plan`/`open` by the pipeline runtime (partitions in
//! parallel, batches bounded, encoded by the same encoders `init` used) into an unlogged
//! staging table, with one COPY per partition. Then a single target transaction upserts new and
//! changed rows by key, deletes rows gone from the source, and drops the staging table. Readers
//! see the table as before until that transaction commits, then as after: never empty, never
//! half refreshed. (A staging table rather than a temp table, because a temp table lives on one
//! connection, and parallel partition COPYs need several.) Unchanged rows are not touched (JSONB
//! `_migrated_at` keeps its value).

use crate::apply::target::TargetTable;
use crate::conn::{query_error, PgTarget};
use crate::ddl::{derived_name, qualified};
use crate::sink::PgWriter;
use pipeline::encode::{JsonbEncoder, NativeEncoder};
use pipeline::{
    BatchEncoder, Mode, Partition, PartitionWriter, Progress, Result, RunOptions, Side, Sink,
    Source, TableInfo, TableWork,
};
use serde::Serialize;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// What refreshing one table changed.
#[derive(Debug, Clone, Serialize)]
pub struct RefreshCounts {
    /// Source table name.
    pub table: String,
    /// Rows read from the source.
    pub source_rows: u64,
    /// Rows added to the target.
    pub inserted: u64,
    /// Target rows whose content changed.
    pub updated: u64,
    /// Target rows removed (gone from the source).
    pub deleted: u64,
    /// Wall time of the table's refresh.
    pub seconds: f64,
}

/// Where and how the refreshed tables live.
#[derive(Debug, Clone)]
pub struct RefreshTarget {
    /// The target database.
    pub target: PgTarget,
    /// Target schema.
    pub schema: String,
    /// The layout `init` wrote.
    pub mode: Mode,
    /// Partitions read at once.
    pub jobs: usize,
}

/// Refresh `table` (reading only rows matching `filter`, as `init` did) from `source` into its
/// copy. Must be called from a thread that is not a tokio worker (e.g. `spawn_blocking`).
pub fn refresh_table(
    handle: &tokio::runtime::Handle,
    source: Arc<dyn Source>,
    table: &TableInfo,
    filter: Option<&str>,
    to: &RefreshTarget,
) -> Result<RefreshCounts> {
    let started = Instant::now();
    let target = TargetTable::new(table, &to.schema, to.mode)?;
    let stage = derived_name(&["_seren_refresh", &format!("{:08x}", run_id()), &table.name]);
    let staging = qualified(&to.schema, &stage);
    let partitions = handle.block_on(source.plan(table, filter))?;
    let sink = Arc::new(StagingSink {
        to: to.clone(),
        target: target.clone(),
        staging: staging.clone(),
        source_type: source.kind().to_string(),
    });
    let progress = Arc::new(Progress::new([(
        table.name.clone(),
        partitions.iter().map(|p| p.estimated_rows).sum(),
    )]));
    let work = vec![TableWork {
        table: table.clone(),
        partitions,
    }];
    let opts = RunOptions {
        jobs: to.jobs.max(1),
        cancel: Arc::new(AtomicBool::new(false)),
    };
    handle.block_on(sink.prepare(std::slice::from_ref(table)))?;
    let copied = pipeline::copy_tables(handle, source, sink.clone(), work, progress, &opts)?;
    let source_rows = copied.iter().map(|o| o.rows).sum();
    let merged = handle.block_on(merge(&to.target, &target, &staging));
    if merged.is_err() {
        handle.block_on(sink.abort());
    }
    let (inserted, updated, deleted) = merged?;
    let counts = RefreshCounts {
        table: table.name.clone(),
        source_rows,
        inserted,
        updated,
        deleted,
        seconds: started.elapsed().as_secs_f64(),
    };
    tracing::info!(
        table = %table.name,
        source_rows,
        inserted,
        updated,
        deleted,
        "table refreshed"
    );
    Ok(counts)
}

/// Apply the difference between the staging table (the source's rows) and the target table, and
/// drop the staging table, in one transaction. Returns (inserted, updated, deleted).
async fn merge(pg: &PgTarget, target: &TargetTable, staging: &str) -> Result<(u64, u64, u64)> {
    let what = format!("refreshing {}", target.sql_name);
    let err = |e| query_error(Side::Target, &what, e);
    let mut client = pg.connect().await?;
    client
        .batch_execute(&format!("ANALYZE {staging}"))
        .await
        .map_err(err)?;
    let tx = client.transaction().await.map_err(err)?;
    let counts = if target.keyed() {
        let row = tx
            .query_one(&target.upsert_sql(staging, false), &[])
            .await
            .map_err(err)?;
        let deleted = tx
            .execute(&target.delete_missing_sql(staging), &[])
            .await
            .map_err(err)?;
        (
            row.get::<_, i64>(0) as u64,
            row.get::<_, i64>(1) as u64,
            deleted,
        )
    } else {
        let deleted = tx
            .execute(&target.delete_surplus_sql(staging), &[])
            .await
            .map_err(err)?;
        let inserted = tx
            .execute(&target.insert_missing_sql(staging), &[])
            .await
            .map_err(err)?;
        (inserted, 0, deleted)
    };
    tx.batch_execute(&format!("DROP TABLE {staging}"))
        .await
        .map_err(err)?;
    tx.commit().await.map_err(err)?;
    Ok(counts)
}

fn run_id() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish() as u32
}

/// A sink that only loads one table's staging table (the merge happens afterwards).
struct StagingSink {
    to: RefreshTarget,
    target: TargetTable,
    staging: String,
    source_type: String,
}

#[async_trait::async_trait]
impl Sink for StagingSink {
    async fn prepare(&self, _tables: &[TableInfo]) -> Result<()> {
        let client = self.to.target.connect().await?;
        client
            .batch_execute(&format!(
                "CREATE UNLOGGED TABLE {} ({})",
                self.staging,
                self.target.work_definitions()
            ))
            .await
            .map_err(|e| {
                query_error(
                    Side::Target,
                    &format!("creating a staging table for {}", self.target.sql_name),
                    e,
                )
            })
    }

    fn encoder(&self, table: &TableInfo) -> Result<Arc<dyn BatchEncoder>> {
        Ok(match self.to.mode {
            Mode::Jsonb => Arc::new(JsonbEncoder::new(table, &self.source_type)?),
            Mode::Native => Arc::new(NativeEncoder::new(table)?),
        })
    }

    async fn writer(
        &self,
        _table: &TableInfo,
        partition: &Partition,
    ) -> Result<Box<dyn PartitionWriter>> {
        let client = self.to.target.connect().await?;
        let what = format!(
            "reloading {} (partition {}/{})",
            self.target.sql_name,
            partition.index + 1,
            partition.count
        );
        let sql = self.target.copy_sql(&self.staging);
        Ok(Box::new(PgWriter::start(client, &sql, what).await?))
    }

    async fn finish_table(&self, _table: &TableInfo) -> Result<()> {
        Ok(())
    }

    async fn finish(&self, _tables: &[TableInfo]) -> Result<()> {
        Ok(())
    }

    async fn abort(&self) {
        let dropped = async {
            let client = self.to.target.connect().await?;
            client
                .batch_execute(&format!("DROP TABLE IF EXISTS {}", self.staging))
                .await
                .map_err(|e| query_error(Side::Target, "dropping a staging table", e))
        };
        if let Err(e) = dropped.await {
            tracing::warn!(table = %self.staging, error = %e, "could not drop staging table");
        }
    }
}
