//! A run's resume state, kept in the target database (schema `seren_replicator`) and written in
//! the same transaction as the work it records: the schema restore creates it, each partition's
//! COPY commits its row, each post-data step commits its mark. A run killed at any moment
//! therefore resumes exactly where its last commit left it.

use crate::catalog::STATE_SCHEMA;
use crate::conn::query_error;
use crate::ddl::quote_literal;
use pipeline::{Partition, Result, Side};
use std::collections::{BTreeMap, HashSet};
use tokio_postgres::{Client, GenericClient};

/// Records a committed partition (run inside the partition's transaction).
pub const MARK_PARTITION: &str =
    "INSERT INTO seren_replicator.partition_done (table_name, part, rows) VALUES ($1, $2, $3)";
/// Records a finished step (run inside the step's transaction).
pub const MARK_STEP: &str =
    "INSERT INTO seren_replicator.step_done (step) VALUES ($1) ON CONFLICT DO NOTHING";

/// What a previous run of the same copy left behind.
#[derive(Debug, Clone)]
pub struct RunState {
    /// Identity of the copy (source, target, selection): a resume must match it.
    pub fingerprint: String,
    /// The partitions planned by the first run, per table.
    pub plan: BTreeMap<String, Vec<Partition>>,
    /// Committed partitions: (table, index).
    pub partitions_done: HashSet<(String, usize)>,
    /// Finished steps (`post-data:<table>`, `post-data`, `sequences`, `blobs`).
    pub steps_done: HashSet<String>,
}

/// SQL that creates the state schema and records the run (appended to the schema restore, so
/// both commit together). Names are schema-qualified: it runs with an empty `search_path`.
pub fn create_sql(fingerprint: &str, plan: &BTreeMap<String, Vec<Partition>>) -> String {
    let plan = serde_json::to_string(plan).expect("a plan serialises");
    format!(
        "CREATE SCHEMA {STATE_SCHEMA};
CREATE TABLE {STATE_SCHEMA}.run (fingerprint text NOT NULL, plan jsonb NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE {STATE_SCHEMA}.partition_done (table_name text NOT NULL, part int NOT NULL,
    rows bigint NOT NULL, done_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (table_name, part));
CREATE TABLE {STATE_SCHEMA}.step_done (step text PRIMARY KEY,
    done_at timestamptz NOT NULL DEFAULT now());
INSERT INTO {STATE_SCHEMA}.run (fingerprint, plan) VALUES ({}, {}::jsonb);
",
        quote_literal(fingerprint),
        quote_literal(&plan)
    )
}

/// The state of a previous run in this database, if there is one. State dropped while it is
/// read (the run that finished it, e.g. another worker, removed it) counts as none.
pub async fn load(client: &Client) -> Result<Option<RunState>> {
    let read = match read(client).await {
        Ok(read) => read,
        Err(e) if crate::shared::finished_elsewhere(&e) => None,
        Err(e) => return Err(query_error(Side::Target, "reading the resume state", e)),
    };
    let Some((fingerprint, plan, partitions_done, steps_done)) = read else {
        return Ok(None);
    };
    let plan = serde_json::from_str(&plan).map_err(|e| {
        pipeline::Error::new(
            pipeline::ErrorKind::Config,
            Side::Target,
            format!(
                "the resume state in schema {STATE_SCHEMA} is unreadable ({e}); start over with \
                 --no-resume"
            ),
        )
    })?;
    Ok(Some(RunState {
        fingerprint,
        plan,
        partitions_done,
        steps_done,
    }))
}

/// The state tables' contents: fingerprint, plan (JSON text), committed partitions, steps.
type StateRows = (String, String, HashSet<(String, usize)>, HashSet<String>);

async fn read(client: &Client) -> std::result::Result<Option<StateRows>, tokio_postgres::Error> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('seren_replicator.run') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let Some(run) = client
        .query_opt(
            "SELECT fingerprint, plan::text FROM seren_replicator.run LIMIT 1",
            &[],
        )
        .await?
    else {
        return Ok(None);
    };
    let partitions_done = client
        .query(
            "SELECT table_name, part FROM seren_replicator.partition_done",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i32>(1) as usize))
        .collect();
    let steps_done = client
        .query("SELECT step FROM seren_replicator.step_done", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(Some((run.get(0), run.get(1), partitions_done, steps_done)))
}

/// Mark `step` done in the current transaction of `client`.
pub async fn mark_step(client: &impl GenericClient, step: &str) -> Result<()> {
    client
        .execute(MARK_STEP, &[&step])
        .await
        .map(|_| ())
        .map_err(|e| query_error(Side::Target, "recording progress", e))
}

/// Forget a table's committed partitions and empty it, in one transaction: partitions read
/// under an earlier snapshot cannot be combined with ones read under a new snapshot (rows
/// move between heap blocks when updated), so a partly copied table is copied again whole.
pub async fn reset_table(client: &mut Client, sql_name: &str, display: &str) -> Result<()> {
    let err = |e| query_error(Side::Target, &format!("resetting {display}"), e);
    let tx = client.transaction().await.map_err(err)?;
    tx.batch_execute(&format!("TRUNCATE ONLY {sql_name}"))
        .await
        .map_err(err)?;
    tx.execute(
        "DELETE FROM seren_replicator.partition_done WHERE table_name = $1",
        &[&display],
    )
    .await
    .map_err(err)?;
    tx.commit().await.map_err(err)
}

/// Remove the state schema (the run is complete).
pub async fn drop_state(client: &Client) -> Result<()> {
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {STATE_SCHEMA} CASCADE"))
        .await
        .map_err(|e| query_error(Side::Target, "dropping the resume state", e))
}
