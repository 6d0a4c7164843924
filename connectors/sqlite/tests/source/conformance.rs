//! The SQLite source against the conformance kit (`pipeline::testkit`), in both modes.

use crate::support::db;
use pipeline::testkit::assert_source_conformance;
use pipeline::{Mode, SourceOptions};
use seren_sqlite::SqliteFactory;

/// Tables that exercise the kit's rules: several partitions, an empty table, a table without a
/// primary key (rowid identity) and an awkward name, NULL in every column, and wide rows.
const SCHEMA: &str = r#"
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL, data BLOB, amount NUMERIC);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25)
INSERT INTO items SELECT i, 'item ' || i || ' 🦀', i * 1.5, randomblob(8), i * 100 FROM n;
INSERT INTO items VALUES (100, NULL, NULL, NULL, NULL);
INSERT INTO items VALUES (101, '', -0.0, x'', 0);
CREATE TABLE empty (a INTEGER, b TEXT);
CREATE TABLE "Odd ""name"" table" (label TEXT, n INTEGER);
INSERT INTO "Odd ""name"" table" VALUES ('a', 1), ('a', 1), ('b', NULL), (NULL, 2);
CREATE TABLE wide (id INTEGER PRIMARY KEY, body BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30)
INSERT INTO wide SELECT i, zeroblob(10000) FROM n;
"#;

fn options(mode: Mode) -> SourceOptions {
    SourceOptions {
        mode,
        partition_rows: 7,
        batch_rows: 5,
        batch_bytes: 16 << 10,
        ..SourceOptions::default()
    }
}

#[tokio::test]
async fn sqlite_source_conforms_in_both_modes() {
    let (_dir, path) = db(SCHEMA);
    for mode in [Mode::Jsonb, Mode::Native] {
        let report =
            assert_source_conformance(&SqliteFactory, path.to_str().unwrap(), &options(mode)).await;
        let items = report.table("items").unwrap();
        assert_eq!(items.rows, 27);
        assert!(items.partitions > 1, "{mode:?}: {items:?}");
        assert!(items.max_batch_rows <= 5);
        assert_eq!(report.table("empty").unwrap().rows, 0);
        // Two identical rows: the multiset comparison must count both.
        assert_eq!(report.table("Odd \"name\" table").unwrap().rows, 4);
        let wide = report.table("wide").unwrap();
        assert_eq!(wide.rows, 30);
        assert!(
            wide.batches > wide.rows as usize / 5,
            "{mode:?}: 10 kB rows must be cut by the 16 kB bound before 5 rows: {wide:?}"
        );
    }
}
