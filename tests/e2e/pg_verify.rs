//! `verify` with a PostgreSQL source: a fresh copy matches; rows changed, deleted, added or
//! nulled on the target are named by key; tables without a key, empty tables, partitions and
//! quoted names work; filters select the same rows on both sides; a missing table is reported.

use crate::harness::{cli, output, run};
use crate::pg_pair::{fresh_source_db, fresh_target_db, init_ok, script, sql};

const SOURCE: &str = r#"
CREATE TABLE big (id int PRIMARY KEY, v text, n numeric, at timestamptz);
INSERT INTO big
  SELECT g, md5(g::text), g / 7.0, timestamptz '2024-01-01 00:00+00' + g * interval '1 minute'
  FROM generate_series(1, 300000) g;
CREATE TABLE pair (a int, b text, v int, PRIMARY KEY (a, b));
INSERT INTO pair SELECT g % 50, 'k' || g, g FROM generate_series(1, 2000) g;
CREATE TABLE nopk (x int, y text);
INSERT INTO nopk SELECT g % 10, 'y' FROM generate_series(1, 100) g;
CREATE TABLE empty (id int PRIMARY KEY);
CREATE TABLE nulls (id int PRIMARY KEY, s text, t text);
INSERT INTO nulls VALUES (1, '', NULL), (2, NULL, ''), (3, 'a', 'b');
CREATE TABLE "Quoted" (code text PRIMARY KEY, v int);
INSERT INTO "Quoted" VALUES ('it''s', 1), ('plain', 2), ('with space', 3), ('"dq"', 4);
CREATE TABLE parted (id int, day date, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
CREATE TABLE parted_2024 PARTITION OF parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE parted_2025 PARTITION OF parted FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO parted SELECT g, date '2024-06-01' + g FROM generate_series(1, 400) g;
"#;

fn verify(source: &str, target: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["verify", "--source", source, "--target", target];
    args.extend_from_slice(extra);
    run(&args)
}

/// The output line about `table` (`public.big`), or a panic showing the whole output.
fn line_of<'a>(out: &'a str, table: &str) -> &'a str {
    let prefix = [format!("✓ {table}:"), format!("✗ {table}:")];
    out.lines()
        .find(|l| prefix.iter().any(|p| l.starts_with(p.as_str())))
        .unwrap_or_else(|| panic!("no line for {table} in:\n{out}"))
}

#[test]
fn verify_names_the_rows_that_differ() {
    let (src, _) = fresh_source_db();
    script(&src, SOURCE);
    let (dst, _) = fresh_target_db();
    init_ok(&src, &dst, &[]);

    let (code, out, err) = verify(&src, &dst, &[]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(line_of(&out, "public.big"), "✓ public.big: 300000 rows");
    assert_eq!(line_of(&out, "public.empty"), "✓ public.empty: 0 rows");
    assert_eq!(
        line_of(&out, "public.\"Quoted\""),
        "✓ public.\"Quoted\": 4 rows"
    );
    assert_eq!(
        line_of(&out, "public.parted_2024"),
        "✓ public.parted_2024: 213 rows"
    );
    assert!(out.contains("✓ all 8 tables match"), "{out}");
    assert!(
        !out.contains("public.parted:"),
        "a partitioned parent holds no rows: {out}"
    );

    let (code, out, err) = verify(&src, &dst, &["--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    let big = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "public.big")
        .unwrap();
    assert!(big["ranges"].as_u64().unwrap() >= 2, "big is split: {big}");
    assert_eq!(big["target_rows"], 300000);

    script(
        &dst,
        r#"
        UPDATE big SET v = 'changed' WHERE id = 123457;
        DELETE FROM big WHERE id = 200001;
        INSERT INTO big VALUES (300001, 'extra', 0, now());
        UPDATE nulls SET s = NULL WHERE id = 1;
        UPDATE "Quoted" SET v = 40 WHERE code = 'it''s';
        DELETE FROM pair WHERE a = 7 AND b = 'k7';
        UPDATE nopk SET y = 'z' WHERE x = 3;
        DROP TABLE empty;
        "#,
    );
    let (code, out, err) = verify(&src, &dst, &[]);
    assert_eq!(code, 5, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        line_of(&out, "public.big"),
        "✗ public.big: source 300000 rows, target 300000 rows; missing on target: id=200001; \
         extra on target: id=300001; different: id=123457"
    );
    assert_eq!(
        line_of(&out, "public.nulls"),
        "✗ public.nulls: source 3 rows, target 3 rows; different: id=1"
    );
    assert_eq!(
        line_of(&out, "public.\"Quoted\""),
        "✗ public.\"Quoted\": source 4 rows, target 4 rows; different: code='it''s'"
    );
    assert_eq!(
        line_of(&out, "public.pair"),
        "✗ public.pair: source 2000 rows, target 1999 rows; missing on target: (a, b)=(7, k7)"
    );
    assert!(
        line_of(&out, "public.nopk").contains("contents differ"),
        "{out}"
    );
    assert_eq!(
        line_of(&out, "public.empty"),
        "✗ public.empty: missing on target (source 0 rows)"
    );
    assert_eq!(
        line_of(&out, "public.parted_2025"),
        "✓ public.parted_2025: 187 rows"
    );
    assert!(out.contains("✗ 6 of 8 tables differ"), "{out}");

    // JSON, naming at most one row per table.
    let (code, out, err) = output(
        cli()
            .env("SEREN_MAX_DIFFS", "1")
            .args(["--json", "verify", "--source", &src, "--target", &dst])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 5, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    let table = |name: &str| {
        v["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == name)
            .unwrap_or_else(|| panic!("{name} in {v}"))
            .clone()
    };
    let big = table("public.big");
    assert_eq!(big["matches"], false);
    assert_eq!(big["truncated"], true);
    // Ranges are examined in key order: the first difference found is the lowest key.
    assert_eq!(big["different"], serde_json::json!([{"id": "123457"}]));
    assert_eq!(big["missing"], serde_json::json!([]));
    assert_eq!(
        table("public.nulls")["different"],
        serde_json::json!([{"id": "1"}])
    );
    assert_eq!(
        table("public.pair")["missing"],
        serde_json::json!([{"a": "7", "b": "k7"}])
    );
    let empty = table("public.empty");
    assert_eq!(empty["target_rows"], serde_json::Value::Null);
    assert_eq!(empty["problem"], "missing on target");
    assert_eq!(table("public.nopk")["source_rows"], 100);
}

#[test]
fn verify_applies_the_copy_filters() {
    let (src, _) = fresh_source_db();
    script(
        &src,
        "CREATE TABLE orders (id int PRIMARY KEY, n int);
         INSERT INTO orders SELECT g, g FROM generate_series(1, 999) g;
         CREATE TABLE logs (id int PRIMARY KEY);
         INSERT INTO logs SELECT generate_series(1, 10);
         CREATE TABLE other (id int PRIMARY KEY);",
    );
    let (dst, _) = fresh_target_db();
    let selection = [
        "--table-filter",
        "orders:n % 3 = 0",
        "--schema-only-tables",
        "logs",
        "--exclude-tables",
        "other",
    ];
    init_ok(&src, &dst, &selection);
    // A source row outside the filter is not part of the copy on either side.
    sql(&src, "INSERT INTO orders VALUES (1000, 1000)");

    let (code, out, err) = verify(&src, &dst, &selection);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(line_of(&out, "public.orders"), "✓ public.orders: 333 rows");
    assert!(
        !out.contains("public.logs") && !out.contains("public.other"),
        "{out}"
    );
    assert!(out.contains("✓ all 1 tables match"), "{out}");

    // Without the filters every row counts, and the excluded table is missing.
    let (code, out, _) = verify(&src, &dst, &[]);
    assert_eq!(code, 5, "{out}");
    assert!(
        line_of(&out, "public.orders").starts_with("✗ public.orders: source 1000 rows, target 333 rows; missing on target: id=1, id=2, id=4"),
        "{out}"
    );
    assert_eq!(
        line_of(&out, "public.other"),
        "✗ public.other: missing on target (source 0 rows)"
    );
    assert!(
        line_of(&out, "public.logs").contains("target 0 rows"),
        "{out}"
    );

    // Names that are not in the source are refused, as by init.
    let (code, _, err) = verify(&src, &dst, &["--include-tables", "nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nope"), "{err}");
}

/// Key ranges select the same rows on both sides even when the key's collation differs between
/// them (ICU order on the source, byte order on the target): the bounds then compare under
/// `COLLATE "C"` on both.
#[test]
fn verify_splits_text_keys_whatever_their_collation() {
    let (src, _) = fresh_source_db();
    script(
        &src,
        r#"CREATE TABLE words (w text COLLATE "und-x-icu" PRIMARY KEY, n int);
           INSERT INTO words
             SELECT CASE WHEN g % 2 = 0 THEN upper(md5(g::text)) ELSE md5(g::text) END, g
             FROM generate_series(1, 150000) g;"#,
    );
    let (dst, _) = fresh_target_db();
    init_ok(&src, &dst, &[]);
    sql(
        &dst,
        r#"ALTER TABLE words ALTER COLUMN w TYPE text COLLATE "C""#,
    );
    let (code, out, err) = verify(&src, &dst, &["--json"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["tables"][0]["ranges"].as_u64().unwrap() >= 2, "{v}");

    sql(&dst, "DELETE FROM words WHERE n = 77777");
    let (code, out, _) = verify(&src, &dst, &[]);
    assert_eq!(code, 5, "{out}");
    let key = sql(&src, "SELECT w FROM words WHERE n = 77777");
    assert!(
        out.contains(&format!("missing on target: w={key}")),
        "{out}"
    );
}
