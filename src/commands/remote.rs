//! The job server's client: `init --remote URL` submits the copy as a job and follows it until
//! it ends (exiting with the job's exit code; Ctrl-C detaches and leaves it running), and
//! `jobs status|logs|cancel|list`.

use super::{Ui, EXIT_CANCELLED};
use crate::cli::{InitArgs, JobsArgs, JobsCommand, RemoteArgs};
use crate::jobs::{parse_duration, JobSpec, JobStatus};
use crate::view::human_count;
use anyhow::{bail, Context, Result};
use pipeline::Error;
use serde_json::Value;
use std::time::Duration;

/// How often `init --remote` asks for the job's status.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// A job server, with its token.
struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    fn new(api: &str, remote: &RemoteArgs) -> Result<Client> {
        let base = api.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!(Error::config(format!(
                "--remote `{base}` is not an http:// or https:// URL"
            )));
        }
        let token = match &remote.token_file {
            Some(f) => {
                let text = std::fs::read_to_string(f).map_err(|e| {
                    Error::config(format!("cannot read --token-file {}: {e}", f.display()))
                })?;
                // The first token, as in the server's token file (`#` comments skipped).
                text.lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from)
            }
            None => std::env::var("SEREN_REMOTE_TOKEN").ok(),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Client { http, base, token })
    }

    /// Send a request; returns the JSON body of a 2xx answer, else an error naming the status
    /// and the server's message.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the job server at {}", self.base))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let message = body["error"].as_str().unwrap_or("no message").to_string();
        match status.as_u16() {
            401 => bail!(
                "the job server at {} refused the request (401 Unauthorized: {message}); give \
                 its token with --token-file or SEREN_REMOTE_TOKEN",
                self.base
            ),
            400 => bail!(Error::config(format!(
                "the job server refused the job: {message}"
            ))),
            _ => bail!("the job server answered {status}: {message}"),
        }
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }
}

/// The job `init` submits for `args`.
fn spec(args: &InitArgs) -> Result<JobSpec> {
    let t = &args.tables;
    if t.selection.config.is_some() {
        bail!(Error::config(
            "--config cannot be used with --remote yet: give the filters as flags"
        ));
    }
    if args.dry_run {
        bail!(Error::config(
            "--dry-run cannot be used with --remote: run it locally (add --local)"
        ));
    }
    let target = crate::session::target_conninfo(&t.endpoints)?;
    let pg = &args.postgres;
    Ok(JobSpec {
        source: t.endpoints.source.clone(),
        target,
        include_tables: t.selection.include_tables.clone(),
        exclude_tables: t.selection.exclude_tables.clone(),
        table_filters: t.selection.table_filters.clone(),
        schema_only_tables: t.selection.schema_only_tables.clone(),
        time_filters: t.selection.time_filters.clone(),
        include_databases: t.selection.include_databases.clone(),
        exclude_databases: t.selection.exclude_databases.clone(),
        all_databases: t.selection.all_databases,
        mode: Some(super::flag_value(&t.layout.mode)),
        flatten: t.layout.flatten.clone(),
        target_schema: Some(t.layout.target_schema.clone()),
        on_type_mismatch: Some(super::flag_value(&t.layout.on_type_mismatch)),
        zero_dates: Some(super::flag_value(&t.layout.zero_dates)),
        gin_index: Some(
            match args.gin_index {
                seren_postgres::GinIndex::Full => "full",
                seren_postgres::GinIndex::Path => "path",
                seren_postgres::GinIndex::None => "none",
            }
            .to_string(),
        ),
        drop_existing: args.drop_existing,
        jobs: args.jobs,
        partition_rows: args.partition_rows,
        no_sync: pg.no_sync,
        set_replica_identity_full: pg.set_replica_identity_full,
        publication: pg.publication.clone(),
        subscription: pg.subscription.clone(),
        index_jobs: pg.index_jobs,
        split_tables_larger_than: pg.split_tables_larger_than.clone(),
        no_resume: pg.no_resume,
        keep_state: pg.keep_state,
        no_owner: pg.no_owner,
        no_privileges: pg.no_privileges,
        roles: pg.roles,
        no_blobs: pg.no_blobs,
        workers: args.workers,
        timeout_seconds: match &args.job_timeout {
            Some(t) => Some(parse_duration("--job-timeout", t)?.as_secs()),
            None => None,
        },
    })
}

/// `init --remote`: submit, then follow the job until it ends.
pub async fn init(api: &str, args: &InitArgs, ui: &Ui) -> Result<i32> {
    let client = Client::new(api, &args.remote)?;
    let spec = spec(args)?;
    let say = |s: &str| {
        if !ui.json && !ui.quiet {
            println!("{s}");
        }
    };
    say(&format!("Submitting replication job to {} …", client.base));
    let submitted = client
        .call(
            reqwest::Method::POST,
            "/jobs",
            Some(serde_json::to_value(&spec)?),
        )
        .await
        .context("failed to submit the job to the job server")?;
    let id = submitted["id"]
        .as_str()
        .context("the server gave no job id")?
        .to_string();
    say("✓ Job submitted");
    say(&format!("Job ID: {id}"));
    say(&format!(
        "Trace ID: {}",
        submitted["trace_id"].as_str().unwrap_or("")
    ));
    if spec.workers {
        say(&format!(
            "Waiting for workers: start any number with `seren-replicator worker --job {id} \
             --state <the server's PostgreSQL job store>`"
        ));
    }
    say("");
    let follow = follow(&client, &id, ui);
    tokio::select! {
        r = follow => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!(
                "\ndetached: job {id} keeps running on the server; follow it with \
                 `seren-replicator jobs status {id}` or stop it with `seren-replicator jobs cancel {id}`"
            );
            Ok(EXIT_CANCELLED)
        }
    }
}

/// Poll job `id`, printing each new status line, until it ends; returns its exit code.
async fn follow(client: &Client, id: &str, ui: &Ui) -> Result<i32> {
    let mut last = String::new();
    let mut failures = 0;
    loop {
        let job = match client.get(&format!("/jobs/{id}")).await {
            Ok(j) => {
                failures = 0;
                j
            }
            // The server may be restarting: the job survives it, so keep asking a while.
            Err(e) if failures < 60 => {
                failures += 1;
                tracing::warn!("{e:#}");
                tokio::time::sleep(POLL_EVERY).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let status = job["status"].as_str().and_then(JobStatus::parse);
        let line = status_line(&job);
        if line != last && !ui.json && !ui.quiet {
            println!("{line}");
            last = line;
        }
        if let Some(s) = status.filter(|s| s.is_finished()) {
            let code = job["exit_code"].as_i64().map_or(1, |c| c as i32);
            if ui.json {
                println!("{job}");
            } else if s == JobStatus::Succeeded {
                if !ui.quiet {
                    println!("\n✓ Replication completed successfully");
                }
            } else {
                eprintln!(
                    "✗ job {id} {}: {}",
                    s.as_str(),
                    job["error"]
                        .as_str()
                        .unwrap_or("see `seren-replicator jobs logs`")
                );
            }
            return Ok(if s == JobStatus::Succeeded {
                0
            } else {
                code.max(1)
            });
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// `Status: running (attempt 1): 2/3 tables done, 1,234/5,000 rows`.
fn status_line(job: &Value) -> String {
    let status = job["status"].as_str().unwrap_or("unknown");
    let p = &job["progress"];
    let tables: Vec<&Value> = p["databases"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["tables"].as_array().into_iter().flatten())
        .collect();
    let done = tables.iter().filter(|t| t["state"] == "done").count();
    let mut line = format!("Status: {status}");
    if let Some(a) = job["attempts"].as_i64().filter(|a| *a > 1) {
        line.push_str(&format!(" (attempt {a})"));
    }
    if !tables.is_empty() {
        line.push_str(&format!(
            ": {done}/{} tables done, {}/{} rows",
            tables.len(),
            human_count(p["rows"].as_u64().unwrap_or(0)),
            human_count(p["rows_expected"].as_u64().unwrap_or(0))
        ));
    }
    line
}

/// `jobs …`.
pub async fn run(args: JobsArgs, ui: &Ui) -> Result<i32> {
    let Some(api) = args.remote.remote.as_deref() else {
        bail!(Error::config(
            "no job server: give --remote URL or set SEREN_REMOTE_API"
        ));
    };
    let client = Client::new(api, &args.remote)?;
    match args.command {
        JobsCommand::Status { id } => {
            let job = client.get(&format!("/jobs/{id}")).await?;
            if ui.json {
                println!("{job}");
            } else {
                println!("Job ID: {id}");
                println!("Trace ID: {}", job["trace_id"].as_str().unwrap_or(""));
                println!("Source: {}", job["source"].as_str().unwrap_or(""));
                println!("Target: {}", job["target"].as_str().unwrap_or(""));
                println!("{}", status_line(&job));
                for w in job["workers"].as_array().into_iter().flatten() {
                    println!(
                        "Worker {}: joined {}, last seen {}",
                        w["name"].as_str().unwrap_or(""),
                        w["joined_at"].as_str().unwrap_or(""),
                        w["seen_at"].as_str().unwrap_or("")
                    );
                }
                if let Some(c) = job["exit_code"].as_i64() {
                    println!("Exit code: {c}");
                }
                if let Some(e) = job["error"].as_str() {
                    println!("Error: {e}");
                }
            }
        }
        JobsCommand::Logs { id } => {
            let mut after = 0;
            loop {
                let page = client
                    .get(&format!("/jobs/{id}/logs?after={after}"))
                    .await?;
                let lines = page["lines"].as_array().cloned().unwrap_or_default();
                if lines.is_empty() {
                    break;
                }
                for l in &lines {
                    if ui.json {
                        println!("{l}");
                    } else {
                        println!("{}", l["line"].as_str().unwrap_or(""));
                    }
                }
                after = page["next"].as_i64().unwrap_or(after);
            }
        }
        JobsCommand::Cancel { id } => {
            let r = client
                .call(reqwest::Method::POST, &format!("/jobs/{id}/cancel"), None)
                .await?;
            if ui.json {
                println!("{r}");
            } else if !ui.quiet {
                println!("cancel requested for job {id}");
            }
        }
        JobsCommand::List => {
            let r = client.get("/jobs").await?;
            if ui.json {
                println!("{r}");
            } else {
                for j in r["jobs"].as_array().into_iter().flatten() {
                    println!(
                        "{}  {:<10}  {:>4}  {}  {} → {}",
                        j["id"].as_str().unwrap_or(""),
                        j["status"].as_str().unwrap_or(""),
                        j["exit_code"]
                            .as_i64()
                            .map_or(String::new(), |c| c.to_string()),
                        j["created_at"].as_str().unwrap_or(""),
                        j["source"].as_str().unwrap_or(""),
                        j["target"].as_str().unwrap_or(""),
                    );
                }
            }
        }
    }
    Ok(0)
}
