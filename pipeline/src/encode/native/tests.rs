use super::*;
use crate::encode::tuples::{parse, table};
use crate::types::{META_EXTENSION, META_PG_TYPE};
use crate::ErrorKind;
use arrow_array::*;
use arrow_schema::Schema;
use std::collections::HashMap;
use std::sync::Arc;

/// Encode one single-column batch and return each row's field.
fn encode_column(field: Field, array: ArrayRef) -> Vec<Option<Vec<u8>>> {
    let schema = Schema::new(vec![field]);
    let info = table(schema.clone(), &[], &[]);
    let batch = RecordBatch::try_new(Arc::new(schema), vec![array]).unwrap();
    let mut out = BytesMut::new();
    NativeEncoder::new(&info)
        .unwrap()
        .encode(&batch, &mut out)
        .unwrap();
    parse(&out)
        .into_iter()
        .map(|mut row| row.remove(0))
        .collect()
}

fn encode_error(field: Field, array: ArrayRef) -> Error {
    let schema = Schema::new(vec![field]);
    let info = table(schema.clone(), &[], &[]);
    let batch = RecordBatch::try_new(Arc::new(schema), vec![array]).unwrap();
    let mut out = BytesMut::from(&b"before"[..]);
    let err = NativeEncoder::new(&info)
        .unwrap()
        .encode(&batch, &mut out)
        .unwrap_err();
    assert_eq!(&out[..], b"before", "a failed batch appends nothing");
    err
}

fn with_meta(name: &str, dt: DataType, key: &str, value: &str) -> Field {
    Field::new(name, dt, true).with_metadata(HashMap::from([(key.into(), value.into())]))
}

fn some(bytes: &[u8]) -> Option<Vec<u8>> {
    Some(bytes.to_vec())
}

#[test]
fn booleans_and_integers_widen() {
    let f = |name, dt| Field::new(name, dt, true);
    let rows = encode_column(
        f("b", DataType::Boolean),
        Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
    );
    assert_eq!(rows, vec![some(&[1]), None, some(&[0])]);
    let rows = encode_column(
        f("i", DataType::Int8),
        Arc::new(Int8Array::from(vec![-1, 127])),
    );
    assert_eq!(rows, vec![some(&[0xff, 0xff]), some(&[0, 127])]);
    let rows = encode_column(
        f("u", DataType::UInt8),
        Arc::new(UInt8Array::from(vec![255])),
    );
    assert_eq!(rows, vec![some(&[0, 255])]);
    let rows = encode_column(
        f("u", DataType::UInt16),
        Arc::new(UInt16Array::from(vec![65535])),
    );
    assert_eq!(rows, vec![some(&[0, 0, 0xff, 0xff])]);
    let rows = encode_column(
        f("u", DataType::UInt32),
        Arc::new(UInt32Array::from(vec![u32::MAX])),
    );
    assert_eq!(rows, vec![some(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])]);
    let rows = encode_column(
        f("i", DataType::Int64),
        Arc::new(Int64Array::from(vec![i64::MIN])),
    );
    assert_eq!(rows, vec![some(&i64::MIN.to_be_bytes())]);
    let rows = encode_column(
        f("u", DataType::UInt64),
        Arc::new(UInt64Array::from(vec![u64::MAX, 0])),
    );
    let max: Vec<u8> = [5u16, 4, 0, 0, 1844, 6744, 737, 955, 1615]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect();
    assert_eq!(rows, vec![Some(max), some(&[0; 8])]);
}

#[test]
fn floats_keep_their_bits() {
    let half = F16::from_f32(0.1);
    let rows = encode_column(
        Field::new("h", DataType::Float16, false),
        Arc::new(Float16Array::from(vec![half])),
    );
    assert_eq!(rows, vec![some(&half.to_f32().to_be_bytes())]);
    let values = vec![f64::NAN, -0.0, f64::INFINITY, 1.5e300];
    let rows = encode_column(
        Field::new("d", DataType::Float64, false),
        Arc::new(Float64Array::from(values.clone())),
    );
    let expected: Vec<_> = values.iter().map(|v| some(&v.to_be_bytes())).collect();
    assert_eq!(rows, expected);
}

#[test]
fn decimals_and_numeric_text() {
    let array = Decimal128Array::from(vec![Some(-123400), None])
        .with_precision_and_scale(10, 4)
        .unwrap();
    let rows = encode_column(
        Field::new("n", DataType::Decimal128(10, 4), true),
        Arc::new(array),
    );
    let words = |w: &[u16]| Some(w.iter().flat_map(|w| w.to_be_bytes()).collect::<Vec<u8>>());
    assert_eq!(rows, vec![words(&[2, 0, 0x4000, 4, 12, 3400]), None]);

    let big = i256::from_i128(10).wrapping_pow(70);
    let array = Decimal256Array::from(vec![big])
        .with_precision_and_scale(76, 0)
        .unwrap();
    let rows = encode_column(
        Field::new("n", DataType::Decimal256(76, 0), false),
        Arc::new(array),
    );
    // 10^70: one group `100` (10^2) at weight 17 (10^68).
    assert_eq!(rows, vec![words(&[1, 17, 0, 0, 100])]);

    let field = with_meta("n", DataType::Utf8, META_PG_TYPE, "numeric");
    let text = StringArray::from(vec!["-12.3400", "1e5", "1.5E-3", "NaN", "-Infinity"]);
    let rows = encode_column(field.clone(), Arc::new(text));
    assert_eq!(
        rows,
        vec![
            words(&[2, 0, 0x4000, 4, 12, 3400]),
            words(&[1, 1, 0, 0, 10]),
            words(&[1, 0xffff, 0, 4, 15]),
            words(&[0, 0, 0xC000, 0]),
            words(&[0, 0, 0xF000, 0]),
        ]
    );
    let err = encode_error(field, Arc::new(StringArray::from(vec!["1", "12,5"])));
    assert_eq!(err.kind(), ErrorKind::Conversion);
    assert!(
        err.message()
            .starts_with("table `t`, column `n`, row 1 of the batch: \"12,5\" is not a decimal"),
        "{err}"
    );
}

#[test]
fn text_bytes_uuid_and_json() {
    let rows = encode_column(
        Field::new("s", DataType::Utf8View, true),
        Arc::new(StringViewArray::from(vec![
            Some("héllo"),
            None,
            Some(""),
            Some("a string longer than twelve bytes"),
        ])),
    );
    assert_eq!(
        rows,
        vec![
            some("héllo".as_bytes()),
            None,
            some(b""),
            some(b"a string longer than twelve bytes")
        ]
    );
    let err = encode_error(
        Field::new("s", DataType::LargeUtf8, false),
        Arc::new(LargeStringArray::from(vec!["ok", "nul\0here"])),
    );
    assert!(err.message().contains("column `s`, row 1"), "{err}");
    assert!(err.message().contains("NUL byte"), "{err}");

    let rows = encode_column(
        Field::new("b", DataType::LargeBinary, false),
        Arc::new(LargeBinaryArray::from(vec![&b"\0\xff"[..]])),
    );
    assert_eq!(rows, vec![some(b"\0\xff")]);

    let field = with_meta(
        "u",
        DataType::FixedSizeBinary(16),
        META_EXTENSION,
        "arrow.uuid",
    );
    assert_eq!(PgType::for_field(&field), Some(PgType::Uuid));
    let id: Vec<u8> = (0..16).collect();
    let array = FixedSizeBinaryArray::try_from_iter(std::iter::once(id.clone())).unwrap();
    assert_eq!(encode_column(field, Arc::new(array)), vec![Some(id)]);

    let field = with_meta("j", DataType::Utf8, META_EXTENSION, "arrow.json");
    let rows = encode_column(field, Arc::new(StringArray::from(vec![r#"{"a":1}"#])));
    assert_eq!(rows, vec![some(b"\x01{\"a\":1}")]);
}

#[test]
fn dates_times_and_timestamps() {
    let rows = encode_column(
        Field::new("d", DataType::Date32, true),
        Arc::new(Date32Array::from(vec![
            0,
            10_957,
            -719_162,
            2_932_896,
            i32::MAX,
        ])),
    );
    let days = |d: i32| some(&d.to_be_bytes());
    assert_eq!(
        rows,
        vec![
            days(-10_957),
            days(0),
            days(-730_119),
            days(2_921_939),
            days(i32::MAX)
        ]
    );

    let rows = encode_column(
        Field::new("t", DataType::Time64(TimeUnit::Nanosecond), false),
        Arc::new(Time64NanosecondArray::from(vec![
            1_500,
            2_500,
            86_400_000_000_000,
        ])),
    );
    let us = |v: i64| some(&v.to_be_bytes());
    assert_eq!(rows, vec![us(2), us(2), us(86_400_000_000)]);

    let epoch_2000 = 946_684_800i64;
    let rows = encode_column(
        Field::new("ts", DataType::Timestamp(TimeUnit::Second, None), false),
        Arc::new(TimestampSecondArray::from(vec![epoch_2000, 0])),
    );
    assert_eq!(rows, vec![us(0), us(-epoch_2000 * 1_000_000)]);
    let rows = encode_column(
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Arc::new(
            TimestampNanosecondArray::from(vec![epoch_2000 * 1_000_000_000 + 1_500])
                .with_timezone("UTC"),
        ),
    );
    assert_eq!(rows, vec![us(2)]);

    let err = encode_error(
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Arc::new(TimestampMillisecondArray::from(vec![0, i64::MAX / 2])),
    );
    assert!(err.message().contains("column `ts`, row 1"), "{err}");
    assert!(
        err.message().contains("outside PostgreSQL's range"),
        "{err}"
    );
}

#[test]
fn hidden_columns_are_left_out_and_slices_work() {
    let schema = Schema::new(vec![
        Field::new("rowid", DataType::Int64, false),
        Field::new("a", DataType::Int32, true),
        Field::new("s", DataType::Utf8, true),
    ]);
    let info = table(schema.clone(), &[], &["rowid"]);
    assert_eq!(
        native_columns(&info).unwrap(),
        vec![
            ("a".to_string(), PgType::Int4),
            ("s".to_string(), PgType::Text)
        ]
    );
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(Int32Array::from(vec![Some(7), None, Some(9)])),
            Arc::new(StringArray::from(vec![Some("x"), Some("y"), None])),
        ],
    )
    .unwrap();
    let encoder = NativeEncoder::new(&info).unwrap();
    let mut out = BytesMut::new();
    encoder.encode(&batch.slice(1, 2), &mut out).unwrap();
    assert_eq!(
        parse(&out),
        vec![
            vec![None, some(b"y")],
            vec![some(&9i32.to_be_bytes()), None]
        ]
    );
}

#[test]
fn unsupported_types_are_named() {
    let schema = Schema::new(vec![
        Field::new("ok", DataType::Int32, true),
        Field::new("span", DataType::Duration(TimeUnit::Second), true),
    ]);
    let info = table(schema, &[], &[]);
    for err in [
        native_columns(&info).unwrap_err(),
        NativeEncoder::new(&info).err().unwrap(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Schema);
        assert!(
            err.message()
                .starts_with("table `t`, column `span`: native mode"),
            "{err}"
        );
        assert!(err.message().contains("use JSONB mode"), "{err}");
    }
}

#[test]
fn batches_must_match_the_schema() {
    let info = table(
        Schema::new(vec![Field::new("a", DataType::Int32, true)]),
        &[],
        &[],
    );
    let other = Schema::new(vec![Field::new("a", DataType::Int64, true)]);
    let batch =
        RecordBatch::try_new(Arc::new(other), vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
    let err = NativeEncoder::new(&info)
        .unwrap()
        .encode(&batch, &mut BytesMut::new())
        .unwrap_err();
    assert!(
        err.message().contains("column `a`: the batch holds Int64"),
        "{err}"
    );
}

mod oracle {
    //! Property test: the encoder's bytes equal what tokio-postgres' `BinaryCopyInWriter` sends
    //! for the same values (an `i16` field count, then per field an `i32` length and the bytes
    //! `ToSql::to_sql` writes).

    use super::*;
    use chrono::{DateTime, NaiveDate, Utc};
    use postgres_types::{ToSql, Type};
    use proptest::collection::vec;
    use proptest::option::of;
    use proptest::prelude::*;

    /// Days from 1970 of 0001-01-01 and 9999-12-31.
    const DAYS: std::ops::RangeInclusive<i32> = -719_162..=2_932_896;
    /// µs from 1970 of 0001-01-01 00:00 and 9999-12-31 23:59:59.999999.
    const MICROS: std::ops::RangeInclusive<i64> = -62_135_596_800_000_000..=253_402_300_799_999_999;

    #[derive(Debug, Clone)]
    enum Col {
        Bool(Vec<Option<bool>>),
        I16(Vec<Option<i16>>),
        I32(Vec<Option<i32>>),
        I64(Vec<Option<i64>>),
        F32(Vec<Option<f32>>),
        F64(Vec<Option<f64>>),
        Text(Vec<Option<String>>),
        Bytes(Vec<Option<Vec<u8>>>),
        Date(Vec<Option<i32>>),
        Timestamp(Vec<Option<i64>>),
        TimestampUtc(Vec<Option<i64>>),
    }

    fn column(rows: usize) -> impl Strategy<Value = Col> {
        prop_oneof![
            vec(of(any::<bool>()), rows).prop_map(Col::Bool),
            vec(of(any::<i16>()), rows).prop_map(Col::I16),
            vec(of(any::<i32>()), rows).prop_map(Col::I32),
            vec(of(any::<i64>()), rows).prop_map(Col::I64),
            vec(of(any::<f32>()), rows).prop_map(Col::F32),
            vec(of(any::<f64>()), rows).prop_map(Col::F64),
            vec(of("[^\\x00]{0,20}"), rows).prop_map(Col::Text),
            vec(of(vec(any::<u8>(), 0..20)), rows).prop_map(Col::Bytes),
            vec(of(DAYS), rows).prop_map(Col::Date),
            vec(of(MICROS), rows).prop_map(Col::Timestamp),
            vec(of(MICROS), rows).prop_map(Col::TimestampUtc),
        ]
    }

    fn columns() -> impl Strategy<Value = Vec<Col>> {
        (0usize..16).prop_flat_map(|rows| vec(column(rows), 1..8))
    }

    /// The Arrow field and array of a generated column.
    fn arrow(k: usize, col: &Col) -> (Field, ArrayRef) {
        let (dt, array): (DataType, ArrayRef) = match col {
            Col::Bool(v) => (DataType::Boolean, Arc::new(BooleanArray::from(v.clone()))),
            Col::I16(v) => (DataType::Int16, Arc::new(Int16Array::from(v.clone()))),
            Col::I32(v) => (DataType::Int32, Arc::new(Int32Array::from(v.clone()))),
            Col::I64(v) => (DataType::Int64, Arc::new(Int64Array::from(v.clone()))),
            Col::F32(v) => (DataType::Float32, Arc::new(Float32Array::from(v.clone()))),
            Col::F64(v) => (DataType::Float64, Arc::new(Float64Array::from(v.clone()))),
            Col::Text(v) => (DataType::Utf8, Arc::new(StringArray::from(v.clone()))),
            Col::Bytes(v) => {
                let refs: Vec<Option<&[u8]>> = v.iter().map(|b| b.as_deref()).collect();
                (DataType::Binary, Arc::new(BinaryArray::from(refs)))
            }
            Col::Date(v) => (DataType::Date32, Arc::new(Date32Array::from(v.clone()))),
            Col::Timestamp(v) => (
                DataType::Timestamp(TimeUnit::Microsecond, None),
                Arc::new(TimestampMicrosecondArray::from(v.clone())),
            ),
            Col::TimestampUtc(v) => (
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                Arc::new(TimestampMicrosecondArray::from(v.clone()).with_timezone("UTC")),
            ),
        };
        (Field::new(format!("c{k}"), dt, true), array)
    }

    /// Frame one optional value the way `BinaryCopyInWriter` does.
    fn frame<T: ToSql>(out: &mut BytesMut, ty: &Type, value: Option<T>) {
        match value {
            None => out.put_i32(-1),
            Some(v) => {
                let mut buf = BytesMut::new();
                v.to_sql(ty, &mut buf).unwrap();
                out.put_i32(buf.len() as i32);
                out.extend_from_slice(&buf);
            }
        }
    }

    fn oracle(cols: &[Col], rows: usize) -> BytesMut {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let date = |d: i32| epoch + chrono::Duration::days(i64::from(d));
        let utc = |us: i64| DateTime::<Utc>::from_timestamp_micros(us).unwrap();
        let mut out = BytesMut::new();
        for row in 0..rows {
            out.put_i16(cols.len() as i16);
            for col in cols {
                match col {
                    Col::Bool(v) => frame(&mut out, &Type::BOOL, v[row]),
                    Col::I16(v) => frame(&mut out, &Type::INT2, v[row]),
                    Col::I32(v) => frame(&mut out, &Type::INT4, v[row]),
                    Col::I64(v) => frame(&mut out, &Type::INT8, v[row]),
                    Col::F32(v) => frame(&mut out, &Type::FLOAT4, v[row]),
                    Col::F64(v) => frame(&mut out, &Type::FLOAT8, v[row]),
                    Col::Text(v) => frame(&mut out, &Type::TEXT, v[row].as_deref()),
                    Col::Bytes(v) => frame(&mut out, &Type::BYTEA, v[row].as_deref()),
                    Col::Date(v) => frame(&mut out, &Type::DATE, v[row].map(date)),
                    Col::Timestamp(v) => {
                        let naive = v[row].map(|us| utc(us).naive_utc());
                        frame(&mut out, &Type::TIMESTAMP, naive)
                    }
                    Col::TimestampUtc(v) => frame(&mut out, &Type::TIMESTAMPTZ, v[row].map(utc)),
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn native_bytes_match_binary_copy_in_writer(cols in columns()) {
            let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) =
                cols.iter().enumerate().map(|(k, c)| arrow(k, c)).unzip();
            let schema = Schema::new(fields);
            let batch = RecordBatch::try_new(Arc::new(schema.clone()), arrays).unwrap();
            let info = table(schema, &[], &[]);
            let mut out = BytesMut::new();
            NativeEncoder::new(&info).unwrap().encode(&batch, &mut out).unwrap();
            let expected = oracle(&cols, batch.num_rows());
            prop_assert_eq!(&out[..], &expected[..]);
        }
    }
}
