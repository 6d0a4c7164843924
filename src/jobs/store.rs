//! The job store: every job (its options in plain text, its credentials only sealed), its
//! progress per database, its result and its log lines. In a SQLite file, or in a PostgreSQL
//! database (schema `seren_jobs`), with the same statements.
//!
//! SQLite: one connection behind a mutex; every statement is a short primary-key read or write,
//! so it runs inline rather than on a blocking pool. PostgreSQL: one pipelined connection.

use super::{JobSpec, JobStatus};
use anyhow::{Context, Result};
use pipeline::Side;
use rusqlite::Connection;
use seren_postgres::shared::{advisory_lock, advisory_unlock};
use std::path::Path;
use std::sync::Mutex;

/// One job as stored.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// Job id (UUID form).
    pub id: String,
    /// Trace id: in the server's log lines about this job and its child's environment.
    pub trace_id: String,
    /// Where it is.
    pub status: JobStatus,
    /// The child's exit code (128 + signal when a signal ended it), once finished.
    pub exit_code: Option<i32>,
    /// RFC 3339 times.
    pub created_at: String,
    /// When its first attempt started.
    pub started_at: Option<String>,
    /// When it finished.
    pub finished_at: Option<String>,
    /// Unix seconds of its first start (the timeout counts from here, across restarts).
    pub started_unix: Option<i64>,
    /// Children started so far (more than one after a server restart).
    pub attempts: i64,
    /// Seconds the job may run.
    pub timeout_seconds: u64,
    /// The options, without source and target.
    pub options: JobSpec,
    /// Source and target with passwords removed, for display.
    pub source_shown: String,
    /// Target with its password removed.
    pub target_shown: String,
    /// Sealed `{"source", "target"}` ([`super::crypto::JobKey::seal`], the id as associated data).
    pub credentials: Vec<u8>,
    /// Latest progress line per database (`database` → line), a JSON object.
    pub progress: serde_json::Value,
    /// The child's final JSON document (scrubbed).
    pub result: Option<serde_json::Value>,
    /// Why it failed, when it did (scrubbed).
    pub error: Option<String>,
    /// A cancel was asked for.
    pub cancel_requested: bool,
}

/// One stored line of a job's output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogLine {
    /// Position in the job's log, from 1.
    pub seq: i64,
    /// `stdout`, `stderr` or `server`.
    pub stream: String,
    /// The line, passwords removed.
    pub line: String,
}

/// The job store.
pub struct Store {
    backend: Backend,
}

enum Backend {
    Sqlite(Mutex<Connection>),
    Postgres(tokio_postgres::Client),
}

/// A statement parameter both drivers can bind.
trait Param: Sync {
    fn lite(&self) -> &dyn rusqlite::ToSql;
    fn pg(&self) -> &(dyn tokio_postgres::types::ToSql + Sync);
}

impl<T: rusqlite::ToSql + tokio_postgres::types::ToSql + Sync> Param for T {
    fn lite(&self) -> &dyn rusqlite::ToSql {
        self
    }
    fn pg(&self) -> &(dyn tokio_postgres::types::ToSql + Sync) {
        self
    }
}

/// Reading a column the same way from either driver's row.
trait Columns {
    fn col<T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>>(
        &self,
        i: usize,
    ) -> Result<T>;
}

impl Columns for rusqlite::Row<'_> {
    fn col<T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>>(
        &self,
        i: usize,
    ) -> Result<T> {
        Ok(self.get(i)?)
    }
}

impl Columns for tokio_postgres::Row {
    fn col<T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>>(
        &self,
        i: usize,
    ) -> Result<T> {
        Ok(self.try_get(i)?)
    }
}

/// PostgreSQL's schema: the SQLite one with its own types, in schema `seren_jobs`.
const PG_SCHEMA: &str = "
CREATE SCHEMA IF NOT EXISTS seren_jobs;
SET search_path = seren_jobs;
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    trace_id TEXT NOT NULL,
    status TEXT NOT NULL,
    exit_code INTEGER,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    started_unix BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    timeout_seconds BIGINT NOT NULL,
    options TEXT NOT NULL,
    source_shown TEXT NOT NULL,
    target_shown TEXT NOT NULL,
    credentials BYTEA NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    error TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE IF NOT EXISTS job_logs (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    seq BIGINT NOT NULL,
    stream TEXT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
-- The exported snapshots of the workers sharing a job's copy (`seren-replicator worker`).
CREATE TABLE IF NOT EXISTS worker_snapshots (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    worker TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    joined_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, worker)
);
";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    trace_id TEXT NOT NULL,
    status TEXT NOT NULL,
    exit_code INTEGER,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    started_unix INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    timeout_seconds INTEGER NOT NULL,
    options TEXT NOT NULL,
    source_shown TEXT NOT NULL,
    target_shown TEXT NOT NULL,
    credentials BLOB NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS job_logs (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    seq INTEGER NOT NULL,
    stream TEXT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
";

const COLUMNS: &str = "id, trace_id, status, exit_code, created_at, started_at, finished_at, \
    started_unix, attempts, timeout_seconds, options, source_shown, target_shown, credentials, \
    progress, result, error, cancel_requested";

fn job_lock(id: &str) -> String {
    format!("seren-replicator job {id}")
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn record(r: &impl Columns) -> Result<JobRecord> {
    let json = |i: usize| -> Result<Option<serde_json::Value>> {
        let text: Option<String> = r.col(i)?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    };
    let status: String = r.col(2)?;
    Ok(JobRecord {
        id: r.col(0)?,
        trace_id: r.col(1)?,
        status: JobStatus::parse(&status).unwrap_or(JobStatus::Failed),
        exit_code: r.col(3)?,
        created_at: r.col(4)?,
        started_at: r.col(5)?,
        finished_at: r.col(6)?,
        started_unix: r.col(7)?,
        attempts: r.col(8)?,
        timeout_seconds: r.col::<i64>(9)? as u64,
        options: json(10)?
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default(),
        source_shown: r.col(11)?,
        target_shown: r.col(12)?,
        credentials: r.col(13)?,
        progress: json(14)?.unwrap_or_else(|| serde_json::json!({})),
        result: json(15)?,
        error: r.col(16)?,
        cancel_requested: r.col(17)?,
    })
}

fn log_line(r: &impl Columns) -> Result<LogLine> {
    Ok(LogLine {
        seq: r.col(0)?,
        stream: r.col(1)?,
        line: r.col(2)?,
    })
}

impl Store {
    /// Open the store `location`: a `postgresql://` URL (or `postgres://`), else a SQLite file
    /// (created if missing).
    pub async fn open(location: &str) -> Result<Store> {
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            let target = seren_postgres::PgTarget::parse(location, pipeline::Side::Target)?;
            let client = target.connect().await?;
            client
                .batch_execute(PG_SCHEMA)
                .await
                .with_context(|| format!("cannot set up the job store in {}", target.display()))?;
            return Ok(Store {
                backend: Backend::Postgres(client),
            });
        }
        let path = Path::new(location);
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the job store {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("cannot set up the job store {}", path.display()))?;
        Ok(Store {
            backend: Backend::Sqlite(Mutex::new(conn)),
        })
    }

    /// Run a statement (`$n` placeholders, first used in order).
    async fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                let p: Vec<&dyn rusqlite::ToSql> = params.iter().map(|p| p.lite()).collect();
                conn.execute(&sql.replace('$', "?"), p.as_slice())
                    .context("job store")?;
            }
            Backend::Postgres(client) => {
                let p: Vec<_> = params.iter().map(|p| p.pg()).collect();
                client.execute(sql, &p).await.context("job store")?;
            }
        }
        Ok(())
    }

    /// Rows of a query, each read by `read`.
    async fn query<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        read_lite: fn(&rusqlite::Row<'_>) -> Result<T>,
        read_pg: fn(&tokio_postgres::Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                let p: Vec<&dyn rusqlite::ToSql> = params.iter().map(|p| p.lite()).collect();
                let mut st = conn.prepare(&sql.replace('$', "?"))?;
                let mut rows = st.query(p.as_slice())?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(read_lite(r)?);
                }
                Ok(out)
            }
            Backend::Postgres(client) => {
                let p: Vec<_> = params.iter().map(|p| p.pg()).collect();
                let rows = client.query(sql, &p).await.context("job store")?;
                rows.iter().map(read_pg).collect()
            }
        }
    }

    async fn jobs(&self, filter: &str, params: &[&dyn Param]) -> Result<Vec<JobRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM jobs {filter}");
        // Closures, not `record` itself: a generic fn item is not general enough over the
        // row's lifetime to coerce to the higher-ranked fn pointer.
        #[allow(clippy::redundant_closure)]
        self.query(&sql, params, |r| record(r), |r| record(r)).await
    }

    /// Add a new job.
    pub async fn insert(&self, j: &JobRecord) -> Result<()> {
        let options = serde_json::to_string(&j.options)?;
        self.execute(
            "INSERT INTO jobs (id, trace_id, status, created_at, timeout_seconds, options, \
             source_shown, target_shown, credentials) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &j.id,
                &j.trace_id,
                &j.status.as_str(),
                &j.created_at,
                &(j.timeout_seconds as i64),
                &options,
                &j.source_shown,
                &j.target_shown,
                &j.credentials,
            ],
        )
        .await
    }

    /// The job `id`, if there is one.
    pub async fn get(&self, id: &str) -> Result<Option<JobRecord>> {
        Ok(self.jobs("WHERE id = $1", &[&id]).await?.pop())
    }

    /// Every job, newest first.
    pub async fn list(&self) -> Result<Vec<JobRecord>> {
        self.jobs("ORDER BY created_at DESC, id", &[]).await
    }

    /// Jobs not finished, oldest first: queued, or running when the server stopped.
    pub async fn unfinished(&self) -> Result<Vec<JobRecord>> {
        self.jobs(
            "WHERE status IN ('queued', 'running') ORDER BY created_at, id",
            &[],
        )
        .await
    }

    /// Record that an attempt starts: status `running`, one more attempt, the first start time.
    pub async fn start_attempt(&self, id: &str) -> Result<()> {
        let (at, unix) = (now(), chrono::Utc::now().timestamp());
        self.execute(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, \
             started_at = coalesce(started_at, $1), started_unix = coalesce(started_unix, $2) \
             WHERE id = $3",
            &[&at, &unix, &id],
        )
        .await
    }

    /// Record the end of a job (a failure message the child gave is kept over `error`).
    pub async fn finish(
        &self,
        id: &str,
        status: JobStatus,
        exit_code: Option<i32>,
        error: Option<&str>,
    ) -> Result<()> {
        self.execute(
            "UPDATE jobs SET status = $1, exit_code = $2, error = coalesce(error, $3), \
             finished_at = $4 WHERE id = $5",
            &[&status.as_str(), &exit_code, &error, &now(), &id],
        )
        .await
    }

    /// Replace the job's progress (`database` → latest line).
    pub async fn set_progress(&self, id: &str, progress: &serde_json::Value) -> Result<()> {
        let text = progress.to_string();
        self.execute("UPDATE jobs SET progress = $1 WHERE id = $2", &[&text, &id])
            .await
    }

    /// Store the child's final JSON document and, when it reports a failure, its message.
    pub async fn set_result(
        &self,
        id: &str,
        result: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<()> {
        let text = result.to_string();
        self.execute(
            "UPDATE jobs SET result = $1, error = coalesce($2, error) WHERE id = $3",
            &[&text, &error, &id],
        )
        .await
    }

    /// Mark a cancel as asked for (kept across restarts).
    pub async fn request_cancel(&self, id: &str) -> Result<()> {
        self.execute(
            "UPDATE jobs SET cancel_requested = TRUE WHERE id = $1",
            &[&id],
        )
        .await
    }

    /// Append a (scrubbed) line to the job's log.
    pub async fn append_log(&self, id: &str, stream: &str, line: &str) -> Result<()> {
        self.execute(
            "INSERT INTO job_logs (job_id, seq, stream, line) VALUES ($1, \
             (SELECT coalesce(max(seq), 0) + 1 FROM job_logs WHERE job_id = $1), $2, $3)",
            &[&id, &stream, &line],
        )
        .await
    }

    /// Take job `id` for this server: in a PostgreSQL store, a session lock on the store's
    /// connection, so of several servers sharing the store only one runs the job, and the lock
    /// ends with its server. A SQLite store belongs to one server: always taken.
    pub async fn claim(&self, id: &str) -> Result<bool> {
        let Backend::Postgres(client) = &self.backend else {
            return Ok(true);
        };
        Ok(advisory_lock(client, Side::Target, &job_lock(id), false).await?)
    }

    /// Let go of job `id` (see [`Store::claim`]).
    pub async fn release(&self, id: &str) -> Result<()> {
        if let Backend::Postgres(client) = &self.backend {
            advisory_unlock(client, Side::Target, &job_lock(id)).await?;
        }
        Ok(())
    }

    /// The workers sharing job `id`'s copy, as `GET /jobs/{id}` shows them: name, when it
    /// joined and when its last heartbeat came (RFC 3339). Workers need a PostgreSQL store, so
    /// a SQLite store has none.
    pub async fn workers(&self, id: &str) -> Result<Vec<serde_json::Value>> {
        let Backend::Postgres(client) = &self.backend else {
            return Ok(Vec::new());
        };
        let rows = client
            .query(
                "SELECT worker, to_json(joined_at) #>> '{}', to_json(seen_at) #>> '{}' \
                 FROM worker_snapshots WHERE job_id = $1 ORDER BY joined_at",
                &[&id],
            )
            .await
            .context("job store")?;
        Ok(rows
            .iter()
            .map(|r| {
                serde_json::json!({"name": r.get::<_, String>(0),
                    "joined_at": r.get::<_, String>(1), "seen_at": r.get::<_, String>(2)})
            })
            .collect())
    }

    /// Up to `limit` log lines after position `after`.
    #[allow(clippy::redundant_closure)] // as in `jobs`
    pub async fn logs(&self, id: &str, after: i64, limit: i64) -> Result<Vec<LogLine>> {
        self.query(
            "SELECT seq, stream, line FROM job_logs WHERE job_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
            &[&id, &after, &limit],
            |r| log_line(r),
            |r| log_line(r),
        )
        .await
    }
}

/// A new record for `spec`, status queued, its credentials sealed under `key`.
pub fn new_record(
    spec: &JobSpec,
    key: &super::crypto::JobKey,
    default_timeout: std::time::Duration,
) -> JobRecord {
    let id = super::new_id();
    let scrubber = super::scrub::Scrubber::new(&[&spec.source, &spec.target]);
    let credentials = serde_json::json!({"source": spec.source, "target": spec.target});
    JobRecord {
        credentials: key.seal(credentials.to_string().as_bytes(), id.as_bytes()),
        trace_id: super::new_id().replace('-', ""),
        status: JobStatus::Queued,
        exit_code: None,
        created_at: now(),
        started_at: None,
        finished_at: None,
        started_unix: None,
        attempts: 0,
        timeout_seconds: spec.timeout_seconds.unwrap_or(default_timeout.as_secs()),
        options: spec.without_credentials(),
        source_shown: scrubber.scrub(&spec.source),
        target_shown: scrubber.scrub(&spec.target),
        progress: serde_json::json!({}),
        result: None,
        error: None,
        cancel_requested: false,
        id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_and_logs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let store = Store::open(path.to_str().unwrap()).await.unwrap();
        let key = crate::jobs::crypto::JobKey::from_material(&[1u8; 32]).unwrap();
        let spec = JobSpec {
            source: "./a.db".into(),
            target: "postgresql://u:topsecret@h/db".into(),
            ..Default::default()
        };
        let rec = new_record(&spec, &key, std::time::Duration::from_secs(60));
        store.insert(&rec).await.unwrap();
        store.start_attempt(&rec.id).await.unwrap();
        store.append_log(&rec.id, "stderr", "one").await.unwrap();
        store.append_log(&rec.id, "stderr", "two").await.unwrap();
        let got = store.get(&rec.id).await.unwrap().unwrap();
        assert_eq!(got.status, JobStatus::Running);
        assert_eq!(got.attempts, 1);
        assert_eq!(got.target_shown, "postgresql://u:***@h/db");
        assert_eq!(store.unfinished().await.unwrap().len(), 1);
        let logs = store.logs(&rec.id, 1, 10).await.unwrap();
        assert_eq!((logs.len(), logs[0].line.as_str()), (1, "two"));
        store
            .finish(&rec.id, JobStatus::Succeeded, Some(0), None)
            .await
            .unwrap();
        assert!(store.unfinished().await.unwrap().is_empty());
        let raw = std::fs::read(dir.path().join("s.sqlite")).unwrap();
        assert!(!raw.windows(9).any(|w| w == b"topsecret"));
    }
}
