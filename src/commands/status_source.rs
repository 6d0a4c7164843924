//! `status` for sources other than PostgreSQL: how `sync` keeps the target fresh (change
//! capture or periodic refresh), where it stands (applied position, or last refresh), the lag,
//! and the row count of each synced table in the target.

use super::sync_source::find_state;
use super::Ui;
use crate::cli::{Endpoints, StatusArgs};
use crate::session;
use anyhow::Result;
use pipeline::{Error, Side, SourceOptions};
use seren_postgres::conn::query_error;
use seren_postgres::ddl::qualified;
use seren_postgres::sync_state::{Method, SyncState};
use std::time::SystemTime;

pub async fn run(args: StatusArgs, ui: &Ui) -> Result<i32> {
    if args.watch.is_some() {
        anyhow::bail!(Error::config(
            "--watch follows PostgreSQL subscriptions; for other sources run status again (e.g. \
             with `watch seren-replicator status …`)"
        ));
    }
    let endpoints = Endpoints {
        source: args.source.clone(),
        target: args.target.clone(),
        password_file: args.password_file.clone(),
        source_password_file: None,
    };
    let s = session::open(&endpoints, SourceOptions::default()).await?;
    let state = find_state(&s.target, &*s.source, args.target_schema.as_deref()).await?;
    let client = s.target.connect().await?;
    let mut tables = Vec::with_capacity(state.tables.len());
    for name in &state.tables {
        let sql = format!(
            "SELECT count(*) FROM {}",
            qualified(&state.key.target_schema, name)
        );
        let rows: Option<i64> = match client.query_one(&sql, &[]).await {
            Ok(r) => Some(r.get(0)),
            Err(e) => {
                let e = query_error(Side::Target, &format!("counting table \"{name}\""), e);
                tracing::warn!("{e}");
                None
            }
        };
        tables.push(serde_json::json!({"table": name, "target_rows": rows}));
    }
    let lag = lag_seconds(&state, SystemTime::now());
    if ui.json {
        let mut v = serde_json::to_value(&state)?;
        v["ok"] = true.into();
        v["lag_seconds"] = serde_json::json!(lag);
        v["tables"] = tables.into();
        println!("{v}");
        return Ok(0);
    }
    if ui.quiet {
        return Ok(0);
    }
    let when = |t: Option<SystemTime>| {
        t.map_or("never".to_string(), |t| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        })
    };
    println!(
        "source  {} {}\ntarget  {} (schema \"{}\", {} mode)",
        state.key.source_kind,
        state.key.source_location,
        s.target.display(),
        state.key.target_schema,
        serde_json::to_value(state.mode)?.as_str().unwrap_or("?")
    );
    match state.method {
        Method::ChangeCapture => {
            println!("method  change capture");
            println!(
                "position {}",
                state
                    .position
                    .as_ref()
                    .map_or("(none)".into(), |p| p.to_string())
            );
            println!("last applied {}", when(state.last_applied_at));
            println!("last source commit applied {}", when(state.last_commit_at));
        }
        Method::Refresh => {
            println!("method  periodic refresh");
            println!("last refresh started {}", when(state.last_refresh_at));
        }
    }
    match lag {
        Some(l) => println!("lag     {}", human_seconds(l)),
        None => println!("lag     unknown (nothing applied yet)"),
    }
    println!("tables (rows in the target):");
    for t in &tables {
        println!(
            "  {:<30} {}",
            t["table"].as_str().unwrap_or_default(),
            t["target_rows"]
                .as_i64()
                .map_or("missing".into(), |n| n.to_string())
        );
    }
    Ok(0)
}

/// How far the target may be behind the source: for change capture, the time since the target
/// was last known caught up (or since the last applied source commit, when that is later); for
/// refresh, the time since the last complete refresh started.
fn lag_seconds(state: &SyncState, now: SystemTime) -> Option<f64> {
    let since = |t: SystemTime| now.duration_since(t).map_or(0.0, |d| d.as_secs_f64());
    match state.method {
        Method::ChangeCapture => {
            let known = match (state.caught_up_at, state.last_commit_at) {
                (Some(c), Some(l)) => Some(c.max(l)),
                (c, l) => c.or(l),
            };
            known.or(state.last_refresh_at).map(since)
        }
        Method::Refresh => state.last_refresh_at.map(since),
    }
}

fn human_seconds(s: f64) -> String {
    let s = s.max(0.0) as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{:.1} h", s as f64 / 3600.0),
        _ => format!("{:.1} days", s as f64 / 86_400.0),
    }
}
