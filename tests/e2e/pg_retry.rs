//! Transient failures during a PostgreSQL → PostgreSQL copy: the target terminates the
//! connection of a COPY in flight, or the whole target server restarts mid-COPY; `init` rolls
//! that partition back, retries it (reconnecting for up to ~30 s), and finishes with the target
//! equal to the source.

use crate::harness::cli;
use crate::pg_pair::{assert_same_data, fresh_source_db, fresh_target_db, script, sql};
use seren_replicator::throwaway::ThrowawayPg;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn terminated_copy_connection_is_retried() {
    let (dst, _) = fresh_target_db();
    copy_interrupted(&dst, || {
        sql(
            &dst,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'COPY %FROM STDIN%'",
        );
    });
}

/// The target server stops (fast shutdown, which ends every session) while a COPY runs and
/// stays down for 10 s, longer than the three retries of old (7 s in all) lasted.
#[test]
fn target_restarted_mid_copy_is_waited_for() {
    // Its own cluster: the shared target cluster serves other tests meanwhile.
    let target = ThrowawayPg::start(&["fsync=off", "synchronous_commit=off"]).unwrap();
    sql(&target.url("postgres"), "CREATE DATABASE restarted");
    copy_interrupted(&target.url("restarted"), || {
        target.restart(Duration::from_secs(10)).unwrap();
    });
}

/// `init -v` copies a 600,000-row table into `dst`; `interrupt` runs as soon as the target
/// shows the COPY in flight. The run must log a retry, succeed, and leave the target equal to
/// the source.
fn copy_interrupted(dst: &str, interrupt: impl FnOnce()) {
    let (src, _) = fresh_source_db();
    script(
        &src,
        "CREATE TABLE t (id bigint PRIMARY KEY, s text);
         INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 600000) g;",
    );
    let child = cli()
        .args([
            "-v",
            "init",
            "--source",
            &src,
            "--target",
            dst,
            "--no-sync",
            "-y",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let started = Instant::now();
    let mut copying = false;
    while started.elapsed() < Duration::from_secs(60) {
        let n = sql(
            dst,
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'COPY %FROM STDIN%'",
        );
        if n != "0" {
            copying = true;
            interrupt();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(copying, "never saw the COPY running; stderr:\n{stderr}");
    assert!(out.status.success(), "init failed:\n{stderr}");
    assert!(
        stderr.contains("retrying the partition"),
        "no retry was logged:\n{stderr}"
    );
    let digests = assert_same_data(&src, dst);
    assert_eq!(digests["public.t"].0, 600_000);
}
