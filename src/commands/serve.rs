//! `serve`: the job server. Checks its settings (a token file, or `--insecure-no-auth` on a
//! loopback address; the credential key), opens the job store, restarts the jobs that were
//! running when it last stopped, and serves the HTTP API until SIGINT or SIGTERM.

use super::Ui;
use crate::cli::ServeArgs;
use crate::jobs::api::{router, ApiState};
use crate::jobs::crypto::JobKey;
use crate::jobs::parse_duration;
use crate::jobs::runner::Runner;
use crate::jobs::store::Store;
use anyhow::{Context, Result};
use pipeline::Error;
use std::net::SocketAddr;
use std::sync::Arc;

pub async fn run(args: ServeArgs, ui: &Ui) -> Result<i32> {
    let addr: SocketAddr = args.listen.parse().map_err(|_| {
        Error::config(format!(
            "--listen `{}` is not an address: give IP:PORT, e.g. 127.0.0.1:8080",
            args.listen
        ))
    })?;
    let tokens = tokens(&args, &addr)?;
    let key = Arc::new(JobKey::load(args.key_file.as_deref())?);
    let default_timeout = parse_duration("--job-timeout", &args.job_timeout)?;
    let grace = parse_duration("--kill-grace", &args.kill_grace)?;
    let store = Arc::new(Store::open(&args.state).await?);
    let exe = std::env::current_exe().context("cannot find this program's own path")?;
    let runner = Arc::new(Runner::new(store.clone(), key.clone(), exe, grace));

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::config(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_addr()?;
    // Jobs the last run left behind: started again, each resuming from its checkpoint (unless
    // another server sharing a PostgreSQL store runs it: see `Store::claim`).
    for job in store.unfinished().await? {
        if job.options.workers {
            continue; // its workers run it
        }
        tracing::info!(job = %job.id, trace_id = %job.trace_id, "restarting an unfinished job");
        runner.start(job.id);
    }
    if !ui.quiet {
        eprintln!("seren-replicator serve: listening on http://{bound}");
    }
    let app = router(Arc::new(ApiState {
        store,
        runner: runner.clone(),
        key,
        tokens,
        default_timeout,
    }));
    let stop = runner.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            stop.shut_down();
        })
        .await
        .context("the HTTP server failed")?;
    Ok(0)
}

/// The accepted tokens, or `None` for `--insecure-no-auth` (loopback addresses only).
fn tokens(args: &ServeArgs, addr: &SocketAddr) -> Result<Option<Vec<String>>> {
    let Some(file) = &args.token_file else {
        if !args.insecure_no_auth {
            return Err(Error::config(
                "refusing to start without authentication: give --token-file FILE (one bearer \
                 token per line), or --insecure-no-auth on a loopback address",
            )
            .into());
        }
        if !addr.ip().is_loopback() {
            return Err(Error::config(format!(
                "--insecure-no-auth is only allowed on a loopback address, not {addr}: give \
                 --token-file FILE"
            ))
            .into());
        }
        return Ok(None);
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::config(format!("cannot read --token-file {}: {e}", file.display())))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    if tokens.is_empty() {
        return Err(Error::config(format!(
            "--token-file {} holds no token (one per line)",
            file.display()
        ))
        .into());
    }
    Ok(Some(tokens))
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
