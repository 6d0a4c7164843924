//! The sink of a PostgreSQL → PostgreSQL copy: tables already exist (restored from the source's
//! schema), rows arrive as raw COPY rows and are written with `COPY … FROM STDIN` in the
//! source's format. Each partition commits in its own transaction together with its resume
//! mark. (`COPY … FREEZE` after a TRUNCATE in the same transaction was measured: it cost 3–4
//! CPU-seconds more per 1.4 GB on the target — it writes the visibility map as it goes — for
//! slightly faster index builds, so it is not used; bench/RESULTS.md.)
//!
//! As soon as a table's last partition commits, it is analyzed and its indexes and
//! primary/unique constraints are built, on a separate pool of `index_jobs` connections,
//! overlapping the other tables' copies. ANALYZE goes first (one core, beside the copies still
//! running) unless an index is on an expression, whose statistics need the index: measured 0.2 s
//! faster per run on the bench, where the last table's ANALYZE otherwise ran alone at the end.

use crate::catalog::PgTable;
use crate::conn::{query_error, PgTarget};
use crate::schema::PostDataEntry;
use crate::shared::{finished_elsewhere, take_index_build, CLAIM_PARTITION, KEEPALIVES};
use crate::state::{mark_step, MARK_PARTITION};
use bytes::Bytes;
use futures::SinkExt;
use pipeline::encode::{COPY_HEADER, COPY_TRAILER};
use pipeline::raw::{CopyFormat, RawEncoder};
use pipeline::{
    BatchEncoder, Chunk, Error, ErrorKind, Partition, PartitionWriter, Result, Side, Sink,
    TableInfo,
};
use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, CopyInSink};

/// A table to load and the post-data work that follows its last partition.
#[derive(Clone)]
pub struct CloneTable {
    /// The table (same schema and name on both sides).
    pub table: PgTable,
    /// Its indexes and primary/unique constraints, in restore order.
    pub post_data: Vec<PostDataEntry>,
    /// Primary-key and unique constraints that can be built as an index first, by name.
    pub constraint_indexes: HashMap<String, ConstraintIndex>,
    /// ANALYZE before the index builds (one core, while the other tables still copy) rather
    /// than after them, when no index is on an expression whose statistics need the index.
    pub analyze_first: bool,
}

/// A primary-key or unique constraint built as `CREATE UNIQUE INDEX` (which can run beside the
/// table's other index builds) and then attached with `ADD CONSTRAINT … USING INDEX`.
#[derive(Debug, Clone)]
pub struct ConstraintIndex {
    /// `CREATE UNIQUE INDEX …` (from the source's `pg_get_indexdef`).
    pub index_sql: String,
    /// `ALTER TABLE ONLY … ADD CONSTRAINT … PRIMARY KEY|UNIQUE USING INDEX …`.
    pub attach_sql: String,
}

/// Writes raw COPY rows into existing tables of one target database.
pub struct PgCloneSink {
    target: PgTarget,
    tables: HashMap<String, CloneTable>,
    preamble: String,
    steps_done: HashSet<String>,
    index_jobs: Arc<Semaphore>,
    started: Mutex<HashSet<String>>,
    tasks: Mutex<Vec<JoinHandle<Result<()>>>>,
    /// Shared with other workers: the planned partition count of each table.
    shared: Option<HashMap<String, usize>>,
}

impl PgCloneSink {
    /// A sink for `tables` (keyed by display name); `preamble` is the session setup the
    /// post-data SQL expects; `steps_done` are post-data steps a previous run finished.
    pub fn new(
        target: PgTarget,
        tables: Vec<CloneTable>,
        preamble: String,
        steps_done: HashSet<String>,
        index_jobs: usize,
        shared: Option<HashMap<String, usize>>,
    ) -> Self {
        PgCloneSink {
            target,
            tables: tables.into_iter().map(|t| (t.table.display(), t)).collect(),
            preamble,
            steps_done,
            index_jobs: Arc::new(Semaphore::new(index_jobs.max(1))),
            started: Mutex::new(HashSet::new()),
            tasks: Mutex::new(Vec::new()),
            shared,
        }
    }

    fn table(&self, name: &str) -> Result<&CloneTable> {
        self.tables.get(name).ok_or_else(|| {
            Error::new(
                ErrorKind::Schema,
                Side::Local,
                format!("table {name} is not part of this copy"),
            )
        })
    }

    /// Start the COPY of `partition` in `client`'s open transaction.
    async fn copy_in(
        &self,
        t: &CloneTable,
        partition: &Partition,
        client: Client,
        what: String,
    ) -> Result<Box<dyn PartitionWriter>> {
        let err = |e| query_error(Side::Target, &what, e);
        let format = t.table.format;
        let columns = if t.table.columns.is_empty() {
            String::new()
        } else {
            t.table.column_list()
        };
        let sql = format!(
            "COPY {} {columns} FROM STDIN (FORMAT {})",
            t.table.sql_name(),
            format.sql()
        );
        let sink = client.copy_in::<_, Bytes>(&sql).await.map_err(err)?;
        let mut sink = Box::pin(sink);
        if format == CopyFormat::Binary {
            sink.send(Bytes::from_static(COPY_HEADER))
                .await
                .map_err(err)?;
        }
        Ok(Box::new(CloneWriter {
            client,
            sink,
            format,
            table: t.table.display(),
            part: partition.index as i32,
            what,
        }))
    }

    /// Start building `name`'s indexes and constraints in the background, once: ANALYZE (first
    /// or last, see the module doc), every index (primary-key and unique-constraint indexes
    /// included, as `CREATE UNIQUE INDEX`) on its own connection, several at once, then in one
    /// transaction the constraints (`ADD CONSTRAINT … USING INDEX` takes no time) and the
    /// resume mark.
    fn start_post_data(&self, name: &str) -> Result<()> {
        let t = self.table(name)?;
        let step = post_data_step(name);
        if self.steps_done.contains(&step) || !self.started.lock().unwrap().insert(name.to_string())
        {
            return Ok(());
        }
        let mut indexes: Vec<(String, String)> = Vec::new();
        let mut finals: Vec<(String, String)> = Vec::new();
        for e in &t.post_data {
            let what = format!("{} {}", e.kind, e.tag);
            let constraint = e.tag.strip_prefix(&format!("{} ", t.table.name));
            let via_index = constraint.and_then(|c| t.constraint_indexes.get(c));
            match (e.kind.as_str(), via_index) {
                ("INDEX", _) => indexes.push((what, if_not_exists(&e.sql))),
                ("CONSTRAINT", Some(ci)) if single_statement(&e.sql) => {
                    indexes.push((what.clone(), if_not_exists(&ci.index_sql)));
                    finals.push((what, ci.attach_sql.clone()));
                }
                _ => finals.push((what, e.sql.clone())),
            }
        }
        let target = self.target.clone();
        let preamble = self.preamble.clone();
        let sql_name = t.table.sql_name();
        let permits = self.index_jobs.clone();
        let table_name = name.to_string();
        let analyze_first = t.analyze_first;
        let planned = self
            .shared
            .as_ref()
            .map(|p| p.get(name).copied().unwrap_or(0));
        let task = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let err = |what: &str, e| query_error(Side::Target, what, e);
            // Shared with other workers: build only once every partition is committed, and
            // only if no other worker builds it (its lock lives as long as `_claim`).
            let _claim = match planned {
                None => None,
                Some(planned) => {
                    match take_index_build(&target, &table_name, &step, planned).await? {
                        None => return Ok(()),
                        taken => taken,
                    }
                }
            };
            let analyze = format!("ANALYZE {sql_name}");
            let analyzing = format!("analyzing {table_name}");
            if analyze_first {
                let _permit = permits.acquire().await.expect("semaphore never closed");
                target.execute_alone(&analyzing, &analyze).await?;
            }
            let builds = indexes.into_iter().map(|(what, sql)| {
                let (target, preamble, permits, table_name) = (
                    target.clone(),
                    preamble.clone(),
                    permits.clone(),
                    table_name.clone(),
                );
                async move {
                    let _permit = permits
                        .acquire_owned()
                        .await
                        .expect("semaphore never closed");
                    target
                        .execute_alone(
                            &format!("creating {what} on {table_name}"),
                            &format!("{preamble}\n{sql}"),
                        )
                        .await
                }
            });
            futures::future::try_join_all(builds).await?;
            let _permit = permits
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            let mut client = target.connect().await?;
            let tx = client
                .transaction()
                .await
                .map_err(|e| err("starting the constraint step", e))?;
            tx.batch_execute(&preamble)
                .await
                .map_err(|e| err("setting up the constraint step", e))?;
            for (what, sql) in &finals {
                tx.batch_execute(sql)
                    .await
                    .map_err(|e| err(&format!("creating {what} on {table_name}"), e))?;
            }
            mark_step(&tx, &step).await?;
            tx.commit()
                .await
                .map_err(|e| err(&format!("committing the indexes of {table_name}"), e))?;
            // Statistics now, while other tables are still copying, rather than at the end.
            if !analyze_first {
                client
                    .batch_execute(&analyze)
                    .await
                    .map_err(|e| err(&analyzing, e))?;
            }
            tracing::info!(table = %table_name, ms = started.elapsed().as_millis() as u64, "indexes built");
            Ok(())
        });
        self.tasks.lock().unwrap().push(task);
        Ok(())
    }
}

/// `CREATE [UNIQUE] INDEX` made idempotent (a resumed run may find it built).
fn if_not_exists(sql: &str) -> String {
    for head in ["CREATE UNIQUE INDEX ", "CREATE INDEX "] {
        if let Some(at) = sql.find(head) {
            if !sql[at + head.len()..].starts_with("IF NOT EXISTS ") {
                return format!(
                    "{}{head}IF NOT EXISTS {}",
                    &sql[..at],
                    &sql[at + head.len()..]
                );
            }
        }
    }
    sql.to_string()
}

/// Whether a post-data entry is one `ALTER TABLE … ADD CONSTRAINT` and nothing more (no
/// `CLUSTER ON` or `REPLICA IDENTITY` riding along), so it can be rebuilt from its index.
fn single_statement(sql: &str) -> bool {
    sql.matches("ALTER TABLE").count() == 1
        && !sql.contains("CLUSTER ON")
        && !sql.contains("REPLICA IDENTITY")
}

/// The resume mark of a table's indexes and constraints.
pub fn post_data_step(table: &str) -> String {
    format!("post-data:{table}")
}

#[async_trait::async_trait]
impl Sink for PgCloneSink {
    async fn prepare(&self, _tables: &[TableInfo]) -> Result<()> {
        Ok(())
    }

    fn encoder(&self, _table: &TableInfo) -> Result<Arc<dyn BatchEncoder>> {
        Ok(Arc::new(RawEncoder))
    }

    async fn writer(
        &self,
        table: &TableInfo,
        partition: &Partition,
    ) -> Result<Box<dyn PartitionWriter>> {
        let t = self.table(&table.name)?;
        let what = format!("writing {} ({})", table.name, partition.description);
        let client = self.target.connect().await?;
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| query_error(Side::Target, &what, e))?;
        self.copy_in(t, partition, client, what).await
    }

    async fn claim(
        &self,
        table: &TableInfo,
        partition: &Partition,
    ) -> Result<Option<Box<dyn PartitionWriter>>> {
        if self.shared.is_none() {
            return self.writer(table, partition).await.map(Some);
        }
        let t = self.table(&table.name)?;
        let what = format!("claiming {} ({})", table.name, partition.description);
        let client = self.target.connect().await?;
        let err = |e| query_error(Side::Target, &what, e);
        client
            .batch_execute(&format!("{KEEPALIVES}; BEGIN"))
            .await
            .map_err(err)?;
        let ours = match client
            .query_opt(CLAIM_PARTITION, &[&table.name, &(partition.index as i32)])
            .await
        {
            Ok(row) => row.is_some_and(|r| r.get::<_, bool>(0)),
            Err(e) if finished_elsewhere(&e) => false,
            Err(e) => return Err(err(e)),
        };
        if !ours {
            return Ok(None);
        }
        let what = format!("writing {} ({})", table.name, partition.description);
        self.copy_in(t, partition, client, what).await.map(Some)
    }

    async fn finish_table(&self, table: &TableInfo) -> Result<()> {
        self.start_post_data(&table.name)
    }

    async fn finish(&self, tables: &[TableInfo]) -> Result<()> {
        // Tables whose rows were all copied by an earlier run still need their indexes.
        for t in tables {
            self.start_post_data(&t.name)?;
        }
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        let _cancelled = AbortOnDrop(tasks.iter().map(|t| t.abort_handle()).collect());
        let mut first_error = None;
        for task in tasks {
            let outcome = task.await.unwrap_or_else(|e| {
                Err(Error::new(
                    ErrorKind::Io,
                    Side::Local,
                    format!("index build task failed: {e}"),
                ))
            });
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn abort(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort(); // the connection drops, its transaction rolls back
        }
    }
}

/// Aborts the index builds still running when dropped: `finish` given up on Ctrl-C stops them
/// (each build's connection then cancels its statement).
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// One partition's COPY, inside a transaction that also records the partition as done.
struct CloneWriter {
    client: Client,
    sink: Pin<Box<CopyInSink<Bytes>>>,
    format: CopyFormat,
    table: String,
    part: i32,
    what: String,
}

#[async_trait::async_trait]
impl PartitionWriter for CloneWriter {
    async fn write(&mut self, chunk: Chunk) -> Result<()> {
        self.sink
            .send(chunk.data)
            .await
            .map_err(|e| query_error(Side::Target, &self.what, e))
    }

    async fn finish(mut self: Box<Self>) -> Result<u64> {
        let err = |e| query_error(Side::Target, &self.what, e);
        if self.format == CopyFormat::Binary {
            self.sink
                .send(Bytes::from_static(COPY_TRAILER))
                .await
                .map_err(err)?;
        }
        let rows = self.sink.as_mut().finish().await.map_err(err)?;
        let marked = self
            .client
            .execute(MARK_PARTITION, &[&self.table, &self.part, &(rows as i64)])
            .await;
        match marked {
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                // A worker sharing the copy committed this partition first: drop ours.
                self.client.batch_execute("ROLLBACK").await.map_err(err)?;
                tracing::info!(table = %self.table, partition = self.part, "partition discarded: another worker committed it first");
                return Ok(0);
            }
            other => other.map_err(err)?,
        };
        self.client.batch_execute("COMMIT").await.map_err(err)?;
        Ok(rows)
    }
}
