//! `verify`: compare every selected table of the source with its copy in the target
//! (PostgreSQL sources: `verify_pg`).

use super::{Ui, EXIT_CHECK_FAILED};
use crate::cli::VerifyArgs;
use crate::session;
use anyhow::Result;

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
    let options = session::source_options(&args)?;
    let flatten = options.flatten.clone();
    let s = session::open(&args.endpoints, options).await?;
    let selected = session::select(&*s.source, &args.selection).await?;
    crate::flatten::check_selected(&flatten, &selected)?;
    let mut checks = Vec::new();
    for (table, filter) in &selected {
        let check = seren_postgres::verify::verify_table(
            &*s.source,
            table,
            filter.as_deref(),
            &s.target,
            &args.layout.target_schema,
            args.layout.mode,
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
