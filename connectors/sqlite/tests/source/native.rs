//! Native mode: the affinity type map, the census, failing or widening on values that do not
//! fit, and dates that parse or not.

use crate::support::*;
use arrow_schema::{DataType, TimeUnit};
use pipeline::types::META_PG_TYPE;
use pipeline::{ErrorKind, Mode, OnTypeMismatch, Side};

#[tokio::test]
async fn declared_types_map_by_affinity() {
    let (_dir, path) = db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, i BIGINT, s VARCHAR(20), c CLOB,
             b BLOB, r REAL, d DOUBLE PRECISION, f FLOAT, flag BOOLEAN, day DATE,
             at DATETIME, ts TIMESTAMP, tm TIME, n NUMERIC, dec DECIMAL(10,2));
         INSERT INTO t VALUES
           (1, 9223372036854775807, 'héllo', 'x', x'DEADBEEF', 0.1, -1e999, 2, 1,
            '2024-02-29', '2024-01-02 03:04:05.123456', '1999-12-31T23:59', '12:30:15.5',
            1234567890123456789, 19.99),
           (2, -1, '', '', x'', 1.5, 1e999, 3.25, 0, '1970-01-01', '1970-01-01',
            '1970-01-01 00:00:01', '00:00', '3.14159265358979323846264338', -0.01),
           (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL);",
    );
    let source = open(&path, &options(Mode::Native)).await;
    let (info, _, b) = read_table(&*source, "t", None).await;
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
    let types: Vec<_> = info
        .schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    use DataType::*;
    let ts = Timestamp(TimeUnit::Microsecond, None);
    assert_eq!(
        types,
        [
            Int64,
            Int64,
            Utf8,
            Utf8,
            Binary,
            Float64,
            Float64,
            Float64,
            Boolean,
            Date32,
            ts.clone(),
            ts,
            Time64(TimeUnit::Microsecond),
            Utf8,
            Utf8
        ]
    );
    for (name, numeric) in [("s", false), ("n", true), ("dec", true)] {
        let meta = info.schema.field_with_name(name).unwrap().metadata();
        assert_eq!(
            meta.get(META_PG_TYPE).map(String::as_str),
            numeric.then_some("numeric")
        );
    }
    assert!(!info.schema.field_with_name("id").unwrap().is_nullable());
    assert_eq!(ints(&b, "i"), [Some(i64::MAX), Some(-1), None]);
    assert_eq!(
        strings(&b, "s"),
        [Some("héllo".into()), Some(String::new()), None]
    );
    assert_eq!(
        binaries(&b, "b"),
        [Some(vec![0xDE, 0xAD, 0xBE, 0xEF]), Some(vec![]), None]
    );
    assert_eq!(
        floats(&b, "d"),
        [Some(f64::NEG_INFINITY), Some(f64::INFINITY), None]
    );
    assert_eq!(
        floats(&b, "f"),
        [Some(2.0), Some(3.25), None],
        "REAL affinity stores 2 as 2.0"
    );
    assert_eq!(bools(&b, "flag"), [Some(true), Some(false), None]);
    assert_eq!(dates(&b, "day"), [Some(19782), Some(0), None]);
    let at = 19724 * 86_400_000_000 + 3 * 3_600_000_000 + 4 * 60_000_000 + 5_123_456;
    assert_eq!(timestamps(&b, "at"), [Some(at), Some(0), None]);
    assert_eq!(
        timestamps(&b, "ts"),
        [Some(946_684_740_000_000), Some(1_000_000), None]
    );
    let tm = b[0].column_by_name("tm").unwrap();
    let tm =
        arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Time64MicrosecondType>(tm);
    assert_eq!(
        tm.iter().collect::<Vec<_>>(),
        [Some(45_015_500_000), Some(0), None]
    );
    assert_eq!(
        strings(&b, "n"),
        // NUMERIC affinity itself turned that text into a double: the double is what is stored
        [
            Some("1234567890123456789".into()),
            Some("3.141592653589793".into()),
            None
        ]
    );
    assert_eq!(
        strings(&b, "dec"),
        [Some("19.99".into()), Some("-0.01".into()), None]
    );
}

#[tokio::test]
async fn untyped_columns_take_the_narrowest_type_that_holds_them() {
    let (_dir, path) = db(
        "CREATE TABLE u (ints, mixed_num, texts, blobs, empty, int_text, blob_text, bad_text);
         INSERT INTO u VALUES
           (1, 1, 'a', x'01', NULL, 1, x'01', 'ok'),
           (2, 2.5, 'b', x'02', NULL, 'two', 'two', CAST(x'FF' AS TEXT));",
    );
    let source = open(&path, &native(OnTypeMismatch::Fail)).await;
    let (info, _, b) = read_table(&*source, "u", None).await;
    let types: Vec<_> = info
        .schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    use DataType::*;
    assert_eq!(
        types,
        [Int64, Float64, Utf8, Binary, Utf8, Utf8, Binary, Binary]
    );
    assert_eq!(floats(&b, "mixed_num"), [Some(1.0), Some(2.5)]);
    assert_eq!(
        strings(&b, "int_text"),
        [Some("1".into()), Some("two".into())]
    );
    assert_eq!(
        binaries(&b, "blob_text"),
        [Some(vec![1]), Some(b"two".to_vec())]
    );
    assert_eq!(
        binaries(&b, "bad_text"),
        [Some(b"ok".to_vec()), Some(vec![0xFF])]
    );
    let warnings = info.warnings.join("\n");
    assert_eq!(info.warnings.len(), 3, "{warnings}");
    assert!(
        warnings.contains(
            "\"int_text\" (no declared type) holds integer and text values; stored as text"
        ),
        "{warnings}"
    );
    assert!(
        warnings.contains(
            "\"blob_text\" (no declared type) holds text and blob values; stored as bytea"
        ),
        "{warnings}"
    );
    assert!(warnings.contains("\"bad_text\""), "{warnings}");
}

#[tokio::test]
async fn values_that_do_not_fit_fail_with_the_first_row_and_value() {
    let (_dir, path) = db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, qty INTEGER, note TEXT);
         INSERT INTO t VALUES (1, 5, 'ok'), (2, 7, 'ok');
         INSERT INTO t VALUES (17, 'abc', 'ok'), (18, 1.5, 'ok'), (19, 'x''y', 'ok');",
    );
    let source = open(&path, &native(OnTypeMismatch::Fail)).await;
    let e = source.describe("t").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conversion);
    assert_eq!(e.side(), Side::Source);
    assert_eq!(
        e.to_string(),
        "table \"t\" column \"qty\" (declared INTEGER) holds 3 value(s) that do not fit bigint, \
         first at rowid 17: 'abc'; fix the data or rerun with --on-type-mismatch text to store \
         this column as text"
    );
}

#[tokio::test]
async fn every_failing_column_is_named_and_keys_identify_without_rowid_rows() {
    let (_dir, path) = db(
        "CREATE TABLE w (k TEXT PRIMARY KEY, r REAL, flag BOOLEAN, t TEXT) WITHOUT ROWID;
         INSERT INTO w VALUES ('a', 9007199254740993, 2, 'nul' || char(0)), ('b', 1, 1, 'ok');",
    );
    let source = open(&path, &native(OnTypeMismatch::Fail)).await;
    let e = source.describe("w").await.unwrap_err().to_string();
    assert!(e.starts_with("table \"w\" column \"flag\" (declared BOOLEAN) holds 1 value(s) that do not fit boolean, first at key (k='a'): 2;"), "{e}");
    assert!(e.contains("column(s) \"t\" also hold values"), "{e}");
    // REAL affinity converts that integer to a double on insert: it fits (as a double).
    assert!(!e.contains("\"r\""), "{e}");
}

#[tokio::test]
async fn values_that_do_not_fit_widen_to_text_or_bytea_on_request() {
    let (_dir, path) = db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, qty INTEGER, note TEXT, b BLOB,
             x REAL, n NUMERIC, flag BOOL, big, UNIQUE (qty));
         CREATE INDEX t_note ON t (note);
         INSERT INTO t VALUES (1, 5, 'ok', x'01', 1.5, 1, 1, 1.5),
                              (2, 'lots', 'nul' || char(0) || 'here', 'text', 'n/a', 'many', 7,
                               9007199254740993),
                              (3, x'FF', NULL, 3, NULL, 2.5, 0, NULL);",
    );
    let source = open(&path, &native(OnTypeMismatch::Text)).await;
    let (info, _, b) = read_table(&*source, "t", None).await;
    let types: Vec<_> = info
        .schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    use DataType::*;
    assert_eq!(
        types,
        [Int64, Binary, Binary, Binary, Utf8, Utf8, Utf8, Utf8]
    );
    assert_eq!(
        binaries(&b, "qty"),
        [
            Some(b"5".to_vec()),
            Some(b"lots".to_vec()),
            Some(vec![0xFF])
        ]
    );
    assert_eq!(binaries(&b, "note")[1], Some(b"nul\0here".to_vec()));
    assert_eq!(
        binaries(&b, "b"),
        [Some(vec![1]), Some(b"text".to_vec()), Some(b"3".to_vec())]
    );
    assert_eq!(
        strings(&b, "x"),
        [Some("1.5".into()), Some("n/a".into()), None]
    );
    let n = info.schema.field_with_name("n").unwrap();
    assert!(
        n.metadata().get(META_PG_TYPE).is_none(),
        "widened numeric is plain text"
    );
    assert_eq!(
        strings(&b, "n"),
        [Some("1".into()), Some("many".into()), Some("2.5".into())]
    );
    assert_eq!(
        strings(&b, "flag"),
        [Some("1".into()), Some("7".into()), Some("0".into())]
    );
    assert_eq!(
        strings(&b, "big"),
        [Some("1.5".into()), Some("9007199254740993".into()), None],
        "an integer a double cannot hold exactly stays exact"
    );
    assert_eq!(info.unique_keys, [["qty"]], "keys stay on widened columns");
    assert_eq!(info.indexes[0].columns, ["note"]);
    let w = info.warnings.join("\n");
    assert!(w.contains("column \"qty\" (declared INTEGER) holds 2 value(s) that do not fit bigint, first at rowid 2: 'lots'; stored as bytea"), "{w}");
    assert!(w.contains("column \"x\" (declared REAL) holds 1 value(s) that do not fit double precision, first at rowid 2: 'n/a'; stored as text"), "{w}");
    assert!(w.contains("\"note\"") && w.contains("'nul\\0here'"), "{w}");
}

#[tokio::test]
async fn date_columns_that_do_not_parse_are_stored_as_text_with_a_warning() {
    let (_dir, path) = db("CREATE TABLE d (id INTEGER PRIMARY KEY, good DATE, loose DATE,
             stamp DATETIME, epoch TIMESTAMP, nano DATETIME, broken DATE);
         INSERT INTO d VALUES
           (1, '2024-01-01', '2024-01-01', '2024-01-01 10:00:00', '2024-01-01', '2024-01-01 00:00:00.123456000', 'x'),
           (2, NULL, 'next tuesday', '2024-01-01T10:00', 1700000000, '2024-01-01 00:00:00.1234567', x'00');");
    for policy in [OnTypeMismatch::Fail, OnTypeMismatch::Text] {
        let source = open(&path, &native(policy)).await;
        if policy == OnTypeMismatch::Fail {
            // a blob in a date column fits neither date nor text
            let e = source.describe("d").await.unwrap_err().to_string();
            assert!(e.contains("column \"broken\" (declared DATE) holds 1 value(s) that do not fit text, first at rowid 2: blob x'00' (1 bytes)"), "{e}");
            assert!(e.ends_with("to store this column as bytea"), "{e}");
            continue;
        }
        let (info, _, b) = read_table(&*source, "d", None).await;
        let types: Vec<_> = info
            .schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        use DataType::*;
        assert_eq!(types, [Int64, Date32, Utf8, ts, Utf8, Utf8, Binary]);
        assert_eq!(
            strings(&b, "loose"),
            [Some("2024-01-01".into()), Some("next tuesday".into())]
        );
        assert_eq!(strings(&b, "epoch")[1], Some("1700000000".into()));
        assert_eq!(
            strings(&b, "nano")[1],
            Some("2024-01-01 00:00:00.1234567".into())
        );
        let w = info.warnings.join("\n");
        assert!(w.contains("column \"loose\" (declared DATE) holds 1 value(s) that are not YYYY-MM-DD dates, first at rowid 2: 'next tuesday'; stored as text"), "{w}");
        assert!(w.contains("column \"epoch\" (declared TIMESTAMP)"), "{w}");
        assert!(
            w.contains("column \"nano\""),
            "sub-microsecond digits are not rounded away: {w}"
        );
        assert!(!w.contains("\"good\"") && !w.contains("\"stamp\""), "{w}");
    }
    // Without the blob, the default policy succeeds: dates never fail, they fall back to text.
    let (_dir, path) = db("CREATE TABLE d (loose DATE); INSERT INTO d VALUES ('someday');");
    let source = open(&path, &native(OnTypeMismatch::Fail)).await;
    let info = source.describe("d").await.unwrap();
    assert_eq!(info.schema.field(0).data_type(), &DataType::Utf8);
    assert_eq!(info.warnings.len(), 1);
}

#[tokio::test]
async fn a_null_primary_key_is_dropped_in_native_mode() {
    let (_dir, path) = db("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);
         INSERT INTO t VALUES ('a', 1), (NULL, 2);");
    let source = open(&path, &native(OnTypeMismatch::Fail)).await;
    let (info, _, b) = read_table(&*source, "t", None).await;
    assert!(info.primary_key.is_empty() && info.hidden_columns.is_empty());
    assert_eq!(info.warnings.len(), 1);
    assert!(
        info.warnings[0].contains("no primary key"),
        "{:?}",
        info.warnings
    );
    assert_eq!(strings(&b, "k"), [Some("a".into()), None]);
}
