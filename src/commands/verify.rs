//! `verify`: compare every selected table of the source with its copy in the target
//! (PostgreSQL sources: `verify_pg`).

use super::{Ui, EXIT_CHECK_FAILED};
use crate::cli::VerifyArgs;
use crate::session;
use anyhow::Result;
use seren_postgres::sync_state::SyncState;

pub async fn run(verify: VerifyArgs, ui: &Ui) -> Result<i32> {
    if session::is_postgres(&verify.check.endpoints.source) {
        return super::verify_pg::run(verify, ui).await;
    }
    if let Some(runs) = crate::databases::per_database(&verify.check)? {
        let mut worst = 0;
        for check in runs {
            let code = Box::pin(run(
                VerifyArgs {
                    check,
                    ..verify.clone()
                },
                ui,
            ))
            .await?;
            worst = worst.max(code);
        }
        return Ok(worst);
    }
    let args = verify.check;
    let mut options = session::source_options(&args)?;
    let mut s = session::open(&args.endpoints, options.clone()).await?;
    if let Some(recorded) = recorded_layout(&s, &args.layout.target_schema).await {
        if (recorded.mode, recorded.on_type_mismatch, &recorded.flatten)
            != (options.mode, options.on_type_mismatch, &options.flatten)
        {
            if !ui.quiet {
                eprintln!(
                    "note: init wrote these tables in {} mode{} (recorded in the target); \
                     verifying them as written",
                    super::flag_value(&recorded.mode),
                    if recorded.flatten.is_empty() {
                        ""
                    } else {
                        ", with flattened columns"
                    }
                );
            }
            options.mode = recorded.mode;
            options.on_type_mismatch = recorded.on_type_mismatch;
            options.flatten = recorded.flatten;
            s = session::open(&args.endpoints, options.clone()).await?;
        }
    }
    let selected = session::select(&*s.source, &args.selection).await?;
    crate::flatten::check_selected(&options.flatten, &selected)?;
    let mut checks = Vec::new();
    for (table, filter) in &selected {
        let check = seren_postgres::verify::verify_table(
            &*s.source,
            table,
            filter.as_deref(),
            &s.target,
            &args.layout.target_schema,
            options.mode,
        )
        .await?;
        if !ui.json && !ui.quiet {
            if check.matches {
                println!(
                    "✓ {}: {} rows, digest {}",
                    check.table, check.source_rows, check.source_digest
                );
            } else {
                println!(
                    "✗ {}: source {} rows (digest {}), target {} rows (digest {})",
                    check.table,
                    check.source_rows,
                    check.source_digest,
                    check.target_rows,
                    check.target_digest
                );
            }
        }
        checks.push(check);
    }
    let ok = checks.iter().all(|c| c.matches);
    if ui.json {
        println!("{}", serde_json::json!({"ok": ok, "tables": checks}));
    } else if !ui.quiet {
        let bad = checks.iter().filter(|c| !c.matches).count();
        match bad {
            0 => println!("✓ all {} tables match", checks.len()),
            n => println!("✗ {n} of {} tables differ", checks.len()),
        }
    }
    Ok(if ok { 0 } else { EXIT_CHECK_FAILED })
}

/// The layout `init` recorded for this source's tables in `schema` of the target, if any: the
/// tables were written that way, whatever the flags given to `verify`. A target whose state
/// cannot be read (a user without access to it) leaves the flags in charge.
async fn recorded_layout(s: &session::Session, schema: &str) -> Option<SyncState> {
    match super::sync_source::recorded_states(&s.target, s.source.as_ref(), Some(schema)).await {
        Ok(states) => states.into_iter().next(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the layout init recorded; using the flags");
            None
        }
    }
}
