//! `verify` from a PostgreSQL source: compare every selected database's tables with their
//! copies in the target (the same selection and row filters as `init`), naming the rows that
//! differ.

use super::pg_scope::Databases;
use super::{Ui, EXIT_CHECK_FAILED};
use crate::cli::VerifyArgs;
use anyhow::Result;
use seren_postgres::pgverify::{self, TableReport, VerifyOptions};
use seren_postgres::replication::{self, ReplicationNames};

pub async fn run(verify: VerifyArgs, ui: &Ui) -> Result<i32> {
    let args = &verify.check;
    let dbs = Databases::resolve(&args.endpoints, &args.selection).await?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let opts = VerifyOptions {
        jobs: verify.jobs.map_or(cores, |j| j as usize),
        max_diffs: verify.max_diffs,
        ..VerifyOptions::default()
    };

    let mut results = Vec::new();
    for (db, s, t) in &dbs.pairs {
        let scope = dbs.scope(db);
        // During continuous sync, compare once the target has applied everything the source
        // had written, so differences are not just changes still in flight.
        let names =
            ReplicationNames::for_database(db, dbs.several, None, verify.subscription.as_deref());
        if replication::subscription_exists(t, &names)
            .await
            .unwrap_or(false)
        {
            let caught_up =
                replication::wait_caught_up(s, &names, std::time::Duration::from_secs(60)).await;
            if !ui.json && !ui.quiet {
                match &caught_up {
                    Ok(()) => println!(
                        "continuous sync: the target caught up with the source; comparing (writes \
                         after this point may show as differences)"
                    ),
                    Err(e) => {
                        println!("continuous sync: {e}; differences may be changes in flight")
                    }
                }
            }
        }
        let reports = pgverify::verify_database(s, t, &scope, &opts)
            .await
            .map_err(|e| e.context(format!("database {db}")))?;
        if !ui.json && !ui.quiet {
            if dbs.several {
                println!("Database {db}:");
            }
            for r in &reports {
                println!("{}", line(r));
            }
        }
        results.push((db.clone(), reports));
    }
    let total: usize = results.iter().map(|(_, r)| r.len()).sum();
    let bad = results
        .iter()
        .flat_map(|(_, r)| r)
        .filter(|r| !r.matches)
        .count();
    if ui.json {
        let mut tables = Vec::new();
        for (db, reports) in &results {
            for r in reports {
                let mut v = serde_json::to_value(r)?;
                v["database"] = db.clone().into();
                tables.push(v);
            }
        }
        println!("{}", serde_json::json!({"ok": bad == 0, "tables": tables}));
    } else if !ui.quiet {
        match bad {
            0 => println!("✓ all {total} tables match"),
            n => println!("✗ {n} of {total} tables differ"),
        }
    }
    Ok(if bad == 0 { 0 } else { EXIT_CHECK_FAILED })
}

/// One table's result: `✓ public.t: 5 rows` or `✗ public.t: source 5 rows, target 4 rows;
/// missing on target: id=3; …`.
fn line(r: &TableReport) -> String {
    if r.matches {
        return format!("✓ {}: {} rows", r.table, r.source_rows);
    }
    let Some(target_rows) = r.target_rows else {
        return format!(
            "✗ {}: missing on target (source {} rows)",
            r.table, r.source_rows
        );
    };
    let mut s = format!(
        "✗ {}: source {} rows, target {target_rows} rows",
        r.table, r.source_rows
    );
    if let Some(p) = &r.problem {
        s.push_str("; ");
        s.push_str(p);
        return s;
    }
    for (label, keys) in [
        ("missing on target", &r.missing),
        ("extra on target", &r.extra),
        ("different", &r.different),
    ] {
        if !keys.is_empty() {
            let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
            s.push_str(&format!("; {label}: {}", keys.join(", ")));
        }
    }
    let named = r.missing.len() + r.extra.len() + r.different.len();
    if r.truncated {
        s.push_str(&format!(
            "; more rows differ (first {named} shown; --max-diffs shows more)"
        ));
    } else if named == 0 {
        s.push_str(&format!(
            "; contents differ (digest {} vs {}){}",
            r.source_digest,
            r.target_digest,
            if r.key.is_empty() {
                ", no primary key to name the rows"
            } else {
                ""
            }
        ));
    }
    s
}
