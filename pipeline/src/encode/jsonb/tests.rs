use super::*;
use crate::encode::tuples::{parse, table};
use crate::types::{META_EXTENSION, META_JSON_TAG, META_PG_TYPE};
use arrow_array::builder::{Int32Builder, ListBuilder};
use arrow_array::types::Float16Type;
use arrow_array::*;
use arrow_buffer::{i256, ScalarBuffer};
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit, UnionFields, UnionMode};
use std::collections::HashMap;
use std::sync::Arc;

type F16 = <Float16Type as arrow_array::types::ArrowPrimitiveType>::Native;

/// The `(id, data, _source_type)` text of each row of `batch`, encoded with `pk` as the key.
fn encode(batch: &RecordBatch, pk: &[&str], hidden: &[&str]) -> Vec<(String, String, String)> {
    let info = table(batch.schema().as_ref().clone(), pk, hidden);
    let mut out = BytesMut::new();
    JsonbEncoder::new(&info, "sqlite")
        .unwrap()
        .encode(batch, &mut out)
        .unwrap();
    parse(&out)
        .into_iter()
        .map(|row| {
            let [id, data, source] = <[_; 3]>::try_from(row).unwrap().map(Option::unwrap);
            assert_eq!(data[0], 1, "jsonb version byte");
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            (text(&id), text(&data[1..]), text(&source))
        })
        .collect()
}

fn batch(columns: Vec<(Field, ArrayRef)>) -> RecordBatch {
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

fn field(name: &str, dt: DataType) -> Field {
    Field::new(name, dt, true)
}

fn with_meta(name: &str, dt: DataType, key: &str, value: &str) -> Field {
    field(name, dt).with_metadata(HashMap::from([(key.into(), value.into())]))
}

fn ids() -> (Field, ArrayRef) {
    (
        field("id", DataType::Int64),
        Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
    )
}

/// The `data` object of each row for one column `v` next to an `id` key column.
fn data_of(f: Field, array: ArrayRef) -> Vec<String> {
    let rows = array.len();
    let (id_field, id) = ids();
    let b = batch(vec![(id_field, id.slice(0, rows)), (f, array)]);
    encode(&b, &["id"], &[])
        .into_iter()
        .map(|(_, data, _)| data)
        .collect()
}

#[test]
fn tuple_layout_and_scalars() {
    let b = batch(vec![
        ids(),
        (
            field("flag", DataType::Boolean),
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                None,
            ])),
        ),
        (field("n", DataType::Null), Arc::new(NullArray::new(4))),
        (
            field("u", DataType::UInt64),
            Arc::new(UInt64Array::from(vec![u64::MAX, 0, 1, 2])),
        ),
        (
            field("i", DataType::Int8),
            Arc::new(Int8Array::from(vec![-128, 0, 1, 2])),
        ),
    ]);
    let rows = encode(&b, &["id"], &[]);
    assert_eq!(
        rows[0],
        (
            "1".into(),
            r#"{"id":1,"flag":true,"n":null,"u":18446744073709551615,"i":-128}"#.into(),
            "sqlite".into()
        )
    );
    assert_eq!(rows[2].1, r#"{"id":3,"flag":null,"n":null,"u":1,"i":1}"#);
    let v: serde_json::Value = serde_json::from_str(&rows[0].1).unwrap();
    assert_eq!(v["u"].as_u64(), Some(u64::MAX));
}

#[test]
fn floats() {
    let data = data_of(
        field("f", DataType::Float64),
        Arc::new(Float64Array::from(vec![
            1.5,
            f64::NAN,
            -0.0,
            f64::NEG_INFINITY,
        ])),
    );
    assert_eq!(
        data,
        vec![
            r#"{"id":1,"f":1.5}"#,
            r#"{"id":2,"f":{"_type":"float","value":"NaN"}}"#,
            r#"{"id":3,"f":{"_type":"float","value":"-0.0"}}"#,
            r#"{"id":4,"f":{"_type":"float","value":"-Infinity"}}"#,
        ]
    );
    let data = data_of(
        field("f", DataType::Float32),
        Arc::new(Float32Array::from(vec![0.1f32, 1e30, f32::INFINITY])),
    );
    assert_eq!(data[0], r#"{"id":1,"f":0.1}"#);
    assert_eq!(data[1], r#"{"id":2,"f":1e30}"#);
    assert_eq!(
        data[2],
        r#"{"id":3,"f":{"_type":"float","value":"Infinity"}}"#
    );
    let data = data_of(
        field("f", DataType::Float16),
        Arc::new(Float16Array::from(vec![F16::from_f32(0.1)])),
    );
    assert_eq!(data[0], r#"{"id":1,"f":0.1}"#);
}

#[test]
fn strings_escape_and_nul_becomes_bytes() {
    let data = data_of(
        field("s", DataType::Utf8View),
        Arc::new(StringViewArray::from(vec!["q\"\\\n\u{1}é", "a\0b"])),
    );
    assert_eq!(data[0], "{\"id\":1,\"s\":\"q\\\"\\\\\\n\\u0001é\"}");
    assert_eq!(data[1], r#"{"id":2,"s":{"_type":"bytes","data":"YQBi"}}"#);
    let v: serde_json::Value = serde_json::from_str(&data[0]).unwrap();
    assert_eq!(v["s"], "q\"\\\n\u{1}é");
}

#[test]
fn binary_uses_the_field_tag() {
    let data = data_of(
        field("b", DataType::Binary),
        Arc::new(BinaryArray::from(vec![&b"hi"[..]])),
    );
    assert_eq!(data[0], r#"{"id":1,"b":{"_type":"bytes","data":"aGk="}}"#);
    let data = data_of(
        with_meta("b", DataType::LargeBinary, META_JSON_TAG, "blob"),
        Arc::new(LargeBinaryArray::from(vec![&b"\xff\x00"[..]])),
    );
    assert_eq!(data[0], r#"{"id":1,"b":{"_type":"blob","data":"/wA="}}"#);
    let fixed = FixedSizeBinaryArray::try_from_iter(vec![vec![1u8, 2, 3]].into_iter()).unwrap();
    let data = data_of(field("b", DataType::FixedSizeBinary(3)), Arc::new(fixed));
    assert_eq!(data[0], r#"{"id":1,"b":{"_type":"bytes","data":"AQID"}}"#);
}

#[test]
fn decimals() {
    let dec = Decimal128Array::from(vec![-123400, 1])
        .with_precision_and_scale(10, 4)
        .unwrap();
    let data = data_of(field("d", DataType::Decimal128(10, 4)), Arc::new(dec));
    assert_eq!(
        data[0],
        r#"{"id":1,"d":{"_type":"decimal","value":"-12.3400"}}"#
    );
    assert_eq!(
        data[1],
        r#"{"id":2,"d":{"_type":"decimal","value":"0.0001"}}"#
    );
    let dec = Decimal256Array::from(vec![i256::MIN.wrapping_add(i256::ONE)])
        .with_precision_and_scale(76, 2)
        .unwrap();
    let data = data_of(field("d", DataType::Decimal256(76, 2)), Arc::new(dec));
    assert_eq!(
        data[0],
        r#"{"id":1,"d":{"_type":"decimal","value":"-578960446186580977117854925043439539266349923328202820197287920039565648199.67"}}"#
    );
    let text = with_meta("d", DataType::Utf8, META_PG_TYPE, "numeric");
    let data = data_of(
        text.clone(),
        Arc::new(StringArray::from(vec!["1e-20", "NaN"])),
    );
    assert_eq!(
        data[0],
        r#"{"id":1,"d":{"_type":"decimal","value":"1e-20"}}"#
    );
    assert_eq!(data[1], r#"{"id":2,"d":{"_type":"decimal","value":"NaN"}}"#);

    let b = batch(vec![
        ids(),
        (
            text,
            Arc::new(StringArray::from(vec!["1", "2", "x\"", "4"])),
        ),
    ]);
    let info = table(b.schema().as_ref().clone(), &["id"], &[]);
    let mut out = BytesMut::from(&b"kept"[..]);
    let err = JsonbEncoder::new(&info, "sqlite")
        .unwrap()
        .encode(&b, &mut out)
        .unwrap_err();
    assert_eq!(&out[..], b"kept");
    assert!(
        err.message()
            .starts_with("table `t`, column `d`, row 2 of the batch: "),
        "{err}"
    );
    assert!(err.message().contains("is not a decimal number"), "{err}");
}

#[test]
fn dates_and_times() {
    let data = data_of(
        field("d", DataType::Date32),
        Arc::new(Date32Array::from(vec![19_724, -719_162])),
    );
    assert_eq!(
        data[0],
        r#"{"id":1,"d":{"_type":"date","value":"2024-01-02"}}"#
    );
    assert_eq!(
        data[1],
        r#"{"id":2,"d":{"_type":"date","value":"0001-01-01"}}"#
    );
    let micros = 1_704_164_645_123_456i64;
    let data = data_of(
        field("t", DataType::Timestamp(TimeUnit::Microsecond, None)),
        Arc::new(TimestampMicrosecondArray::from(vec![
            micros,
            micros - 123_456,
        ])),
    );
    assert_eq!(
        data[0],
        r#"{"id":1,"t":{"_type":"datetime","value":"2024-01-02T03:04:05.123456"}}"#
    );
    assert_eq!(
        data[1],
        r#"{"id":2,"t":{"_type":"datetime","value":"2024-01-02T03:04:05"}}"#
    );
    let data = data_of(
        field(
            "t",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("+02:00".into())),
        ),
        Arc::new(TimestampNanosecondArray::from(vec![micros * 1000 + 7]).with_timezone("+02:00")),
    );
    assert_eq!(
        data[0],
        r#"{"id":1,"t":{"_type":"datetime","value":"2024-01-02T03:04:05.123456007Z"}}"#
    );
    let data = data_of(
        field("t", DataType::Time64(TimeUnit::Microsecond)),
        Arc::new(Time64MicrosecondArray::from(vec![11_045_123_000])),
    );
    assert_eq!(
        data[0],
        r#"{"id":1,"t":{"_type":"time","value":"03:04:05.123"}}"#
    );
}

#[test]
fn json_text_is_embedded() {
    for f in [
        with_meta("j", DataType::Utf8, META_PG_TYPE, "jsonb"),
        with_meta("j", DataType::Utf8, META_EXTENSION, "arrow.json"),
    ] {
        let data = data_of(f, Arc::new(StringArray::from(vec![r#"{"a":[1,"x"]}"#])));
        assert_eq!(data[0], r#"{"id":1,"j":{"a":[1,"x"]}}"#);
    }
}

#[test]
fn lists_and_structs_nest() {
    let mut list = ListBuilder::new(Int32Builder::new());
    list.append_value([Some(1), None, Some(3)]);
    list.append_null();
    list.append_value([]);
    let list = list.finish();
    let list_field = field("l", list.data_type().clone());
    let data = data_of(list_field, Arc::new(list));
    assert_eq!(
        data,
        vec![
            r#"{"id":1,"l":[1,null,3]}"#,
            r#"{"id":2,"l":null}"#,
            r#"{"id":3,"l":[]}"#
        ]
    );

    let members = Fields::from(vec![
        field("x", DataType::Int32),
        field("s\"q", DataType::Utf8),
    ]);
    let st = StructArray::new(
        members.clone(),
        vec![
            Arc::new(Int32Array::from(vec![Some(1), None])),
            Arc::new(StringArray::from(vec!["a", "b"])),
        ],
        Some(vec![true, false].into()),
    );
    let data = data_of(field("st", DataType::Struct(members)), Arc::new(st));
    assert_eq!(
        data,
        vec![
            r#"{"id":1,"st":{"x":1,"s\"q":"a"}}"#,
            r#"{"id":2,"st":null}"#
        ]
    );
}

/// The union the SQLite connector emits for a column of any storage class.
fn sqlite_union(dense: bool) -> (Field, ArrayRef) {
    let fields = UnionFields::try_new(
        0..6,
        vec![
            field("null", DataType::Null),
            field("integer", DataType::Int64),
            field("real", DataType::Float64),
            field("text", DataType::Utf8),
            with_meta("blob", DataType::Binary, META_JSON_TAG, "blob"),
            with_meta("text_bytes", DataType::Binary, META_JSON_TAG, "bytes"),
        ],
    )
    .unwrap();
    let type_ids: ScalarBuffer<i8> = vec![1, 3, 4, 0, 2, 5].into();
    let (children, offsets): (Vec<ArrayRef>, _) = if dense {
        (
            vec![
                Arc::new(NullArray::new(1)),
                Arc::new(Int64Array::from(vec![42])),
                Arc::new(Float64Array::from(vec![f64::NAN])),
                Arc::new(StringArray::from(vec!["hé"])),
                Arc::new(BinaryArray::from(vec![&b"\x01"[..]])),
                Arc::new(BinaryArray::from(vec![&b"\xff"[..]])),
            ],
            Some(vec![0, 0, 0, 0, 0, 0].into()),
        )
    } else {
        let n = 6;
        (
            vec![
                Arc::new(NullArray::new(n)),
                Arc::new(Int64Array::from(vec![42; n])),
                Arc::new(Float64Array::from(vec![f64::NAN; n])),
                Arc::new(StringArray::from(vec!["hé"; n])),
                Arc::new(BinaryArray::from(vec![&b"\x01"[..]; n])),
                Arc::new(BinaryArray::from(vec![&b"\xff"[..]; n])),
            ],
            None,
        )
    };
    let mode = if dense {
        UnionMode::Dense
    } else {
        UnionMode::Sparse
    };
    let array = UnionArray::try_new(fields.clone(), type_ids, offsets, children).unwrap();
    (field("v", DataType::Union(fields, mode)), Arc::new(array))
}

#[test]
fn unions_write_the_selected_child() {
    for dense in [true, false] {
        let (f, array) = sqlite_union(dense);
        let b = batch(vec![
            (
                field("id", DataType::Int64),
                Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6])),
            ),
            (f, array),
        ]);
        let data: Vec<String> = encode(&b, &["id"], &[]).into_iter().map(|r| r.1).collect();
        assert_eq!(
            data,
            vec![
                r#"{"id":1,"v":42}"#,
                r#"{"id":2,"v":"hé"}"#,
                r#"{"id":3,"v":{"_type":"blob","data":"AQ=="}}"#,
                r#"{"id":4,"v":null}"#,
                r#"{"id":5,"v":{"_type":"float","value":"NaN"}}"#,
                r#"{"id":6,"v":{"_type":"bytes","data":"/w=="}}"#,
            ],
            "dense: {dense}"
        );
    }
}

#[test]
fn id_rules() {
    // A hidden row id keys the row and stays out of `data`.
    let b = batch(vec![
        (
            field("rowid", DataType::Int64),
            Arc::new(Int64Array::from(vec![-5])),
        ),
        (
            field("x", DataType::Utf8),
            Arc::new(StringArray::from(vec!["a"])),
        ),
    ]);
    assert_eq!(
        encode(&b, &[], &["rowid"])[0],
        ("-5".into(), r#"{"x":"a"}"#.into(), "sqlite".into())
    );

    let one = |f: Field, array: ArrayRef| {
        let b = batch(vec![(f, array)]);
        encode(&b, &["k"], &[]).remove(0).0
    };
    assert_eq!(
        one(
            field("k", DataType::Utf8),
            Arc::new(StringArray::from(vec!["a\"b"]))
        ),
        "a\"b"
    );
    assert_eq!(
        one(
            field("k", DataType::Float64),
            Arc::new(Float64Array::from(vec![0.1]))
        ),
        "0.1"
    );
    assert_eq!(
        one(
            field("k", DataType::Float64),
            Arc::new(Float64Array::from(vec![f64::NAN]))
        ),
        "NaN"
    );
    assert_eq!(
        one(
            field("k", DataType::Binary),
            Arc::new(BinaryArray::from(vec![&b"hi"[..]]))
        ),
        "aGk="
    );
    assert_eq!(
        one(
            field("k", DataType::Date32),
            Arc::new(Date32Array::from(vec![0]))
        ),
        "1970-01-01"
    );
    let dec = Decimal128Array::from(vec![150])
        .with_precision_and_scale(5, 2)
        .unwrap();
    assert_eq!(
        one(field("k", DataType::Decimal128(5, 2)), Arc::new(dec)),
        "1.50"
    );
    let (f, array) = sqlite_union(true);
    let f = Field::new("k", f.data_type().clone(), true);
    assert_eq!(one(f, array.slice(0, 1)), "42");

    // Several key columns: a JSON array of their JSON encodings.
    let b = batch(vec![
        (
            field("a", DataType::Int32),
            Arc::new(Int32Array::from(vec![1])),
        ),
        (
            field("b", DataType::Utf8),
            Arc::new(StringArray::from(vec!["a"])),
        ),
        (
            field("c", DataType::Date32),
            Arc::new(Date32Array::from(vec![0])),
        ),
    ]);
    assert_eq!(encode(&b, &["b", "a"], &[])[0].0, r#"["a",1]"#);
    assert_eq!(
        encode(&b, &["a", "c"], &[])[0].0,
        r#"[1,{"_type":"date","value":"1970-01-01"}]"#
    );
}

#[test]
fn null_and_nul_ids_are_errors() {
    let cases: Vec<(Vec<&str>, (Field, ArrayRef), &str)> = vec![
        (
            vec!["k"],
            (
                field("k", DataType::Int32),
                Arc::new(Int32Array::from(vec![Some(1), None])),
            ),
            "key is NULL",
        ),
        (
            vec!["k"],
            (
                field("k", DataType::Utf8),
                Arc::new(StringArray::from(vec!["a", "b\0"])),
            ),
            "U+0000",
        ),
    ];
    for (pk, column, expected) in cases {
        let b = batch(vec![
            column,
            (
                field("z", DataType::Int32),
                Arc::new(Int32Array::from(vec![1, 2])),
            ),
        ]);
        let info = table(b.schema().as_ref().clone(), &pk, &[]);
        let pk2 = JsonbEncoder::new(&info, "x").unwrap();
        let err = pk2.encode(&b, &mut BytesMut::new()).unwrap_err();
        assert!(
            err.message()
                .starts_with("table `t`, column `k`, row 1 of the batch"),
            "{err}"
        );
        assert!(err.message().contains(expected), "{err}");
    }
    let b = batch(vec![
        (
            field("a", DataType::Int32),
            Arc::new(Int32Array::from(vec![1])),
        ),
        (
            field("b", DataType::Utf8),
            Arc::new(StringArray::from(vec![None::<&str>])),
        ),
    ]);
    let info = table(b.schema().as_ref().clone(), &["a", "b"], &[]);
    let err = JsonbEncoder::new(&info, "x")
        .unwrap()
        .encode(&b, &mut BytesMut::new())
        .unwrap_err();
    assert!(
        err.message().starts_with("table `t`, column `b`, row 0"),
        "{err}"
    );
}

#[test]
fn unsupported_and_keyless_tables_fail_at_new() {
    let schema = Schema::new(vec![
        field("id", DataType::Int32),
        field("span", DataType::Duration(TimeUnit::Second)),
    ]);
    let err = JsonbEncoder::new(&table(schema, &["id"], &[]), "x")
        .err()
        .unwrap();
    assert_eq!(err.kind(), crate::ErrorKind::Schema);
    assert!(
        err.message().starts_with(
            "table `t`, column `span`: JSONB mode has no encoding for Arrow type Duration"
        ),
        "{err}"
    );

    let nested = DataType::List(Arc::new(field(
        "item",
        DataType::Interval(arrow_schema::IntervalUnit::DayTime),
    )));
    let schema = Schema::new(vec![field("id", DataType::Int32), field("l", nested)]);
    let err = JsonbEncoder::new(&table(schema, &["id"], &[]), "x")
        .err()
        .unwrap();
    assert!(err.message().contains("column `l`"), "{err}");

    let schema = Schema::new(vec![field("a", DataType::Int32)]);
    let err = JsonbEncoder::new(&table(schema, &[], &[]), "x")
        .err()
        .unwrap();
    assert!(
        err.message().contains("neither a primary key nor a row id"),
        "{err}"
    );
}

#[test]
fn flat_columns_follow_source_type_typed_and_stay_out_of_data() {
    let b = batch(vec![
        ids(),
        (
            field("name", DataType::Utf8),
            Arc::new(StringArray::from(vec![
                Some("a"),
                None,
                Some("c"),
                Some("d"),
            ])),
        ),
        (
            field("age", DataType::Int32),
            Arc::new(Int32Array::from(vec![Some(7), None, Some(-1), Some(0)])),
        ),
    ]);
    let mut info = table(b.schema().as_ref().clone(), &["id"], &[]);
    info.flat_columns = vec!["age".into()];
    let names: Vec<String> = jsonb_columns(&info)
        .unwrap()
        .into_iter()
        .map(|(name, ty)| format!("{name} {}", ty.sql_name()))
        .collect();
    assert_eq!(
        names,
        ["id text", "data jsonb", "_source_type text", "age integer"]
    );
    let mut out = BytesMut::new();
    JsonbEncoder::new(&info, "x")
        .unwrap()
        .encode(&b, &mut out)
        .unwrap();
    let rows = parse(&out);
    let data = &b"\x01{\"id\":1,\"name\":\"a\"}"[..];
    assert_eq!(rows[0][1].as_deref(), Some(data), "age is not in data");
    assert_eq!(
        rows[0][3].as_deref(),
        Some(&7i32.to_be_bytes()[..]),
        "binary int4"
    );
    assert_eq!(rows[1][3], None, "NULL stays NULL");

    info.flat_columns = vec!["data".into()];
    let err = JsonbEncoder::new(&info, "x").err().unwrap().to_string();
    assert!(err.contains("JSONB mode's own columns"), "{err}");
}
