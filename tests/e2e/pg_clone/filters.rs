//! Table selection and row filters, from flags and from the config file: include / exclude /
//! schema-only, `--table-filter`, `--time-filter`, quoted names, the command line overriding
//! the file, and unknown names refused before anything is written.

use crate::harness::tempdir;
use crate::pg_pair::{
    all_digests, fresh_source_db, fresh_target_db, init, init_ok, relations, script, sql,
    table_digest,
};

const SOURCE: &str = r#"
CREATE SCHEMA sales;
CREATE TABLE public.a (id int PRIMARY KEY, n int);
INSERT INTO public.a SELECT g, g % 10 FROM generate_series(1, 100) g;
CREATE TABLE public.b (id int PRIMARY KEY);
INSERT INTO public.b SELECT generate_series(1, 5);
CREATE TABLE public.c (id int PRIMARY KEY);
INSERT INTO public.c SELECT generate_series(1, 5);
CREATE TABLE sales."My Table" (id int PRIMARY KEY, "Amount" numeric);
INSERT INTO sales."My Table" SELECT g, g FROM generate_series(1, 10) g;
CREATE TABLE public.events (id int PRIMARY KEY, created_at timestamptz NOT NULL, kind text);
INSERT INTO public.events
  SELECT g, now() - make_interval(days => g, hours => 12), 'k' || g % 3 FROM generate_series(0, 364) g;
CREATE TABLE public.logs (id int PRIMARY KEY, line text);
INSERT INTO public.logs SELECT g, 'line ' || g FROM generate_series(1, 50) g;
"#;

fn setup() -> (String, String) {
    let (src, name) = fresh_source_db();
    script(&src, SOURCE);
    (src, name)
}

fn filtered(src: &str, query: &str) -> (i64, String) {
    table_digest(src, &format!("({query})"))
}

/// What the "run A" selection must produce on `dst`.
fn assert_run_a(src: &str, dst: &str) {
    assert_eq!(
        relations(dst),
        ["public.a", "public.b", "public.events", "public.logs"],
        "selected tables"
    );
    assert_eq!(
        table_digest(dst, "public.a"),
        filtered(src, "SELECT * FROM public.a WHERE n < 3")
    );
    assert_eq!(table_digest(dst, "public.a").0, 30);
    assert_eq!(table_digest(dst, "public.b"), table_digest(src, "public.b"));
    let recent = filtered(
        src,
        "SELECT * FROM public.events WHERE created_at >= now() - interval '90 days'",
    );
    assert_eq!(recent.0, 90);
    assert_eq!(table_digest(dst, "public.events"), recent);
    assert_eq!(
        table_digest(dst, "public.logs").0,
        0,
        "schema-only table has rows"
    );
}

#[test]
fn filters_from_flags() {
    let (src, _) = setup();

    // Run A: exclude (a quoted name among them), schema-only, a row filter, a time filter.
    let (dst, _) = fresh_target_db();
    init_ok(
        &src,
        &dst,
        &[
            "--exclude-tables",
            "c,sales.\"My Table\"",
            "--schema-only-tables",
            "logs",
            "--table-filter",
            "a:n < 3",
            "--time-filter",
            "public.events:created_at:90 days",
        ],
    );
    assert_run_a(&src, &dst);

    // Run B: include, with quoted names, and a filter on a quoted table and column.
    let (dst, _) = fresh_target_db();
    init_ok(
        &src,
        &dst,
        &[
            "--include-tables",
            "sales.\"My Table\",public.c",
            "--table-filter",
            "sales.\"My Table\":\"Amount\" > 4",
        ],
    );
    assert_eq!(relations(&dst), ["public.c", "sales.\"My Table\""]);
    assert_eq!(
        table_digest(&dst, "public.c"),
        table_digest(&src, "public.c")
    );
    assert_eq!(
        table_digest(&dst, "sales.\"My Table\""),
        filtered(
            &src,
            "SELECT * FROM sales.\"My Table\" WHERE \"Amount\" > 4"
        )
    );
    assert_eq!(table_digest(&dst, "sales.\"My Table\"").0, 6);

    // A predicate the source rejects: an error naming the table and the problem.
    let (dst, _) = fresh_target_db();
    let (code, out, err) = init(&src, &dst, &["--table-filter", "a:no_such_col = 1"]);
    assert_ne!(code, 0, "stdout:\n{out}");
    assert!(err.contains("no_such_col"), "{err}");
    assert!(
        relations(&dst).is_empty(),
        "a failed filter check wrote {:?}",
        relations(&dst)
    );

    // Unknown names are refused (exit 2, naming them) before anything is written.
    let (dst, _) = fresh_target_db();
    for (flag, value, name) in [
        ("--include-tables", "a,public.nope", "nope"),
        ("--exclude-tables", "ghost_table", "ghost_table"),
        ("--schema-only-tables", "sales.missing_tbl", "missing_tbl"),
        ("--table-filter", "zz_top:1=1", "zz_top"),
        ("--time-filter", "when_table:created_at:1 day", "when_table"),
    ] {
        let (code, out, err) = init(&src, &dst, &[flag, value]);
        assert_eq!(code, 2, "{flag} {value}\nstdout:\n{out}\nstderr:\n{err}");
        assert!(
            err.contains(name),
            "{flag} {value}: error does not name it: {err}"
        );
    }
    assert!(
        relations(&dst).is_empty(),
        "refused runs wrote {:?}",
        relations(&dst)
    );
}

#[test]
fn filters_from_config_file() {
    let (src, db) = setup();
    let dir = tempdir();

    // The config equivalent of run A gives the same target as the flags.
    let config = dir.path().join("replication.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[databases.{db}]
exclude_tables = ["c", 'sales."My Table"']
schema_only = ["logs"]

[[databases.{db}.table_filters]]
table = "a"
where = "n < 3"

[[databases.{db}.time_filters]]
table = "public.events"
column = "created_at"
last = "90 days"
"#
        ),
    )
    .unwrap();
    let (dst, _) = fresh_target_db();
    init_ok(&src, &dst, &["--config", config.to_str().unwrap()]);
    assert_run_a(&src, &dst);

    // Flags override the file: the file includes a and b and filters a on n < 3; the command
    // line includes only a, filtered on n >= 8.
    let config2 = dir.path().join("override.toml");
    std::fs::write(
        &config2,
        format!(
            r#"
[databases.{db}]
include_tables = ["a", "b"]

[[databases.{db}.table_filters]]
table = "a"
where = "n < 3"
"#
        ),
    )
    .unwrap();
    let (dst, _) = fresh_target_db();
    init_ok(
        &src,
        &dst,
        &[
            "--config",
            config2.to_str().unwrap(),
            "--include-tables",
            "a",
            "--table-filter",
            "a:n >= 8",
        ],
    );
    assert_eq!(relations(&dst), ["public.a"]);
    assert_eq!(
        table_digest(&dst, "public.a"),
        filtered(&src, "SELECT * FROM public.a WHERE n >= 8")
    );

    // An unknown table in the file: exit 2 naming it, nothing written.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!("[databases.{db}]\ninclude_tables = [\"a\", \"phantom_tbl\"]\n"),
    )
    .unwrap();
    let (dst, _) = fresh_target_db();
    let (code, out, err) = init(&src, &dst, &["--config", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("phantom_tbl"), "{err}");
    // An unknown key in the file: exit 2 naming the field.
    std::fs::write(
        &bad,
        format!("[databases.{db}]\ninclude_tablez = [\"a\"]\n"),
    )
    .unwrap();
    let (code, out, err) = init(&src, &dst, &["--config", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("include_tablez"), "{err}");
    assert!(all_digests(&dst).is_empty());
}

/// A partitioned table named by its parent: selected, excluded and filtered with its partitions.
#[test]
fn partitioned_table_by_parent_name() {
    let (src, _) = fresh_source_db();
    script(
        &src,
        "CREATE TABLE public.metrics (id int, at date NOT NULL, v int) PARTITION BY RANGE (at);
         CREATE TABLE public.metrics_2024 PARTITION OF public.metrics
           FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE public.metrics_2025 PARTITION OF public.metrics
           FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         INSERT INTO public.metrics
           SELECT g, date '2024-01-01' + g % 700, g % 100 FROM generate_series(1, 1000) g;
         CREATE TABLE public.other (id int PRIMARY KEY);
         INSERT INTO public.other VALUES (1);",
    );

    // Included by the parent's name, filtered by it: every partition, only matching rows.
    let (dst, _) = fresh_target_db();
    init_ok(
        &src,
        &dst,
        &[
            "--include-tables",
            "metrics",
            "--table-filter",
            "metrics:v >= 90",
        ],
    );
    assert_eq!(
        relations(&dst),
        [
            "public.metrics",
            "public.metrics_2024",
            "public.metrics_2025"
        ]
    );
    assert_eq!(
        table_digest(&dst, "public.metrics"),
        filtered(&src, "SELECT * FROM public.metrics WHERE v >= 90")
    );
    assert_eq!(table_digest(&dst, "public.metrics").0, 100);

    // Schema only by the parent's name: every partition exists, empty.
    let (dst, _) = fresh_target_db();
    init_ok(&src, &dst, &["--schema-only-tables", "metrics"]);
    assert_eq!(
        relations(&dst),
        [
            "public.metrics",
            "public.metrics_2024",
            "public.metrics_2025",
            "public.other"
        ]
    );
    assert_eq!(table_digest(&dst, "public.metrics").0, 0);
    assert_eq!(table_digest(&dst, "public.other").0, 1);

    // A time filter on the parent's date column.
    let (dst, _) = fresh_target_db();
    // (The span reaches back to mid-2025 whatever today's date, so it selects some rows.)
    let days = sql(&src, "SELECT current_date - date '2025-06-01'");
    let span = format!("metrics:at:{days} days");
    init_ok(&src, &dst, &["--time-filter", &span]);
    let recent = filtered(
        &src,
        &format!("SELECT * FROM public.metrics WHERE at >= now() - interval '{days} days'"),
    );
    assert!(recent.0 > 0 && recent.0 < 1000, "{recent:?}");
    assert_eq!(table_digest(&dst, "public.metrics"), recent);

    // Excluded by the parent's name: its partitions go with it.
    let (dst, _) = fresh_target_db();
    init_ok(&src, &dst, &["--exclude-tables", "metrics"]);
    assert_eq!(relations(&dst), ["public.other"]);
}

/// Malformed values: exit 2, naming the flag or the value, before anything is written.
#[test]
fn malformed_flags() {
    let (src, _) = setup();
    let (dst, _) = fresh_target_db();
    for (flag, value) in [
        ("--split-tables-larger-than", "banana"),
        ("--time-filter", "events:created_at:ninety days"),
        ("--time-filter", "events:created_at"),
        ("--table-filter", "no predicate here"),
    ] {
        let (code, out, err) = init(&src, &dst, &[flag, value]);
        assert_eq!(code, 2, "{flag} {value}\nstdout:\n{out}\nstderr:\n{err}");
        assert!(
            err.contains(flag) || err.contains(value),
            "{flag} {value}: the error names neither: {err}"
        );
    }
    assert!(relations(&dst).is_empty());
}

/// Quoted names holding the characters the name syntax itself uses: dots, commas, colons,
/// double quotes, spaces, upper case — in a quoted schema too.
#[test]
fn odd_names_in_flags() {
    let (src, _) = fresh_source_db();
    script(
        &src,
        r#"CREATE SCHEMA "Sales Dept";
           CREATE TABLE "Sales Dept"."Order" (id int PRIMARY KEY, n int);
           CREATE TABLE public."a.b" (id int PRIMARY KEY, n int);
           CREATE TABLE public."x,y" (id int PRIMARY KEY);
           CREATE TABLE public."k:v" (id int PRIMARY KEY, n int);
           CREATE TABLE public."say ""hi""" (id int PRIMARY KEY);
           CREATE TABLE public.plain (id int PRIMARY KEY);
           INSERT INTO "Sales Dept"."Order" SELECT g, g FROM generate_series(1, 10) g;
           INSERT INTO public."a.b" SELECT g, g FROM generate_series(1, 10) g;
           INSERT INTO public."x,y" VALUES (1);
           INSERT INTO public."k:v" SELECT g, g FROM generate_series(1, 10) g;
           INSERT INTO public."say ""hi""" VALUES (1);
           INSERT INTO public.plain VALUES (1);"#,
    );
    let (dst, _) = fresh_target_db();
    init_ok(
        &src,
        &dst,
        &[
            "--include-tables",
            r#""Sales Dept"."Order",public."a.b",public."x,y",public."k:v",public."say ""hi""""#,
            "--table-filter",
            r#""Sales Dept"."Order":n > 5"#,
            "--table-filter",
            r#"public."a.b":n <= 2"#,
            "--table-filter",
            r#"public."k:v":n = 7"#,
        ],
    );
    assert_eq!(
        relations(&dst),
        [
            r#""Sales Dept"."Order""#,
            r#"public."a.b""#,
            r#"public."k:v""#,
            r#"public."say ""hi""""#,
            r#"public."x,y""#,
        ]
    );
    for (table, rows) in [
        (r#""Sales Dept"."Order""#, 5),
        (r#"public."a.b""#, 2),
        (r#"public."k:v""#, 1),
        (r#"public."x,y""#, 1),
    ] {
        assert_eq!(table_digest(&dst, table).0, rows, "{table}");
    }
}
