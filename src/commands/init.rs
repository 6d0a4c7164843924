//! `init`: plan, confirm, then copy every selected table into the target, and record in the
//! target where `sync` starts (a change-capture position fixed before the copy read anything,
//! or the time the copy started).

use super::{Ui, EXIT_USAGE};
use crate::cli::InitArgs;
use crate::interactive::{self, Questions};
use crate::session;
use crate::view;
use anyhow::Result;
use pipeline::{Progress, RunOptions, Sink, Source, TableInfo, TableWork};
use seren_postgres::sync_state::{self, Method, SyncKey, SyncState};
use seren_postgres::{PgSink, PgSinkOptions};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The change-capture position sync starts from, when the source offers change capture and is
/// set up for it; otherwise `None` (sync refreshes periodically) and a warning saying why.
async fn sync_start(
    source: &dyn Source,
    tables: &[TableInfo],
    readers: usize,
    warnings: &mut Vec<String>,
) -> Result<Option<serde_json::Value>> {
    let Some(capture) = source.change_capture() else {
        return Ok(None);
    };
    if let Err(e) = capture.check(tables).await {
        warnings.push(format!(
            "change capture is not available ({e}); `sync` will refresh periodically instead"
        ));
        return Ok(None);
    }
    Ok(Some(capture.start_snapshot(readers).await?))
}

/// A usage error naming the PostgreSQL-only flags given with another kind of source, which
/// would otherwise be ignored without a word.
fn refuse_postgres_only_flags(args: &InitArgs) -> Result<()> {
    let flags = args.postgres.postgres_only_flags();
    if flags.is_empty() || session::is_postgres(&args.tables.endpoints.source) {
        return Ok(());
    }
    let source = &args.tables.endpoints.source;
    let shown = seren_postgres::redact_conninfo(source);
    let kind = crate::connectors::registry().find(source, &shown)?.name();
    Err(pipeline::Error::config(format!(
        "{} only {} to PostgreSQL sources; source {shown} is {kind}",
        flags.join(", "),
        if flags.len() == 1 { "applies" } else { "apply" }
    ))
    .into())
}

/// Hand the run to a job server when asked (`--remote`); else ask what to copy when a person is
/// at a terminal without selection flags, then copy it.
pub async fn run(mut args: InitArgs, ui: &Ui) -> Result<i32> {
    // A job server runs it instead (`--remote` or SEREN_REMOTE_API, unless `--local`).
    if let Some(api) = args.remote.remote.as_deref().filter(|_| !args.local) {
        return super::remote::init(api, &args, ui).await;
    }
    if args.workers {
        return Err(pipeline::Error::config(
            "--workers submits the job to a job server for `seren-replicator worker` processes: \
             give the server with --remote URL (or SEREN_REMOTE_API)",
        )
        .into());
    }
    refuse_postgres_only_flags(&args)?;
    if interactive::wanted(ui, args.yes, &args.tables.selection) {
        let check = &mut args.tables;
        interactive::choose(&check.endpoints, &mut check.selection, Questions::Copy).await?;
    }
    run_selected(args, ui).await
}

/// Copy what the flags select.
async fn run_selected(args: InitArgs, ui: &Ui) -> Result<i32> {
    for (flag, value) in [
        ("--jobs", args.jobs),
        ("--index-jobs", args.postgres.index_jobs),
    ] {
        if value == Some(0) {
            anyhow::bail!(pipeline::Error::config(format!(
                "{flag} 0: at least one job is needed"
            )));
        }
    }
    if session::is_postgres(&args.tables.endpoints.source) {
        return super::init_pg::run(args, ui).await;
    }
    if let Some(runs) = crate::databases::per_database(&args.tables)? {
        for tables in runs {
            let code = Box::pin(run_selected(
                InitArgs {
                    tables,
                    ..args.clone()
                },
                ui,
            ))
            .await?;
            if code != 0 {
                return Ok(code);
            }
        }
        return Ok(0);
    }
    let mut options = session::source_options(&args.tables)?;
    if let Some(rows) = args.partition_rows {
        options.partition_rows = rows.max(1);
        options.partition_rows_given = true;
    }
    let options_flatten = options.flatten.clone();
    let s = session::open(&args.tables.endpoints, options).await?;
    // Reach the target before the (possibly long) catalog work, so a typo fails fast.
    drop(s.target.connect().await?);

    let selected = session::select(&*s.source, &args.tables.selection).await?;
    crate::flatten::check_selected(&options_flatten, &selected)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let filters: BTreeMap<String, String> = selected
        .iter()
        .filter_map(|(t, f)| Some((t.name.clone(), f.clone()?)))
        .collect();
    let tables: Vec<_> = selected.iter().map(|(t, _)| t.clone()).collect();
    let mut warnings = Vec::new();
    // Where sync will start: fixed before anything is planned or read.
    let started_at = SystemTime::now();
    let sync_start = if args.dry_run {
        None
    } else {
        sync_start(&*s.source, &tables, jobs, &mut warnings).await?
    };
    let mut work = Vec::with_capacity(selected.len());
    for (table, filter) in selected {
        let partitions = s.source.plan(&table, filter.as_deref()).await?;
        warnings.extend(
            table
                .warnings
                .iter()
                .map(|w| format!("table \"{}\": {w}", table.name)),
        );
        work.push(TableWork { table, partitions });
    }
    let header = format!(
        "Plan: {} {} → PostgreSQL {} (schema \"{}\", {} mode)",
        s.source.kind(),
        s.source.location(),
        s.target.display(),
        args.tables.layout.target_schema,
        super::flag_value(&args.tables.layout.mode)
    );
    if !ui.json && !ui.quiet {
        view::print_plan(
            &header,
            &work,
            &warnings,
            view::estimated_rows_per_sec(args.tables.layout.mode, args.gin_index),
        );
    }
    if args.dry_run {
        if ui.json {
            let tables: Vec<_> = work
                .iter()
                .map(|w| {
                    serde_json::json!({
                        "table": w.table.name,
                        "rows": w.table.rows,
                        "bytes": w.table.bytes,
                        "partitions": w.partitions,
                        "warnings": w.table.warnings,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({"ok": true, "dry_run": true, "tables": tables})
            );
        }
        return Ok(0);
    }
    if work.is_empty() {
        anyhow::bail!(pipeline::Error::config(format!(
            "nothing to copy: no tables selected in source {}",
            s.source.location()
        )));
    }
    if !args.yes && ui.interactive && !view::confirm("Proceed?") {
        eprintln!("cancelled: nothing was written");
        return Ok(EXIT_USAGE);
    }

    let sink = Arc::new(PgSink::new(
        s.target.clone(),
        PgSinkOptions {
            mode: args.tables.layout.mode,
            schema: args.tables.layout.target_schema.clone(),
            drop_existing: args.drop_existing,
            source_type: s.source.kind().to_string(),
            gin_index: args.gin_index,
        },
    ));
    sink.prepare(&tables).await?;

    let progress = Arc::new(Progress::new(work.iter().map(|w| {
        (
            w.table.name.clone(),
            w.partitions.iter().map(|p| p.estimated_rows).sum(),
        )
    })));
    let cancel = Arc::new(AtomicBool::new(false));
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.store(true, Ordering::SeqCst);
        }
    });
    let opts = RunOptions { jobs, cancel };
    let started = Instant::now();
    let view = view::ProgressView::start(progress.clone(), ui);
    let json_view =
        view::JsonProgress::start(progress.clone(), &s.source.location(), args.json_progress);
    let handle = tokio::runtime::Handle::current();
    let (source, run_sink, run_progress) = (s.source.clone(), sink.clone(), progress.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        pipeline::copy_tables(&handle, source, run_sink, work, run_progress, &opts)
    })
    .await?;
    drop(view);
    drop(json_view);
    let outcomes = outcome?;
    let state = SyncState {
        key: SyncKey {
            source_kind: s.source.kind().to_string(),
            source_location: s.source.location(),
            target_schema: args.tables.layout.target_schema.clone(),
        },
        mode: args.tables.layout.mode,
        on_type_mismatch: args.tables.layout.on_type_mismatch,
        tables: tables.iter().map(|t| t.name.clone()).collect(),
        filters,
        flatten: options_flatten,
        method: match sync_start {
            Some(_) => Method::ChangeCapture,
            None => Method::Refresh,
        },
        position: sync_start,
        last_applied_at: None,
        last_commit_at: None,
        caught_up_at: None,
        last_refresh_at: Some(started_at),
    };
    // The copy is committed: a target where the sync state cannot be stored (no CREATE on the
    // database) still gets its data, with a warning that `sync` cannot start from it.
    let recorded = async {
        let client = s.target.connect().await?;
        sync_state::ensure_table(&client).await?;
        sync_state::save(&client, &state).await
    }
    .await;
    if let Err(e) = recorded {
        warnings.push(format!(
            "the copy is complete, but the point `sync` starts from could not be stored in the \
             target ({e}); to keep this target fresh with `sync`, run init again as a user that \
             may create schema \"seren_replicator\""
        ));
    }
    let seconds = started.elapsed().as_secs_f64();
    warnings.extend(sink.warnings());
    if ui.json {
        let rows: u64 = outcomes.iter().map(|o| o.rows).sum();
        println!(
            "{}",
            serde_json::json!({
                "ok": true,
                "source": {"kind": s.source.kind(), "location": s.source.location()},
                "target": s.target.display(),
                "schema": args.tables.layout.target_schema,
                "mode": args.tables.layout.mode,
                "rows": rows,
                "seconds": seconds,
                "tables": outcomes,
                "warnings": warnings,
                "sync": {"method": state.method, "position": state.position},
            })
        );
    } else if !ui.quiet {
        view::print_summary(&outcomes, seconds, &warnings);
    }
    Ok(0)
}
