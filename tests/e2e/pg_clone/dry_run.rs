//! `--dry-run --json` prints the plan (tables and their partitions) and writes nothing.

use crate::pg_pair::{
    fresh_source_db, fresh_target_db, has_state_schema, init_ok, relations, script,
};

#[test]
fn dry_run_prints_plan_and_writes_nothing() {
    let (src, _) = fresh_source_db();
    script(
        &src,
        "CREATE TABLE plain_tbl (id int PRIMARY KEY, s text);
         INSERT INTO plain_tbl SELECT g, repeat('x', 100) FROM generate_series(1, 50000) g;
         CREATE TABLE measure (id int, at date NOT NULL) PARTITION BY RANGE (at);
         CREATE TABLE measure_a PARTITION OF measure FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE measure_b PARTITION OF measure FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         INSERT INTO measure SELECT g, date '2024-01-01' + g % 700 FROM generate_series(1, 1000) g;
         ANALYZE;",
    );
    let (dst, _) = fresh_target_db();
    let out = init_ok(
        &src,
        &dst,
        &["--dry-run", "--json", "--split-tables-larger-than", "1MB"],
    );
    let plan: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("--dry-run --json output is not JSON ({e}): {out}"));
    let text = plan.to_string();
    for name in ["plain_tbl", "measure", "partitions"] {
        assert!(
            text.contains(name),
            "plan does not mention {name}: {plan:#}"
        );
    }
    // plain_tbl (~7 MB) is split into block ranges above 1 MB: the plan shows them.
    let mut planned = Vec::new();
    with_partitions(&plan, &mut planned);
    let plain: Vec<_> = planned
        .iter()
        .filter(|t| t.to_string().contains("plain_tbl"))
        .collect();
    assert_eq!(
        plain.len(),
        1,
        "no single plan entry for plain_tbl: {plan:#}"
    );
    assert!(
        plain[0]["partitions"].as_array().unwrap().len() >= 2,
        "plain_tbl is not split: {:#}",
        plain[0]
    );
    assert!(
        relations(&dst).is_empty(),
        "dry run wrote {:?}",
        relations(&dst)
    );
    assert!(!has_state_schema(&dst), "dry run created the state schema");

    let out = init_ok(&src, &dst, &["--dry-run"]);
    assert!(out.contains("plain_tbl"), "{out}");
    assert!(relations(&dst).is_empty());
}

/// Every JSON object with a `partitions` array (a planned table), however deep.
fn with_partitions<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    match v {
        serde_json::Value::Object(m) => {
            if m.get("partitions").is_some_and(|p| p.is_array()) {
                out.push(v);
            } else {
                m.values().for_each(|x| with_partitions(x, out));
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| with_partitions(x, out)),
        _ => {}
    }
}
