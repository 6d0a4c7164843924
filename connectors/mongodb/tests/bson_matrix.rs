//! BSON → JSON → BSON, byte for byte, for the whole type matrix (no server needed), plus the
//! JSON text of the values whose encoding is the documented contract.

#[path = "fixtures/matrix.rs"]
mod matrix;

use seren_mongodb::{document_from_json, document_json, id_and_json};

#[test]
fn every_document_of_the_matrix_round_trips_exactly() {
    for doc in matrix::documents() {
        let json = document_json(&doc).unwrap();
        let back = document_from_json(&json).unwrap();
        assert!(
            back == doc,
            "round trip changed the document:\n{}",
            &json[..json.len().min(2000)]
        );
    }
}

#[test]
fn ids_follow_the_documented_rule() {
    let ids: Vec<String> = matrix::documents()
        .iter()
        .map(|d| id_and_json(d).unwrap().0)
        .collect();
    assert_eq!(ids, matrix::expected_ids());
}

#[test]
fn values_are_written_with_the_spec_tags() {
    let json = document_json(&matrix::documents()[0]).unwrap();
    for expected in [
        r#""_id":{"_type":"objectid","$oid":"65a1b2c3d4e5f60718293a4b"}"#,
        r#""double":0.1"#,
        r#"{"_type":"float","value":"-0.0"},{"_type":"float","value":"NaN"},{"_type":"float","value":"Infinity"},{"_type":"float","value":"-Infinity"},123456789012345680000.0,1000000000000000000000.0,0.0000001]"#,
        r#""strings":["",{"_type":"bytes","data":"YQBi"},"tab\t\"quote\"\\ \u0001\u001f","#,
        r#""int64":[{"_type":"int64","value":"5"},{"_type":"int64","value":"-5"},9007199254740993,9223372036854775807,-9223372036854775808,2147483648]"#,
        r#"{"_type":"decimal","value":"1.50"},{"_type":"decimal","value":"-0"},{"_type":"decimal","value":"NaN"},{"_type":"decimal","value":"Infinity"}"#,
        r#"{"_type":"datetime","$date":-2208988800000}"#,
        r#"{"_type":"binary","subtype":4,"data":"AAECAwQFBgcICQoLDA0ODw==","uuid":"00010203-0405-0607-0809-0a0b0c0d0e0f"}"#,
        r#""regex":{"_type":"regex","pattern":"^a.*b$","options":"imsx"}"#,
        r#""timestamp":{"_type":"timestamp","t":1700000000,"i":7}"#,
        r#""min":{"_type":"minkey"},"max":{"_type":"maxkey"},"undefined":{"_type":"undefined"},"null":null,"yes":true,"no":false"#,
        r#""code":{"_type":"javascript","code":"function () { return 1; }"}"#,
        r#""code_scope":{"_type":"javascript","code":"function () { return x; }","scope":{"x":1,"y":{"z":"w"}}}"#,
        r#""symbol":{"_type":"symbol","value":"sym"}"#,
        r#""dbpointer":{"_type":"dbpointer","ref":"db.coll","$oid":"65a1b2c3d4e5f60718293a4b"}"#,
    ] {
        assert!(json.contains(expected), "missing {expected}\nin {json}");
    }
    let hundred_zeros = format!(r#""doubles":[5.0,1{}.0,"#, "0".repeat(100));
    assert!(json.contains(&hundred_zeros), "{json}");
    let odd = document_json(&matrix::documents()[1]).unwrap();
    assert!(
        odd.contains(r#""__type":"not a tag","___type":{"__keys":1,"____keys":2}"#),
        "{odd}"
    );
    assert!(odd.contains(r#""$dollar":1,"a.b":{"c.d":2}"#), "{odd}");
}

#[test]
fn malformed_json_is_an_error_not_a_panic() {
    for bad in [
        "",
        "[1]",
        "{",
        r#"{"a":}"#,
        r#"{"a":{"_type":"nope"}}"#,
        r#"{"a":1,"_keys":["b"]}"#,
    ] {
        assert!(document_from_json(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_string_that_is_not_utf8_round_trips_as_tagged_bytes() {
    let mut doc = matrix::documents().swap_remove(2);
    matrix::append_raw(
        &mut doc,
        0x02,
        "not_utf8",
        &matrix::raw_string(&[0x61, 0xff, 0xfe]),
    );
    let json = document_json(&doc).unwrap();
    assert!(
        json.contains(r#""not_utf8":{"_type":"bytes","data":"Yf/+"}"#),
        "{json}"
    );
    assert!(document_from_json(&json).unwrap() == doc);
}
