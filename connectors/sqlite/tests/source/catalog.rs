//! Listing and describing tables: what counts as a table, keys, indexes, foreign keys.

use crate::support::{db, open, options};
use pipeline::{ErrorKind, Mode, Side};

#[tokio::test]
async fn lists_ordinary_tables_sorted_without_views_virtual_or_internal_tables() {
    let (_dir, path) = db("CREATE TABLE b (x);
         CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, y);
         CREATE TABLE \"Zed\" (z);
         INSERT INTO a (y) VALUES (1);
         CREATE VIEW v AS SELECT * FROM a;
         CREATE VIRTUAL TABLE docs USING fts5(body);
         INSERT INTO docs VALUES ('hello');
         CREATE INDEX b_x ON b (x);
         ANALYZE;");
    let source = open(&path, &options(Mode::Jsonb)).await;
    // byte order: upper case first
    assert_eq!(source.list_tables().await.unwrap(), ["Zed", "a", "b"]);
    assert_eq!(source.kind(), "sqlite");
    assert_eq!(source.location(), path.display().to_string());

    for (name, says) in [
        ("v", "is a view"),
        ("docs", "is a virtual table"),
        ("docs_data", "storage of a virtual table"),
        ("sqlite_sequence", "internal SQLite table"),
        ("nope", "does not exist"),
    ] {
        let e = source.describe(name).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Schema, "{name}: {e}");
        assert_eq!(e.side(), Side::Source);
        assert!(e.to_string().contains(says), "{name}: {e}");
    }
    let e = source.describe("nope").await.unwrap_err();
    assert!(e.to_string().contains("Zed, a, b"), "lists the tables: {e}");
    // SQLite names are case-insensitive; the catalog spelling is reported.
    assert_eq!(source.describe("zED").await.unwrap().name, "Zed");
}

#[tokio::test]
async fn describes_keys_indexes_and_foreign_keys() {
    let (_dir, path) = db(
        "PRAGMA foreign_keys = OFF; -- allows the key to a missing table
         CREATE TABLE parent (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, n INT);
         CREATE TABLE child (
             a INTEGER, b TEXT NOT NULL, parent_id INTEGER REFERENCES parent,
             code TEXT REFERENCES parent (code), ghost INTEGER REFERENCES missing (id),
             PRIMARY KEY (b, a), UNIQUE (parent_id, code));
         CREATE INDEX child_by_parent ON child (parent_id);
         CREATE UNIQUE INDEX child_code ON child (code, a);
         CREATE INDEX child_expr ON child (lower(code));
         CREATE INDEX child_partial ON child (a) WHERE a > 0;
         CREATE INDEX child_nocase ON child (b COLLATE NOCASE);
         INSERT INTO parent VALUES (1, 'one', 1), (2, 'two', 2);
         INSERT INTO child VALUES (1, 'x', 1, 'one', NULL), (2, 'y', 2, 'two', NULL);",
    );
    let source = open(&path, &options(Mode::Jsonb)).await;

    let parent = source.describe("parent").await.unwrap();
    assert_eq!(parent.primary_key, ["id"]);
    assert!(parent.hidden_columns.is_empty());
    assert_eq!(parent.unique_keys, [["code"]]);
    let nullable: Vec<_> = parent
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.nullable))
        .collect();
    assert_eq!(nullable, [("id", false), ("code", false), ("n", true)]);
    assert_eq!(parent.columns[2].source_type, "INT");
    assert_eq!((parent.rows, parent.rows_exact), (2, true));
    assert!(parent.bytes > 0);

    let child = source.describe("child").await.unwrap();
    assert_eq!(child.primary_key, ["b", "a"]);
    assert_eq!(child.unique_keys, [["parent_id", "code"]]);
    let indexes: Vec<_> = child
        .indexes
        .iter()
        .map(|i| (i.name.as_str(), i.columns.clone(), i.unique))
        .collect();
    assert_eq!(
        indexes,
        [
            ("child_by_parent", vec!["parent_id".to_string()], false),
            ("child_code", vec!["code".into(), "a".into()], true),
            ("child_nocase", vec!["b".into()], false),
        ]
    );
    let fks: Vec<_> = child
        .foreign_keys
        .iter()
        .map(|f| {
            (
                f.columns.clone(),
                f.referenced_table.as_str(),
                f.referenced_columns.clone(),
            )
        })
        .collect();
    assert_eq!(
        fks,
        [
            (vec!["code".to_string()], "parent", vec!["code".to_string()]),
            (vec!["parent_id".into()], "parent", vec!["id".into()]), // implicit: parent's key
        ]
    );
    let warnings = child.warnings.join("\n");
    for expected in ["child_expr", "child_partial", "NOCASE", "\"missing\""] {
        assert!(warnings.contains(expected), "{expected} not in {warnings}");
    }
}

#[tokio::test]
async fn generated_columns_are_copied_as_data_with_a_warning() {
    let (_dir, path) = db("CREATE TABLE g (a INTEGER PRIMARY KEY, b INTEGER,
             twice INTEGER GENERATED ALWAYS AS (b * 2) VIRTUAL,
             thrice INTEGER GENERATED ALWAYS AS (b * 3) STORED);
         INSERT INTO g (a, b) VALUES (1, 5);");
    let source = open(&path, &options(Mode::Native)).await;
    let (info, _, batches) = crate::support::read_table(&*source, "g", None).await;
    let names: Vec<_> = info.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "twice", "thrice"]);
    assert_eq!(crate::support::ints(&batches, "twice"), [Some(10)]);
    assert_eq!(crate::support::ints(&batches, "thrice"), [Some(15)]);
    assert_eq!(info.warnings.len(), 2, "{:?}", info.warnings);
    assert!(info.warnings[0].contains("\"twice\" is a generated (VIRTUAL)"));
}
