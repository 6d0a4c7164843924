//! SQLite → PostgreSQL in JSONB mode: every encoding tag, ids, identifiers, empty tables.

use crate::harness::{fresh_db, psql, run_ok, tempdir};
use rusqlite::Connection;
use serde_json::{json, Value};

fn data(db: &str, table_sql: &str, id: &str) -> Value {
    let out = psql(
        db,
        &format!("SELECT data::text FROM {table_sql} WHERE id = '{id}'"),
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("row {id} of {table_sql}: {e}: {out:?}"))
}

#[test]
fn every_jsonb_tag_round_trips() {
    let dir = tempdir();
    let src = dir.path().join("tags.db");
    let c = Connection::open(&src).unwrap();
    c.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v);
         INSERT INTO t VALUES
           (1, 42), (2, -9223372036854775808), (3, 9223372036854775807), (4, 0.1),
           (5, 1e999), (6, -1e999), (7, -0.0), (8, 'plain ünïcode 🚀'),
           (9, 'quote \" backslash \\ tab' || char(9) || 'nl' || char(10)),
           (10, 'a' || char(0) || 'b'), (11, CAST(x'C328FF' AS TEXT)), (12, x'00FF10'),
           (13, NULL), (14, ''), (15, x''), (16, 1.5e300), (17, 123456789.125);",
    )
    .unwrap();
    drop(c);
    let (url, db) = fresh_db();
    run_ok(&[
        "init",
        "--source",
        src.to_str().unwrap(),
        "--target",
        &url,
        "-y",
    ]);
    let v = |id: &str| data(&db, "t", id)["v"].clone();
    assert_eq!(v("1"), json!(42));
    assert_eq!(
        psql(&db, "SELECT data->>'v' FROM t WHERE id = '2'"),
        "-9223372036854775808"
    );
    assert_eq!(
        psql(&db, "SELECT data->>'v' FROM t WHERE id = '3'"),
        "9223372036854775807"
    );
    assert_eq!(v("4"), json!(0.1));
    assert_eq!(v("5"), json!({"_type": "float", "value": "Infinity"}));
    assert_eq!(v("6"), json!({"_type": "float", "value": "-Infinity"}));
    assert_eq!(v("7"), json!({"_type": "float", "value": "-0.0"}));
    assert_eq!(v("8"), json!("plain ünïcode 🚀"));
    assert_eq!(v("9"), json!("quote \" backslash \\ tab\tnl\n"));
    // base64("a\0b") and base64 of the invalid UTF-8 bytes C3 28 FF
    assert_eq!(v("10"), json!({"_type": "bytes", "data": "YQBi"}));
    assert_eq!(v("11"), json!({"_type": "bytes", "data": "wyj/"}));
    assert_eq!(v("12"), json!({"_type": "blob", "data": "AP8Q"}));
    assert_eq!(v("13"), Value::Null);
    assert_eq!(v("14"), json!(""));
    assert_eq!(v("15"), json!({"_type": "blob", "data": ""}));
    assert_eq!(
        psql(
            &db,
            "SELECT (data->>'v')::float8 = 1.5e300 FROM t WHERE id = '16'"
        ),
        "t"
    );
    assert_eq!(
        psql(&db, "SELECT data->>'v' FROM t WHERE id = '17'"),
        "123456789.125"
    );
    // The spec's layout: every row tagged with its source, timestamped, keys indexed.
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM t WHERE _source_type = 'sqlite' AND _migrated_at <= now()"
        ),
        "17"
    );
    let indexes = psql(
        &db,
        "SELECT indexdef FROM pg_indexes WHERE tablename = 't' ORDER BY indexname",
    );
    assert!(indexes.contains("USING gin (data)"), "{indexes}");
    assert!(indexes.contains("(_migrated_at)"), "{indexes}");
    assert!(
        indexes.contains("UNIQUE INDEX t_pkey ON public.t USING btree (id)"),
        "{indexes}"
    );
    let verify = run_ok(&[
        "verify",
        "--source",
        src.to_str().unwrap(),
        "--target",
        &url,
    ]);
    assert!(verify.contains("✓ all 1 tables match"), "{verify}");
}

#[test]
fn ids_from_keys_composite_keys_and_rowid() {
    let dir = tempdir();
    let src = dir.path().join("ids.db");
    let c = Connection::open(&src).unwrap();
    c.execute_batch(
        "CREATE TABLE single (code TEXT PRIMARY KEY, n INTEGER);
         INSERT INTO single VALUES ('abc', 1), ('x y', 2);
         CREATE TABLE pair (a INTEGER, b TEXT, n INTEGER, PRIMARY KEY (a, b)) WITHOUT ROWID;
         INSERT INTO pair VALUES (1, 'a', 10), (1, 'b', 11), (2, 'a\"q', 12);
         CREATE TABLE nokey (n INTEGER, s TEXT);
         INSERT INTO nokey VALUES (5, 'x'), (5, 'x'), (6, NULL);
         CREATE TABLE empty (id INTEGER PRIMARY KEY, s TEXT);",
    )
    .unwrap();
    drop(c);
    let (url, db) = fresh_db();
    run_ok(&[
        "init",
        "--source",
        src.to_str().unwrap(),
        "--target",
        &url,
        "-y",
    ]);
    assert_eq!(
        psql(&db, "SELECT string_agg(id, '|' ORDER BY id) FROM single"),
        "abc|x y"
    );
    assert_eq!(
        psql(&db, "SELECT string_agg(id, '|' ORDER BY id) FROM pair"),
        r#"[1,"a"]|[1,"b"]|[2,"a\"q"]"#
    );
    assert_eq!(
        data(&db, "pair", r#"[2,"a\"q"]"#),
        json!({"a": 2, "b": "a\"q", "n": 12})
    );
    // No key: the rowid identifies rows, and is not part of the data.
    assert_eq!(
        psql(&db, "SELECT string_agg(id, '|' ORDER BY id) FROM nokey"),
        "1|2|3"
    );
    assert_eq!(data(&db, "nokey", "3"), json!({"n": 6, "s": null}));
    assert_eq!(psql(&db, "SELECT count(*) FROM empty"), "0");
    assert_eq!(
        psql(&db, "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'empty'"),
        "id,data,_source_type,_migrated_at"
    );
}

#[test]
fn awkward_identifiers_and_target_schema() {
    let dir = tempdir();
    let src = dir.path().join("names.sqlite3");
    let c = Connection::open(&src).unwrap();
    c.execute_batch(
        "CREATE TABLE \"user\" (id INTEGER PRIMARY KEY, \"order\" TEXT, \"Mixed Case\" INTEGER);
         INSERT INTO \"user\" VALUES (1, 'first', 7);
         CREATE TABLE \"We\"\"ird Tablé 🚀\" (\"col with space\" TEXT PRIMARY KEY, \"select\" REAL);
         INSERT INTO \"We\"\"ird Tablé 🚀\" VALUES ('k', 2.5);",
    )
    .unwrap();
    drop(c);
    let (url, db) = fresh_db();
    let source = format!("sqlite://{}", src.display());
    run_ok(&[
        "init",
        "--source",
        &source,
        "--target",
        &url,
        "--target-schema",
        "Target \"Schema\"",
        "-y",
    ]);
    assert_eq!(
        psql(&db, r#"SELECT data::text FROM "Target ""Schema"""."user""#),
        r#"{"id": 1, "order": "first", "Mixed Case": 7}"#
    );
    assert_eq!(
        psql(
            &db,
            r#"SELECT id || ' ' || (data->>'select') FROM "Target ""Schema"""."We""ird Tablé 🚀""#
        ),
        "k 2.5"
    );
}
