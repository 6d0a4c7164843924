//! The MySQL source against the connector conformance kit (`pipeline::testkit`), in both modes:
//! a table split into key ranges, an empty table, a table without a key (two identical rows),
//! an awkward name, NULLs, and wide rows.

use super::mariadb;
use pipeline::testkit::assert_source_conformance;
use pipeline::{Mode, SourceOptions};
use seren_mysql::MySqlFactory;

#[test]
fn mysql_source_conforms_in_both_modes() {
    let (url, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(10,2), b BLOB);
         INSERT INTO items SELECT seq, concat('item ', seq, ' 🦀'), seq * 1.5, x'00ff'
           FROM seq_1_to_40;
         INSERT INTO items VALUES (100, NULL, NULL, NULL);
         CREATE TABLE empty (a INT PRIMARY KEY);
         CREATE TABLE `Odd ``name`` table` (label VARCHAR(5), n INT);
         INSERT INTO `Odd ``name`` table` VALUES ('a', 1), ('a', 1), ('b', NULL);
         CREATE TABLE wide (id INT PRIMARY KEY, body MEDIUMBLOB);
         INSERT INTO wide SELECT seq, repeat('w', 10000) FROM seq_1_to_30;
         ANALYZE TABLE items, wide;",
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for mode in [Mode::Jsonb, Mode::Native] {
        let options = SourceOptions {
            mode,
            partition_rows: 10,
            batch_rows: 7,
            batch_bytes: 16 << 10,
            ..SourceOptions::default()
        };
        let report = runtime.block_on(assert_source_conformance(&MySqlFactory, &url, &options));
        let items = report.table("items").unwrap();
        assert_eq!(items.rows, 41);
        assert!(items.partitions > 1, "{mode:?}: {items:?}");
        assert_eq!(report.table("empty").unwrap().rows, 0);
        assert_eq!(report.table("Odd `name` table").unwrap().rows, 3);
        let wide = report.table("wide").unwrap();
        assert!(
            wide.batches > 30 / 7,
            "{mode:?}: the byte bound must cut: {wide:?}"
        );
    }
}
