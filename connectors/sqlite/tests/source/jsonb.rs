//! JSONB mode: every column is a dense union of SQLite's storage classes; rows are identified
//! by the primary key, or by the hidden rowid column.

use crate::support::{db, ints, open, options, read_table, rows, union_column, Val};
use arrow_schema::DataType;
use pipeline::types::META_JSON_TAG;
use pipeline::{Mode, SourceOptions};
use seren_sqlite::ROWID_COLUMN;

#[tokio::test]
async fn every_storage_class_lands_in_its_union_child() {
    let (_dir, path) = db("CREATE TABLE t (id INTEGER PRIMARY KEY, v);
         INSERT INTO t VALUES
           (1, NULL), (2, 42), (3, -9223372036854775808), (4, 1.5), (5, 9e999), (6, -9e999),
           (7, 'héllo 🚀'), (8, 'a' || char(0) || 'b'), (9, CAST(x'C328FF' AS TEXT)),
           (10, x'00FF10'), (11, x''), (12, ''), (13, 0.1);");
    let source = open(&path, &options(Mode::Jsonb)).await;
    let (info, partitions, batches) = read_table(&*source, "t", None).await;
    assert_eq!(partitions.len(), 1);
    assert_eq!(info.primary_key, ["id"]);
    assert!(info.hidden_columns.is_empty());

    let DataType::Union(fields, arrow_schema::UnionMode::Dense) =
        info.schema.field_with_name("v").unwrap().data_type()
    else {
        panic!("v is not a dense union")
    };
    let children: Vec<_> = fields
        .iter()
        .map(|(_, f)| {
            let tag = f.metadata().get(META_JSON_TAG).cloned().unwrap_or_default();
            (f.name().as_str(), f.data_type().clone(), tag)
        })
        .collect();
    assert_eq!(
        children,
        [
            ("null", DataType::Null, String::new()),
            ("integer", DataType::Int64, String::new()),
            ("real", DataType::Float64, String::new()),
            ("text", DataType::Utf8, String::new()),
            ("blob", DataType::Binary, "blob".to_string()),
            ("text_bytes", DataType::Binary, "bytes".to_string()),
        ]
    );
    assert_eq!(
        union_column(&batches, "v"),
        [
            Val::Null,
            Val::Integer(42),
            Val::Integer(i64::MIN),
            Val::Real(1.5),
            Val::Real(f64::INFINITY),
            Val::Real(f64::NEG_INFINITY),
            Val::Text("héllo 🚀".into()),
            Val::Text("a\0b".into()), // valid UTF-8: the encoder tags it
            Val::TextBytes(vec![0xC3, 0x28, 0xFF]),
            Val::Blob(vec![0, 0xFF, 0x10]),
            Val::Blob(vec![]),
            Val::Text(String::new()),
            Val::Real(0.1),
        ]
    );
    let ids: Vec<_> = (1..=13).map(Val::Integer).collect();
    assert_eq!(union_column(&batches, "id"), ids);
}

#[tokio::test]
async fn a_table_without_a_key_carries_its_rowid_in_a_hidden_column() {
    let (_dir, path) = db("CREATE TABLE nokey (n INTEGER, s TEXT);
         INSERT INTO nokey (rowid, n, s) VALUES (5, 1, 'x'), (7, 1, 'x'), (100, NULL, NULL);");
    let source = open(&path, &options(Mode::Jsonb)).await;
    let (info, _, batches) = read_table(&*source, "nokey", None).await;
    assert!(info.primary_key.is_empty());
    assert_eq!(info.hidden_columns, [ROWID_COLUMN]);
    assert_eq!(info.id_columns(), [ROWID_COLUMN]);
    let last = info.schema.fields().last().unwrap();
    assert_eq!(
        (last.name().as_str(), last.data_type()),
        (ROWID_COLUMN, &DataType::Int64)
    );
    assert_eq!(info.columns.last().unwrap().name, ROWID_COLUMN);
    assert_eq!(ints(&batches, ROWID_COLUMN), [Some(5), Some(7), Some(100)]);
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
}

#[tokio::test]
async fn a_null_in_the_primary_key_falls_back_to_the_rowid_with_a_warning() {
    let (_dir, path) = db("CREATE TABLE t (k TEXT PRIMARY KEY, v);
         INSERT INTO t VALUES ('a', 1), (NULL, 2), (NULL, 3);");
    let source = open(&path, &options(Mode::Jsonb)).await;
    let (info, _, batches) = read_table(&*source, "t", None).await;
    assert!(info.primary_key.is_empty());
    assert_eq!(info.hidden_columns, [ROWID_COLUMN]);
    assert_eq!(ints(&batches, ROWID_COLUMN), [Some(1), Some(2), Some(3)]);
    assert_eq!(info.warnings.len(), 1);
    assert!(
        info.warnings[0].contains("holds NULL in 2 row(s)"),
        "{:?}",
        info.warnings
    );
    assert!(info.warnings[0].contains("rowid"), "{:?}", info.warnings);
}

#[tokio::test]
async fn without_rowid_tables_use_their_composite_key_in_one_partition() {
    let (_dir, path) = db(
        "CREATE TABLE pair (a INTEGER, b TEXT, n, PRIMARY KEY (b, a)) WITHOUT ROWID;
         INSERT INTO pair VALUES (2, 'x', 1), (1, 'y', 2), (1, 'x', 3), (3, 'a', 4);",
    );
    let opts = SourceOptions {
        partition_rows: 1,
        batch_rows: 2,
        ..options(Mode::Jsonb)
    };
    let source = open(&path, &opts).await;
    let (info, partitions, batches) = read_table(&*source, "pair", None).await;
    assert_eq!(info.primary_key, ["b", "a"]);
    assert!(info.hidden_columns.is_empty());
    assert_eq!(partitions.len(), 1);
    assert_eq!(partitions[0].estimated_rows, 4);
    assert_eq!(batches.len(), 2, "batch_rows bounds batches");
    // in key order (b, a)
    assert_eq!(
        union_column(&batches, "n"),
        [
            Val::Integer(4),
            Val::Integer(3),
            Val::Integer(1),
            Val::Integer(2)
        ]
    );
    let nullable: Vec<_> = info.columns.iter().map(|c| c.nullable).collect();
    assert_eq!(
        nullable,
        [false, false, true],
        "WITHOUT ROWID keys are NOT NULL"
    );
}

#[tokio::test]
async fn awkward_identifiers_are_quoted_everywhere() {
    let (_dir, path) = db("CREATE TABLE \"my \"\"odd\"\" Täble\" (
             \"user\" TEXT, \"order\" INTEGER, \"Some Col\" REAL, \"a\"\"b\" TEXT,
             \"rowid\" TEXT, \"ünï\" BLOB);
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 50)
         INSERT INTO \"my \"\"odd\"\" Täble\" (_rowid_, \"user\", \"order\", \"Some Col\", \"a\"\"b\", \"rowid\", \"ünï\")
             SELECT i * 10, 'u' || i, i, i / 2.0, 'q\"' || i, 'not the rowid', x'01' FROM s;");
    for mode in [Mode::Jsonb, Mode::Native] {
        let opts = SourceOptions {
            partition_rows: 20,
            ..options(mode)
        };
        let source = open(&path, &opts).await;
        let table = "my \"odd\" Täble";
        assert_eq!(source.list_tables().await.unwrap(), [table]);
        let (info, partitions, batches) = read_table(&*source, table, Some("\"order\" > 0")).await;
        assert_eq!(info.name, table);
        assert_eq!(partitions.len(), 3, "{mode:?}");
        assert_eq!(rows(&batches), 50);
        let names: Vec<_> = info
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            &names[..6],
            ["user", "order", "Some Col", "a\"b", "rowid", "ünï"]
        );
        if mode == Mode::Jsonb {
            // the column named rowid shadows the rowid; the hidden column still reads the real one
            let rowids = ints(&batches, ROWID_COLUMN);
            assert_eq!(rowids, (1..=50).map(|i| Some(i * 10)).collect::<Vec<_>>());
            assert_eq!(
                union_column(&batches, "rowid")[0],
                Val::Text("not the rowid".into())
            );
            assert_eq!(
                union_column(&batches, "a\"b")[49],
                Val::Text("q\"50".into())
            );
        } else {
            assert_eq!(crate::support::ints(&batches, "order")[49], Some(50));
        }
    }
}

#[tokio::test]
async fn an_empty_table_has_a_schema_one_partition_and_no_rows() {
    let (_dir, path) = db("CREATE TABLE e (id INTEGER PRIMARY KEY, s TEXT, d DATE);
         CREATE TABLE e2 (x);");
    for mode in [Mode::Jsonb, Mode::Native] {
        let source = open(&path, &options(mode)).await;
        for table in ["e", "e2"] {
            let (info, partitions, batches) = read_table(&*source, table, None).await;
            assert!(!info.schema.fields().is_empty());
            assert_eq!(info.rows, 0);
            assert_eq!(partitions.len(), 1);
            assert_eq!(partitions[0].estimated_rows, 0);
            assert!(batches.is_empty());
        }
        let e = source.describe("e").await.unwrap();
        let types: Vec<_> = e
            .schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        if mode == Mode::Native {
            assert_eq!(types, [DataType::Int64, DataType::Utf8, DataType::Date32]);
        }
    }
}
