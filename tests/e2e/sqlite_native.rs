//! SQLite → PostgreSQL in native mode: the affinity type map, constraints, type mismatches.

use crate::harness::{fresh_db, psql, run, run_ok, tempdir};
use rusqlite::Connection;

fn column_types(db: &str, table: &str) -> String {
    psql(
        db,
        &format!(
            "SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', ' ORDER BY ordinal_position) \
             FROM information_schema.columns WHERE table_name = '{table}'"
        ),
    )
}

#[test]
fn native_mode_maps_affinities_and_rebuilds_constraints() {
    let dir = tempdir();
    let src = dir.path().join("native.db");
    let c = Connection::open(&src).unwrap();
    c.execute_batch(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL UNIQUE);
         CREATE TABLE t (id INTEGER PRIMARY KEY, i BIGINT, r DOUBLE, s TEXT, b BLOB,
             n NUMERIC, d DECIMAL(10,2), flag BOOLEAN, day DATE, at DATETIME, ts TIMESTAMP,
             loose_date DATE, parent_id INTEGER REFERENCES parent(id));
         CREATE INDEX t_by_s ON t (s);
         INSERT INTO parent VALUES (1, 'one'), (2, 'two');
         INSERT INTO t VALUES
           (1, 9223372036854775807, 0.1, 'héllo', x'DEADBEEF', 1234567890123456789, 19.99, 1,
            '2024-02-29', '2024-01-02 03:04:05.123456', '1999-12-31T23:59:59', '2024-01-01', 1),
           (2, -1, -1e999, '', x'', 0.5, -0.01, 0, '0001-01-01', '2024-01-02', '2000-01-01 00:00',
            'next tuesday', 2),
           (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);",
    )
    .unwrap();
    drop(c);
    let (url, db) = fresh_db();
    let out = run_ok(&[
        "init",
        "--source",
        src.to_str().unwrap(),
        "--target",
        &url,
        "--mode",
        "native",
        "-y",
    ]);
    assert!(
        out.contains("loose_date"),
        "the widened date column is reported: {out}"
    );
    assert_eq!(
        column_types(&db, "t"),
        "id bigint NO, i bigint YES, r double precision YES, s text YES, b bytea YES, \
         n numeric YES, d numeric YES, flag boolean YES, day date YES, \
         at timestamp without time zone YES, ts timestamp without time zone YES, \
         loose_date text YES, parent_id bigint YES"
    );
    assert_eq!(
        psql(&db, "SELECT concat_ws('|', i, r, s, encode(b, 'hex'), n, d, flag, day, at, ts, loose_date) FROM t WHERE id = 1"),
        "9223372036854775807|0.1|héllo|deadbeef|1234567890123456789|19.99|t|2024-02-29|2024-01-02 03:04:05.123456|1999-12-31 23:59:59|2024-01-01"
    );
    assert_eq!(
        psql(
            &db,
            "SELECT concat_ws('|', r, n, d, flag, day, at, ts, loose_date) FROM t WHERE id = 2"
        ),
        "-Infinity|0.5|-0.01|f|0001-01-01|2024-01-02 00:00:00|2000-01-01 00:00:00|next tuesday"
    );
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM t WHERE i IS NULL AND day IS NULL AND b IS NULL"
        ),
        "1"
    );
    let constraints = psql(
        &db,
        "SELECT string_agg(conname || ':' || contype::text || ':' || convalidated::text, ',' ORDER BY conname) \
         FROM pg_constraint WHERE conrelid IN ('t'::regclass, 'parent'::regclass)",
    );
    assert!(constraints.contains("t_pkey:p:true"), "{constraints}");
    assert!(constraints.contains("parent_pkey:p:true"), "{constraints}");
    assert!(
        constraints.contains(":u:true"),
        "unique constraint rebuilt: {constraints}"
    );
    assert!(
        constraints.contains(":f:true"),
        "foreign key rebuilt and validated: {constraints}"
    );
    assert!(psql(&db, "SELECT indexdef FROM pg_indexes WHERE tablename = 't'").contains("(s)"));
    let verify = run_ok(&[
        "verify",
        "--source",
        src.to_str().unwrap(),
        "--target",
        &url,
        "--mode",
        "native",
    ]);
    assert!(verify.contains("✓ all 2 tables match"), "{verify}");
}

#[test]
fn type_mismatch_fails_clearly_or_widens() {
    let dir = tempdir();
    let src = dir.path().join("mismatch.db");
    let c = Connection::open(&src).unwrap();
    c.execute_batch(
        "CREATE TABLE m (id INTEGER PRIMARY KEY, qty INTEGER, note TEXT);
         INSERT INTO m VALUES (1, 5, 'ok'), (2, 'lots', 'ok'), (3, 7, 'nul' || char(0) || 'here');",
    )
    .unwrap();
    drop(c);
    let (url, db) = fresh_db();
    let (code, out, err) = run(&[
        "init",
        "--source",
        src.to_str().unwrap(),
        "--target",
        &url,
        "--mode",
        "native",
        "-y",
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("\"m\"") && err.contains("\"qty\"") && err.contains("--on-type-mismatch text"),
        "{err}"
    );
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0",
        "nothing written"
    );

    run_ok(&[
        "init",
        "--source",
        src.to_str().unwrap(),
        "--target",
        &url,
        "--mode",
        "native",
        "--on-type-mismatch",
        "text",
        "-y",
    ]);
    assert_eq!(
        column_types(&db, "m"),
        "id bigint NO, qty text YES, note bytea YES"
    );
    assert_eq!(
        psql(&db, "SELECT string_agg(qty, ',' ORDER BY id) FROM m"),
        "5,lots,7"
    );
    assert_eq!(
        psql(&db, "SELECT encode(note, 'escape') FROM m WHERE id = 3"),
        "nul\\000here"
    );
}
