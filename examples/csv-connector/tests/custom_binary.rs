//! The custom binary (`seren-csv`: the product's command line plus the CSV connector) loading a
//! directory of CSV files into a throwaway PostgreSQL, then read back with psql.

use seren_replicator::throwaway::ThrowawayPg;
use std::process::{Command, Stdio};

/// Run the custom binary; returns (exit code, stdout, stderr).
fn seren_csv(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_seren-csv"))
        .args(args)
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Unaligned, tuples-only psql output of `sql` against `url`.
fn psql(url: &str, sql: &str) -> String {
    seren_replicator::throwaway::psql(url, sql).unwrap_or_else(|e| panic!("{e:#}"))
}

fn csv_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("seren-csv.")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::write(
        dir.path().join("Orders.csv"),
        "id,price,paid,note\n1,9.5,true,\"a, b\"\n2,,false,\"two\nlines 🦀\"\n3,-0.25,,\"\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.csv"), "x,y\n").unwrap();
    dir
}

#[test]
fn custom_binary_lists_and_loads_csv() {
    let (code, out, err) = seren_csv(&["connectors"]);
    assert_eq!(code, 0, "{err}");
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"sqlite") && names.contains(&"postgres"),
        "{out}"
    );
    assert_eq!(
        names.first(),
        Some(&"csv"),
        "custom connectors come before the built-in ones: {out}"
    );

    let pg = ThrowawayPg::start(&["fsync=off"]).expect("start a throwaway PostgreSQL");
    let dir = csv_dir();
    let source = dir.path().to_str().unwrap();
    for (db, mode) in [("native", "native"), ("jsonb", "jsonb")] {
        psql(&pg.url("postgres"), &format!("CREATE DATABASE {db}"));
        let url = pg.url(db);
        let (code, out, err) = seren_csv(&[
            "init", "--source", source, "--target", &url, "--mode", mode, "-y", "--json",
        ]);
        assert_eq!(
            code, 0,
            "init --mode {mode} failed\nstdout:\n{out}\nstderr:\n{err}"
        );
    }

    let native = pg.url("native");
    assert_eq!(
        psql(&native, "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'Orders'"),
        "id bigint, price double precision, paid boolean, note text"
    );
    assert_eq!(
        psql(
            &native,
            r#"SELECT id, coalesce(price::text, 'NULL'), coalesce(paid::text, 'NULL'), quote_literal(note) FROM "Orders" ORDER BY id"#
        ),
        "1|9.5|true|'a, b'\n2|NULL|false|'two\nlines 🦀'\n3|-0.25|NULL|''"
    );
    assert_eq!(psql(&native, "SELECT count(*) FROM empty"), "0");

    let jsonb = pg.url("jsonb");
    assert_eq!(
        psql(
            &jsonb,
            r#"SELECT id || ' ' || data::text || ' ' || _source_type FROM "Orders" ORDER BY id"#
        ),
        "1 {\"id\": 1, \"note\": \"a, b\", \"paid\": true, \"price\": 9.5} csv\n\
         2 {\"id\": 2, \"note\": \"two\\nlines 🦀\", \"paid\": false, \"price\": null} csv\n\
         3 {\"id\": 3, \"note\": \"\", \"paid\": null, \"price\": -0.25} csv"
    );
}
