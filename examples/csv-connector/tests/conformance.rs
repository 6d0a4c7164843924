//! The CSV connector against the conformance kit, on real files in a temporary directory.

use csv_connector::CsvFactory;
use pipeline::arrow_schema::DataType;
use pipeline::testkit::assert_source_conformance;
use pipeline::{Mode, SourceFactory, SourceOptions};

/// A directory with an ordinary table, an empty one and one with wide rows.
fn files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut orders = String::from("id,price,paid,note\n");
    for i in 1..=10 {
        orders.push_str(&format!(
            "{i},{}.5,{},\"note {i}, with comma\"\n",
            i * 3,
            i % 2 == 0
        ));
    }
    orders.push_str("11,,,\n"); // NULL in every column
    orders.push_str("12,-0.25,true,\"multi\nline \"\"quoted\"\" 🦀\"\n");
    orders.push_str("13,NaN,false,\"\"\n");
    std::fs::write(dir.path().join("orders.csv"), orders).unwrap();
    std::fs::write(dir.path().join("empty.csv"), "a,b\n").unwrap();
    let mut wide = String::from("k,blob\r\n");
    for i in 0..20 {
        wide.push_str(&format!("{i},{}\r\n", "x".repeat(10_000)));
    }
    std::fs::write(dir.path().join("wide.csv"), wide).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a table").unwrap();
    dir
}

fn options(mode: Mode) -> SourceOptions {
    SourceOptions {
        mode,
        partition_rows: 5,
        batch_rows: 4,
        batch_bytes: 16 << 10,
        ..SourceOptions::default()
    }
}

#[tokio::test]
async fn csv_source_conforms_in_both_modes() {
    let dir = files();
    let location = dir.path().to_str().unwrap();
    for mode in [Mode::Native, Mode::Jsonb] {
        let report = assert_source_conformance(&CsvFactory, location, &options(mode)).await;
        let names: Vec<&str> = report.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["empty", "orders", "wide"]);
        let orders = report.table("orders").unwrap();
        assert_eq!(
            (orders.rows, orders.partitions, orders.max_batch_rows),
            (13, 3, 4)
        );
        assert_eq!(report.table("empty").unwrap().rows, 0);
        let wide = report.table("wide").unwrap();
        // Partitions of 5 rows; 2 rows of 10 kB pass 16 kB: batches of 2, 2, 1 rows (not 4, 1).
        assert_eq!((wide.rows, wide.partitions, wide.batches), (20, 4, 12));
    }
}

#[tokio::test]
async fn types_are_inferred_from_every_value() {
    let dir = files();
    let location = format!("csv://{}", dir.path().display());
    assert!(CsvFactory.accepts(&location));
    let source = CsvFactory
        .open(&location, &options(Mode::Jsonb))
        .await
        .unwrap();
    let orders = source.describe("orders").await.unwrap();
    let types: Vec<(&str, &DataType)> = orders
        .schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    assert_eq!(
        types,
        [
            ("id", &DataType::Int64),
            ("price", &DataType::Float64),
            ("paid", &DataType::Boolean),
            ("note", &DataType::Utf8),
            ("csv:row", &DataType::Int64),
        ]
    );
    assert_eq!(orders.hidden_columns, ["csv:row"]);
}

#[test]
fn accepts_only_its_own_forms() {
    let dir = files();
    assert!(CsvFactory.accepts(dir.path().to_str().unwrap()));
    assert!(CsvFactory.accepts("exports/orders.CSV"));
    assert!(!CsvFactory.accepts("mysql://u@h/db"));
    assert!(!CsvFactory.accepts("./app.db"));
    let empty = tempfile::tempdir().unwrap();
    assert!(!CsvFactory.accepts(empty.path().to_str().unwrap()));
}

#[tokio::test]
async fn errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.csv"), "a,b\n1,2\n3\n").unwrap();
    let source = CsvFactory
        .open(dir.path().to_str().unwrap(), &options(Mode::Native))
        .await
        .unwrap();
    let e = source.describe("bad").await.unwrap_err();
    assert!(
        e.message()
            .contains("bad.csv line 3: 1 field(s) where the header has 2"),
        "{e}"
    );
    let e = source.describe("nope").await.unwrap_err();
    assert!(e.message().contains("table \"nope\" does not exist"), "{e}");
    let missing = dir.path().join("missing");
    let e = CsvFactory
        .open(missing.to_str().unwrap(), &options(Mode::Native))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), pipeline::ErrorKind::Connect);
    assert!(e.message().contains("cannot read"), "{e}");
}
