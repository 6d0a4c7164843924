//! The job store's side of a copy shared by workers (`seren-replicator worker`): the join lock
//! (one worker at a time joins) and the registry of the workers' exported snapshots (table
//! `seren_jobs.worker_snapshots` of a PostgreSQL job store).

use super::store::Store;
use super::JobStatus;
use pipeline::{Error, ErrorKind, Result, Side};
use seren_postgres::conn::query_error;
use seren_postgres::shared::{advisory_lock, advisory_unlock, Coordinator};
use seren_postgres::source::PgSource;
use seren_postgres::PgTarget;
use std::sync::Arc;
use tokio_postgres::Client;

/// One worker's link to the job store while it joins and runs the shared copy.
pub struct StoreCoordinator {
    client: Arc<Client>,
    store: Arc<Store>,
    job: String,
    worker: String,
}

impl StoreCoordinator {
    /// Connect to the PostgreSQL job store `state` and wait for `job`'s join lock, held until
    /// [`Coordinator::joined`] (or until this worker exits).
    pub async fn lock(state: &str, store: Arc<Store>, job: &str, worker: &str) -> Result<Self> {
        let client = PgTarget::parse(state, Side::Target)?.connect().await?;
        advisory_lock(&client, Side::Target, &join_lock(job), true).await?;
        Ok(StoreCoordinator {
            client: Arc::new(client),
            store,
            job: job.to_string(),
            worker: worker.to_string(),
        })
    }

    /// The snapshot of a live worker of this job, to join; dead workers' entries are removed.
    /// `None`: no worker is alive, this one starts (or restarts) the copy.
    pub async fn live_snapshot(&self, source: &PgTarget) -> Result<Option<String>> {
        let err = |e| query_error(Side::Target, "reading the worker registry", e);
        let rows = self
            .client
            .query(
                "SELECT worker, snapshot FROM seren_jobs.worker_snapshots WHERE job_id = $1 \
                 ORDER BY joined_at DESC",
                &[&self.job],
            )
            .await
            .map_err(err)?;
        for row in rows {
            let (worker, snapshot): (String, String) = (row.get(0), row.get(1));
            if PgSource::snapshot_alive(source, &snapshot).await? {
                return Ok(Some(snapshot));
            }
            self.client
                .execute(
                    "DELETE FROM seren_jobs.worker_snapshots WHERE job_id = $1 AND worker = $2",
                    &[&self.job, &worker],
                )
                .await
                .map_err(err)?;
        }
        Ok(None)
    }

    async fn log(&self, line: &str) -> Result<()> {
        self.store
            .append_log(
                &self.job,
                &format!("worker {}", self.worker),
                &format!("worker {}: {line}", self.worker),
            )
            .await
            .map_err(store_error)
    }
}

#[async_trait::async_trait]
impl Coordinator for StoreCoordinator {
    async fn joined(&self, snapshot: &str) -> Result<()> {
        let err = |e| query_error(Side::Target, "registering the worker", e);
        self.client
            .execute(
                "INSERT INTO seren_jobs.worker_snapshots (job_id, worker, snapshot) \
                 VALUES ($1, $2, $3) ON CONFLICT (job_id, worker) \
                 DO UPDATE SET snapshot = EXCLUDED.snapshot, joined_at = now()",
                &[&self.job, &self.worker, &snapshot],
            )
            .await
            .map_err(err)?;
        self.store
            .start_attempt(&self.job)
            .await
            .map_err(store_error)?;
        // Logged under the join lock: log lines are numbered one after another.
        self.log("joined the copy").await?;
        self.heartbeat();
        advisory_unlock(&self.client, Side::Target, &join_lock(&self.job)).await
    }

    async fn completed(&self) -> Result<()> {
        self.store
            .finish(&self.job, JobStatus::Succeeded, Some(0), None)
            .await
            .map_err(store_error)?;
        self.client
            .execute(
                "DELETE FROM seren_jobs.worker_snapshots WHERE job_id = $1",
                &[&self.job],
            )
            .await
            .map_err(|e| query_error(Side::Target, "clearing the worker registry", e))?;
        self.log("finished the copy").await
    }
}

impl StoreCoordinator {
    /// Mark this worker alive every [`HEARTBEAT`] (`seen_at`, shown by `GET /jobs/{id}`) for
    /// as long as the process lives, and stop it as Ctrl-C would (SIGINT, as the server stops
    /// the jobs it runs) once the job is cancelled. Its claims do not depend on the heartbeat:
    /// they end with its sessions.
    fn heartbeat(&self) {
        let (client, job, worker) = (self.client.clone(), self.job.clone(), self.worker.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                let beat = client
                    .execute(
                        "UPDATE seren_jobs.worker_snapshots SET seen_at = now() \
                         WHERE job_id = $1 AND worker = $2",
                        &[&job, &worker],
                    )
                    .await;
                if let Err(e) = beat {
                    tracing::warn!(error = %e, "worker heartbeat failed");
                }
                let cancelled = client
                    .query_one(
                        "SELECT cancel_requested FROM seren_jobs.jobs WHERE id = $1",
                        &[&job],
                    )
                    .await
                    .is_ok_and(|r| r.get::<_, bool>(0));
                if cancelled {
                    eprintln!("worker {worker}: job {job} was cancelled: stopping");
                    unsafe { libc::kill(std::process::id() as i32, libc::SIGINT) };
                    break;
                }
            }
        });
    }
}

/// How often a worker marks itself alive in the job store.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(2);

fn join_lock(job: &str) -> String {
    format!("seren-replicator join {job}")
}

fn store_error(e: anyhow::Error) -> Error {
    Error::new(ErrorKind::Query, Side::Target, format!("job store: {e:#}"))
}
