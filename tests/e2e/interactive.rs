//! Interactive mode through a real pseudo-terminal: the questions `init` and `validate` ask on
//! a terminal without filters, every answer honoured by the run, and no question at all with
//! `-y`, `--no-interactive`, `--json` or a filter flag.

use crate::harness::{cluster_for_binary, fresh_db, pg_port, psql, sql, tempdir};
use rexpect::process::WaitStatus;
use rexpect::session::{spawn_with_options, Options, PtySession};
use rusqlite::Connection;
use std::path::Path;
use std::process::Command;

/// The binary on a pseudo-terminal (stdin and stdout are terminals), no PostgreSQL environment.
fn on_terminal(args: &[&str]) -> PtySession {
    let mut c = Command::new(env!("CARGO_BIN_EXE_seren-replicator"));
    for var in ["PGPASSWORD", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE"] {
        c.env_remove(var);
    }
    c.env("NO_COLOR", "1").args(args);
    let options = Options::new()
        .timeout_ms(Some(60_000))
        .strip_ansi_escape_codes(true);
    spawn_with_options(c, options).expect("spawn on a pty")
}

/// Wait for the process to end; its exit code.
fn exit_code(mut p: PtySession) -> i32 {
    let rest = p.exp_eof().unwrap_or_default();
    match p.process().wait().expect("wait") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("ended by {other:?}; last output:\n{rest}"),
    }
}

fn sqlite_two_tables(path: &Path) {
    Connection::open(path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE alpha (id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO alpha VALUES (1, 'a'), (2, 'b');
             CREATE TABLE beta (id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO beta VALUES (1, 'x');",
        )
        .unwrap();
}

fn table_exists(db: &str, name: &str) -> bool {
    psql(
        db,
        &format!("SELECT to_regclass('public.{name}') IS NOT NULL"),
    ) == "t"
}

#[test]
fn postgres_choices_of_databases_tables_schema_only_and_window_are_honoured() {
    // A cluster of its own, so the list of databases is exactly known.
    let port = cluster_for_binary("interactive source");
    let url = |db: &str| format!("postgresql://postgres@127.0.0.1:{port}/{db}");
    let tag = format!("{:08x}", rand::random::<u32>());
    let (first, second) = (format!("ia_{tag}"), format!("ib_{tag}"));
    for db in [&first, &second] {
        sql(&url("postgres"), &format!("CREATE DATABASE {db}"));
    }
    sql(
        &url(&first),
        "CREATE TABLE events (id int PRIMARY KEY, created_at timestamptz NOT NULL);
         INSERT INTO events SELECT i, now() - i * interval '10 days' FROM generate_series(1, 9) i;
         CREATE TABLE keep (id int PRIMARY KEY, born date);
         INSERT INTO keep SELECT i, date '1990-01-01' FROM generate_series(1, 5) i;
         CREATE TABLE \"Shape Only\" (id int PRIMARY KEY);
         INSERT INTO \"Shape Only\" SELECT generate_series(1, 4);
         CREATE TABLE skip (id int PRIMARY KEY);
         INSERT INTO skip VALUES (1);",
    );
    sql(
        &url(&second),
        "CREATE TABLE other (id int PRIMARY KEY); INSERT INTO other SELECT generate_series(1, 7);",
    );
    let target = format!("postgresql://postgres@127.0.0.1:{}/postgres", pg_port());
    let source = url(&first);
    let mut p = on_terminal(&[
        "init",
        "--source",
        &source,
        "--target",
        &target,
        "--no-sync",
    ]);

    // Databases, in name order: ia_…, ib_…, postgres. The URL's database is the default.
    p.exp_string("Databases on").unwrap();
    p.exp_string(&format!("[{first}]")).unwrap();
    p.send_line("1-2").unwrap();
    // Tables of the first, in name order: "Shape Only" (capitals sort first), events, keep, skip.
    p.exp_string(&format!("Tables in database {first}"))
        .unwrap();
    p.exp_string("[all]").unwrap();
    p.send_line("-4").unwrap();
    p.exp_string("schema only").unwrap();
    p.send_line("1").unwrap();
    p.exp_string("timestamp columns").unwrap();
    p.exp_string("created_at (timestamp with time zone)")
        .unwrap();
    p.exp_string("born (date)").unwrap();
    p.exp_string("[none]").unwrap();
    p.send_line("1").unwrap();
    p.exp_string("newer than").unwrap();
    p.send_line("45 days").unwrap();
    p.exp_string(&format!("Tables in database {second}"))
        .unwrap();
    p.send_line("").unwrap();
    p.exp_string("schema only").unwrap();
    p.send_line("").unwrap();
    p.exp_string("Selection: --include-databases").unwrap();
    p.exp_string("Proceed?").unwrap();
    p.send_line("y").unwrap();
    assert_eq!(exit_code(p), 0, "init after the questions");

    let on_target = |db: &str, query: &str| {
        sql(
            &format!("postgresql://postgres@127.0.0.1:{}/{db}", pg_port()),
            query,
        )
    };
    // Rows newer than 45 days: 10, 20, 30 and 40 days old.
    assert_eq!(on_target(&first, "SELECT count(*) FROM events"), "4");
    assert_eq!(on_target(&first, "SELECT count(*) FROM keep"), "5");
    assert_eq!(
        on_target(&first, "SELECT count(*) FROM \"Shape Only\""),
        "0"
    );
    assert_eq!(on_target(&first, "SELECT to_regclass('skip') IS NULL"), "t");
    assert_eq!(on_target(&second, "SELECT count(*) FROM other"), "7");
}

#[test]
fn sqlite_declined_or_ended_questions_write_nothing() {
    let dir = tempdir();
    let src = dir.path().join("two.db");
    sqlite_two_tables(&src);
    let (target, db) = fresh_db();
    let args = [
        "init",
        "--source",
        src.to_str().unwrap(),
        "--target",
        &target,
    ];

    let mut p = on_terminal(&args);
    p.exp_string("Tables in sqlite").unwrap();
    p.exp_string("2) beta").unwrap();
    p.send_line("2").unwrap();
    p.exp_string("Selection: --include-tables beta").unwrap();
    p.exp_string("beta").unwrap();
    p.exp_string("Proceed?").unwrap();
    p.send_line("n").unwrap();
    p.exp_string("cancelled: nothing was written").unwrap();
    assert_eq!(exit_code(p), 2, "declining the plan");
    assert!(!table_exists(&db, "beta"));

    let mut p = on_terminal(&args);
    p.exp_string("Pick").unwrap();
    p.send_control('d').unwrap();
    p.exp_string("nothing was written").unwrap();
    assert_eq!(exit_code(p), 130, "end of input at a question");
    assert!(!table_exists(&db, "alpha") && !table_exists(&db, "beta"));

    // A wrong answer is asked again; the picked table alone is copied.
    let mut p = on_terminal(&args);
    p.exp_string("Pick").unwrap();
    p.send_line("7").unwrap();
    p.exp_string("not a number from 1 to 2").unwrap();
    p.send_line("1").unwrap();
    p.exp_string("Proceed?").unwrap();
    p.send_line("y").unwrap();
    assert_eq!(exit_code(p), 0);
    assert_eq!(psql(&db, "SELECT count(*) FROM alpha"), "2");
    assert!(!table_exists(&db, "beta"));
}

#[test]
fn validate_checks_the_picked_tables() {
    let dir = tempdir();
    let src = dir.path().join("two.db");
    sqlite_two_tables(&src);
    let (target, _) = fresh_db();
    let mut p = on_terminal(&[
        "validate",
        "--source",
        src.to_str().unwrap(),
        "--target",
        &target,
    ]);
    p.exp_string("Tables in sqlite").unwrap();
    p.send_line("-1").unwrap();
    p.exp_string("Selection: --include-tables beta").unwrap();
    p.exp_string("1 table(s)").unwrap();
    assert_eq!(exit_code(p), 0);
}

#[test]
fn no_questions_with_yes_no_interactive_json_or_filters() {
    let dir = tempdir();
    let src = dir.path().join("two.db");
    sqlite_two_tables(&src);
    let src = src.to_str().unwrap();
    for (extra, proceed) in [
        (vec!["-y"], false),
        (vec!["--no-interactive"], false),
        (vec!["--json"], false),
        (vec!["--include-tables", "alpha,beta"], true),
    ] {
        let (target, db) = fresh_db();
        let mut args = vec!["init", "--source", src, "--target", &target];
        args.extend(&extra);
        let mut p = on_terminal(&args);
        if proceed {
            // Filters given: no selection questions, only the confirmation of the plan.
            let before = p.exp_string("Proceed?").unwrap();
            assert!(!before.contains("Pick"), "{extra:?} asked:\n{before}");
            p.send_line("y").unwrap();
        }
        let rest = p.exp_eof().unwrap_or_default();
        assert!(!rest.contains("Pick"), "{extra:?} asked:\n{rest}");
        assert_eq!(exit_code(p), 0, "{extra:?}:\n{rest}");
        assert_eq!(psql(&db, "SELECT count(*) FROM beta"), "1", "{extra:?}");
    }
}
