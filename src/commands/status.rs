//! `status`: continuous sync at a glance. For each subscription of the target database: the
//! subscription and its apply worker, table states, its slot and walsender on the source, lag,
//! and a verdict with the fix; orphaned `seren_` slots on the source with the SQL that drops
//! them. `--watch N` refreshes every N seconds until Ctrl-C.

use super::{Ui, EXIT_CHECK_FAILED};
use crate::cli::{Endpoints, StatusArgs};
use crate::session;
use crate::view::human_bytes;
use anyhow::Result;
use pipeline::Side;
use seren_postgres::status::{self, Health, Report, Server, Slot, Subscription};
use seren_postgres::PgTarget;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{signal, SignalKind};

pub async fn run(args: StatusArgs, ui: &Ui) -> Result<i32> {
    if !session::is_postgres(&args.source) {
        return super::status_source::run(args, ui).await;
    }
    let source = PgTarget::parse(&args.source, Side::Source)?;
    let target = session::target(&Endpoints {
        source: args.source.clone(),
        target: args.target.clone(),
        password_file: args.password_file.clone(),
        source_password_file: None,
    })?;
    let Some(every) = args.watch else {
        let report = status::status(&source, &target, args.max_lag).await;
        show(&report, ui);
        return Ok(exit_code(&report));
    };
    // Registered before the first refresh, so Ctrl-C at any moment ends the loop cleanly.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let tty = std::io::stdout().is_terminal();
    let mut code = EXIT_CHECK_FAILED;
    loop {
        let report = tokio::select! {
            r = status::status(&source, &target, args.max_lag) => r,
            _ = interrupt.recv() => break,
        };
        if !ui.json && !ui.quiet {
            if tty {
                // Redraw in place: clear the screen, cursor home.
                print!("\x1b[2J\x1b[H");
                println!("{} · every {every} s · Ctrl-C stops\n", utc_now(' '));
            } else {
                println!("── {} ──", utc_now(' '));
            }
        }
        show(&report, ui);
        let _ = std::io::stdout().flush();
        code = exit_code(&report);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(every)) => {}
            _ = interrupt.recv() => break,
        }
    }
    // Ctrl-C is how --watch ends: the exit code is the last refresh's verdict.
    Ok(code)
}

fn exit_code(r: &Report) -> i32 {
    if r.ok {
        0
    } else {
        EXIT_CHECK_FAILED
    }
}

fn show(r: &Report, ui: &Ui) {
    if ui.json {
        let mut v = serde_json::to_value(r).unwrap_or_default();
        v["checked_at"] = serde_json::Value::String(utc_now('T'));
        println!("{v}");
    } else if !ui.quiet {
        print!("{}", text(r));
    }
}

/// The report for people: both servers, a block per subscription, then warnings.
pub fn text(r: &Report) -> String {
    let mut o = String::new();
    server_line(&mut o, "source", &r.source);
    server_line(&mut o, "target", &r.target);
    for s in &r.subscriptions {
        o.push('\n');
        block(&mut o, s);
    }
    if !r.target.reachable {
        o.push_str("\nsubscriptions unknown: the target is unreachable\n");
        if !r.source_slots.is_empty() {
            o.push_str("slots on the source:\n");
            for sl in &r.source_slots {
                let _ = writeln!(o, "  {}", slot_text(sl));
            }
        }
    }
    if let Some(h) = &r.hint {
        let _ = writeln!(o, "\n{h}");
    }
    if !r.orphaned_slots.is_empty() || !r.warnings.is_empty() {
        o.push('\n');
    }
    for x in &r.orphaned_slots {
        let _ = writeln!(
            o,
            "warning: slot {} on the source (database {}) is inactive and no subscription on the \
             target uses it: it keeps {} of WAL, growing until it is dropped (a forgotten slot \
             fills the source's disk). If nothing uses it, drop it on the source: {}",
            x.slot,
            x.database.as_deref().unwrap_or("?"),
            x.retained_wal_bytes
                .map_or("an unknown amount".into(), |b| human_bytes(b as u64)),
            x.drop_sql
        );
    }
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    let n = r.subscriptions.len();
    let bad = r
        .subscriptions
        .iter()
        .filter(|s| s.health != Health::Healthy)
        .count();
    if n > 0 {
        o.push('\n');
        if bad == 0 {
            let _ = writeln!(o, "✓ {n} subscription(s) healthy");
        } else {
            let _ = writeln!(o, "✗ {bad} of {n} subscription(s) not healthy");
        }
    }
    o
}

fn server_line(o: &mut String, side: &str, s: &Server) {
    let version = s
        .version
        .map(|v| format!(" (PostgreSQL {}.{})", v / 10000, v % 10000))
        .unwrap_or_default();
    match &s.error {
        None => {
            let _ = writeln!(o, "{side}  {}{version}", s.server);
        }
        Some(e) => {
            let _ = writeln!(o, "{side}  {}: UNREACHABLE: {e}", s.server);
        }
    }
}

fn block(o: &mut String, s: &Subscription) {
    let (mark, word) = match s.health {
        Health::Healthy => ("✓", "healthy"),
        Health::Lagging => ("!", "lagging"),
        Health::Broken => ("✗", "broken"),
    };
    let _ = writeln!(o, "{mark} {} (database {}): {word}", s.name, s.database);
    let worker = match &s.worker {
        Some(w) => {
            let last = w
                .seconds_since_last_message
                .map(|x| format!(", last message {x:.1} s ago"))
                .unwrap_or_default();
            let sync = match w.sync_workers {
                0 => String::new(),
                n => format!(", {n} table sync worker(s)"),
            };
            format!("apply worker pid {}{last}{sync}", w.pid)
        }
        None => "no apply worker".into(),
    };
    let _ = writeln!(
        o,
        "  subscription  {} · publication {} · {worker}",
        if s.enabled { "enabled" } else { "DISABLED" },
        s.publications.join(", ")
    );
    let t = &s.tables;
    let mut tables = format!("{} of {} ready", t.ready, t.total);
    if !t.not_ready.is_empty() {
        let _ = write!(tables, " · not ready: {}", t.not_ready_list());
    }
    let _ = writeln!(o, "  tables        {tables}");
    let slot = match (&s.slot_name, &s.slot) {
        (None, _) => "none (slot_name = NONE)".to_string(),
        (Some(_), Some(sl)) => slot_text(sl),
        (Some(n), None)
            if s.problems
                .iter()
                .any(|p| p.reason.starts_with("source unreachable")) =>
        {
            format!("{n}: unknown (source unreachable)")
        }
        (Some(n), None) => format!("{n}: MISSING on the source"),
    };
    let _ = writeln!(o, "  slot          {slot}");
    if s.slot.is_some() {
        let secs = match s.lag_seconds {
            Some(x) => format!("{x:.1} s"),
            None => "seconds unknown (no apply worker)".into(),
        };
        let bytes = s
            .lag_bytes
            .map_or("?".into(), |b| human_bytes(b.max(0) as u64));
        let _ = writeln!(o, "  lag           {bytes}, {secs}");
    }
    if let Some(w) = &s.walsender {
        let lag = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.3} s"));
        let _ = writeln!(
            o,
            "  walsender     pid {} {} · write/flush/replay lag {} / {} / {}",
            w.pid,
            w.state.as_deref().unwrap_or("?"),
            lag(w.write_lag_seconds),
            lag(w.flush_lag_seconds),
            lag(w.replay_lag_seconds)
        );
    }
    for p in s.publication_status.iter().flatten() {
        let what = match (p.exists, p.all_tables) {
            (false, _) => "MISSING".to_string(),
            (true, true) => format!("all tables ({})", p.tables),
            (true, false) => format!("{} table(s)", p.tables),
        };
        let _ = writeln!(
            o,
            "  publication   {} in source database {}: {what}",
            p.name, p.database
        );
    }
    if let Some(e) = &s.errors {
        let _ = writeln!(
            o,
            "  errors        {} apply, {} sync{}",
            e.apply_error_count,
            e.sync_error_count,
            e.stats_reset
                .as_deref()
                .map(|t| format!(" (since {t})"))
                .unwrap_or_default()
        );
    }
    for p in &s.problems {
        let word = match p.health {
            Health::Healthy => "note",
            Health::Lagging => "lagging",
            Health::Broken => "broken",
        };
        let _ = writeln!(o, "  ✗ {word}: {}", p.reason);
        let _ = writeln!(o, "    fix: {}", p.fix);
    }
}

fn slot_text(sl: &Slot) -> String {
    let mut t = format!(
        "{} ({}): {}",
        sl.name,
        sl.database.as_deref().unwrap_or("?"),
        if sl.active { "active" } else { "inactive" }
    );
    if let Some(b) = sl.retained_wal_bytes {
        let _ = write!(t, " · retains {} of WAL", human_bytes(b.max(0) as u64));
    }
    if let Some(w) = &sl.wal_status {
        let _ = write!(t, " · wal_status {w}");
    }
    if let Some(b) = sl.safe_wal_size {
        let _ = write!(t, " · safe_wal_size {}", human_bytes(b.max(0) as u64));
    }
    if let Some(r) = &sl.invalidation_reason {
        let _ = write!(t, " · INVALIDATED ({r})");
    }
    t
}

/// The current UTC time, `2026-01-31 12:00:00 UTC` (`sep` ' ') or RFC 3339 (`sep` 'T').
fn utc_now(sep: char) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs as i64, sep)
}

fn utc(secs: i64, sep: char) -> String {
    let at = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    let pattern = if sep == 'T' {
        "%Y-%m-%dT%H:%M:%SZ"
    } else {
        "%Y-%m-%d %H:%M:%S UTC"
    };
    at.format(pattern).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc() {
        let now = utc_now('T');
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
        assert!(utc_now(' ').ends_with(" UTC"));
        assert_eq!(utc(1_700_000_000, ' '), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(951_782_400, 'T'), "2000-02-29T00:00:00Z");
        assert_eq!(utc(0, 'T'), "1970-01-01T00:00:00Z");
    }
}
