//! `sync`: look after the continuous sync `init` set up — say whether it runs, cut over to the
//! target (wait for zero lag, copy sequence values, remove the replication), or stop it.
//! Other sources: `sync_source` (change capture or periodic refresh).

use super::{Ui, EXIT_CHECK_FAILED};
use crate::cli::SyncArgs;
use crate::session;
use anyhow::Result;
use pipeline::Side;
use seren_postgres::replication::{self, ReplicationNames};
use seren_postgres::PgTarget;
use std::time::Duration;

pub async fn run(args: SyncArgs, ui: &Ui) -> Result<i32> {
    if !session::is_postgres(&args.endpoints.source) {
        return super::sync_source::run(args, ui).await;
    }
    let source = PgTarget::parse(&args.endpoints.source, Side::Source)?;
    let target = session::target(&args.endpoints)?;
    let names = ReplicationNames::for_database(
        source.dbname(),
        false,
        args.publication.as_deref(),
        args.subscription.as_deref(),
    );
    let say = |line: String| {
        if !ui.json && !ui.quiet {
            println!("{line}");
        }
    };
    if args.stop || args.cutover {
        let mut sequences = 0;
        if args.cutover {
            say(format!(
                "waiting for {} to apply everything {} has written …",
                target.display(),
                source.display()
            ));
            replication::wait_caught_up(&source, &names, Duration::from_secs(args.timeout)).await?;
            sequences =
                replication::copy_sequence_values(&source, &target, args.sequence_margin).await?;
        }
        let problems = replication::drop_replication(&source, Some(&target), &names).await;
        if ui.json {
            println!(
                "{}",
                serde_json::json!({
                    "ok": problems.is_empty(),
                    "cutover": args.cutover,
                    "sequences": sequences,
                    "problems": problems,
                })
            );
        } else {
            for p in &problems {
                eprintln!("error: {p}");
            }
            if problems.is_empty() {
                say(format!(
                    "{}: subscription {}, slot {} and publication {} removed{}",
                    if args.cutover { "cut over" } else { "stopped" },
                    names.subscription,
                    names.subscription,
                    names.publication,
                    if args.cutover {
                        format!("; {sequences} sequences set; the target is ready for writes")
                    } else {
                        String::new()
                    }
                ));
            }
        }
        return Ok(if problems.is_empty() { 0 } else { 1 });
    }
    let running = replication::subscription_exists(&target, &names).await?;
    if ui.json {
        println!(
            "{}",
            serde_json::json!({"ok": running, "subscription": names.subscription, "running": running})
        );
    } else if running {
        say(format!(
            "continuous sync is set up: subscription {} on {} streams from {}; follow it with \
             `seren-replicator status`, finish with `sync --cutover`",
            names.subscription,
            target.display(),
            source.display()
        ));
    } else {
        eprintln!(
            "no continuous sync between {} and {}: run `seren-replicator init` without \
             --no-sync; it copies a snapshot and starts sync from exactly that point (a copy \
             made with --no-sync cannot be synced afterwards without a gap)",
            source.display(),
            target.display()
        );
    }
    Ok(if running { 0 } else { EXIT_CHECK_FAILED })
}
