//! Several databases in one run: `--include-databases`, `--exclude-databases`,
//! `--all-databases`, `db.schema.table` names, and the `postgres` database when selected.
//! Runs on two clusters of its own, since it writes to `postgres` and creates databases by
//! fixed names.

use crate::harness::run;
use crate::pg_pair::{relations, script, sql, table_digest};
use seren_replicator::throwaway::ThrowawayPg;

fn databases(pg: &ThrowawayPg) -> Vec<String> {
    sql(
        &pg.url("postgres"),
        "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1",
    )
    .lines()
    .map(str::to_string)
    .collect()
}

fn init(src: &ThrowawayPg, dst: &ThrowawayPg, extra: &[&str]) -> (i32, String, String) {
    let (s, t) = (src.url("postgres"), dst.url("postgres"));
    let mut args = vec!["init", "--source", &s, "--target", &t, "--no-sync", "-y"];
    args.extend_from_slice(extra);
    run(&args)
}

fn init_ok(src: &ThrowawayPg, dst: &ThrowawayPg, extra: &[&str]) {
    let (code, out, err) = init(src, dst, extra);
    assert_eq!(code, 0, "init {extra:?}\nstdout:\n{out}\nstderr:\n{err}");
}

#[test]
fn several_databases() {
    let settings = [
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
    ];
    let src = ThrowawayPg::start(&settings).expect("source cluster");
    let dst = ThrowawayPg::start(&settings).expect("target cluster");
    for db in ["alpha", "beta", "gamma"] {
        sql(&src.url("postgres"), &format!("CREATE DATABASE {db}"));
        script(
            &src.url(db),
            &format!(
                "CREATE TABLE items (id int PRIMARY KEY, db text);
                 INSERT INTO items SELECT g, '{db}' FROM generate_series(1, 100) g;
                 CREATE TABLE extra (id int PRIMARY KEY);
                 INSERT INTO extra VALUES (1), (2);"
            ),
        );
    }
    script(
        &src.url("postgres"),
        "CREATE TABLE pg_only (id int PRIMARY KEY); INSERT INTO pg_only VALUES (42);",
    );
    // beta already exists on the target (empty); alpha and gamma must be created.
    sql(&dst.url("postgres"), "CREATE DATABASE beta");

    // Two databases; a db.schema.table exclusion applies to its database only.
    init_ok(
        &src,
        &dst,
        &[
            "--include-databases",
            "alpha,beta",
            "--exclude-tables",
            "beta.public.extra",
        ],
    );
    assert_eq!(databases(&dst), ["alpha", "beta", "postgres"]);
    assert_eq!(
        relations(&dst.url("alpha")),
        ["public.extra", "public.items"]
    );
    assert_eq!(relations(&dst.url("beta")), ["public.items"]);
    for db in ["alpha", "beta"] {
        assert_eq!(
            table_digest(&dst.url(db), "items"),
            table_digest(&src.url(db), "items"),
            "{db}.items"
        );
    }
    assert!(
        relations(&dst.url("postgres")).is_empty(),
        "postgres copied unasked"
    );

    // `postgres` is copied when selected.
    init_ok(&src, &dst, &["--include-databases", "postgres"]);
    assert_eq!(relations(&dst.url("postgres")), ["public.pg_only"]);
    assert_eq!(sql(&dst.url("postgres"), "SELECT id FROM pg_only"), "42");

    // An unknown database is refused, naming it.
    let (code, _, err) = init(&src, &dst, &["--include-databases", "alpha,nosuchdb"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nosuchdb"), "{err}");

    // Every database but alpha, replacing what is there: gamma appears, beta is replaced,
    // alpha keeps its old copy although the source changed.
    for db in ["alpha", "beta"] {
        sql(&src.url(db), "DELETE FROM items WHERE id > 50");
    }
    init_ok(
        &src,
        &dst,
        &[
            "--all-databases",
            "--exclude-databases",
            "alpha",
            "--drop-existing",
        ],
    );
    assert!(
        databases(&dst).contains(&"gamma".to_string()),
        "{:?}",
        databases(&dst)
    );
    assert_eq!(
        table_digest(&dst.url("alpha"), "items").0,
        100,
        "alpha was excluded"
    );
    for db in ["beta", "gamma"] {
        assert_eq!(
            table_digest(&dst.url(db), "items"),
            table_digest(&src.url(db), "items"),
            "{db}.items"
        );
    }
    assert_eq!(table_digest(&dst.url("beta"), "items").0, 50);
    assert!(
        relations(&dst.url("template1")).is_empty(),
        "template1 must never be written"
    );
}
