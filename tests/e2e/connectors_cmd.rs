//! `seren-replicator connectors`: one line per built-in connector, its name then the location
//! forms it accepts.

use crate::harness::run_ok;

/// The line of connector `name`, which must be there.
fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no line for connector {name} in:\n{out}"))
}

#[test]
fn lists_every_built_in_connector_with_its_forms() {
    let out = run_ok(&["connectors"]);
    assert!(!out.trim().is_empty());
    for l in out.lines() {
        let mut words = l.split_whitespace();
        let name = words.next().unwrap_or_default();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase()),
            "each line starts with a lowercase connector name: {l:?}"
        );
        assert!(
            words.next().is_some(),
            "connector {name} lists no location form: {l:?}"
        );
    }
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(names, unique, "a connector is listed twice");

    let sqlite = line(&out, "sqlite");
    for form in ["sqlite://PATH", "PATH.db", "PATH.sqlite", "PATH.sqlite3"] {
        assert!(sqlite.contains(form), "sqlite line lacks {form}: {sqlite}");
    }
    let postgres = line(&out, "postgres");
    for form in ["postgresql://", "postgres://", "host="] {
        assert!(
            postgres.contains(form),
            "postgres line lacks {form}: {postgres}"
        );
    }
}
