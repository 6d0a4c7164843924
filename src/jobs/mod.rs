//! The job server: `init` runs submitted over HTTP, each as a child process of the server,
//! recorded in a store that survives restarts.
//!
//! - [`store`]: the SQLite job store (jobs, their sealed credentials, progress and logs).
//! - [`crypto`]: sealing credentials at rest (ChaCha20-Poly1305, the job id as associated data).
//! - [`scrub`]: removing passwords from anything a child prints before it is stored.
//! - [`runner`]: running, timing out, cancelling and resuming the `init` child processes.
//! - [`api`]: the HTTP API (`docs/openapi.json`), with bearer-token authentication.

pub mod api;
pub mod crypto;
pub mod runner;
pub mod scrub;
pub mod store;
pub mod workers;

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a client submits with `POST /jobs`: the options of `init`, by their flag names (with
/// `_` for `-`). `source` and `target` reach the child only through its environment; every
/// other field becomes a flag.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobSpec {
    /// `--source`.
    pub source: String,
    /// `--target`.
    pub target: String,
    /// `--include-tables`.
    pub include_tables: Vec<String>,
    /// `--exclude-tables`.
    pub exclude_tables: Vec<String>,
    /// `--table-filter`, one entry per filter.
    pub table_filters: Vec<String>,
    /// `--schema-only-tables`.
    pub schema_only_tables: Vec<String>,
    /// `--time-filter`, one entry per filter.
    pub time_filters: Vec<String>,
    /// `--include-databases`.
    pub include_databases: Vec<String>,
    /// `--exclude-databases`.
    pub exclude_databases: Vec<String>,
    /// `--all-databases`.
    pub all_databases: bool,
    /// `--mode` (`jsonb` or `native`).
    pub mode: Option<String>,
    /// `--flatten`, one entry per collection.
    pub flatten: Vec<String>,
    /// `--target-schema`.
    pub target_schema: Option<String>,
    /// `--on-type-mismatch` (`fail` or `text`).
    pub on_type_mismatch: Option<String>,
    /// `--zero-dates` (`null` or `error`).
    pub zero_dates: Option<String>,
    /// `--gin-index` (`full`, `path` or `none`).
    pub gin_index: Option<String>,
    /// `--drop-existing`.
    pub drop_existing: bool,
    /// `--jobs`.
    pub jobs: Option<usize>,
    /// `--partition-rows`.
    pub partition_rows: Option<u64>,
    /// `--no-sync`.
    pub no_sync: bool,
    /// `--set-replica-identity-full`.
    pub set_replica_identity_full: bool,
    /// `--publication`.
    pub publication: Option<String>,
    /// `--subscription`.
    pub subscription: Option<String>,
    /// `--index-jobs`.
    pub index_jobs: Option<usize>,
    /// `--split-tables-larger-than`.
    pub split_tables_larger_than: Option<String>,
    /// `--no-resume`.
    pub no_resume: bool,
    /// `--keep-state`.
    pub keep_state: bool,
    /// `--no-owner`.
    pub no_owner: bool,
    /// `--no-privileges`.
    pub no_privileges: bool,
    /// `--roles`.
    pub roles: bool,
    /// `--no-blobs`.
    pub no_blobs: bool,
    /// Stop the job after this many seconds (the server's `--job-timeout` otherwise).
    pub timeout_seconds: Option<u64>,
    /// Leave the copy to `seren-replicator worker --job ID` processes (PostgreSQL sources,
    /// with `no_sync`) instead of running it on the server.
    pub workers: bool,
}

impl JobSpec {
    /// The `init` flags for everything but the source and target.
    pub fn flags(&self) -> Vec<String> {
        let mut f = Vec::new();
        let mut list = |flag: &str, values: &[String]| {
            for v in values {
                f.push(format!("--{flag}={v}"));
            }
        };
        list("include-tables", &self.include_tables);
        list("exclude-tables", &self.exclude_tables);
        list("table-filter", &self.table_filters);
        list("schema-only-tables", &self.schema_only_tables);
        list("time-filter", &self.time_filters);
        list("include-databases", &self.include_databases);
        list("exclude-databases", &self.exclude_databases);
        list("flatten", &self.flatten);
        for (flag, value) in [
            ("mode", &self.mode),
            ("target-schema", &self.target_schema),
            ("on-type-mismatch", &self.on_type_mismatch),
            ("zero-dates", &self.zero_dates),
            ("gin-index", &self.gin_index),
            ("publication", &self.publication),
            ("subscription", &self.subscription),
            ("split-tables-larger-than", &self.split_tables_larger_than),
        ] {
            if let Some(v) = value {
                f.push(format!("--{flag}={v}"));
            }
        }
        for (flag, value) in [
            ("jobs", self.jobs.map(|n| n as u64)),
            ("index-jobs", self.index_jobs.map(|n| n as u64)),
            ("partition-rows", self.partition_rows),
        ] {
            if let Some(v) = value {
                f.push(format!("--{flag}={v}"));
            }
        }
        for (flag, set) in [
            ("all-databases", self.all_databases),
            ("drop-existing", self.drop_existing),
            ("no-sync", self.no_sync),
            ("set-replica-identity-full", self.set_replica_identity_full),
            ("no-resume", self.no_resume),
            ("keep-state", self.keep_state),
            ("no-owner", self.no_owner),
            ("no-privileges", self.no_privileges),
            ("roles", self.roles),
            ("no-blobs", self.no_blobs),
        ] {
            if set {
                f.push(format!("--{flag}"));
            }
        }
        f
    }

    /// Check the options exactly as the child's argument parser will, so a bad value is
    /// refused at submission rather than by a failed job. Returns clap's message.
    pub fn validate(&self) -> Result<(), String> {
        if self.source.trim().is_empty() || self.target.trim().is_empty() {
            return Err("`source` and `target` are required".into());
        }
        if self.timeout_seconds == Some(0) {
            return Err("`timeout_seconds` must be at least 1".into());
        }
        if self.workers && !(crate::session::is_postgres(&self.source) && self.no_sync) {
            return Err(
                "`workers` shares a PostgreSQL → PostgreSQL copy: it needs a PostgreSQL source \
                 and `no_sync` (continuous sync needs one process holding the slot's snapshot)"
                    .into(),
            );
        }
        let mut argv = vec![
            "seren-replicator".to_string(),
            "init".into(),
            "--source=placeholder".into(),
            "--target=placeholder".into(),
        ];
        argv.extend(self.flags());
        <crate::cli::Cli as clap::Parser>::try_parse_from(argv)
            .map(drop)
            .map_err(|e| e.render().to_string().trim().to_string())
    }

    /// The spec without its credentials: what the store keeps in plain text.
    pub fn without_credentials(&self) -> JobSpec {
        JobSpec {
            source: String::new(),
            target: String::new(),
            ..self.clone()
        }
    }
}

/// A job's source and target URLs, as sealed in the store.
#[derive(serde::Deserialize)]
pub struct Credentials {
    /// `--source`.
    pub source: String,
    /// `--target`.
    pub target: String,
}

impl Credentials {
    /// Unseal `job`'s credentials with `key`.
    pub fn open(job: &store::JobRecord, key: &crypto::JobKey) -> anyhow::Result<Credentials> {
        use anyhow::Context;
        let sealed = key
            .open(&job.credentials, job.id.as_bytes())
            .context("cannot decrypt the job's credentials: was the server's key changed?")?;
        Ok(serde_json::from_slice(&sealed)?)
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Accepted, not started yet.
    Queued,
    /// Its `init` child is running (or will be restarted after a server restart).
    Running,
    /// `init` exited 0.
    Succeeded,
    /// `init` exited non-zero.
    Failed,
    /// Stopped by `POST /jobs/{id}/cancel`.
    Cancelled,
    /// Stopped by the job timeout.
    TimedOut,
}

impl JobStatus {
    /// The name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::TimedOut => "timed_out",
        }
    }

    /// The status named `s` (as [`JobStatus::as_str`] writes it).
    pub fn parse(s: &str) -> Option<JobStatus> {
        [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Succeeded,
            JobStatus::Failed,
            JobStatus::Cancelled,
            JobStatus::TimedOut,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Whether the job is over (nothing will change it any more).
    pub fn is_finished(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

/// `30s`, `10m`, `8h`, `2d` or plain seconds, for the flag named `flag`.
pub fn parse_duration(flag: &str, text: &str) -> Result<Duration, pipeline::Error> {
    let bad = || {
        pipeline::Error::config(format!(
            "{flag} `{text}`: give a positive number with a unit, e.g. 30s, 10m, 8h or 2d"
        ))
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(n.checked_mul(unit).ok_or_else(bad)?))
}

/// A new random identifier in UUID form (version 4).
pub fn new_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_through_the_cli_parser() {
        let spec = JobSpec {
            source: "./a.db".into(),
            target: "postgresql://u@h/db".into(),
            include_tables: vec!["a,b".into()],
            table_filters: vec!["a:id > 1".into()],
            mode: Some("native".into()),
            jobs: Some(3),
            no_sync: true,
            ..Default::default()
        };
        spec.validate().unwrap();
        assert!(spec
            .flags()
            .contains(&"--table-filter=a:id > 1".to_string()));
        let bad = JobSpec {
            mode: Some("xml".into()),
            ..spec.clone()
        };
        assert!(bad.validate().unwrap_err().contains("xml"));
        assert!(spec.without_credentials().source.is_empty());
    }

    #[test]
    fn durations_and_ids() {
        assert_eq!(parse_duration("--t", "8h").unwrap().as_secs(), 28_800);
        assert_eq!(parse_duration("--t", "90").unwrap().as_secs(), 90);
        assert!(parse_duration("--t", "0").is_err());
        assert!(parse_duration("--t", "soon").is_err());
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
