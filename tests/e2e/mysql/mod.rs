//! MySQL/MariaDB → PostgreSQL, end to end against a throwaway MariaDB server (`../mariadb.rs`).

mod conformance;
mod errors;
mod sync;
mod tables;
mod types;

use super::harness;
use super::mariadb;

/// `init` from MariaDB database `db` into a fresh PostgreSQL database in `mode`; returns the
/// target URL and the command's stdout.
fn init(source: &str, mode: &str, extra: &[&str]) -> (String, String) {
    let (target, _) = harness::fresh_db();
    let mut args = vec![
        "init", "-y", "--source", source, "--target", &target, "--mode", mode,
    ];
    args.extend_from_slice(extra);
    let out = harness::run_ok(&args);
    (target, out)
}

/// The JSONB `data` of the row with `id` in `table`, parsed.
fn data(target: &str, table: &str, id: &str) -> serde_json::Value {
    let text = harness::sql(
        target,
        &format!("SELECT data FROM \"{table}\" WHERE id = '{id}'"),
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("row {id} of {table}: {e}: {text:?}"))
}

#[test]
fn source_url_is_accepted_in_both_spellings() {
    let (url, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2)",
    );
    let mariadb_url = url.replacen("mysql://", "mariadb://", 1);
    for source in [&url, &mariadb_url] {
        let (target, _) = init(source, "jsonb", &[]);
        assert_eq!(
            harness::sql(&target, "SELECT string_agg(id, ',' ORDER BY id) FROM t"),
            "1,2"
        );
        assert_eq!(
            harness::sql(&target, "SELECT DISTINCT _source_type FROM t"),
            "mysql"
        );
    }
}
