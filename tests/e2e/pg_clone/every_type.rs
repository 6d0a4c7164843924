//! One database with every common type and schema object, cloned and compared: rows (digest
//! per table), sequences, large objects and the whole `pg_dump --schema-only`.

use crate::pg_pair::{
    assert_same_data, assert_same_schema, fresh_source_db, fresh_target_db, has_state_schema,
    init_ok, script, sequences, sql,
};

const SOURCE: &str = include_str!("every_type.sql");

fn large_objects(url: &str) -> String {
    sql(
        url,
        "SELECT coalesce(string_agg(oid || ':' || md5(lo_get(oid)), ',' ORDER BY oid), '') \
         FROM pg_largeobject_metadata",
    )
}

#[test]
fn every_type() {
    let (src, _) = fresh_source_db();
    script(&src, SOURCE);
    let (dst, _) = fresh_target_db();

    let out = init_ok(
        &src,
        &dst,
        &[
            "--json",
            "--jobs",
            "2",
            "--index-jobs",
            "1",
            "--split-tables-larger-than",
            "1MB",
        ],
    );
    let summary: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("--json output is not JSON ({e}): {out}"));
    assert_eq!(summary["ok"], true, "{summary}");

    // Every check runs; the failures are reported together.
    let mut failures: Vec<String> = Vec::new();
    let mut check = |what: &str, f: &dyn Fn()| {
        if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{what}: {msg}"));
        }
    };
    check("data", &|| {
        let digests = assert_same_data(&src, &dst);
        for must in [
            "app.everything",
            "app.measure_2024",
            "app.measure_2025",
            "app.dog",
            "app.wide",
            "app.big_values",
            "app.\"My \"\"Odd\"\" Table\"",
            "\"Sales Dept\".\"Order\"",
            "app.mood_counts",
            "app.odds",
            "app.evolved",
        ] {
            assert!(
                digests.contains_key(must),
                "{must} not among {:?}",
                digests.keys()
            );
            assert!(digests[must].0 > 0, "{must} is empty on the source");
        }
    });
    check("sequences", &|| {
        assert_eq!(sequences(&dst), sequences(&src))
    });
    check("large objects", &|| {
        assert_eq!(large_objects(&dst), large_objects(&src))
    });
    check("schema", &|| assert_same_schema(&src, &dst));
    // The trigger did not fire during the load, and the parents still see their children.
    check("trigger", &|| {
        assert_eq!(
            sql(
                &dst,
                "SELECT count(*) FROM app.ident WHERE note LIKE '%bumped%'"
            ),
            "0"
        )
    });
    check("partitioned parent", &|| {
        assert_eq!(sql(&dst, "SELECT count(*) FROM app.measure"), "3000")
    });
    check("inheritance", &|| {
        assert_eq!(sql(&dst, "SELECT count(*) FROM app.animal"), "4")
    });
    // Copied tables are analyzed; one with an index on an expression only after that index
    // exists, so the expression has statistics too.
    check("statistics", &|| {
        assert_eq!(
            sql(
                &dst,
                "SELECT count(*) FROM pg_stat_user_tables \
                 WHERE schemaname = 'app' AND relname IN ('ident', 'everything') \
                   AND analyze_count > 0"
            ),
            "2"
        );
        assert_eq!(
            sql(
                &dst,
                "SELECT count(*) FROM pg_stats \
                 WHERE schemaname = 'app' AND tablename = 'everything_lower_t'"
            ),
            "1"
        )
    });
    check("state schema", &|| {
        assert!(!has_state_schema(&dst), "left behind")
    });

    // Cloning again over the finished copy replaces it whole (types, extensions and all).
    let (code, out, err) = crate::pg_pair::init(&src, &dst, &["--drop-existing"]);
    if code != 0 {
        check("rerun with --drop-existing", &|| {
            panic!("exit {code}\nstdout:\n{out}\nstderr:\n{err}")
        });
    } else {
        check("data after --drop-existing", &|| {
            assert_same_data(&src, &dst);
        });
        check("schema after --drop-existing", &|| {
            assert_same_schema(&src, &dst)
        });
    }
    assert!(
        failures.is_empty(),
        "{} checks failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
