//! One PostgreSQL → PostgreSQL copy shared by several worker processes, on any machines.
//!
//! PostgreSQL is the coordinator; there are no leases of our own:
//! - **Snapshot.** Every partition of a table must be read under one snapshot. The first worker
//!   exports one; each worker that joins imports a live worker's snapshot into a session it
//!   holds open and exports it again from there, so the snapshot lives as long as any worker
//!   does. When every worker has died, the next one starts a new snapshot and, as a resumed
//!   run does, copies partly copied tables again whole.
//! - **Claims.** A worker copies a partition inside a transaction that holds the partition's
//!   row of `seren_replicator.partition_claim` (`FOR UPDATE SKIP LOCKED`) and commits the rows
//!   with the partition's resume mark. A worker that dies (even by `kill -9`) loses its
//!   connection, so its transaction rolls back and its claim is free at once; TCP keepalives
//!   on the target's side of the connection end it within about a minute when a machine
//!   vanishes. The mark's primary key makes a partition committed twice impossible.
//! - **Steps.** A table's indexes are built by whichever worker takes its advisory lock once
//!   every partition is committed; the final steps (foreign keys, sequences, …) by the worker
//!   that takes the final lock first, the others then find them done.

use crate::conn::{query_error, PgTarget};
use crate::ddl::quote_literal;
use pipeline::{Partition, Result, Side};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_postgres::Client;

/// What a worker tells the others sharing its copy (implemented over the job store).
#[async_trait::async_trait]
pub trait Coordinator: Send + Sync {
    /// The target's schema and resume state exist, and this worker reads under `snapshot` (an
    /// exported snapshot one of its sessions holds open): other workers may now join through
    /// it.
    async fn joined(&self, snapshot: &str) -> Result<()>;
    /// Every step of the copy is done (called once, by the worker that finished it, before
    /// the resume state is dropped).
    async fn completed(&self) -> Result<()>;
}

/// A copy shared with other workers.
#[derive(Clone)]
pub struct Shared {
    /// A live worker's exported snapshot to join, or `None` to start (or restart) the copy.
    pub join: Option<String>,
    /// Tells the other workers.
    pub coordinator: Arc<dyn Coordinator>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("join", &self.join).finish()
    }
}

/// Session settings for a worker's target connections: the server notices a vanished worker
/// machine after 30 s of silence and three unanswered probes 10 s apart, and rolls back its
/// transaction (releasing its claim).
pub const KEEPALIVES: &str =
    "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3";

/// Claims partition (`$1` table, `$2` index) for the current transaction: returns no row when
/// another worker holds it, `false` when it is already committed, `true` when it is ours.
pub const CLAIM_PARTITION: &str =
    "SELECT NOT EXISTS (SELECT 1 FROM seren_replicator.partition_done d \
     WHERE d.table_name = c.table_name AND d.part = c.part) \
     FROM seren_replicator.partition_claim c WHERE c.table_name = $1 AND c.part = $2 \
     FOR UPDATE OF c SKIP LOCKED";

/// Whether `e` says the resume state is gone: the worker that finished the copy dropped it,
/// so nothing is left to do.
pub fn finished_elsewhere(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
}

/// SQL creating the claim table with a row per planned partition (idempotent).
pub fn claims_sql(plan: &BTreeMap<String, Vec<Partition>>) -> String {
    let mut sql = String::from(
        "CREATE TABLE IF NOT EXISTS seren_replicator.partition_claim (table_name text NOT NULL, \
         part int NOT NULL, PRIMARY KEY (table_name, part));\n",
    );
    let rows: Vec<String> = plan
        .iter()
        .flat_map(|(table, parts)| {
            parts
                .iter()
                .map(move |p| format!("({}, {})", quote_literal(table), p.index))
        })
        .collect();
    for chunk in rows.chunks(1000) {
        sql.push_str(&format!(
            "INSERT INTO seren_replicator.partition_claim VALUES {} ON CONFLICT DO NOTHING;\n",
            chunk.join(", ")
        ));
    }
    sql
}

/// Take the advisory lock named `name` on `client`'s session (a server on `side`): waiting for it, or (with `wait`
/// false) returning whether it was free. It is held until the session ends or it is unlocked.
/// The session gets [`KEEPALIVES`], so a vanished holder's lock is freed within a minute.
pub async fn advisory_lock(client: &Client, side: Side, name: &str, wait: bool) -> Result<bool> {
    client
        .batch_execute(KEEPALIVES)
        .await
        .map_err(|e| query_error(side, "setting keepalives", e))?;
    let sql = if wait {
        "SELECT pg_advisory_lock(hashtextextended($1, 0)) IS NOT NULL"
    } else {
        "SELECT pg_try_advisory_lock(hashtextextended($1, 0))"
    };
    client
        .query_one(sql, &[&name])
        .await
        .map(|r| r.get::<_, bool>(0))
        .map_err(|e| query_error(side, "taking a worker lock", e))
}

/// Let go of the advisory lock named `name` held by `client`'s session.
pub async fn advisory_unlock(client: &Client, side: Side, name: &str) -> Result<()> {
    client
        .query_one(
            "SELECT pg_advisory_unlock(hashtextextended($1, 0))",
            &[&name],
        )
        .await
        .map(drop)
        .map_err(|e| query_error(side, "releasing a worker lock", e))
}

/// Take the building of `table`'s indexes (resume step `step`) for this worker: only once all
/// `planned` partitions are committed, the step is not done, and no other worker holds it.
/// Returns the session holding the lock (keep it until the step is marked), or `None`.
pub async fn take_index_build(
    target: &PgTarget,
    table: &str,
    step: &str,
    planned: usize,
) -> Result<Option<Client>> {
    let client = target.connect().await?;
    let lock = format!("seren-replicator {step}");
    if !advisory_lock(&client, Side::Target, &lock, false).await? {
        return Ok(None);
    }
    let progress = client
        .query_one(
            "SELECT (SELECT count(*) FROM seren_replicator.partition_done \
             WHERE table_name = $1), EXISTS (SELECT 1 FROM \
             seren_replicator.step_done WHERE step = $2)",
            &[&table, &step],
        )
        .await;
    let row = match progress {
        Ok(row) => row,
        Err(e) if finished_elsewhere(&e) => return Ok(None),
        Err(e) => {
            return Err(query_error(
                Side::Target,
                "reading the shared copy's progress",
                e,
            ))
        }
    };
    let ready = row.get::<_, i64>(0) >= planned as i64 && !row.get::<_, bool>(1);
    Ok(ready.then_some(client))
}
