//! `init` from a PostgreSQL source: plan every selected database under its own snapshot,
//! confirm, then copy each (schema, rows, indexes, sequences, large objects), resumable.

use super::pg_scope::Databases;
use super::{Ui, EXIT_USAGE};
use crate::cli::InitArgs;
use crate::view;
use anyhow::Result;
use pipeline::{Error, Progress, Side, Source};
use seren_postgres::clone::{self, CloneOptions, ClonePlan, CloneReport};
use seren_postgres::replication::ReplicationNames;
use seren_postgres::shared::Shared;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The write side's share of a copy's time relative to reading, measured on this kind of
/// machine (bench/RESULTS.md: read 6.5 CPU-s, write + index 13 CPU-s for 1.42 GB). The plan's
/// ETA is the measured read rate scaled by it.
const WRITE_FACTOR: f64 = 3.0;

pub async fn run(args: InitArgs, ui: &Ui) -> Result<i32> {
    run_shared(args, ui, None).await
}

/// `init` from a PostgreSQL source, as one of the workers sharing the copy when `shared`.
pub async fn run_shared(args: InitArgs, ui: &Ui, shared: Option<Shared>) -> Result<i32> {
    let dbs = Databases::resolve(&args.tables.endpoints, &args.tables.selection).await?;
    if shared.is_some() && dbs.pairs.len() != 1 {
        return Err(Error::config(
            "a copy shared by workers copies one database: select one with --include-databases",
        )
        .into());
    }
    let (source, target) = (&dbs.source, &dbs.target);

    // Copying a database onto itself would drop (--drop-existing) or clash with its own tables.
    for (db, s, t) in &dbs.pairs {
        if clone::same_database(s, t).await? {
            return Err(Error::config(format!(
                "source and target are the same database ({db} on {}); \
                 choose another target database",
                t.display()
            ))
            .into());
        }
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pg = &args.postgres;
    let split_bytes = split_size(
        pg.split_tables_larger_than.as_deref().unwrap_or("auto"),
        cores,
    )?;
    let index_jobs = pg.index_jobs.unwrap_or(cores).max(1);
    let wanted_jobs = args.jobs.unwrap_or(cores).max(1);
    let budget = clone::free_connections(source)
        .await?
        .saturating_sub(2)
        .min(
            clone::free_connections(dbs.pairs.first().map_or(target, |(_, _, t)| t))
                .await
                .unwrap_or(usize::MAX)
                .saturating_sub(index_jobs + 2),
        );
    let jobs = wanted_jobs.min(budget.max(1));
    if jobs < wanted_jobs {
        tracing::warn!(
            jobs,
            wanted = wanted_jobs,
            "fewer parallel copies than asked: max_connections leaves room for no more"
        );
    }
    let opts = CloneOptions {
        jobs,
        index_jobs,
        split_bytes,
        drop_existing: args.drop_existing,
        resume: !pg.no_resume,
        keep_state: pg.keep_state,
        no_owner: pg.no_owner,
        no_privileges: pg.no_privileges,
        blobs: !pg.no_blobs,
        roles_copied: pg.roles,
        set_replica_identity_full: pg.set_replica_identity_full,
        shared,
    };

    let mut plans = Vec::new();
    for (db, s, t) in &dbs.pairs {
        let scope = dbs.scope(db);
        let replication = (!pg.no_sync).then(|| {
            ReplicationNames::for_database(
                db,
                dbs.several,
                pg.publication.as_deref(),
                pg.subscription.as_deref(),
            )
        });
        plans.push(ClonePlan::prepare(s, t, &scope, &opts, replication).await?);
    }
    // The time estimate is only shown with the plan: measure the read rate only then.
    let rate = if ui.json || ui.quiet {
        None
    } else {
        estimate_rate(&plans).await
    };
    if !ui.json && !ui.quiet {
        for p in &plans {
            let header = format!(
                "Plan: PostgreSQL {} → PostgreSQL {} ({} jobs, {} index jobs{})",
                p.source.location(),
                p.target.display(),
                opts.jobs,
                opts.index_jobs,
                if p.resuming {
                    ", resuming an interrupted run"
                } else {
                    ""
                }
            );
            let rows: u64 = p.work.iter().map(|w| w.table.rows).sum();
            let rows_per_sec = match rate {
                Some(bytes_per_sec) if p.data_bytes() > 0 => {
                    rows as f64 / (p.data_bytes() as f64 / bytes_per_sec)
                }
                _ => 0.0,
            };
            let mut notes = p.warnings.clone();
            if !p.schema_only.is_empty() {
                notes.push(format!("schema only: {}", p.schema_only.join(", ")));
            }
            view::print_plan(&header, &p.work, &notes, rows_per_sec);
        }
    }
    if args.dry_run {
        if ui.json {
            let dbs: Vec<_> = plans.iter().map(plan_json).collect();
            println!(
                "{}",
                serde_json::json!({"ok": true, "dry_run": true, "databases": dbs,
                    "estimated_bytes_per_sec": rate})
            );
        }
        return Ok(0);
    }
    if !args.yes && ui.interactive && !view::confirm("Proceed?") {
        eprintln!("cancelled: nothing was written");
        return Ok(EXIT_USAGE);
    }
    let mut role_warnings = Vec::new();
    if pg.roles {
        let major =
            seren_postgres::catalog::server_major(plans[0].source.catalog(), Side::Source).await?;
        let tools = seren_postgres::tools::ClientTools::find(major)?;
        role_warnings = seren_postgres::schema::copy_roles(&tools, source, target).await?;
    }

    let cancel = Arc::new(AtomicBool::new(false));
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.store(true, Ordering::SeqCst);
        }
    });
    let started = Instant::now();
    let mut results = Vec::new();
    for plan in plans {
        let db = plan.database.clone();
        let progress = Arc::new(Progress::new(plan.work.iter().map(|w| {
            (
                w.table.name.clone(),
                w.partitions.iter().map(|p| p.estimated_rows).sum(),
            )
        })));
        let view = view::ProgressView::start(progress.clone(), ui);
        let json_view = view::JsonProgress::start(progress.clone(), &db, args.json_progress);
        let outcome = plan.run(progress, cancel.clone()).await;
        drop(view);
        drop(json_view);
        let report = outcome.map_err(|e| e.context(format!("database {db}")))?;
        results.push((db, report));
    }
    let seconds = started.elapsed().as_secs_f64();
    let sync: Vec<String> = results
        .iter()
        .filter_map(|(db, r)| {
            r.replication.as_ref().map(|n| {
                format!(
                    "database {db}: continuous sync is running (publication {} on the source, \
                     subscription {} on the target); follow it with `seren-replicator status`",
                    n.publication, n.subscription
                )
            })
        })
        .collect();
    if ui.json {
        let dbs: Vec<_> = results.iter().map(|(db, r)| report_json(db, r)).collect();
        println!(
            "{}",
            serde_json::json!({
                "ok": true,
                "seconds": seconds,
                "databases": dbs,
                "role_warnings": role_warnings,
                "sync": sync,
            })
        );
    } else if !ui.quiet {
        for (db, r) in &results {
            if results.len() > 1 {
                println!("Database {db}:");
            }
            let mut warnings = r.warnings.clone();
            if r.sequences > 0 || r.large_objects > 0 {
                warnings.push(format!(
                    "{} sequences set, {} large objects copied",
                    r.sequences, r.large_objects
                ));
            }
            view::print_summary(&r.tables, seconds, &warnings);
        }
        for w in &role_warnings {
            eprintln!("warning: {w}");
        }
        for line in &sync {
            println!("{line}");
        }
    }
    Ok(0)
}

/// Read rate measured on the biggest table of the plans, scaled to the whole copy.
async fn estimate_rate(plans: &[ClonePlan]) -> Option<f64> {
    let plan = plans.iter().max_by_key(|p| p.data_bytes())?;
    let biggest = plan.work.iter().max_by_key(|w| w.table.bytes)?;
    let table = plan.table_named(&biggest.table.name)?;
    let rate = plan
        .source
        .probe_read_rate(table, 16 << 20)
        .await
        .ok()
        .flatten()?;
    Some(rate / WRITE_FACTOR)
}

fn plan_json(p: &ClonePlan) -> serde_json::Value {
    serde_json::json!({
        "database": p.database,
        "source": p.source.location(),
        "target": p.target.display(),
        "resuming": p.resuming,
        "bytes": p.data_bytes(),
        "schema_only": p.schema_only,
        "warnings": p.warnings,
        "tables": p.work.iter().map(|w| serde_json::json!({
            "table": w.table.name,
            "rows": w.table.rows,
            "bytes": w.table.bytes,
            "partitions": w.partitions,
        })).collect::<Vec<_>>(),
    })
}

fn report_json(db: &str, r: &CloneReport) -> serde_json::Value {
    serde_json::json!({
        "database": db,
        "tables": r.tables,
        "sequences": r.sequences,
        "large_objects": r.large_objects,
        "warnings": r.warnings,
    })
}

/// `--split-tables-larger-than`: `auto`, `0`, or a size like `512MB`, `2GB`, `1048576`.
fn split_size(s: &str, cores: usize) -> Result<u64> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("auto") {
        // Measured on 2 cores: one copy lane already keeps both busy (a source and a target
        // backend), and splitting a table cost +2 s; only more cores make splitting pay.
        return Ok(if cores >= 4 { 1 << 30 } else { 0 });
    }
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = s[digits.len()..].to_ascii_lowercase();
    let n: f64 = digits.trim().parse().map_err(|_| bad_size(s))?;
    let mult: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        "t" | "tb" => 1 << 40,
        _ => return Err(bad_size(s)),
    };
    Ok((n * mult as f64) as u64)
}

fn bad_size(s: &str) -> anyhow::Error {
    Error::config(format!(
        "--split-tables-larger-than `{s}` is not a size: use e.g. 512MB, 2GB, 0 (never) or auto"
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::split_size;

    #[test]
    fn split_sizes() {
        assert_eq!(split_size("0", 2).unwrap(), 0);
        assert_eq!(split_size("auto", 2).unwrap(), 0);
        assert_eq!(split_size("auto", 8).unwrap(), 1 << 30);
        assert_eq!(split_size("512MB", 2).unwrap(), 512 << 20);
        assert_eq!(split_size("1.5g", 2).unwrap(), 3 << 29);
        assert!(split_size("lots", 2).is_err());
    }
}
