//! Whole runs: partitioned big tables, re-runs with and without --drop-existing, interruption,
//! filters, JSON output, verify catching a difference, and the source left untouched.

use crate::harness::{cli, fresh_db, pg_url, psql, run, run_ok, tempdir, Background};
use rusqlite::Connection;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

fn staging_tables(db: &str) -> String {
    psql(
        db,
        "SELECT count(*) FROM pg_class WHERE relname LIKE '\\_seren%'",
    )
}

#[test]
fn big_table_partitions_reruns_and_interruption() {
    let dir = tempdir();
    let src = dir.path().join("big.db");
    let mut c = Connection::open(&src).unwrap();
    c.execute_batch("CREATE TABLE big (id INTEGER PRIMARY KEY, s TEXT, x REAL);")
        .unwrap();
    let tx = c.transaction().unwrap();
    {
        let mut st = tx.prepare("INSERT INTO big VALUES (?1, ?2, ?3)").unwrap();
        for i in 1..=1_200_000i64 {
            st.execute(rusqlite::params![i, format!("row {i}"), i as f64 / 3.0])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    drop(c);
    let before = std::fs::read(&src).unwrap();
    let mtime = std::fs::metadata(&src).unwrap().modified().unwrap();
    let source = src.to_str().unwrap();
    let (url, db) = fresh_db();

    let plan = run_ok(&[
        "init",
        "--source",
        source,
        "--target",
        &url,
        "--partition-rows",
        "300000",
        "--dry-run",
        "--json",
    ]);
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let parts = plan["tables"][0]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 4, "{plan}");
    let planned: u64 = parts
        .iter()
        .map(|p| p["estimated_rows"].as_u64().unwrap())
        .sum();
    assert_eq!(planned, 1_200_000);
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0",
        "dry run writes nothing"
    );

    let out = run_ok(&[
        "init",
        "--source",
        source,
        "--target",
        &url,
        "--partition-rows",
        "300000",
        "-y",
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["rows"], 1_200_000);
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || sum(id::bigint) FROM big"
        ),
        "1200000 1200000 720000600000"
    );
    assert_eq!(
        psql(&db, "SELECT data->>'s' FROM big WHERE id = '1200000'"),
        "row 1200000"
    );
    assert_eq!(
        std::fs::read(&src).unwrap(),
        before,
        "source file unchanged"
    );
    assert_eq!(std::fs::metadata(&src).unwrap().modified().unwrap(), mtime);

    // A second run refuses to touch the populated table.
    let (code, _, err) = run(&["init", "--source", source, "--target", &url, "-y"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("\"public\".\"big\"") && err.contains("--drop-existing"),
        "{err}"
    );
    assert_eq!(psql(&db, "SELECT count(*) FROM big"), "1200000");

    // The source changes; a replacing run is interrupted after its first partition commits:
    // the old table must still be whole and no staging table left behind.
    Connection::open(&src)
        .unwrap()
        .execute("DELETE FROM big WHERE id % 2 = 0", [])
        .unwrap();
    let mut child = cli()
        .args([
            "init",
            "--source",
            source,
            "--target",
            &url,
            "--partition-rows",
            "100000",
            "-j",
            "1",
            "--drop-existing",
            "-y",
            "-v",
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("partition committed") {
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "interrupted run must fail: {log}");
    assert_eq!(
        psql(&db, "SELECT count(*) FROM big"),
        "1200000",
        "old table intact"
    );
    assert_eq!(staging_tables(&db), "0");

    run_ok(&[
        "init",
        "--source",
        source,
        "--target",
        &url,
        "--drop-existing",
        "-y",
    ]);
    assert_eq!(psql(&db, "SELECT count(*) FROM big"), "600000");
    assert_eq!(staging_tables(&db), "0");
    assert!(
        run_ok(&["verify", "--source", source, "--target", &url]).contains("✓ all 1 tables match")
    );

    // verify notices a changed row.
    psql(
        &db,
        "UPDATE big SET data = jsonb_set(data, '{s}', '\"tampered\"') WHERE id = '1'",
    );
    let (code, out, _) = run(&["verify", "--source", source, "--target", &url]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("✗ big"), "{out}");
}

/// Ctrl-C while the new copy waits to replace the old table (a reader holds a lock on it):
/// init stops at once with 130, the waiting statement is cancelled on the server (it would
/// otherwise swap the table in after the user gave up), and the old table stays as it was.
#[test]
fn ctrl_c_while_the_swap_waits_for_a_lock_cancels_it_on_the_server() {
    let dir = tempdir();
    let src = dir.path().join("locked.db");
    let source = src.to_str().unwrap();
    Connection::open(&src)
        .unwrap()
        .execute_batch(
            "CREATE TABLE big (id INTEGER PRIMARY KEY, s TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
             INSERT INTO big SELECT i, 'old ' || i FROM n;",
        )
        .unwrap();
    let (url, db) = fresh_db();
    run_ok(&["init", "--source", source, "--target", &url, "-y"]);
    Connection::open(&src)
        .unwrap()
        .execute("DELETE FROM big WHERE id > 10", [])
        .unwrap();

    let mut reader = std::process::Command::new("psql")
        .args(["-X", "-q", "-d", &pg_url(&db), "-c"])
        .arg("BEGIN; SELECT count(*) FROM big; SELECT pg_sleep(300) /* reader */;")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let waiting = |condition: &str| {
        psql(
            &db,
            &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND {condition}"),
        )
    };
    let init = Background::start(&[
        "init",
        "--source",
        source,
        "--target",
        &url,
        "--drop-existing",
        "-y",
    ]);
    init.wait_until(
        "the swap waiting for the reader's lock",
        Duration::from_secs(60),
        || {
            waiting("query LIKE '%reader%' AND state = 'active'") == "1"
                && waiting("application_name = 'seren-replicator' AND wait_event_type = 'Lock'")
                    == "1"
        },
    );
    let (code, took, out) = init.interrupt();
    assert_eq!(code, 130, "{out}");
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} to stop: {out}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while waiting("application_name = 'seren-replicator'") != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "a statement of the interrupted run still runs on the server"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.kill().unwrap();
    reader.wait().unwrap();
    assert_eq!(
        psql(&db, "SELECT count(*) FROM big"),
        "1000",
        "old table intact"
    );
    assert_eq!(staging_tables(&db), "0");
}

#[test]
fn filters_select_tables_and_rows() {
    let dir = tempdir();
    let src = dir.path().join("filters.db");
    Connection::open(&src)
        .unwrap()
        .execute_batch(
            "CREATE TABLE a (id INTEGER PRIMARY KEY, n INTEGER);
             CREATE TABLE b (id INTEGER PRIMARY KEY);
             CREATE TABLE c (id INTEGER PRIMARY KEY);
             CREATE VIEW v AS SELECT * FROM a;
             WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 100)
             INSERT INTO a SELECT i, i % 10 FROM s;
             INSERT INTO b VALUES (1); INSERT INTO c VALUES (1);",
        )
        .unwrap();
    let source = src.to_str().unwrap();
    let (url, db) = fresh_db();
    run_ok(&[
        "init",
        "--source",
        source,
        "--target",
        &url,
        "--exclude-tables",
        "c",
        "--table-filter",
        "a:n < 3 AND id > 10",
        "-y",
    ]);
    assert_eq!(psql(&db, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"), "a,b");
    assert_eq!(psql(&db, "SELECT count(*) FROM a"), "27");
    assert!(run_ok(&[
        "verify",
        "--source",
        source,
        "--target",
        &url,
        "--exclude-tables",
        "c",
        "--table-filter",
        "a:n < 3 AND id > 10"
    ])
    .contains("✓ all 2 tables match"));

    let (url2, db2) = fresh_db();
    run_ok(&[
        "init",
        "--source",
        source,
        "--target",
        &url2,
        "--include-tables",
        "c,b",
        "-y",
    ]);
    assert_eq!(psql(&db2, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"), "b,c");

    for (flag, value) in [
        ("--include-tables", "nope"),
        ("--exclude-tables", "v"),
        ("--table-filter", "zz:1=1"),
    ] {
        let (code, _, err) = run(&[
            "init", "--source", source, "--target", &url2, flag, value, "-y",
        ]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("does not exist in source") && err.contains("a, b, c"),
            "{err}"
        );
    }
    let (code, _, err) = run(&[
        "init",
        "--source",
        source,
        "--target",
        &url2,
        "--table-filter",
        "a:no_such_col = 1",
        "--drop-existing",
        "-y",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("\"a\"") && err.contains("no_such_col"),
        "{err}"
    );
}
