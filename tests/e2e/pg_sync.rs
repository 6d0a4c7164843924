//! Continuous sync after `init`: writes made on the source during the copy and after it reach
//! the target through the subscription, none lost and none applied twice (the slot starts
//! exactly at the copy's snapshot).

use crate::harness::run;
use crate::pg_pair::{all_digests, fresh_source_db, fresh_target_db, script, sql};
use seren_replicator::throwaway::ThrowawayPg;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SOURCE: &str = "
CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 20000) g;
CREATE TABLE events (id bigserial PRIMARY KEY, account int NOT NULL, amount int NOT NULL,
                     note text);
INSERT INTO events (account, amount, note)
  SELECT g % 20000 + 1, g % 100, repeat('x', g % 300) FROM generate_series(1, 200000) g;
CREATE TABLE tags (account int NOT NULL, tag text NOT NULL);
INSERT INTO tags SELECT g, 'tag' || g % 10 FROM generate_series(1, 5000) g;
ANALYZE;
";

/// One writer transaction: an insert, two updates, a delete, and a change to the table
/// without a primary key.
fn write_once(url: &str, i: u64) {
    let a = i % 20000 + 1;
    let b = (i * 7) % 20000 + 1;
    sql(
        url,
        &format!(
            "BEGIN;
             INSERT INTO events (account, amount, note) VALUES ({a}, {i}, 'live {i}');
             UPDATE accounts SET balance = balance - 1 WHERE id = {a};
             UPDATE accounts SET balance = balance + 1 WHERE id = {b};
             DELETE FROM events WHERE id = {};
             UPDATE tags SET tag = 'changed {i}' WHERE account = {a};
             COMMIT;",
            i * 3 + 1
        ),
    );
}

fn wait_equal(src: &str, dst: &str, timeout: Duration) {
    let started = Instant::now();
    loop {
        let (s, t) = (all_digests(src), all_digests(dst));
        if s == t {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "the target did not catch up within {timeout:?}:\nsource {s:?}\ntarget {t:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn writes_during_and_after_init_reach_the_target() {
    let (src, _) = fresh_source_db();
    script(&src, SOURCE);
    let (dst, _) = fresh_target_db();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, src) = (stop.clone(), src.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                write_once(&src, i);
                i += 1;
            }
            i
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = run(&[
        "init",
        "--source",
        &src,
        "--target",
        &dst,
        "-y",
        "--set-replica-identity-full",
        "--subscription",
        "sync_test_sub",
        "--publication",
        "sync_test_pub",
    ]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("continuous sync is running"),
        "stdout:\n{out}\nstderr:\n{err}"
    );
    // Keep writing after the copy, then let the target catch up.
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 10, "the writer only managed {writes} transactions");
    wait_equal(&src, &dst, Duration::from_secs(60));
    // `verify` during sync waits for the target to catch up, then finds every table equal.
    let (code, out, err) = run(&[
        "verify",
        "--source",
        &src,
        "--target",
        &dst,
        "--subscription",
        "sync_test_sub",
    ]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("the target caught up with the source"),
        "{out}"
    );

    // `sync` reports it; more writes (and sequence use) after that, then the cutover waits
    // for them, copies the sequences and removes every replication object.
    let names = [
        "--subscription",
        "sync_test_sub",
        "--publication",
        "sync_test_pub",
    ];
    let mut args = vec!["sync", "--source", &src, "--target", &dst];
    args.extend_from_slice(&names);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("continuous sync is set up"), "{out}");
    for i in 0..20 {
        write_once(&src, 1_000_000 + i);
    }
    sql(
        &src,
        "SELECT nextval('events_id_seq') FROM generate_series(1, 50)",
    );
    args.push("--cutover");
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(all_digests(&src), all_digests(&dst));
    let seq = "SELECT last_value FROM events_id_seq";
    assert_eq!(sql(&src, seq), sql(&dst, seq));
    assert_eq!(
        sql(
            &src,
            "SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'sync_test_sub')
                  + (SELECT count(*) FROM pg_publication WHERE pubname = 'sync_test_pub')"
        ),
        "0"
    );
    assert_eq!(
        sql(
            &dst,
            "SELECT count(*) FROM pg_subscription WHERE subname = 'sync_test_sub'"
        ),
        "0"
    );
}

#[test]
fn stop_removes_replication_and_sync_explains_what_to_run() {
    let (src, _) = fresh_source_db();
    let (dst, names) = synced_one_row(&src, "stop_test");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut stop = vec!["sync", "--source", &src, "--target", &dst, "--stop"];
    stop.extend_from_slice(&names);
    let (code, out, err) = run(&stop);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        sql(
            &src,
            "SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'stop_test_sub')
                  + (SELECT count(*) FROM pg_publication WHERE pubname = 'stop_test_pub')"
        ),
        "0"
    );
    assert_eq!(
        sql(
            &dst,
            "SELECT count(*) FROM pg_subscription WHERE subname = 'stop_test_sub'"
        ),
        "0"
    );
    // Nothing set up any more: `sync` says what to run.
    let mut check = vec!["sync", "--source", &src, "--target", &dst];
    check.extend_from_slice(&names);
    let (code, _, err) = run(&check);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("run `seren-replicator init` without --no-sync"),
        "{err}"
    );
}

#[test]
fn table_without_identity_is_refused_without_the_flag() {
    let (src, _) = fresh_source_db();
    script(
        &src,
        "CREATE TABLE nokey (a int); INSERT INTO nokey VALUES (1);",
    );
    let (dst, _) = fresh_target_db();
    let (code, out, err) = run(&["init", "--source", &src, "--target", &dst, "-y"]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("public.nokey") && err.contains("--set-replica-identity-full"),
        "{err}"
    );
    assert_eq!(
        sql(
            &src,
            "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
        ),
        "0",
        "a refused run left a slot"
    );
}

#[test]
fn killed_init_with_sync_starts_over_and_leaves_no_gap() {
    let (src, _) = fresh_source_db();
    script(&src, SOURCE);
    let (dst, _) = fresh_target_db();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, src) = (stop.clone(), src.clone());
        std::thread::spawn(move || {
            let mut i = 5_000_000;
            while !stop.load(Ordering::Relaxed) {
                write_once(&src, i);
                i += 1;
            }
        })
    };
    let args = [
        "init",
        "--source",
        &src,
        "--target",
        &dst,
        "-y",
        "--set-replica-identity-full",
        "--subscription",
        "crash_test_sub",
        "--publication",
        "crash_test_pub",
    ];
    // Kill the first run once the slot exists (the copy is under way).
    let mut child = crate::harness::cli()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while sql(
        &src,
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'crash_test_sub'",
    ) == "0"
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no slot appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    wait_equal(&src, &dst, Duration::from_secs(60));
    sql(&dst, "DROP SUBSCRIPTION crash_test_sub");
}

#[test]
fn row_filters_apply_to_the_replicated_changes() {
    let (src, _) = fresh_source_db();
    script(
        &src,
        "CREATE TABLE orders (id int PRIMARY KEY, region text NOT NULL);
         INSERT INTO orders SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END
           FROM generate_series(1, 1000) g;",
    );
    let (dst, _) = fresh_target_db();
    let (code, out, err) = run(&[
        "init",
        "--source",
        &src,
        "--target",
        &dst,
        "-y",
        "--table-filter",
        "orders:region = 'eu'",
        "--subscription",
        "filter_test_sub",
        "--publication",
        "filter_test_pub",
    ]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    sql(
        &src,
        "INSERT INTO orders SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END
           FROM generate_series(1001, 1100) g",
    );
    let expected = "SELECT count(*), sum(id) FROM orders WHERE region = 'eu'";
    let started = Instant::now();
    while sql(&dst, "SELECT count(*), sum(id) FROM orders") != sql(&src, expected) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "target {} vs source filtered {}",
            sql(&dst, "SELECT count(*), sum(id) FROM orders"),
            sql(&src, expected)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        sql(&dst, "SELECT count(*) FROM orders WHERE region <> 'eu'"),
        "0"
    );
    sql(&dst, "DROP SUBSCRIPTION filter_test_sub");
}

#[test]
fn validate_checks_what_sync_needs() {
    let (src, _) = fresh_source_db();
    script(&src, "CREATE TABLE t (id int PRIMARY KEY);");
    let (dst, _) = fresh_target_db();
    let (code, out, err) = run(&["validate", "--source", &src, "--target", &dst]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for line in [
        "✓ sync: source wal_level: logical",
        "✓ sync: source REPLICATION privilege",
        "✓ sync: target can create subscriptions",
    ] {
        assert!(out.contains(line), "no `{line}` in:\n{out}");
    }
    script(&src, "CREATE TABLE nokey (a int);");
    let (code, out, _) = run(&["validate", "--source", &src, "--target", &dst]);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains("✗ sync: replica identity") && out.contains("public.nokey"),
        "{out}"
    );
    let (code, out, _) = run(&["validate", "--source", &src, "--target", &dst, "--no-sync"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("sync:"), "{out}");
}

/// A commit the source has inserted but not yet written out (asynchronous commit, and a WAL
/// writer that waits 10 s) is still waited for by `--cutover`: its goal is the WAL insert
/// position, not the write position, which stops before that commit.
#[test]
fn cutover_waits_for_a_commit_not_yet_written_out() {
    // Its own source cluster: the WAL writer must be slow for the commit to stay unwritten.
    let source = ThrowawayPg::start(&[
        "fsync=off",
        "synchronous_commit=off",
        "wal_writer_delay=10000",
    ])
    .unwrap();
    sql(&source.url("postgres"), "CREATE DATABASE late_commit");
    let src = source.url("late_commit");
    let (dst, names) = synced_one_row(&src, "late_commit");
    sql(&src, "INSERT INTO t VALUES (2)");
    let mut cutover = vec!["sync", "--source", &src, "--target", &dst, "--cutover"];
    cutover.extend(names.iter().map(String::as_str));
    let (code, out, err) = run(&cutover);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        sql(&dst, "SELECT string_agg(id::text, ',' ORDER BY id) FROM t"),
        "1,2"
    );
}

/// Table `t` holding row 1 in `src`, copied by `init` into a fresh target database with
/// continuous sync through subscription `{prefix}_sub` and publication `{prefix}_pub`: the
/// target's URL and the `--subscription … --publication …` flags.
fn synced_one_row(src: &str, prefix: &str) -> (String, Vec<String>) {
    script(
        src,
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    let (dst, _) = fresh_target_db();
    let names = vec![
        "--subscription".to_string(),
        format!("{prefix}_sub"),
        "--publication".into(),
        format!("{prefix}_pub"),
    ];
    let mut args = vec!["init", "--source", src, "--target", &dst, "-y"];
    args.extend(names.iter().map(String::as_str));
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    (dst, names)
}
