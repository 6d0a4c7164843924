//! `export` to Parquet, and the round trip PostgreSQL → Parquet → PostgreSQL.

use super::column_types;
use crate::harness::{fresh_db, psql, run, run_ok, tempdir};

/// An order-independent digest of a table's rows as PostgreSQL renders them.
fn digest(db: &str, table: &str) -> String {
    psql(
        db,
        &format!(
            "SET TIME ZONE 'UTC'; SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, \
             E'\\n' ORDER BY t::text)), '-') FROM {table} t"
        ),
    )
}

const SOURCE_TABLES: &str = r#"
CREATE TABLE every (
    id int8 PRIMARY KEY, b bool, i2 int2, i4 int4 NOT NULL, f4 float4, f8 float8,
    n12 numeric(12,3), n numeric, n50 numeric(50,10), s text, bytes bytea, d date, t time,
    ts timestamp, tz timestamptz, u uuid, j jsonb, ai int4[], at text[], an numeric(10,2)[]
);
INSERT INTO every VALUES
 (1, true, -32768, 2147483647, 1.5, 0.1, 123456789.123, 1e-30, 1234567890123456789012345678901234567890.0123456789,
  'héllo "quoted"', '\xdeadbeef', '2024-02-29', '23:59:59.999999', '2024-01-02 03:04:05.678901',
  '2024-01-02 03:04:05.678901+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2.5, "x"], "z": null}',
  '{1,NULL,3}', '{"a b",NULL,"c,d"}', '{1.25,-0.5}'),
 (2, false, 0, -1, 'NaN', '-Infinity', -0.001, 'NaN', -1, '', '', 'infinity', '00:00', '-infinity',
  'infinity', '00000000-0000-0000-0000-000000000000', '[]', '{}', '{}', '{}'),
 (3, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL);
INSERT INTO every (id, i4, s, d, ts)
  SELECT g, g, repeat('x', g % 50), date '2000-01-01' + g, timestamp '2000-01-01' + g * interval '1 minute'
  FROM generate_series(10, 20009) g;
CREATE TABLE "Mixed Case" ("select" text, "Ünï" int4);
INSERT INTO "Mixed Case" VALUES ('a', 1), (NULL, NULL);
CREATE TABLE empty (a int4);
CREATE TABLE odd (id int4, addr inet, mood int4range);
INSERT INTO odd VALUES (1, '10.0.0.1/8', '[1,5)');
CREATE SCHEMA other;
CREATE TABLE other.things (k int4 PRIMARY KEY);
INSERT INTO other.things VALUES (7);
"#;

#[test]
fn postgres_round_trips_through_parquet() {
    let (src_url, src) = fresh_db();
    psql(&src, SOURCE_TABLES);
    let out_dir = tempdir();
    let out = out_dir.path().join("out");
    let report = run_ok(&[
        "export",
        "--source",
        &src_url,
        "--target",
        out.to_str().unwrap(),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(report.lines().last().unwrap()).unwrap();
    assert_eq!(report["rows"], 3 + 20000 + 2 + 1 + 1, "{report}");
    for dir in ["every", "Mixed Case", "empty", "odd", "other.things"] {
        let part = out.join(dir).join("part-00000.parquet");
        assert!(part.is_file(), "{} is written", part.display());
    }

    let (dst_url, dst) = fresh_db();
    run_ok(&[
        "init",
        "--source",
        out.to_str().unwrap(),
        "--target",
        &dst_url,
        "--mode",
        "native",
        "-y",
    ]);
    assert_eq!(
        column_types(&dst, "every"),
        "id bigint not null, b boolean, i2 smallint, i4 integer not null, f4 real, \
         f8 double precision, n12 numeric(12,3), n numeric, n50 numeric(50,10), s text, \
         bytes bytea, d date, t time without time zone, ts timestamp without time zone, \
         tz timestamp with time zone, u uuid, j jsonb, ai integer[], at text[], \
         an numeric(10,2)[]"
    );
    // Every value survives: the same rows, rendered by PostgreSQL, on both sides.
    assert_eq!(digest(&dst, "every"), digest(&src, "every"));
    assert!(digest(&src, "every").starts_with("20003:"));
    assert_eq!(
        digest(&dst, "\"Mixed Case\""),
        digest(&src, "\"Mixed Case\"")
    );
    assert_eq!(digest(&dst, "empty"), "0:-");
    assert_eq!(
        digest(&dst, "\"other.things\""),
        digest(&src, "other.things")
    );
    // Types without an Arrow mapping travel as their text.
    assert_eq!(
        column_types(&dst, "odd"),
        "id integer, addr text, mood text"
    );
    assert_eq!(
        psql(&dst, "SELECT addr || ' ' || mood FROM odd"),
        "10.0.0.1/8 [1,5)"
    );
    assert_eq!(
        psql(
            &dst,
            "SELECT count(*) FROM pg_index WHERE indrelid = 'every'::regclass AND indisprimary"
        ),
        "0",
        "Parquet carries no keys"
    );
}

#[test]
fn sqlite_exports_typed_columns_and_existing_output_is_refused() {
    let dir = tempdir();
    let db_path = dir.path().join("app.db");
    let c = rusqlite::Connection::open(&db_path).unwrap();
    c.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, at DATETIME);
         INSERT INTO items VALUES (1, 'pen', 1.5, '2024-01-02 03:04:05'), (2, 'ink', NULL, NULL);",
    )
    .unwrap();
    drop(c);
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();
    run_ok(&[
        "export",
        "--source",
        db_path.to_str().unwrap(),
        "--target",
        out_s,
        "-q",
    ]);
    assert!(out.join("items/part-00000.parquet").is_file());

    let (code, _, err) = run(&[
        "export",
        "--source",
        db_path.to_str().unwrap(),
        "--target",
        out_s,
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("--overwrite") && err.contains("items"),
        "{err}"
    );
    run_ok(&[
        "export",
        "--source",
        db_path.to_str().unwrap(),
        "--target",
        out_s,
        "--overwrite",
    ]);

    let (url, db) = fresh_db();
    run_ok(&[
        "init", "--source", out_s, "--target", &url, "--mode", "native", "-y",
    ]);
    assert_eq!(
        column_types(&db, "items"),
        "id bigint not null, name text not null, price double precision, \
         at timestamp without time zone"
    );
    assert_eq!(
        psql(
            &db,
            "SELECT string_agg(concat_ws('|', id, name, price, at), ';' ORDER BY id) FROM items"
        ),
        "1|pen|1.5|2024-01-02 03:04:05;2|ink"
    );
}
