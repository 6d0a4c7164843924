//! `sync` and `status` for a source without change capture (SQLite): periodic refresh after
//! `init`, in both modes; readers never see a half-refreshed table; a refresh with nothing to
//! do changes nothing; `sync` without `init`; SIGTERM stops `sync --interval` cleanly.

use crate::harness::{cli, fresh_db, psql, run, run_ok, tempdir};
use rusqlite::Connection;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A source with a keyed table, a table with an awkward name and a text key, and a table
/// without a primary key (JSONB: identified by rowid; native: by the whole row).
fn make_source(path: &std::path::Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER);
         INSERT INTO items VALUES (1, 'one', 10), (2, 'two', 20), (3, 'three', 30);
         CREATE TABLE \"Odd \"\"Name\"\"\" (k TEXT PRIMARY KEY, v REAL);
         INSERT INTO \"Odd \"\"Name\"\"\" VALUES ('a', 1.5), ('b', 2.5);
         CREATE TABLE nokey (a INTEGER, b TEXT);
         INSERT INTO nokey VALUES (1, 'x'), (1, 'x'), (2, 'y');",
    )
    .unwrap();
}

/// Inserts, updates and deletes in every table.
fn change_source(path: &std::path::Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "INSERT INTO items VALUES (4, 'four', 40);
         UPDATE items SET qty = 21 WHERE id = 2;
         DELETE FROM items WHERE id = 3;
         UPDATE \"Odd \"\"Name\"\"\" SET v = 1.75 WHERE k = 'a';
         INSERT INTO \"Odd \"\"Name\"\"\" VALUES ('c', 3.25);
         DELETE FROM nokey WHERE rowid = 1;
         INSERT INTO nokey VALUES (3, 'z');",
    )
    .unwrap();
}

/// (inserted, updated, deleted) per table from `sync --once --json` output.
fn refreshed(out: &str) -> Vec<(String, u64, u64, u64)> {
    let mut t: Vec<_> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "table_refreshed")
        .map(|v| {
            let t = &v["table"];
            (
                t["table"].as_str().unwrap().to_string(),
                t["inserted"].as_u64().unwrap(),
                t["updated"].as_u64().unwrap(),
                t["deleted"].as_u64().unwrap(),
            )
        })
        .collect();
    t.sort();
    t
}

fn refresh_round_trip(mode: &str) {
    let dir = tempdir();
    let src = dir.path().join("app.db");
    make_source(&src);
    let source = src.to_str().unwrap();
    let (url, db) = fresh_db();
    run_ok(&[
        "init", "--source", source, "--target", &url, "--mode", mode, "-y", "-q",
    ]);
    assert_eq!(
        psql(&db, "SELECT method || ' ' || mode || ' ' || (last_refresh_at IS NOT NULL) FROM seren_replicator.source_sync"),
        format!("refresh {mode} true")
    );
    change_source(&src);
    let out = run_ok(&[
        "sync", "--source", source, "--target", &url, "--once", "--json",
    ]);
    let nokey = if mode == "jsonb" {
        // rowid 1 deleted, rowid 4 inserted
        ("nokey".to_string(), 1, 0, 1)
    } else {
        // one (1, 'x') of two deleted, (3, 'z') inserted
        ("nokey".to_string(), 1, 0, 1)
    };
    assert_eq!(
        refreshed(&out),
        vec![
            ("Odd \"Name\"".to_string(), 1, 1, 0),
            ("items".to_string(), 1, 1, 1),
            nokey,
        ],
        "{out}"
    );
    run_ok(&[
        "verify", "--source", source, "--target", &url, "--mode", mode,
    ]);
    if mode == "jsonb" {
        assert_eq!(
            psql(&db, "SELECT string_agg(id || ':' || (data->>'name') || ':' || (data->>'qty'), ' ' ORDER BY id) FROM items"),
            "1:one:10 2:two:21 4:four:40"
        );
        assert_eq!(
            psql(&db, "SELECT string_agg(id || '=' || (data->>'v'), ' ' ORDER BY id) FROM \"Odd \"\"Name\"\"\""),
            "a=1.75 b=2.5 c=3.25"
        );
        assert_eq!(
            psql(
                &db,
                "SELECT string_agg(id || (data->>'a') || (data->>'b'), ' ' ORDER BY id) FROM nokey"
            ),
            "21x 32y 43z"
        );
    } else {
        assert_eq!(
            psql(
                &db,
                "SELECT string_agg(id || ':' || name || ':' || qty, ' ' ORDER BY id) FROM items"
            ),
            "1:one:10 2:two:21 4:four:40"
        );
        assert_eq!(
            psql(
                &db,
                "SELECT string_agg(k || '=' || v, ' ' ORDER BY k) FROM \"Odd \"\"Name\"\"\""
            ),
            "a=1.75 b=2.5 c=3.25"
        );
        assert_eq!(
            psql(
                &db,
                "SELECT string_agg(a || b, ' ' ORDER BY a, b) FROM nokey"
            ),
            "1x 2y 3z"
        );
    }

    // Nothing changed in the source: nothing changes in the target.
    let stamps = if mode == "jsonb" {
        "SELECT string_agg(id || '=' || extract(epoch FROM _migrated_at), ' ' ORDER BY id) FROM items"
    } else {
        "SELECT string_agg(xmin::text, ' ' ORDER BY id) FROM items"
    };
    let before = psql(&db, stamps);
    let out = run_ok(&[
        "sync", "--source", source, "--target", &url, "--once", "--json",
    ]);
    for (table, inserted, updated, deleted) in refreshed(&out) {
        assert_eq!((inserted, updated, deleted), (0, 0, 0), "{table}: {out}");
    }
    assert_eq!(psql(&db, stamps), before);
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM pg_class WHERE relname LIKE '\\_seren%'"
        ),
        "0",
        "no staging table left behind"
    );
}

#[test]
fn refresh_jsonb() {
    refresh_round_trip("jsonb");
}

#[test]
fn refresh_native() {
    refresh_round_trip("native");
}

#[test]
fn readers_never_see_a_partial_refresh() {
    let dir = tempdir();
    let src = dir.path().join("big.db");
    let mut c = Connection::open(&src).unwrap();
    c.execute_batch("CREATE TABLE big (id INTEGER PRIMARY KEY, s TEXT);")
        .unwrap();
    let tx = c.transaction().unwrap();
    {
        let mut st = tx.prepare("INSERT INTO big VALUES (?1, ?2)").unwrap();
        for i in 1..=200_000i64 {
            st.execute(rusqlite::params![i, format!("row {i}")])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    let source = src.to_str().unwrap().to_string();
    let (url, db) = fresh_db();
    run_ok(&["init", "--source", &source, "--target", &url, "-y", "-q"]);
    // 60,000 rows gone, 30,000 new, 50,000 changed: 200,000 → 170,000.
    c.execute_batch(
        "DELETE FROM big WHERE id <= 60000;
         INSERT INTO big SELECT id + 200000, 'new' FROM big WHERE id <= 90000;
         UPDATE big SET s = 'changed' WHERE id > 150000 AND id <= 200000;",
    )
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (seen, done, db) = (seen.clone(), done.clone(), db.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let n = psql(
                    &db,
                    "SELECT count(*) || ' ' || count(*) FILTER (WHERE data->>'s' = 'changed') FROM big",
                );
                seen.lock().unwrap().push(n);
            }
        })
    };
    let started = Instant::now();
    let out = run_ok(&[
        "sync", "--source", &source, "--target", &url, "--once", "-q",
    ]);
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    done.store(true, Ordering::SeqCst);
    reader.join().unwrap();
    assert!(out.is_empty(), "-q prints nothing: {out}");
    let seen = seen.lock().unwrap();
    assert!(
        seen.len() >= 3,
        "the reader ran during the refresh ({took:?})"
    );
    for s in seen.iter() {
        assert!(
            s == "200000 0" || s == "170000 50000",
            "a reader saw a partial table: {s} (all: {seen:?})"
        );
    }
    assert_eq!(seen.last().unwrap(), "170000 50000");
    run_ok(&["verify", "--source", &source, "--target", &url]);
}

#[test]
fn status_of_a_refresh_target() {
    let dir = tempdir();
    let src = dir.path().join("app.db");
    make_source(&src);
    let source = src.to_str().unwrap();
    let (url, _db) = fresh_db();
    run_ok(&[
        "init",
        "--source",
        source,
        "--target",
        &url,
        "--target-schema",
        "copy",
        "-y",
        "-q",
    ]);
    let text = run_ok(&["status", "--source", source, "--target", &url]);
    assert!(text.contains("periodic refresh"), "{text}");
    assert!(text.contains("schema \"copy\""), "{text}");
    let v: serde_json::Value = serde_json::from_str(&run_ok(&[
        "status", "--source", source, "--target", &url, "--json",
    ]))
    .unwrap();
    assert_eq!(v["method"], "refresh", "{v}");
    assert_eq!(v["mode"], "jsonb", "{v}");
    assert_eq!(v["target_schema"], "copy", "{v}");
    let lag = v["lag_seconds"].as_f64().unwrap();
    assert!((0.0..600.0).contains(&lag), "{v}");
    let counts: Vec<(String, i64)> = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().into(),
                t["target_rows"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            ("Odd \"Name\"".into(), 2),
            ("items".into(), 3),
            ("nokey".into(), 3)
        ]
    );
    // A schema it was not copied into.
    let (code, _, err) = run(&[
        "status",
        "--source",
        source,
        "--target",
        &url,
        "--target-schema",
        "public",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("run `seren-replicator init"), "{err}");
}

#[test]
fn sync_without_init_says_to_run_init() {
    let dir = tempdir();
    let src = dir.path().join("app.db");
    make_source(&src);
    let (url, _db) = fresh_db();
    let (code, out, err) = run(&[
        "sync",
        "--source",
        src.to_str().unwrap(),
        "--target",
        &url,
        "--once",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("no sync state"), "{err}");
    assert!(err.contains("run `seren-replicator init"), "{err}");
    let (code, _, err) = run(&[
        "sync",
        "--source",
        src.to_str().unwrap(),
        "--target",
        &url,
        "--interval",
        "5 weeks",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--interval"), "{err}");
}

#[test]
fn sigterm_stops_sync_cleanly() {
    let dir = tempdir();
    let src = dir.path().join("app.db");
    make_source(&src);
    let source = src.to_str().unwrap();
    let (url, db) = fresh_db();
    run_ok(&["init", "--source", source, "--target", &url, "-y", "-q"]);
    let mut child = cli()
        .args([
            "sync",
            "--source",
            source,
            "--target",
            &url,
            "--interval",
            "1s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Wait for two complete passes, changing the source in between.
    let mut passes = 0;
    let mut transcript = String::new();
    while passes < 2 {
        let line = lines.next().expect("sync kept running").unwrap();
        transcript.push_str(&line);
        transcript.push('\n');
        if line.starts_with("refresh complete") {
            passes += 1;
            if passes == 1 {
                Connection::open(&src)
                    .unwrap()
                    .execute_batch("INSERT INTO items VALUES (9, 'nine', 90)")
                    .unwrap();
            }
        }
    }
    assert_eq!(
        psql(&db, "SELECT data->>'name' FROM items WHERE id = '9'"),
        "nine",
        "{transcript}"
    );
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let started = Instant::now();
    let status = child.wait().unwrap();
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    assert_eq!(status.code(), Some(0), "{transcript}{rest:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(rest.iter().any(|l| l.starts_with("stopped")), "{rest:?}");
}
