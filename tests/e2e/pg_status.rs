//! `status` against logical replication set up by hand in SQL, the way continuous sync sets it
//! up: publication on the source (the shared cluster, or a private one where the test stops it),
//! subscription on the target cluster (`pg_pair`). Every test uses its own databases and
//! uniquely named subscriptions and slots (slot names are per cluster), and drops them.

use crate::harness::{cli, output, run};
use crate::pg_pair::{fresh_source_db, fresh_target_db, script, sql};
use serde_json::Value;
use seren_replicator::throwaway::ThrowawayPg;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Table `t` replicated from a source database to a target database; the subscription (and
/// with it the slot, when the source still answers) is dropped with the guard.
struct Replication {
    target: String,
    sub: String,
}

impl Replication {
    fn start(source: &str, target: &str) -> Replication {
        let sub = format!("seren_replication_sub_{:08x}", rand::random::<u32>());
        script(
            source,
            "CREATE TABLE t (id int PRIMARY KEY, v text);
             INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 100) g;
             CREATE PUBLICATION seren_replication_pub FOR TABLE t;",
        );
        script(target, "CREATE TABLE t (id int PRIMARY KEY, v text);");
        let r = Replication {
            target: target.into(),
            sub,
        };
        // Its own statement: CREATE SUBSCRIPTION cannot run in a transaction block.
        sql(
            target,
            &format!(
                "CREATE SUBSCRIPTION {} CONNECTION '{source}' PUBLICATION seren_replication_pub",
                r.sub
            ),
        );
        wait_for("the initial copy and the apply worker", || {
            sql(
                target,
                &format!(
                    "SELECT (SELECT count(*) FROM pg_subscription_rel WHERE srsubstate = 'r') = 1 \
                       AND (SELECT count(*) FROM pg_stat_subscription WHERE subname = '{}' \
                            AND pid IS NOT NULL AND relid IS NULL) = 1",
                    r.sub
                ),
            ) == "t"
        });
        // Streaming: a row written now arrives.
        sql(source, "INSERT INTO t VALUES (1000, 'streamed')");
        wait_for("a streamed row", || {
            sql(target, "SELECT count(*) FROM t WHERE id = 1000") == "1"
        });
        r
    }
}

impl Drop for Replication {
    fn drop(&mut self) {
        // DROP SUBSCRIPTION also drops the slot on the source; when the source is gone, detach
        // the slot first (nothing left to drop there).
        let quiet = |url: &str, statements: &[String]| {
            let mut c = Command::new("psql");
            c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url]);
            for s in statements {
                c.args(["-c", s]);
            }
            c.stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let sub = &self.sub;
        if !quiet(
            &self.target,
            &[format!("DROP SUBSCRIPTION IF EXISTS {sub}")],
        ) {
            quiet(
                &self.target,
                &[
                    format!("ALTER SUBSCRIPTION {sub} DISABLE"),
                    format!("ALTER SUBSCRIPTION {sub} SET (slot_name = NONE)"),
                    format!("DROP SUBSCRIPTION {sub}"),
                ],
            );
        }
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `status` as text: (exit code, stdout, stderr).
fn status(source: &str, target: &str) -> (i32, String, String) {
    run(&["status", "--source", source, "--target", target])
}

/// `status --json`: (exit code, the report).
fn status_json(source: &str, target: &str) -> (i32, Value) {
    let (code, out, err) = run(&["status", "--source", source, "--target", target, "--json"]);
    let v: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("status --json printed no JSON ({e}):\n{out}\n{err}"));
    (code, v)
}

#[test]
fn healthy_subscription_exits_0() {
    let (source, _) = fresh_source_db();
    let (target, _) = fresh_target_db();
    let rep = Replication::start(&source, &target);

    let (code, v) = status_json(&source, &target);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["health"], "healthy");
    assert_eq!(v["source"]["reachable"], true);
    assert_eq!(v["target"]["reachable"], true);
    assert!(v["checked_at"].as_str().unwrap().ends_with('Z'));
    let subs = v["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 1, "{v:#}");
    let s = &subs[0];
    assert_eq!(s["name"], rep.sub.as_str());
    assert_eq!(s["health"], "healthy", "{s:#}");
    assert_eq!(s["problems"].as_array().unwrap().len(), 0);
    assert_eq!(s["enabled"], true);
    assert_eq!(s["streaming"], true);
    assert!(s["worker"]["pid"].as_i64().unwrap() > 0);
    assert_eq!(s["tables"]["total"], 1);
    assert_eq!(s["tables"]["ready"], 1);
    assert_eq!(s["slot"]["name"], rep.sub.as_str());
    assert_eq!(s["slot"]["active"], true);
    assert!(s["slot"]["retained_wal_bytes"].as_i64().unwrap() >= 0);
    assert!(s["lag_bytes"].as_i64().unwrap() >= 0);
    assert!(s["lag_seconds"].as_f64().is_none_or(|x| x < 60.0), "{s:#}");
    assert!(s["walsender"]["pid"].as_i64().unwrap() > 0);
    assert_eq!(s["publication_status"][0]["name"], "seren_replication_pub");
    assert_eq!(s["publication_status"][0]["exists"], true);
    assert_eq!(s["publication_status"][0]["tables"], 1);
    if v["target"]["version"].as_i64().unwrap() >= 150000 {
        assert_eq!(s["errors"]["apply_error_count"], 0);
        assert_eq!(s["errors"]["sync_error_count"], 0);
    }

    let (code, out, err) = status(&source, &target);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("✓ {}", rep.sub)), "{out}");
    assert!(out.contains("1 of 1 ready"), "{out}");
    assert!(out.contains("1 subscription(s) healthy"), "{out}");

    // --watch refreshes until Ctrl-C, with a timestamped separator when not on a terminal.
    let child = cli()
        .args([
            "status", "--source", &source, "--target", &target, "--watch", "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let (code, out, err) = output(child.wait_with_output().unwrap());
    assert_eq!(code, 0, "{out}{err}");
    let refreshes = out.matches("── ").count();
    assert!(refreshes >= 2, "{out}");
    assert_eq!(out.matches("subscription(s) healthy").count(), refreshes);
    assert!(out.contains(" UTC ──"), "{out}");
}

#[test]
fn disabled_subscription_falls_behind() {
    let (source, _) = fresh_source_db();
    let (target, _) = fresh_target_db();
    let rep = Replication::start(&source, &target);
    sql(&target, &format!("ALTER SUBSCRIPTION {} DISABLE", rep.sub));
    wait_for("the walsender to let go of the slot", || {
        sql(
            &source,
            &format!(
                "SELECT active FROM pg_replication_slots WHERE slot_name = '{}'",
                rep.sub
            ),
        ) == "f"
    });
    sql(
        &source,
        "INSERT INTO t SELECT g, 'late' FROM generate_series(2000, 2999) g",
    );

    let (code, v) = status_json(&source, &target);
    assert_eq!(code, 5, "{v:#}");
    assert_eq!(v["ok"], false);
    let s = &v["subscriptions"][0];
    assert_eq!(s["enabled"], false);
    assert_eq!(s["streaming"], false);
    assert_eq!(s["health"], "broken");
    assert_eq!(s["slot"]["active"], false);
    assert!(s["lag_bytes"].as_i64().unwrap() > 0, "{s:#}");
    let reason = s["problems"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("disabled"), "{reason}");
    assert!(v["orphaned_slots"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["slot"] != rep.sub.as_str()));

    let (code, out, _) = status(&source, &target);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("DISABLED"), "{out}");
    assert!(
        out.contains(&format!("ALTER SUBSCRIPTION \"{}\" ENABLE;", rep.sub)),
        "{out}"
    );
    assert!(out.contains("1 of 1 subscription(s) not healthy"), "{out}");
}

#[test]
fn blocked_apply_worker_is_lagging() {
    let (source, _) = fresh_source_db();
    let (target, _) = fresh_target_db();
    let rep = Replication::start(&source, &target);
    // Hold a lock the apply worker needs, so it stops applying while the source writes on.
    let mut lock = Command::new("psql")
        .args(["-X", "-q", "-d", &target])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = lock.stdin.as_mut().unwrap();
        writeln!(stdin, "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE;").unwrap();
        stdin.flush().unwrap();
    }
    wait_for("the lock", || {
        sql(
            &target,
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
             WHERE c.relname = 't' AND l.mode = 'AccessExclusiveLock' AND l.granted",
        ) == "1"
    });
    sql(
        &source,
        "INSERT INTO t SELECT g, 'blocked' FROM generate_series(5000, 5999) g",
    );
    std::thread::sleep(Duration::from_secs(3));
    let (code, out, err) = run(&[
        "status",
        "--source",
        &source,
        "--target",
        &target,
        "--json",
        "--max-lag",
        "1",
    ]);
    let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    lock.kill().unwrap();
    lock.wait().unwrap();
    assert_eq!(code, 5, "{v:#}");
    let s = &v["subscriptions"][0];
    assert_eq!(s["health"], "lagging", "{s:#}");
    assert!(s["lag_bytes"].as_i64().unwrap() > 0, "{s:#}");
    // Once the lock is gone it catches up and is healthy again.
    wait_for("catch-up", || {
        sql(&target, "SELECT count(*) FROM t WHERE v = 'blocked'") == "1000"
    });
    drop(rep);
}

#[test]
fn stopped_source_is_reported_with_the_target_side() {
    let own = ThrowawayPg::start(&[
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
    ])
    .expect("start a source PostgreSQL");
    let source = own.url("postgres");
    let (target, _) = fresh_target_db();
    let rep = Replication::start(&source, &target);
    drop(own);

    let (code, v) = status_json(&source, &target);
    assert_eq!(code, 5, "{v:#}");
    assert_eq!(v["source"]["reachable"], false);
    assert!(v["source"]["error"]
        .as_str()
        .unwrap()
        .contains("cannot connect"));
    assert_eq!(v["target"]["reachable"], true);
    let s = &v["subscriptions"][0];
    assert_eq!(s["name"], rep.sub.as_str());
    assert_eq!(s["health"], "broken");
    assert_eq!(s["enabled"], true);
    assert_eq!(s["tables"]["ready"], 1);
    assert!(s["slot"].is_null());
    let reasons: Vec<&str> = s["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reason"].as_str().unwrap())
        .collect();
    // The root cause comes first.
    assert!(reasons[0].starts_with("source unreachable"), "{reasons:?}");
    assert!(
        !reasons.iter().any(|r| r.contains("does not exist")),
        "{reasons:?}"
    );

    let (code, out, _) = status(&source, &target);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("UNREACHABLE"), "{out}");
    assert!(out.contains(&format!("✗ {}", rep.sub)), "{out}");
    assert!(out.contains("1 of 1 ready"), "{out}");
    assert!(out.contains("unknown (source unreachable)"), "{out}");
}

#[test]
fn nothing_set_up_says_how_to_start() {
    let (source, _) = fresh_source_db();
    let (target, _) = fresh_target_db();
    let (code, out, err) = status(&source, &target);
    assert_eq!(code, 5, "{out}{err}");
    assert!(
        out.contains("no replication set up: run init without --no-sync"),
        "{out}"
    );
    let (code, v) = status_json(&source, &target);
    assert_eq!(code, 5);
    assert_eq!(v["ok"], false);
    assert!(v["health"].is_null());
    assert_eq!(v["subscriptions"].as_array().unwrap().len(), 0);
    assert_eq!(
        v["hint"],
        "no replication set up: run init without --no-sync"
    );

    // An unreachable target: the source side is still read, nothing is claimed about the rest.
    let nowhere = format!(
        "postgresql://postgres@127.0.0.1:{}/x",
        crate::harness::free_port()
    );
    let (code, v) = status_json(&source, &nowhere);
    assert_eq!(code, 5, "{v:#}");
    assert_eq!(v["source"]["reachable"], true);
    assert!(v["source"]["version"].as_i64().unwrap() >= 120000);
    assert_eq!(v["target"]["reachable"], false);
    assert!(v["hint"].is_null());
    let (code, out, _) = status(&source, &nowhere);
    assert_eq!(code, 5);
    assert!(
        out.contains("subscriptions unknown: the target is unreachable"),
        "{out}"
    );
}

#[test]
fn orphaned_slot_is_reported_with_the_sql_that_drops_it() {
    let (source, _) = fresh_source_db();
    let (target, _) = fresh_target_db();
    let slot = format!("seren_orphan_{:08x}", rand::random::<u32>());
    sql(
        &source,
        &format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"),
    );
    struct DropSlot<'a>(&'a str, &'a str);
    impl Drop for DropSlot<'_> {
        fn drop(&mut self) {
            let _ = Command::new("psql")
                .args(["-X", "-q", "-d", self.0, "-c"])
                .arg(format!("SELECT pg_drop_replication_slot('{}')", self.1))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    let _cleanup = DropSlot(&source, &slot);
    let drop_sql = format!("SELECT pg_drop_replication_slot('{slot}');");

    let (code, out, _) = status(&source, &target);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains(&format!("warning: slot {slot} on the source")),
        "{out}"
    );
    assert!(out.contains(&drop_sql), "{out}");

    let (_, v) = status_json(&source, &target);
    let orphan = v["orphaned_slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["slot"] == slot.as_str())
        .unwrap_or_else(|| panic!("{slot} not reported: {v:#}"))
        .clone();
    assert_eq!(orphan["drop_sql"], drop_sql.as_str());
    assert!(orphan["retained_wal_bytes"].as_i64().unwrap() >= 0);

    // The statement it prints works, and the warning goes away.
    sql(&source, drop_sql.trim_end_matches(';'));
    let (_, out, _) = status(&source, &target);
    assert!(!out.contains(&slot), "{out}");
}
