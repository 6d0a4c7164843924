//! `demo`: generate a sample SQLite database, migrate it into PostgreSQL (a throwaway local
//! cluster unless `--target` is given), verify it, show a JSONB query, and clean up.

use super::Ui;
use crate::cli::{CheckArgs, DemoArgs, Endpoints, InitArgs, Layout, Selection};
use crate::throwaway::ThrowawayPg;
use anyhow::{Context, Result};
use pipeline::{Mode, OnTypeMismatch, Side};
use seren_postgres::PgTarget;

const SAMPLE_QUERY: &str = "SELECT data->>'name' AS name, data->>'balance' AS balance, \
     data->>'created_at' AS created_at FROM customers WHERE (data->>'active')::int = 1 \
     ORDER BY (data->>'balance')::numeric DESC LIMIT 5";

pub async fn run(args: DemoArgs, ui: &Ui) -> Result<i32> {
    let dir = tempfile::Builder::new().prefix("seren-demo.").tempdir()?;
    let db_path = dir.path().join("sample.db");
    let say = |s: &str| {
        if !ui.quiet && !ui.json {
            println!("{s}");
        }
    };
    say(&format!(
        "Generating a sample SQLite database ({} orders) …",
        args.rows
    ));
    let (path, rows) = (db_path.clone(), args.rows);
    tokio::task::spawn_blocking(move || crate::sample::generate_demo(&path, rows)).await??;

    let (_cluster, target) = match &args.target {
        Some(t) => (None, t.clone()),
        None => {
            say("Starting a throwaway PostgreSQL …");
            let pg = tokio::task::spawn_blocking(|| ThrowawayPg::start(&[])).await??;
            let url = pg.url("seren_demo");
            let admin = PgTarget::parse(&pg.url("postgres"), Side::Target)?
                .connect()
                .await?;
            admin
                .batch_execute("CREATE DATABASE seren_demo")
                .await
                .context("creating the demo database")?;
            (Some(pg), url)
        }
    };
    let check = CheckArgs {
        endpoints: Endpoints {
            source: db_path.display().to_string(),
            target: target.clone(),
            password_file: None,
            source_password_file: None,
        },
        selection: Selection::default(),
        layout: Layout {
            mode: args.mode,
            target_schema: "public".into(),
            on_type_mismatch: OnTypeMismatch::Text,
            zero_dates: pipeline::ZeroDates::Null,
            flatten: Vec::new(),
        },
    };
    let code = super::init::run(
        InitArgs {
            tables: check.clone(),
            drop_existing: args.target.is_some(),
            gin_index: seren_postgres::GinIndex::Full,
            jobs: None,
            partition_rows: None,
            dry_run: false,
            yes: true,
            local: true,
            workers: false,
            remote: Default::default(),
            job_timeout: None,
            json_progress: false,
            postgres: Default::default(),
        },
        ui,
    )
    .await?;
    if code != 0 {
        return Ok(code);
    }
    say("\nVerifying (row counts and content digests) …");
    let code = super::verify::run(
        crate::cli::VerifyArgs {
            check,
            jobs: None,
            max_diffs: 20,
            subscription: None,
        },
        ui,
    )
    .await?;
    if code != 0 {
        return Ok(code);
    }
    if args.mode == Mode::Jsonb && !ui.quiet && !ui.json {
        println!("\nA JSONB query on the migrated data:\n  {SAMPLE_QUERY}");
        let client = PgTarget::parse(&target, Side::Target)?.connect().await?;
        for row in client.query(SAMPLE_QUERY, &[]).await? {
            let name: Option<String> = row.get(0);
            let created: Option<String> = row.get(2);
            let balance: Option<String> = row.get(1);
            println!(
                "  {:<24} {:>12} {}",
                name.unwrap_or_default(),
                balance.unwrap_or_default(),
                created.unwrap_or_default()
            );
        }
    }
    say("\nDone; the throwaway database and sample file are removed.");
    Ok(0)
}
