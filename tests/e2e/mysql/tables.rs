//! Table-level behaviour: awkward names, views, empty tables, tables without a key, and
//! partitioned reads.

use super::{data, harness, init, mariadb};
use serde_json::json;

#[test]
fn awkward_names_views_and_empty_tables() {
    let (url, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "CREATE TABLE `my table` (`the id` INT PRIMARY KEY, `we``ird` VARCHAR(10), `Ünï` INT);
         CREATE TABLE `select` (`order` INT PRIMARY KEY, `from` INT, KEY `by from` (`from`));
         CREATE TABLE `Empty` (id INT PRIMARY KEY);
         CREATE VIEW `v` AS SELECT * FROM `select`;
         INSERT INTO `my table` VALUES (1, 'a', 10), (2, 'b', NULL);
         INSERT INTO `select` VALUES (5, 6);",
    );
    let (target, out) = init(&url, "jsonb", &[]);
    assert!(out.contains("views are not copied; skipped: v"), "{out}");
    assert_eq!(
        data(&target, "my table", "2"),
        json!({"the id": 2, "we`ird": "b", "Ünï": null})
    );
    assert_eq!(data(&target, "select", "5"), json!({"order": 5, "from": 6}));
    assert_eq!(harness::sql(&target, "SELECT count(*) FROM \"Empty\""), "0");
    assert_eq!(
        harness::sql(&target, "SELECT count(*) FROM pg_class WHERE relname = 'v'"),
        "0"
    );

    let (target, _) = init(&url, "native", &[]);
    assert_eq!(
        harness::sql(
            &target,
            "SELECT \"we`ird\" || \"Ünï\" FROM \"my table\" WHERE \"the id\" = 1"
        ),
        "a10"
    );
    let index = harness::sql(
        &target,
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'select' AND indexdef NOT LIKE '%UNIQUE%'",
    );
    assert!(index.contains("(\"from\")"), "{index}");
    // verify reads the layout init recorded in the target: `--mode native` need not be repeated.
    let (code, out, err) = harness::run(&["verify", "--source", &url, "--target", &target]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("all 3 tables match"), "{out}");
    assert!(
        err.contains("init wrote these tables in native mode"),
        "{err}"
    );
}

#[test]
fn tables_without_a_key_get_stable_hash_ids() {
    let (url, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "CREATE TABLE log (msg VARCHAR(20), n INT);
         INSERT INTO log VALUES ('same', 1), ('same', 1), ('other', 2), (NULL, NULL);",
    );
    let (target, _) = init(&url, "jsonb", &[]);
    assert_eq!(harness::sql(&target, "SELECT count(*) FROM log"), "4");
    assert_eq!(
        harness::sql(
            &target,
            "SELECT count(*) FROM log WHERE id ~ '^[0-9a-f]{32}-2$'"
        ),
        "1"
    );
    assert_eq!(
        harness::sql(
            &target,
            "SELECT count(DISTINCT id) FROM log WHERE data->>'msg' = 'same'"
        ),
        "2"
    );
    // The same data gives the same ids on every run.
    let (again, _) = init(&url, "jsonb", &[]);
    let ids = |t: &str| harness::sql(t, "SELECT string_agg(id, ',' ORDER BY id) FROM log");
    assert_eq!(ids(&target), ids(&again));
    let (native, _) = init(&url, "native", &[]);
    assert_eq!(
        harness::sql(&native, "SELECT count(*) FROM log WHERE msg = 'same'"),
        "2"
    );
}

#[test]
fn partitioned_read_equals_single_stream_read() {
    let (url, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(20), x DOUBLE);
         INSERT INTO big SELECT seq, concat('row ', seq), seq / 7 FROM seq_1_to_20000;
         ANALYZE TABLE big;",
    );
    for mode in ["jsonb", "native"] {
        let (split, _) = init(&url, mode, &["--partition-rows", "3000"]);
        let (_, plan) = init(
            &url,
            mode,
            &["--partition-rows", "3000", "--dry-run", "--json"],
        );
        let json = plan
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or_default();
        let report: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
        let partitions = report["tables"][0]["partitions"]
            .as_array()
            .map_or(0, Vec::len);
        assert!(partitions >= 6, "expected about 7 partitions: {plan}");
        let (whole, _) = init(&url, mode, &[]);
        let digest = |t: &str| {
            let q = match mode {
                "jsonb" => "SELECT count(*) || ' ' || md5(string_agg(id || data::text, ',' ORDER BY id)) FROM big",
                _ => "SELECT count(*) || ' ' || md5(string_agg(id || v || x, ',' ORDER BY id)) FROM big",
            };
            harness::sql(t, q)
        };
        assert!(digest(&split).starts_with("20000 "));
        assert_eq!(digest(&split), digest(&whole));
        harness::run_ok(&[
            "verify", "--source", &url, "--target", &split, "--mode", mode,
        ]);
    }
}

#[test]
fn include_databases_copies_each_into_its_own_schema() {
    let (_, a) = mariadb::fresh_db();
    let (_, b) = mariadb::fresh_db();
    mariadb::sql(
        &a,
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a')",
    );
    mariadb::sql(
        &b,
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'b'), (2, 'b')",
    );
    // The URL names a third database: --include-databases replaces it.
    let (url, _) = mariadb::fresh_db();
    let (target, _) = harness::fresh_db();
    let list = format!("{a},{b}");
    let args = [
        "--source",
        &url,
        "--target",
        &target,
        "--include-databases",
        &list,
        "--mode",
        "native",
    ];
    harness::run_ok(&[&["init", "-y"], &args[..]].concat());
    assert_eq!(
        harness::sql(&target, &format!("SELECT v FROM \"{a}\".t")),
        "a"
    );
    assert_eq!(
        harness::sql(
            &target,
            &format!("SELECT count(*) FROM \"{b}\".t WHERE v = 'b'")
        ),
        "2"
    );
    harness::run_ok(&[&["verify"], &args[..]].concat());
    mariadb::sql(&b, "INSERT INTO t VALUES (3, 'late')");
    let (code, out, _) = harness::run(&[&["verify"], &args[..]].concat());
    assert_ne!(code, 0, "verify must see the new row in {b}: {out}");

    let (code, _, err) = harness::run(&[
        "init",
        "-y",
        "--source",
        &url,
        "--target",
        &target,
        "--include-databases",
        "nope_db",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("nope_db"), "{err}");
}
