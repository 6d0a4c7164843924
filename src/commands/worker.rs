//! `worker --job ID --state postgresql://…`: one of any number of processes, on any machines,
//! sharing the PostgreSQL → PostgreSQL copy of a job submitted with `--workers`. The job and
//! its sealed credentials come from the job store; PostgreSQL coordinates the rest
//! (`seren_postgres::shared`).

use super::{init_pg, Ui};
use crate::cli::{Cli, Command, WorkerArgs};
use crate::jobs::crypto::JobKey;
use crate::jobs::scrub::Scrubber;
use crate::jobs::store::Store;
use crate::jobs::workers::StoreCoordinator;
use crate::jobs::{Credentials, JobStatus};
use anyhow::{Context, Result};
use clap::Parser;
use pipeline::{Error, Side};
use seren_postgres::shared::Shared;
use seren_postgres::PgTarget;
use std::sync::Arc;

pub async fn run(args: WorkerArgs, ui: &Ui) -> Result<i32> {
    if !crate::session::is_postgres(&args.state) {
        return Err(Error::config(
            "workers share the job server's PostgreSQL job store: --state must be its \
             postgresql:// URL",
        )
        .into());
    }
    let store = Arc::new(Store::open(&args.state).await?);
    let job = store.get(&args.job).await?.with_context(|| {
        format!(
            "no job {} in the job store {}",
            args.job,
            seren_postgres::redact_conninfo(&args.state)
        )
    })?;
    if !job.options.workers {
        return Err(Error::config(format!(
            "job {} is run by its job server, not by workers: submit it with `init --remote … \
             --workers` (or \"workers\": true)",
            job.id
        ))
        .into());
    }
    if !job.options.include_databases.is_empty() || job.options.all_databases {
        return Err(Error::config(
            "a copy shared by workers copies the source URL's database only: submit one job per \
             database",
        )
        .into());
    }
    let done = |status: JobStatus| -> Result<Option<i32>> {
        match status {
            JobStatus::Succeeded => {
                if !ui.quiet {
                    eprintln!("job {} is complete: nothing left to do", job.id);
                }
                Ok(Some(0))
            }
            s if s.is_finished() => {
                Err(Error::config(format!("job {} is {}", job.id, s.as_str())).into())
            }
            _ => Ok(None),
        }
    };
    if let Some(code) = done(job.status)? {
        return Ok(code);
    }
    let key = JobKey::load(args.key_file.as_deref())?;
    let creds = Credentials::open(&job, &key)?;
    let mut argv = vec![
        "seren-replicator".to_string(),
        "init".into(),
        "--yes".into(),
        format!("--source={}", creds.source),
        format!("--target={}", creds.target),
    ];
    argv.extend(job.options.flags());
    let Command::Init(mut init) = Cli::try_parse_from(argv)?.command else {
        unreachable!("the arguments start with `init`");
    };
    if let Some(jobs) = args.jobs {
        init.jobs = Some(jobs);
    }
    let name = args.name.clone().unwrap_or_else(default_name);
    let source = PgTarget::parse(&creds.source, Side::Source)?;
    let coordinator = StoreCoordinator::lock(&args.state, store.clone(), &job.id, &name).await?;
    // Another worker may have finished the copy while this one waited for the lock.
    let now = store.get(&job.id).await?.map_or(job.status, |j| j.status);
    if let Some(code) = done(now)? {
        return Ok(code);
    }
    let join = coordinator.live_snapshot(&source).await?;
    if !ui.quiet {
        eprintln!(
            "worker {name}: {} job {}",
            if join.is_some() {
                "joining"
            } else {
                "starting"
            },
            job.id
        );
    }
    let shared = Shared {
        join,
        coordinator: Arc::new(coordinator),
    };
    let outcome = init_pg::run_shared(init, ui, Some(shared)).await;
    if outcome.is_err() {
        // Another worker may have finished the copy, and removed its state, under this one.
        let now = store.get(&job.id).await?.map_or(job.status, |j| j.status);
        if now == JobStatus::Succeeded {
            return done(now).map(|code| code.unwrap_or(0));
        }
    }
    if let Err(e) = &outcome {
        let line = Scrubber::new(&[&creds.source, &creds.target])
            .scrub(&format!("worker {name} failed: {e:#}"));
        store
            .append_log(&job.id, &format!("worker {name}"), &line)
            .await?;
    }
    outcome
}

/// `host-pid`, unique among live workers.
fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "worker".into());
    format!("{host}-{}", std::process::id())
}
