//! Running jobs: each attempt is a child process `seren-replicator init --local --yes --json
//! --json-progress …` with the source and target in its environment (never its argument list),
//! its output scrubbed line by line into the store, its progress lines folded into the job's
//! progress. A cancel or the job timeout sends SIGINT (init stops cleanly and keeps its resume
//! state), then SIGKILL after the grace period.
//!
//! Restarts: the child dies with the server (`PR_SET_PDEATHSIG`), and a job found `running`
//! when the server starts is started again; `init` resumes from the checkpoint it keeps in the
//! target (PostgreSQL sources). Other sources swap each table in whole, so a retry that got past
//! the target check the first time (it reported progress) adds `--drop-existing` to replace the
//! tables the first attempt already swapped in.

use super::crypto::JobKey;
use super::scrub::Scrubber;
use super::store::{JobRecord, Store};
use super::{Credentials, JobStatus};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, watch};

/// Starts and stops job children.
pub struct Runner {
    store: Arc<Store>,
    key: Arc<JobKey>,
    exe: PathBuf,
    grace: Duration,
    /// Cancel switches of the jobs running in this process.
    running: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// Set when the server shuts down: children dying with it are not recorded as failures.
    shutting_down: AtomicBool,
}

impl Runner {
    /// A runner starting `exe` (this binary) for each job, waiting `grace` between SIGINT and
    /// SIGKILL.
    pub fn new(store: Arc<Store>, key: Arc<JobKey>, exe: PathBuf, grace: Duration) -> Runner {
        Runner {
            store,
            key,
            exe,
            grace,
            running: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Run job `id` in the background, unless another server sharing the store runs it (from an
    /// async context: the child's parent-death signal follows the thread that spawns it, and
    /// runtime worker threads live as long as the server).
    pub fn start(self: &Arc<Self>, id: String) {
        let (tx, rx) = watch::channel(false);
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), tx);
        let me = self.clone();
        tokio::spawn(async move {
            let outcome = match me.store.claim(&id).await {
                Ok(true) => {
                    let ran = me.run(&id, rx).await;
                    let released = me.store.release(&id).await;
                    ran.and(released)
                }
                Ok(false) => {
                    tracing::info!(job = %id, "another job server sharing the store runs this job");
                    Ok(())
                }
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                if !me.shutting_down.load(Ordering::SeqCst) {
                    let message = format!("the job server could not run the job: {e:#}");
                    tracing::error!(job = %id, "{message}");
                    let _ = me.store.append_log(&id, "server", &message).await;
                    let _ = me
                        .store
                        .finish(&id, JobStatus::Failed, None, Some(&message))
                        .await;
                }
            }
            me.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        });
    }

    /// Ask job `id` to stop, if it runs here; the cancel is also recorded in the store.
    pub fn cancel(&self, id: &str) {
        if let Some(tx) = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            let _ = tx.send(true);
        }
    }

    /// The server is stopping: children end with it and their jobs stay `running`, to be
    /// resumed by the next start.
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    async fn run(&self, id: &str, mut cancel: watch::Receiver<bool>) -> Result<()> {
        let job = self
            .store
            .get(id)
            .await?
            .context("the job vanished from the store")?;
        if job.cancel_requested {
            self.store
                .finish(id, JobStatus::Cancelled, None, None)
                .await?;
            return Ok(());
        }
        let creds = Credentials::open(&job, &self.key)?;
        let scrubber = Scrubber::new(&[&creds.source, &creds.target]);

        let mut args: Vec<String> = ["init", "--local", "--yes", "--json", "--json-progress"]
            .map(String::from)
            .to_vec();
        args.extend(job.options.flags());
        let retry = job.attempts > 0;
        let copied_before = job.progress.as_object().is_some_and(|m| !m.is_empty());
        if retry
            && copied_before
            && !job.options.drop_existing
            && !crate::session::is_postgres(&creds.source)
        {
            args.push("--drop-existing".into());
        }
        self.store.start_attempt(id).await?;
        let attempt = job.attempts + 1;
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(job.timeout_seconds).saturating_sub(
                job.started_unix
                    .map(|t| (chrono::Utc::now().timestamp() - t).max(0) as u64)
                    .map(Duration::from_secs)
                    .unwrap_or_default(),
            );
        let note = if retry {
            format!("attempt {attempt}: the server restarted; resuming the job")
        } else {
            format!("attempt {attempt}: starting init")
        };
        self.store.append_log(id, "server", &note).await?;
        tracing::info!(job = %id, trace_id = %job.trace_id, attempt, "starting the job's init");

        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.args(&args);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SEREN_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env("SEREN_SOURCE", &creds.source)
            .env("SEREN_TARGET", &creds.target)
            .env("SEREN_TRACE_ID", &job.trace_id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C at the server's terminal does not reach it.
            .process_group(0);
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().context("cannot start the init process")?;
        let pid = child.id().map(|p| p as i32);

        let (tx, mut lines) = mpsc::channel::<(&'static str, String)>(256);
        for (stream, pipe) in [
            (
                "stdout",
                child.stdout.take().map(|p| Box::new(p) as Box<dyn Pipe>),
            ),
            (
                "stderr",
                child.stderr.take().map(|p| Box::new(p) as Box<dyn Pipe>),
            ),
        ] {
            let (Some(pipe), tx) = (pipe, tx.clone()) else {
                continue;
            };
            tokio::spawn(async move {
                let mut reader = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    if tx.send((stream, line)).await.is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);

        let mut progress = job.progress.clone();
        let mut stopping: Option<JobStatus> = None;
        let mut kill_at: Option<tokio::time::Instant> = None;
        let timeout = tokio::time::sleep_until(deadline);
        tokio::pin!(timeout);
        let status = loop {
            tokio::select! {
                Some((stream, line)) = lines.recv() => {
                    self.take_line(id, stream, &scrubber.scrub(&line), &mut progress).await?;
                }
                status = child.wait() => break status?,
                // Only `true` is ever sent: any change is the cancel.
                changed = cancel.changed(), if stopping.is_none() => {
                    if changed.is_ok() {
                        stopping = Some(JobStatus::Cancelled);
                        self.interrupt(id, pid, "cancelled").await?;
                        kill_at = Some(tokio::time::Instant::now() + self.grace);
                    }
                }
                _ = &mut timeout, if stopping.is_none() => {
                    stopping = Some(JobStatus::TimedOut);
                    self.interrupt(id, pid, "the job timeout passed").await?;
                    kill_at = Some(tokio::time::Instant::now() + self.grace);
                }
                _ = tokio::time::sleep_until(kill_at.unwrap_or_else(tokio::time::Instant::now)),
                    if kill_at.is_some() => {
                    self.store.append_log(id, "server", "still running after the grace period: SIGKILL").await?;
                    signal(pid, libc::SIGKILL);
                    kill_at = None;
                }
            }
        };
        // The rest of its output (a grandchild holding the pipes open is not waited for long).
        let drain = async {
            while let Some((stream, line)) = lines.recv().await {
                self.take_line(id, stream, &scrubber.scrub(&line), &mut progress)
                    .await?;
            }
            anyhow::Ok(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
        if self.shutting_down.load(Ordering::SeqCst) {
            return Ok(());
        }
        let code = status.code().or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            status.signal().map(|s| 128 + s)
        });
        // A child that finished its copy before the SIGINT took effect succeeded all the same.
        let final_status = if status.success() {
            JobStatus::Succeeded
        } else {
            stopping.unwrap_or(JobStatus::Failed)
        };
        let error = match final_status {
            JobStatus::Cancelled => Some("cancelled".to_string()),
            JobStatus::TimedOut => Some(format!(
                "stopped after the job timeout ({} s)",
                job.timeout_seconds
            )),
            JobStatus::Failed => Some(format!("init exited with {status}")),
            _ => None,
        };
        self.store
            .append_log(
                id,
                "server",
                &format!("attempt {attempt}: init exited with {status}"),
            )
            .await?;
        tracing::info!(job = %id, trace_id = %job.trace_id, ?code, status = final_status.as_str(), "job finished");
        self.store
            .finish(id, final_status, code, error.as_deref())
            .await
    }

    /// SIGINT to the child: init stops at the next batch and cleans up.
    async fn interrupt(&self, id: &str, pid: Option<i32>, why: &str) -> Result<()> {
        self.store
            .append_log(id, "server", &format!("{why}: sending SIGINT"))
            .await?;
        signal(pid, libc::SIGINT);
        Ok(())
    }

    /// One (scrubbed) output line: a progress line updates the job's progress, the final JSON
    /// document becomes its result, anything else goes to its log.
    async fn take_line(
        &self,
        id: &str,
        stream: &str,
        line: &str,
        progress: &mut serde_json::Value,
    ) -> Result<()> {
        let parsed = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .filter(|v| v.is_object());
        if let Some(v) = &parsed {
            if v["event"] == "progress" {
                let db = v["database"].as_str().unwrap_or("").to_string();
                if let Some(map) = progress.as_object_mut() {
                    map.insert(db, v.clone());
                }
                return self.store.set_progress(id, progress).await;
            }
            if stream == "stdout" && v.get("ok").is_some() {
                let error = v["error"]["message"].as_str();
                self.store.set_result(id, v, error).await?;
            }
        }
        self.store.append_log(id, stream, line).await
    }
}

/// Send `sig` to the child `pid` (not yet reaped: `wait` has not returned, so the pid is ours).
fn signal(pid: Option<i32>, sig: i32) {
    if let Some(pid) = pid {
        // SAFETY: kill(2) has no memory effects.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Make the child get SIGKILL when the server dies (Linux), so a crashed server leaves no copy
/// running that its restart would duplicate.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut tokio::process::Command) {
    // SAFETY: prctl is async-signal-safe and changes only the calling (child) process.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut tokio::process::Command) {}

/// A child's output pipe.
trait Pipe: tokio::io::AsyncRead + Unpin + Send {}
impl<T: tokio::io::AsyncRead + Unpin + Send> Pipe for T {}

/// A job record's progress as the API shows it: totals and one entry per database.
pub fn progress_view(job: &JobRecord) -> serde_json::Value {
    let dbs: Vec<serde_json::Value> = job
        .progress
        .as_object()
        .map(|m| {
            m.values()
                .map(|v| {
                    let mut v = v.clone();
                    if let Some(o) = v.as_object_mut() {
                        o.remove("event");
                    }
                    v
                })
                .collect()
        })
        .unwrap_or_default();
    let sum = |k: &str| dbs.iter().map(|d| d[k].as_u64().unwrap_or(0)).sum::<u64>();
    serde_json::json!({
        "rows": sum("rows"),
        "rows_expected": sum("rows_expected"),
        "bytes": sum("bytes"),
        "databases": dbs,
    })
}
