//! Binlog change capture (writes during and after `init`, a sync killed mid-stream and
//! restarted) and periodic refresh, through `init` then `sync`.

use super::{harness, mariadb};
use harness::Background;
use std::thread;
use std::time::Duration;

/// Writes of every kind: inserts, an update of a value and of a key, a delete, a multi-row
/// transaction, and a rolled-back transaction that must never appear.
fn writes(db: &str, base: u32) {
    mariadb::sql(
        db,
        &format!(
            "INSERT INTO t VALUES ({a}, 'new {a}', NULL, '2024-01-01 00:00:00.5', 'b,c');
             UPDATE t SET v = 'changed {a}', n = -1 WHERE id = 2;
             UPDATE t SET id = {k} WHERE id = 3;
             DELETE FROM t WHERE id = 4;
             START TRANSACTION;
             INSERT INTO t VALUES ({b}, 'txn', 8388607, NULL, ''), ({c}, 'txn', -8388608, NULL, 'a');
             UPDATE t SET n = n + 1 WHERE id = 1;
             COMMIT;
             START TRANSACTION; INSERT INTO t VALUES ({d}, 'rolled back', 1, NULL, ''); ROLLBACK;
             INSERT INTO log VALUES ('w {a}'), ('x'); DELETE FROM log WHERE s = 'x';",
            a = base + 1,
            b = base + 2,
            c = base + 3,
            d = base + 4,
            k = base + 5
        ),
    );
}

fn setup() -> (String, String) {
    let (url, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40), n MEDIUMINT,
                         ts TIMESTAMP(3) NULL, s SET('a','b','c'));
         CREATE TABLE log (s VARCHAR(10));
         INSERT INTO t SELECT seq, concat('row ', seq), seq, NULL, 'a' FROM seq_1_to_2000;",
    );
    (url, db)
}

fn verify(url: &str, target: &str, mode: &str) {
    harness::run_ok(&[
        "verify", "--source", url, "--target", target, "--mode", mode,
    ]);
}

#[test]
fn binlog_sync_applies_writes_made_during_and_after_init() {
    for mode in ["jsonb", "native"] {
        let (url, db) = setup();
        let (target, _) = harness::fresh_db();
        let writer_db = db.clone();
        let writer = thread::spawn(move || writes(&writer_db, 10_000));
        let out = harness::run_ok(&[
            "init", "-y", "--source", &url, "--target", &target, "--mode", mode,
        ]);
        writer.join().unwrap();
        assert!(
            !out.contains("refresh"),
            "binlog capture must be available: {out}"
        );
        writes(&db, 20_000);
        harness::run_ok(&["sync", "--once", "--source", &url, "--target", &target]);
        verify(&url, &target, mode);
        // A running sync killed mid-stream, then restarted: still exact, no duplicates.
        let sync = Background::start(&["sync", "--source", &url, "--target", &target]);
        for round in 0..5 {
            writes(&db, 30_000 + round * 10);
        }
        sync.wait_until("applying the first writes", Duration::from_secs(60), || {
            harness::sql(&target, "SELECT count(*) FROM t WHERE id::text = '30041'") == "1"
        });
        for round in 5..10 {
            writes(&db, 30_000 + round * 10);
        }
        sync.kill();
        writes(&db, 40_000);
        harness::run_ok(&["sync", "--once", "--source", &url, "--target", &target]);
        verify(&url, &target, mode);
        let key = if mode == "jsonb" { "id" } else { "id::text" };
        assert_eq!(
            harness::sql(
                &target,
                &format!("SELECT count(*) - count(DISTINCT {key}) FROM t")
            ),
            "0"
        );
        assert_eq!(
            harness::sql(&target, "SELECT count(*) FROM t"),
            mariadb::sql(&db, "SELECT count(*) FROM t")
        );
    }
}

#[test]
fn without_replication_privilege_sync_refreshes() {
    let (_, db) = setup();
    let user = format!("u_{:08x}", rand::random::<u32>());
    mariadb::sql(
        "",
        &format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; GRANT SELECT, RELOAD ON *.* TO '{user}'@'%'"
        ),
    );
    let url = mariadb::url(&user, "pw", &db);
    let (target, _) = harness::fresh_db();
    let (code, out, err) = harness::run(&["init", "-y", "--source", &url, "--target", &target]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        (out.clone() + &err).contains("REPLICATION SLAVE"),
        "the fallback must say what is missing: {out}{err}"
    );
    writes(&db, 10_000);
    harness::run_ok(&["sync", "--once", "--source", &url, "--target", &target]);
    verify(&url, &target, "jsonb");
}

#[test]
fn binlog_not_in_row_format_says_how_to_fix_it() {
    let port = mariadb::server_with(&["--binlog-format=MIXED"]);
    mariadb::sql_on(
        port,
        "",
        "CREATE DATABASE m; CREATE TABLE m.t (id INT PRIMARY KEY)",
    );
    let url = format!("mysql://root@127.0.0.1:{port}/m");
    let (target, _) = harness::fresh_db();
    let (code, out, err) = harness::run(&["init", "-y", "--source", &url, "--target", &target]);
    assert_eq!(code, 0, "{out}{err}");
    let all = out + &err;
    assert!(
        all.contains("binlog_format is MIXED") && all.contains("SET GLOBAL binlog_format = 'ROW'"),
        "{all}"
    );
}
