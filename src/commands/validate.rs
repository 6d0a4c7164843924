//! `validate`: check everything `init` needs, one line per check, with the fix for each failure.

use super::{Ui, EXIT_CHECK_FAILED};
use crate::cli::ValidateArgs;
use crate::session;
use anyhow::Result;
use pipeline::Side;
use serde::Serialize;
use seren_postgres::ddl::{qualified, quote_ident};

#[derive(Serialize)]
struct Check {
    check: String,
    ok: bool,
    detail: String,
}

pub async fn run(validate: ValidateArgs, ui: &Ui) -> Result<i32> {
    let args = validate.check;
    let mut checks: Vec<Check> = Vec::new();
    let mut push = |check: &str, r: std::result::Result<String, String>| {
        let (ok, detail) = match r {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        checks.push(Check {
            check: check.into(),
            ok,
            detail,
        });
        ok
    };
    let s = match session::open(&args.endpoints, session::source_options(&args.layout)).await {
        Ok(s) => {
            push(
                "source readable",
                Ok(format!("{} {}", s.source.kind(), s.source.location())),
            );
            Some(s)
        }
        Err(e) => {
            push("source readable", Err(e.to_string()));
            None
        }
    };
    if let Some(s) = &s {
        match session::select(&*s.source, &args.selection).await {
            Ok(tables) => {
                push("tables selected", Ok(format!("{} table(s)", tables.len())));
                for (t, _) in tables {
                    for w in t.warnings {
                        push(
                            &format!("table \"{}\"", t.name),
                            Ok(format!("warning: {w}")),
                        );
                    }
                }
            }
            Err(e) => {
                push("tables selected", Err(e.to_string()));
            }
        }
        match s.target.connect().await {
            Ok(client) => {
                push("target reachable", Ok(s.target.display()));
                let version = client
                    .query_one("SELECT current_setting('server_version_num')::int", &[])
                    .await
                    .map(|r| r.get::<_, i32>(0));
                match version {
                    Ok(v) if v >= 120000 => {
                        push("target version", Ok(format!("PostgreSQL {}", v / 10000)))
                    }
                    Ok(v) => push(
                        "target version",
                        Err(format!(
                            "PostgreSQL {} is too old: version 12 or later is required",
                            v / 10000
                        )),
                    ),
                    Err(e) => push("target version", Err(e.to_string())),
                };
                let schema = &args.layout.target_schema;
                let create_schema = match seren_postgres::sink::schema_exists(&client, schema).await
                {
                    Ok(true) => String::new(),
                    _ => format!("CREATE SCHEMA {};", quote_ident(schema)),
                };
                let probe = format!(
                    "BEGIN; {create_schema} CREATE TABLE {} (id int); ROLLBACK;",
                    qualified(schema, "_seren_validate_probe")
                );
                let r = client.batch_execute(&probe).await;
                let _ = client.batch_execute("ROLLBACK").await;
                push(
                    "target privileges",
                    r.map(|_| format!("user {} can create tables in schema \"{schema}\"", s.target.user()))
                        .map_err(|e| {
                            format!(
                                "user {} cannot create tables in schema \"{schema}\": {}; run as the \
                                 database owner: GRANT CREATE ON DATABASE {} TO {}; GRANT CREATE ON \
                                 SCHEMA {} TO {};",
                                s.target.user(),
                                e.as_db_error().map_or(e.to_string(), |d| d.message().to_string()),
                                quote_ident(s.target.dbname()),
                                quote_ident(s.target.user()),
                                quote_ident(schema),
                                quote_ident(s.target.user()),
                            )
                        }),
                );
            }
            Err(e) => {
                push("target reachable", Err(e.to_string()));
            }
        }
    }
    if let (Some(s), false) = (&s, validate.no_sync) {
        if session::is_postgres(&args.endpoints.source) {
            let source = seren_postgres::PgTarget::parse(&args.endpoints.source, Side::Source)?;
            for (check, r) in seren_postgres::replication::sync_checks(&source, &s.target).await {
                push(&format!("sync: {check}"), r);
            }
        }
    }
    let ok = checks.iter().all(|c| c.ok);
    if ui.json {
        println!("{}", serde_json::json!({"ok": ok, "checks": checks}));
    } else if !ui.quiet {
        for c in &checks {
            println!("{} {}: {}", if c.ok { "✓" } else { "✗" }, c.check, c.detail);
        }
    }
    Ok(if ok { 0 } else { EXIT_CHECK_FAILED })
}
