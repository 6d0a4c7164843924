//! `validate`: check everything `init` and `sync` need, one line per check, with the fix for
//! each failure. Nothing is written to either side (the privilege probe is rolled back).
//!
//! The checks, in order:
//! - `source readable`: opening the source, i.e. connecting and authenticating to a server (its
//!   own error text, never the password), or finding and reading a file;
//! - `tables selected`: the selection flags against the source catalog, then per-table warnings;
//! - `source version`, `source read …`: [`pipeline::Source::preflight`], the connector's own
//!   checks. PostgreSQL 12+, MySQL 5.7+ / MariaDB 10.2+, MongoDB 4.0+, and read access to every
//!   selected table (one ✗ per unreadable table, with the GRANT to run). File sources (SQLite,
//!   Parquet) have nothing to add: opening them read every header already;
//! - `target reachable`, `target version` (12+), `target privileges` (CREATE TABLE, probed in
//!   a rolled-back transaction), `target connections`: free connections (`max_connections`
//!   minus reserved and current client backends) must cover the jobs `init` would run, plus
//!   one;
//! - `disk`: the source's size estimate (sum of the tables' catalog sizes), informational only:
//!   PostgreSQL does not expose free disk space over SQL, so it is printed next to what the
//!   target database uses now;
//! - `sync: …` (skipped with `--no-sync`): for PostgreSQL sources, what logical replication
//!   needs (a failure fails validate, as init would set it up); for sources with change capture
//!   (MySQL binlog, MongoDB change streams), [`pipeline::ChangeCapture::check`]. A failure there
//!   is a *warning* (`!`), not a failed check: `sync` then falls back to periodic refresh, so
//!   validate still exits 0; the line carries the fix. Sources without change capture get an
//!   informational line saying sync refreshes.
//!
//! Exit 0 when every check passed (warnings allowed), [`EXIT_CHECK_FAILED`] otherwise. `--json`
//! prints `{"ok": …, "checks": [{"check", "ok", "warning", "detail"}, …]}`.

use super::{Ui, EXIT_CHECK_FAILED};
use crate::cli::ValidateArgs;
use crate::interactive::{self, Questions};
use crate::session;
use crate::view::human_bytes;
use anyhow::Result;
use pipeline::{Side, TableInfo};
use serde::Serialize;
use seren_postgres::ddl::{qualified, quote_ident};
use seren_postgres::PgTarget;

#[derive(Serialize)]
struct Check {
    check: String,
    ok: bool,
    /// Passed, but with something to fix for the best result (e.g. sync falls back to refresh).
    warning: bool,
    detail: String,
}

/// The checks found so far.
#[derive(Default)]
struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn push(&mut self, check: &str, r: std::result::Result<String, String>) -> bool {
        let (ok, detail) = match r {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.checks.push(Check {
            check: check.into(),
            ok,
            warning: false,
            detail,
        });
        ok
    }

    fn warn(&mut self, check: &str, detail: String) {
        self.checks.push(Check {
            check: check.into(),
            ok: true,
            warning: true,
            detail,
        });
    }
}

pub async fn run(mut validate: ValidateArgs, ui: &Ui) -> Result<i32> {
    if interactive::wanted(ui, validate.yes, &validate.check.selection) {
        let check = &mut validate.check;
        interactive::choose(&check.endpoints, &mut check.selection, Questions::Tables).await?;
    }
    let args = validate.check;
    let jobs = validate
        .jobs
        .map(|j| j as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mut report = Report::default();
    let s = match session::open(&args.endpoints, session::source_options(&args)?).await {
        Ok(s) => {
            report.push(
                "source readable",
                Ok(format!("{} {}", s.source.kind(), s.source.location())),
            );
            Some(s)
        }
        Err(e) => {
            report.push("source readable", Err(e.to_string()));
            None
        }
    };
    let mut tables = None;
    if let Some(s) = &s {
        match session::select(&*s.source, &args.selection).await {
            Ok(selected) => {
                report.push(
                    "tables selected",
                    Ok(format!("{} table(s)", selected.len())),
                );
                let selected: Vec<TableInfo> = selected.into_iter().map(|(t, _)| t).collect();
                for t in &selected {
                    for w in &t.warnings {
                        report.push(
                            &format!("table \"{}\"", t.name),
                            Ok(format!("warning: {w}")),
                        );
                    }
                }
                for c in s.source.preflight(&selected).await {
                    report.push(&c.name, c.outcome);
                }
                tables = Some(selected);
            }
            Err(e) => {
                report.push("tables selected", Err(e.to_string()));
            }
        }
    }
    // The target is checked even when the source failed, so one run shows every problem.
    let target = match &s {
        Some(s) => Ok(s.target.clone()),
        None => session::target(&args.endpoints),
    };
    match &target {
        Ok(target) => {
            let schema = &args.layout.target_schema;
            target_checks(&mut report, target, schema, jobs, tables.as_deref()).await;
        }
        Err(e) => {
            report.push("target reachable", Err(e.to_string()));
        }
    }
    if let (Some(s), Ok(target), false) = (&s, &target, validate.no_sync) {
        if session::is_postgres(&args.endpoints.source) {
            let source = PgTarget::parse(&args.endpoints.source, Side::Source)?;
            for (check, r) in seren_postgres::replication::sync_checks(&source, target).await {
                report.push(&format!("sync: {check}"), r);
            }
        } else if let Some(tables) = &tables {
            match s.source.change_capture() {
                Some(capture) => match capture.check(tables).await {
                    Ok(()) => {
                        report.push("sync: change capture", Ok("available".into()));
                    }
                    Err(e) => report.warn(
                        "sync: change capture",
                        format!("{e}; until then `sync` refreshes periodically instead"),
                    ),
                },
                None => {
                    report.push(
                        "sync: periodic refresh",
                        Ok(format!(
                            "{} sources have no change capture; `sync` re-reads the tables",
                            s.source.kind()
                        )),
                    );
                }
            }
        }
    }
    let checks = report.checks;
    let ok = checks.iter().all(|c| c.ok);
    if ui.json {
        println!("{}", serde_json::json!({"ok": ok, "checks": checks}));
    } else if !ui.quiet {
        for c in &checks {
            let mark = match (c.ok, c.warning) {
                (false, _) => "✗",
                (true, true) => "!",
                (true, false) => "✓",
            };
            println!("{mark} {}: {}", c.check, c.detail);
        }
    }
    Ok(if ok { 0 } else { EXIT_CHECK_FAILED })
}

/// Target checks: reachable, version, privileges, free connections, and the disk estimate for
/// `tables` (when selected).
async fn target_checks(
    report: &mut Report,
    target: &PgTarget,
    schema: &str,
    jobs: usize,
    tables: Option<&[TableInfo]>,
) {
    let client = match target.connect().await {
        Ok(client) => {
            report.push("target reachable", Ok(target.display()));
            client
        }
        Err(e) => {
            report.push("target reachable", Err(e.to_string()));
            return;
        }
    };
    let version = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map(|r| r.get::<_, i32>(0));
    match version {
        Ok(v) if v >= 120000 => {
            report.push("target version", Ok(format!("PostgreSQL {}", v / 10000)))
        }
        Ok(v) => report.push(
            "target version",
            Err(format!(
                "PostgreSQL {} is too old: version 12 or later is required",
                v / 10000
            )),
        ),
        Err(e) => report.push("target version", Err(e.to_string())),
    };
    let create_schema = match seren_postgres::sink::schema_exists(&client, schema).await {
        Ok(true) => String::new(),
        _ => format!("CREATE SCHEMA {};", quote_ident(schema)),
    };
    let probe = format!(
        "BEGIN; {create_schema} CREATE TABLE {} (id int); ROLLBACK;",
        qualified(schema, "_seren_validate_probe")
    );
    let r = client.batch_execute(&probe).await;
    let _ = client.batch_execute("ROLLBACK").await;
    report.push(
        "target privileges",
        r.map(|_| {
            format!(
                "user {} can create tables in schema \"{schema}\"",
                target.user()
            )
        })
        .map_err(|e| {
            format!(
                "user {} cannot create tables in schema \"{schema}\": {}; run as the \
                     database owner: GRANT CREATE ON DATABASE {} TO {}; GRANT CREATE ON \
                     SCHEMA {} TO {};",
                target.user(),
                e.as_db_error()
                    .map_or(e.to_string(), |d| d.message().to_string()),
                quote_ident(target.dbname()),
                quote_ident(target.user()),
                quote_ident(schema),
                quote_ident(target.user()),
            )
        }),
    );
    // Every client backend counts against max_connections; the reserved slots only serve
    // superusers, so they are left out whoever connects.
    let free = client
        .query_one(
            "SELECT current_setting('max_connections')::int, \
                    current_setting('max_connections')::int \
                    - current_setting('superuser_reserved_connections')::int \
                    - (SELECT count(*)::int FROM pg_stat_activity \
                       WHERE backend_type = 'client backend')",
            &[],
        )
        .await
        .map(|r| (r.get::<_, i32>(0), r.get::<_, i32>(1)));
    let needed = jobs as i64 + 1;
    report.push(
        "target connections",
        match free {
            Ok((_, free)) if i64::from(free) >= needed => Ok(format!(
                "{free} free; init uses up to {needed} ({jobs} jobs + 1)"
            )),
            Ok((max, free)) => Err(format!(
                "{} free, init needs {needed} ({jobs} jobs + 1): run init with --jobs {}, or \
                 raise the limit: ALTER SYSTEM SET max_connections = {}; and restart the target",
                free.max(0),
                (free - 1).max(1),
                i64::from(max) + needed - i64::from(free)
            )),
            Err(e) => Err(e.to_string()),
        },
    );
    if let Some(tables) = tables {
        let bytes: u64 = tables.iter().map(|t| t.bytes).sum();
        let used = client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await
            .map(|r| human_bytes(r.get::<_, i64>(0).max(0) as u64))
            .map(|u| format!("; the target database uses {u} now"))
            .unwrap_or_default();
        report.push(
            "disk",
            Ok(format!(
                "the source holds about {} in the selected tables{used}; the target needs room \
                 for about that plus indexes (free space is not visible over SQL)",
                human_bytes(bytes)
            )),
        );
    }
}
