//! What `init` refuses or reports: a populated target table without `--drop-existing` (exit 3,
//! naming it), a row filter on a table that a table outside the copy references (the FK guard,
//! exit 3), a foreign key to an excluded table; plus `--no-blobs`/`--no-privileges`, the
//! missing `--no-sync` notice and the source URL forms.

use crate::pg_pair::{
    assert_same_data, fresh_source_db, fresh_target_db, init, init_ok, relations, script, sql,
    table_digest,
};

#[test]
fn populated_target_needs_drop_existing() {
    let (src, _) = fresh_source_db();
    script(
        &src,
        "CREATE TABLE inventory (id int PRIMARY KEY, qty int);
         INSERT INTO inventory SELECT g, g * 2 FROM generate_series(1, 100) g;
         CREATE TABLE notes (id int PRIMARY KEY, body text);
         INSERT INTO notes VALUES (1, 'hello');",
    );
    let (dst, _) = fresh_target_db();
    script(
        &dst,
        "CREATE TABLE inventory (id int PRIMARY KEY, qty int); INSERT INTO inventory VALUES (999, 1);",
    );

    let (code, out, err) = init(&src, &dst, &[]);
    assert_eq!(code, 3, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("inventory"),
        "error does not name the table: {err}"
    );
    assert_eq!(
        sql(&dst, "SELECT id || ':' || qty FROM inventory"),
        "999:1",
        "target touched"
    );
    assert_eq!(
        relations(&dst),
        ["public.inventory"],
        "refused run wrote something"
    );

    init_ok(&src, &dst, &["--drop-existing"]);
    assert_same_data(&src, &dst);

    // Now populated by the first run: a second run without the flag is refused again.
    let (code, _, err) = init(&src, &dst, &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("inventory") || err.contains("notes"), "{err}");
    assert_same_data(&src, &dst);
}

#[test]
fn fk_guard() {
    let (src, _) = fresh_source_db();
    script(
        &src,
        "CREATE TABLE customers (id int PRIMARY KEY, name text);
         CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers,
                              region text, created_at timestamptz NOT NULL);
         CREATE TABLE order_items (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders,
                                   qty int);
         INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 20) g;
         INSERT INTO orders SELECT g, 1 + g % 20, CASE WHEN g % 3 = 0 THEN 'eu' ELSE 'us' END,
                                   now() - make_interval(days => g)
                            FROM generate_series(1, 90) g;
         INSERT INTO order_items SELECT g, 1 + g % 90, g FROM generate_series(1, 300) g;",
    );
    let eu = "orders:region = 'eu'";

    for extra in [
        &["--table-filter", eu, "--exclude-tables", "order_items"][..],
        &[
            "--include-tables",
            "customers,orders",
            "--time-filter",
            "orders:created_at:30 days",
        ][..],
    ] {
        let (dst, _) = fresh_target_db();
        let (code, out, err) = init(&src, &dst, extra);
        assert_eq!(code, 3, "{extra:?}\nstdout:\n{out}\nstderr:\n{err}");
        assert!(
            err.contains("FK-related table")
                && err.contains("orders")
                && err.contains("order_items"),
            "{extra:?}: {err}"
        );
        assert!(
            relations(&dst).is_empty(),
            "the FK guard must act before writing"
        );
    }

    // Both in scope, filtered consistently: accepted.
    let (dst, _) = fresh_target_db();
    init_ok(
        &src,
        &dst,
        &[
            "--table-filter",
            eu,
            "--table-filter",
            "order_items:order_id IN (SELECT id FROM orders WHERE region = 'eu')",
        ],
    );
    assert_eq!(
        table_digest(&dst, "customers"),
        table_digest(&src, "customers")
    );
    assert_eq!(
        table_digest(&dst, "orders"),
        table_digest(&src, "(SELECT * FROM orders WHERE region = 'eu')")
    );
    assert_eq!(
        table_digest(&dst, "order_items"),
        table_digest(
            &src,
            "(SELECT * FROM order_items WHERE order_id IN (SELECT id FROM orders WHERE region = 'eu'))"
        )
    );
    assert_eq!(table_digest(&dst, "orders").0, 30);
}

#[test]
fn no_blobs_and_no_privileges() {
    let (src, _) = fresh_source_db();
    script(
        &src,
        "CREATE TABLE t (id int PRIMARY KEY, doc oid);
         INSERT INTO t VALUES (1, lo_from_bytea(0, 'blob'));
         GRANT SELECT ON t TO PUBLIC;",
    );
    let acl = "SELECT coalesce(relacl::text, 'default') FROM pg_class WHERE relname = 't'";
    let blobs = "SELECT count(*) FROM pg_largeobject_metadata";

    let (dst, _) = fresh_target_db();
    init_ok(&src, &dst, &[]);
    assert_eq!(
        sql(&dst, acl),
        sql(&src, acl),
        "privileges copied by default"
    );
    assert_eq!(sql(&dst, blobs), "1", "large objects copied by default");

    let (dst, _) = fresh_target_db();
    init_ok(&src, &dst, &["--no-blobs", "--no-privileges"]);
    assert_eq!(sql(&dst, acl), "default", "--no-privileges");
    assert_eq!(sql(&dst, blobs), "0", "--no-blobs");
    assert_same_data(&src, &dst);
}

/// An included table whose foreign key points at an excluded one: either refused before
/// anything is written (naming both tables), or copied without that constraint and a warning
/// that says so — not a failure halfway through, after the rows were written.
#[test]
fn fk_to_an_excluded_table() {
    let (src, _) = fresh_source_db();
    script(
        &src,
        "CREATE TABLE customers (id int PRIMARY KEY);
         CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers);
         INSERT INTO customers SELECT generate_series(1, 10);
         INSERT INTO orders SELECT g, 1 + g % 10 FROM generate_series(1, 100) g;",
    );
    let (dst, _) = fresh_target_db();
    let (code, out, err) = init(&src, &dst, &["--include-tables", "orders"]);
    if code == 0 {
        assert_eq!(relations(&dst), ["public.orders"]);
        assert_eq!(table_digest(&dst, "orders"), table_digest(&src, "orders"));
        assert!(
            format!("{out}{err}").contains("customers"),
            "the dropped foreign key goes unmentioned\nstdout:\n{out}\nstderr:\n{err}"
        );
    } else {
        assert!(
            err.contains("orders") && err.contains("customers"),
            "exit {code}: {err}"
        );
        assert!(
            relations(&dst).is_empty(),
            "exit {code} after writing {:?}: {err}",
            relations(&dst)
        );
    }
}

/// The source in the forms libpq accepts: `postgres://` and `key=value`.
#[test]
fn source_url_forms() {
    let (src, db) = fresh_source_db();
    script(
        &src,
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10);",
    );
    let port = crate::harness::pg_port();
    for form in [
        src.replace("postgresql://", "postgres://"),
        format!("host=127.0.0.1 port={port} user=postgres dbname={db}"),
    ] {
        let (dst, _) = fresh_target_db();
        init_ok(&form, &dst, &[]);
        assert_same_data(&src, &dst);
    }
}
