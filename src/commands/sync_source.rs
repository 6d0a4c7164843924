//! `sync` for sources other than PostgreSQL: keep the tables `init` wrote up to date, by change
//! capture (streaming committed changes from the position `init` recorded, each change set
//! applied with its position in one target transaction) when the source offers it and its check
//! passes, else by periodic refresh (re-read every table, apply the difference) every
//! `--interval`. `--once` makes one pass and exits. SIGTERM or SIGINT stops it after the current
//! transaction, with exit code 0.

use super::Ui;
use crate::cli::{Endpoints, SyncArgs};
use crate::session;
use anyhow::Result;
use pipeline::{Error, Source, SourceOptions, TableInfo};
use seren_postgres::apply::{Applier, ApplyCounts};
use seren_postgres::refresh::{self, RefreshTarget};
use seren_postgres::sync_state::{self, Method, SyncState};
use seren_postgres::PgTarget;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// How often an idle change stream's position is stored (it advances without changes).
const IDLE_RECORD_EVERY: Duration = Duration::from_secs(10);

pub async fn run(args: SyncArgs, ui: &Ui) -> Result<i32> {
    let pg_only: Vec<&str> = [
        (args.cutover, "--cutover"),
        (args.stop, "--stop"),
        (args.publication.is_some(), "--publication"),
        (args.subscription.is_some(), "--subscription"),
    ]
    .into_iter()
    .filter_map(|(set, flag)| set.then_some(flag))
    .collect();
    if !pg_only.is_empty() {
        anyhow::bail!(Error::config(format!(
            "{} only apply to PostgreSQL sources (logical replication)",
            pg_only.join(", ")
        )));
    }
    let interval = parse_interval(&args.interval)?;
    let stop = Stop::install()?;
    let sync = Synced::open(&args.endpoints, args.target_schema.as_deref()).await?;
    let out = Output { ui: *ui };
    let state = &sync.state;
    let method = match (state.method, sync.source.change_capture()) {
        (Method::ChangeCapture, Some(capture)) => match capture.check(&sync.tables).await {
            Ok(()) => Method::ChangeCapture,
            Err(e) => {
                out.note(&format!(
                    "change capture is not available ({e}); refreshing instead"
                ));
                Method::Refresh
            }
        },
        (Method::ChangeCapture, None) => {
            out.note(&format!(
                "{} sources no longer offer change capture; refreshing instead",
                sync.source.kind()
            ));
            Method::Refresh
        }
        (Method::Refresh, _) => Method::Refresh,
    };
    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(2, |n| n.get()),
        |j| j as usize,
    );
    match method {
        Method::ChangeCapture => stream(&sync, &out, &stop, args.once).await,
        Method::Refresh => refresh_loop(&sync, &out, &stop, args.once, interval, jobs).await,
    }
}

/// The source, the target, and the sync state `init` recorded, with the synced tables
/// described in the mode they were written in.
pub(super) struct Synced {
    pub source: Arc<dyn Source>,
    pub target: PgTarget,
    pub state: SyncState,
    pub tables: Vec<TableInfo>,
}

impl Synced {
    /// Open the source and find its sync state in the target; an error says to run `init`
    /// when there is none.
    pub async fn open(endpoints: &Endpoints, schema: Option<&str>) -> Result<Synced> {
        let s = session::open(endpoints, SourceOptions::default()).await?;
        let state = find_state(&s.target, &*s.source, schema).await?;
        let options = SourceOptions {
            mode: state.mode,
            on_type_mismatch: state.on_type_mismatch,
            flatten: state.flatten.clone(),
            ..SourceOptions::default()
        };
        let defaults = SourceOptions::default();
        let source = if options.mode == defaults.mode
            && options.on_type_mismatch == defaults.on_type_mismatch
            && options.flatten.is_empty()
        {
            s.source
        } else {
            session::open(endpoints, options).await?.source
        };
        let known = source.list_tables().await?;
        let mut tables = Vec::with_capacity(state.tables.len());
        for name in &state.tables {
            if !known.contains(name) {
                anyhow::bail!(Error::config(format!(
                    "table \"{name}\" was copied by init but no longer exists in source {}; \
                     run init again (with --drop-existing) to copy the current tables",
                    source.location()
                )));
            }
            tables.push(source.describe(name).await?);
        }
        Ok(Synced {
            source,
            target: s.target,
            state,
            tables,
        })
    }
}

/// The sync states `init` recorded in `target` for `source` (in `schema` when given).
pub(super) async fn recorded_states(
    target: &PgTarget,
    source: &dyn Source,
    schema: Option<&str>,
) -> pipeline::Result<Vec<SyncState>> {
    let client = target.connect().await?;
    let mut states = sync_state::load(&client, source.kind(), &source.location()).await?;
    if let Some(schema) = schema {
        states.retain(|s| s.key.target_schema == schema);
    }
    Ok(states)
}

/// The sync state of `source` in `target` (in `schema` when given).
pub(super) async fn find_state(
    target: &PgTarget,
    source: &dyn Source,
    schema: Option<&str>,
) -> Result<SyncState> {
    let mut states = recorded_states(target, source, schema).await?;
    let init = format!(
        "run `seren-replicator init --source {} --target …` first: it copies the tables and \
         records where sync starts",
        source.location()
    );
    match states.len() {
        0 => Err(Error::config(format!(
            "no sync state for {} {} in target {}{}; {init}",
            source.kind(),
            source.location(),
            target.display(),
            schema.map_or(String::new(), |s| format!(" (schema \"{s}\")")),
        ))
        .into()),
        1 => Ok(states.remove(0)),
        _ => Err(Error::config(format!(
            "{} {} was copied into several schemas of {} ({}); choose one with --target-schema",
            source.kind(),
            source.location(),
            target.display(),
            states
                .iter()
                .map(|s| format!("\"{}\"", s.key.target_schema))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()),
    }
}

/// Stream changes from the stored position until stopped (or, with `once`, until caught up).
async fn stream(sync: &Synced, out: &Output, stop: &Stop, once: bool) -> Result<i32> {
    let capture = sync.source.change_capture().expect("checked by the caller");
    let Some(start) = sync.state.position.clone() else {
        anyhow::bail!(Error::config(format!(
            "the sync state of {} records change capture but no position; run init again \
             (with --drop-existing)",
            sync.source.location()
        )));
    };
    let key = sync.state.key.clone();
    let mut applier = Applier::new(&sync.target, key, sync.state.mode, &sync.tables).await?;
    out.say(
        &format!(
            "streaming changes from {} {} into {} (schema \"{}\") from position {start}",
            sync.source.kind(),
            sync.source.location(),
            sync.target.display(),
            sync.state.key.target_schema
        ),
        serde_json::json!({"event": "start", "method": Method::ChangeCapture, "position": start}),
    );
    let mut changes = capture.stream(start.clone(), &sync.tables).await?;
    let mut position = start;
    let mut totals = ApplyCounts::default();
    let mut last_record = Instant::now();
    let started_ms = unix_ms_now();
    loop {
        let next = tokio::select! {
            next = changes.next() => next?,
            () = stop.wait() => break,
        };
        let Some(set) = next else {
            anyhow::bail!(Error::new(
                pipeline::ErrorKind::Query,
                pipeline::Side::Source,
                format!(
                    "the change stream of {} ended at position {position}; nothing after it \
                     can be streamed: copy afresh with `init --drop-existing`",
                    sync.source.location()
                )
            ));
        };
        let empty = set.changes.is_empty();
        if empty && last_record.elapsed() < IDLE_RECORD_EVERY && !once {
            continue;
        }
        // Caught up: nothing more to send, or past what was committed when this run started.
        let caught_up = set.is_idle() || set.committed_at_ms.is_some_and(|at| at > started_ms);
        let counts = applier
            .apply(std::slice::from_ref(&set), set.is_idle())
            .await?;
        last_record = Instant::now();
        position = set.position;
        totals.add(counts);
        if !empty {
            out.say(
                &format!(
                    "applied: +{} ~{} -{}{} · position {position}",
                    counts.inserted,
                    counts.updated,
                    counts.deleted,
                    if counts.truncated > 0 {
                        format!(" · {} truncated", counts.truncated)
                    } else {
                        String::new()
                    }
                ),
                serde_json::json!({"event": "applied", "counts": counts, "position": position,
                    "committed_at_ms": set.committed_at_ms}),
            );
        }
        if (caught_up && once) || stop.requested() {
            break;
        }
    }
    changes.close().await;
    out.say(
        &format!(
            "stopped at position {position} (applied +{} ~{} -{} this run); `sync` resumes \
             from there",
            totals.inserted, totals.updated, totals.deleted
        ),
        serde_json::json!({"event": "stopped", "ok": true, "position": position, "counts": totals}),
    );
    Ok(0)
}

/// Refresh every table now and then every `interval`, until stopped (or once).
async fn refresh_loop(
    sync: &Synced,
    out: &Output,
    stop: &Stop,
    once: bool,
    interval: Duration,
    jobs: usize,
) -> Result<i32> {
    let to = RefreshTarget {
        target: sync.target.clone(),
        schema: sync.state.key.target_schema.clone(),
        mode: sync.state.mode,
        jobs,
    };
    let mut last_complete = sync.state.last_refresh_at;
    'passes: loop {
        let started = SystemTime::now();
        let clock = Instant::now();
        out.say(
            &format!(
                "refreshing {} table(s) from {} {} into {} (schema \"{}\")",
                sync.tables.len(),
                sync.source.kind(),
                sync.source.location(),
                sync.target.display(),
                to.schema
            ),
            serde_json::json!({"event": "refresh_start", "tables": sync.state.tables}),
        );
        for table in &sync.tables {
            if stop.requested() {
                break 'passes;
            }
            let filter = sync.state.filters.get(&table.name).cloned();
            let (source, table_c, to_c) = (sync.source.clone(), table.clone(), to.clone());
            let handle = tokio::runtime::Handle::current();
            let counts = tokio::task::spawn_blocking(move || {
                refresh::refresh_table(&handle, source, &table_c, filter.as_deref(), &to_c)
            })
            .await??;
            out.say(
                &format!(
                    "  {}: {} rows in the source; +{} ~{} -{} ({:.1} s)",
                    counts.table,
                    counts.source_rows,
                    counts.inserted,
                    counts.updated,
                    counts.deleted,
                    counts.seconds
                ),
                serde_json::json!({"event": "table_refreshed", "table": counts}),
            );
        }
        let client = sync.target.connect().await?;
        sync_state::record_refresh(&client, &sync.state.key, started).await?;
        last_complete = Some(started);
        out.say(
            &format!(
                "refresh complete in {:.1} s{}",
                clock.elapsed().as_secs_f64(),
                if once {
                    String::new()
                } else {
                    format!("; next in {}", show_interval(interval))
                }
            ),
            serde_json::json!({"event": "refresh_done", "seconds": clock.elapsed().as_secs_f64()}),
        );
        if once {
            return Ok(0);
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stop.wait() => break,
        }
    }
    let at = last_complete.map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339());
    out.say(
        &format!(
            "stopped; the last complete refresh started at {}",
            at.as_deref().unwrap_or("(none)")
        ),
        serde_json::json!({"event": "stopped", "ok": true, "last_refresh_at": at}),
    );
    Ok(0)
}

/// `30s`, `10m`, `2h`, `1d` (or plain seconds) as a duration.
fn parse_interval(text: &str) -> Result<Duration> {
    let bad = || {
        Error::config(format!(
            "--interval `{text}`: give a positive number with a unit, e.g. 30s, 10m, 2h or 1d"
        ))
    };
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad().into()),
    };
    if n == 0 {
        return Err(bad().into());
    }
    Ok(Duration::from_secs(n.checked_mul(seconds).ok_or_else(bad)?))
}

fn show_interval(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s % 86_400 == 0 => format!("{}d", s / 86_400),
        _ if s % 3600 == 0 => format!("{}h", s / 3600),
        _ if s % 60 == 0 => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// A stop request from SIGTERM or SIGINT, noticed between transactions.
struct Stop(watch::Receiver<bool>);

impl Stop {
    fn install() -> Result<Stop> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("stop requested; finishing the current transaction");
            let _ = tx.send(true);
        });
        Ok(Stop(rx))
    }

    fn requested(&self) -> bool {
        *self.0.borrow()
    }

    async fn wait(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Lines for people on stdout, or one JSON object per event with `--json`.
struct Output {
    ui: Ui,
}

impl Output {
    fn say(&self, line: &str, json: serde_json::Value) {
        if self.ui.json {
            println!("{json}");
        } else if !self.ui.quiet {
            println!("{line}");
        }
    }

    fn note(&self, line: &str) {
        if self.ui.json {
            println!("{}", serde_json::json!({"event": "note", "message": line}));
        } else if !self.ui.quiet {
            eprintln!("note: {line}");
        }
    }
}

/// This machine's clock in Unix milliseconds.
fn unix_ms_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::parse_interval;
    use std::time::Duration;

    #[test]
    fn intervals_take_units() {
        assert_eq!(parse_interval("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_interval("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_interval("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_interval("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_interval("45").unwrap(), Duration::from_secs(45));
        for bad in ["", "0s", "h", "5w", "-1m", "1.5h"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
