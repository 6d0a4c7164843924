//! Every MySQL type family, both modes, with the target values written out here.

use super::{data, harness, init, mariadb};
use serde_json::json;

/// The type matrix (MariaDB stores -0.0 as 0, so negative zero cannot be part of it): row 1 holds the maxima and typical values, row 2 the minima, zero dates
/// and negative TIME, row 3 NULLs.
fn type_matrix() -> String {
    let (url, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "SET time_zone = '+00:00'; SET sql_mode = '';
         CREATE TABLE types (
           id INT PRIMARY KEY,
           ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
           mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
           bi BIGINT, biu BIGINT UNSIGNED,
           d DECIMAL(65,30), f FLOAT, dbl DOUBLE,
           b1 BIT(1), b8 BIT(8), b64 BIT(64),
           dt DATE, dtm DATETIME(6), dt0 DATETIME, ts TIMESTAMP(3) NULL, tm TIME(6), y YEAR,
           c CHAR(5), vc VARCHAR(100), tx TEXT,
           bn BINARY(4), vb VARBINARY(10), bl BLOB,
           e ENUM('small','it''s'), st SET('a','b','c'), j JSON, g GEOMETRY
         ) DEFAULT CHARSET = utf8mb4;
         INSERT INTO types VALUES
          (1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
           9223372036854775807, 18446744073709551615,
           '12345678901234567890123456789012345.123456789012345678901234567890', 1.5, -2.5e-300,
           b'1', b'10100101', b'1111111111111111111111111111111111111111111111111111111111111111',
           '2024-01-02', '2024-01-02 03:04:05.123456', '9999-12-31 23:59:59',
           '2038-01-19 03:14:07.999', '838:59:59', 2155,
           'ab', 'emoji 😀 ü', 'quote '' and \"dq\"',
           'ab', 'hi', x'00ff', 'it''s', 'a,c', '{\"k\": [1, {\"ü\": \"😀\"}], \"n\": null}',
           ST_GeomFromText('POINT(1 2)')),
          (2, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0,
           -9223372036854775808, 0, '-0.000000000000000000000000000001', -1.25, 1e308,
           b'0', b'0', b'0', '0000-00-00', '0000-00-00 00:00:00', '1000-01-01 00:00:00',
           '1970-01-01 00:00:01', '-838:59:59.5', 0,
           '', '', '', '', '', '', 'small', '', '[]', NULL),
          (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL);",
    );
    url
}

#[test]
fn every_type_round_trips_in_jsonb_mode() {
    let url = type_matrix();
    let (target, _) = init(&url, "jsonb", &[]);
    let tag = |t: &str, v: &str| json!({"_type": t, "value": v});
    let bytes = |t: &str, d: &str| json!({"_type": t, "data": d});
    assert_eq!(
        data(&target, "types", "1"),
        json!({
            "id": 1, "ti": 127, "tiu": 255, "si": 32767, "siu": 65535, "mi": 8388607,
            "miu": 16777215, "i": 2147483647, "iu": 4294967295u64,
            "bi": 9223372036854775807i64, "biu": 18446744073709551615u64,
            "d": tag("decimal", "12345678901234567890123456789012345.123456789012345678901234567890"),
            "f": 1.5, "dbl": -2.5e-300,
            "b1": tag("bit", "1"), "b8": tag("bit", "10100101"), "b64": tag("bit", &"1".repeat(64)),
            "dt": tag("date", "2024-01-02"),
            "dtm": tag("datetime", "2024-01-02T03:04:05.123456"),
            "dt0": tag("datetime", "9999-12-31T23:59:59"),
            "ts": tag("datetime", "2038-01-19T03:14:07.999Z"),
            "tm": tag("time", "838:59:59"), "y": 2155,
            "c": "ab", "vc": "emoji 😀 ü", "tx": "quote ' and \"dq\"",
            "bn": bytes("bytes", "YWIAAA=="), "vb": bytes("bytes", "aGk="),
            "bl": bytes("bytes", "AP8="), "e": "it's", "st": ["a", "c"],
            "j": {"k": [1, {"ü": "😀"}], "n": null},
            "g": bytes("wkb", "AQEAAAAAAAAAAADwPwAAAAAAAABA"),
        })
    );
    assert_eq!(
        data(&target, "types", "2"),
        json!({
            "id": 2, "ti": -128, "tiu": 0, "si": -32768, "siu": 0, "mi": -8388608, "miu": 0,
            "i": -2147483648i64, "iu": 0, "bi": i64::MIN, "biu": 0,
            "d": tag("decimal", "-0.000000000000000000000000000001"),
            "f": -1.25, "dbl": 1e308,
            "b1": tag("bit", "0"), "b8": tag("bit", "00000000"), "b64": tag("bit", &"0".repeat(64)),
            "dt": {"_type": "zero_date"}, "dtm": {"_type": "zero_date"},
            "dt0": tag("datetime", "1000-01-01T00:00:00"),
            "ts": tag("datetime", "1970-01-01T00:00:01Z"),
            "tm": tag("time", "-838:59:59.5"), "y": 0,
            "c": "", "vc": "", "tx": "", "bn": bytes("bytes", "AAAAAA=="), "vb": bytes("bytes", ""),
            "bl": bytes("bytes", ""), "e": "small", "st": [], "j": [], "g": null,
        })
    );
    let nulls = data(&target, "types", "3");
    let object = nulls.as_object().unwrap();
    assert_eq!(object.len(), 33);
    assert!(
        object.iter().all(|(k, v)| k == "id" || v.is_null()),
        "{nulls}"
    );
}

#[test]
fn every_type_round_trips_in_native_mode() {
    let url = type_matrix();
    let (target, out) = init(&url, "native", &[]);
    let types = harness::sql(
        &target,
        "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) \
         FROM pg_attribute WHERE attrelid = 'types'::regclass AND attnum > 0",
    );
    assert_eq!(
        types,
        "id integer, ti smallint, tiu smallint, si smallint, siu integer, mi integer, \
         miu integer, i integer, iu bigint, bi bigint, biu numeric(20,0), d numeric(65,30), \
         f real, dbl double precision, b1 boolean, b8 bigint, b64 numeric(20,0), dt date, \
         dtm timestamp without time zone, dt0 timestamp without time zone, \
         ts timestamp with time zone, tm interval, y smallint, c text, vc text, tx text, \
         bn bytea, vb bytea, bl bytea, e text, st text[], j jsonb, g bytea"
    );
    let row = |id: u32| {
        harness::sql(
            &target,
            &format!(
                "SET timezone = 'UTC'; SELECT concat_ws('|', ti, tiu, si, siu, mi, miu, i, iu, bi, \
                 biu, d, f, dbl, b1, b8, b64, dt, dtm, dt0, ts, tm, y, c, vc, tx, bn, vb, bl, e, \
                 st, j, g) FROM types WHERE id = {id}"
            ),
        )
    };
    assert_eq!(
        row(1),
        "127|255|32767|65535|8388607|16777215|2147483647|4294967295|9223372036854775807|\
         18446744073709551615|12345678901234567890123456789012345.123456789012345678901234567890|\
         1.5|-2.5e-300|t|165|18446744073709551615|2024-01-02|2024-01-02 03:04:05.123456|\
         9999-12-31 23:59:59|2038-01-19 03:14:07.999+00|838:59:59|2155|ab|emoji 😀 ü|\
         quote ' and \"dq\"|\\x61620000|\\x6869|\\x00ff|it's|{a,c}|\
         {\"k\": [1, {\"ü\": \"😀\"}], \"n\": null}|\\x0101000000000000000000f03f0000000000000040"
    );
    // concat_ws skips NULLs: the zero dates (dt, dtm) are NULL.
    assert_eq!(
        row(2),
        "-128|0|-32768|0|-8388608|0|-2147483648|0|-9223372036854775808|0|\
         -0.000000000000000000000000000001|-1.25|1e+308|f|0|0|1000-01-01 00:00:00|\
         1970-01-01 00:00:01+00|-838:59:59.5|0||||\\x00000000|\\x|\\x|small|{}|[]"
    );
    assert_eq!(
        harness::sql(
            &target,
            "SELECT count(*) FROM types WHERE dt IS NULL AND dtm IS NULL"
        ),
        "2"
    );
    let check = harness::sql(
        &target,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = 'types'::regclass AND contype = 'c'",
    );
    assert!(
        check.contains("'small'") && check.contains("'it''s'"),
        "{check}"
    );
    assert!(out.contains("types"), "{out}");
}

#[test]
fn text_with_nul_is_kept_in_jsonb_mode_and_refused_in_native_mode() {
    let (url, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(10)); INSERT INTO t VALUES (1, 'a\\0b')",
    );
    let (target, _) = init(&url, "jsonb", &[]);
    assert_eq!(
        data(&target, "t", "1"),
        json!({"id": 1, "s": {"_type": "bytes", "data": "YQBi"}})
    );
    let (target, _) = harness::fresh_db();
    let (code, _, err) = harness::run(&[
        "init", "-y", "--source", &url, "--target", &target, "--mode", "native",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("column `s`") && err.contains("NUL"), "{err}");
}

#[test]
fn zero_dates_are_null_with_a_warning_or_an_error_on_request() {
    let (url, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "SET SESSION sql_mode = '';
         CREATE TABLE t (id INT PRIMARY KEY, d DATE);
         INSERT INTO t VALUES (1, '2024-02-29'), (2, '0000-00-00'), (3, '0000-00-00')",
    );
    let (target, _) = harness::fresh_db();
    let (code, out, err) = harness::run(&[
        "init", "-y", "--source", &url, "--target", &target, "--mode", "native",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("zero_dates=2"),
        "the warning counts them: {err}"
    );
    assert_eq!(
        harness::sql(
            &target,
            "SELECT string_agg(coalesce(d::text, 'NULL'), ',' ORDER BY id) FROM t"
        ),
        "2024-02-29,NULL,NULL"
    );

    let (target, _) = harness::fresh_db();
    let (code, out, err) = harness::run(&[
        "init",
        "-y",
        "--source",
        &url,
        "--target",
        &target,
        "--mode",
        "native",
        "--zero-dates",
        "error",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("table `t`") && err.contains("column `d`") && err.contains("zero date"),
        "{err}"
    );
    // Nothing half-written: the table is not left behind.
    assert_eq!(
        harness::sql(&target, "SELECT to_regclass('t') IS NULL"),
        "t"
    );
}

#[test]
fn auto_increment_continues_from_the_sources_next_value() {
    let (url, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(10)) AUTO_INCREMENT = 1;
         INSERT INTO t (name) VALUES ('a'), ('b'), ('c'); DELETE FROM t WHERE id = 3;",
    );
    let (target, _) = init(&url, "native", &[]);
    assert_eq!(
        harness::sql(&target, "INSERT INTO t (name) VALUES ('d') RETURNING id"),
        "4"
    );
}
