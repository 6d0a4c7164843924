//! `--flatten` and `[collections.NAME] columns`: chosen fields also become typed columns beside
//! `data`, filled by `init`, kept fresh by change-stream sync and by refresh, checked by
//! `verify`; a value its column cannot hold stops the run naming the document.

use super::{block_on, database};
use crate::harness::{fresh_db, psql, run, run_ok, tempdir};
use crate::mongo_server::{fresh_mongo_db, mongo_uri};
use seren_mongodb::mongodb::bson::{doc, oid::ObjectId, DateTime, Decimal128, Document};
use std::time::Duration;

/// `users` documents covering each column type's accepted BSON types, NULL and missing fields.
fn users() -> Vec<Document> {
    let oid = ObjectId::parse_str("65f1a2b3c4d5e6f708192a3b").unwrap();
    let big: Decimal128 = "12345678901234567890.123456789".parse().unwrap();
    vec![
        doc! {"_id": 1, "email": "ann@example.com", "age": 31, "score": 1.5, "total": big,
        "active": true, "seen": DateTime::from_millis(1_700_000_000_123),
        "profile": {"city": "Paris", "tags": ["a", "b"]}, "ref": oid},
        doc! {"_id": 2, "email": "bob@example.com", "age": 42_i64, "score": f64::NAN,
        "total": i64::MAX, "active": false, "seen": DateTime::from_millis(-86_400_000),
        "profile": "plain", "ref": 7},
        doc! {"_id": 3, "email": null, "age": 30.0, "score": 7_i64, "total": -0.25},
        doc! {"_id": 4},
    ]
}

fn insert(db: &str, coll: &str, docs: Vec<Document>) {
    block_on(async {
        let c = database(db).await.collection::<Document>(coll);
        c.insert_many(docs).await.unwrap();
    });
}

/// The config file of the test: `users`' columns (a flag adds `Événements`' below).
fn config(dir: &std::path::Path) -> String {
    let path = dir.join("mongo.toml");
    std::fs::write(
        &path,
        r#"[collections.users]
columns = { email = "text", age = "int", score = "double precision", total = "numeric",
            active = "boolean", seen = "timestamptz", profile = "jsonb", ref = "text" }
"#,
    )
    .unwrap();
    path.display().to_string()
}

/// `init` with one `--flatten` flag: exit code, stdout, stderr.
fn init_flattening(source: &str, target: &str, flag: &str) -> (i32, String, String) {
    run(&[
        "init",
        "--source",
        source,
        "--target",
        target,
        "-y",
        "--flatten",
        flag,
    ])
}

fn row(pg: &str, columns: &str, id: &str) -> String {
    psql(
        pg,
        &format!("SELECT concat_ws('|', {columns}) FROM users WHERE id = '{id}'"),
    )
}

#[test]
fn flattened_fields_are_typed_columns_through_init_sync_refresh_and_verify() {
    let name = fresh_mongo_db();
    insert(&name, "users", users());
    insert(
        &name,
        "Événements",
        vec![doc! {"_id": "e1", "select": 5, "kind": "x"}],
    );
    let uri = mongo_uri(&name);
    let (url, pg) = fresh_db();
    let dir = tempdir();
    let config = config(dir.path());
    let flag = "Événements:select=bigint";
    let flat = ["--config", &config, "--flatten", flag];
    let mut init = vec!["init", "--source", &uri, "--target", &url, "-y"];
    init.extend(flat);
    run_ok(&init);

    let types = psql(
        &pg,
        "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) \
         FROM information_schema.columns WHERE table_name = 'users'",
    );
    for want in [
        "id text",
        "email text",
        "age integer",
        "score double precision",
        "total numeric",
        "active boolean",
        "seen timestamp with time zone",
        "profile jsonb",
        "ref text",
        "data jsonb",
    ] {
        assert!(types.contains(want), "no `{want}` in: {types}");
    }
    let all = "email, age, score, total, active, seen AT TIME ZONE 'UTC', profile, ref";
    assert_eq!(
        row(&pg, all, "int32:1"),
        "ann@example.com|31|1.5|12345678901234567890.123456789|t|2023-11-14 22:13:20.123|\
         {\"city\": \"Paris\", \"tags\": [\"a\", \"b\"]}|65f1a2b3c4d5e6f708192a3b"
    );
    assert_eq!(
        row(&pg, all, "int32:2"),
        "bob@example.com|42|NaN|9223372036854775807|f|1969-12-31 00:00:00|\"plain\"|7"
    );
    assert_eq!(row(&pg, all, "int32:3"), "30|7|-0.25");
    assert_eq!(
        psql(
            &pg,
            "SELECT count(*) FROM users WHERE id = 'int32:4' AND num_nulls(email, age, score, \
             total, active, seen, profile, ref) = 8 AND data ? '_id'"
        ),
        "1"
    );
    assert_eq!(
        psql(&pg, r#"SELECT "select" FROM "Événements""#),
        "5",
        "the flag's collection"
    );

    // Change streams: the columns follow inserts, updates and deletes.
    let sync = super::sync::start_sync(&uri, &url);
    block_on(async {
        let users = database(&name).await.collection::<Document>("users");
        users
            .update_one(
                doc! {"_id": 1},
                doc! {"$set": {"age": 32, "email": "ann@new.example"}},
            )
            .await
            .unwrap();
        users.delete_one(doc! {"_id": 2}).await.unwrap();
        users
            .insert_one(doc! {"_id": 5, "age": 50, "active": true})
            .await
            .unwrap();
    });
    sync.wait_until("the changes to arrive", Duration::from_secs(120), || {
        psql(&pg, "SELECT count(*) FROM users WHERE id = 'int32:5'") == "1"
    });
    sync.stop();
    assert_eq!(row(&pg, "email, age", "int32:1"), "ann@new.example|32");
    assert_eq!(row(&pg, "age, active", "int32:5"), "50|t");
    assert_eq!(
        psql(&pg, "SELECT count(*) FROM users WHERE id = 'int32:2'"),
        "0"
    );

    // Periodic refresh (as on a server without change streams) keeps them fresh too.
    psql(
        &pg,
        "UPDATE seren_replicator.source_sync SET method = 'refresh', position = NULL",
    );
    block_on(async {
        let users = database(&name).await.collection::<Document>("users");
        users
            .update_one(doc! {"_id": 3}, doc! {"$set": {"age": 33, "active": false}})
            .await
            .unwrap();
    });
    run_ok(&["sync", "--source", &uri, "--target", &url, "--once"]);
    assert_eq!(row(&pg, "age, active", "int32:3"), "33|f");

    // verify reads the flattened columns from the layout init recorded (no --flatten given)
    // and compares them: a changed one is a difference.
    let verify = ["verify", "--source", &uri, "--target", &url];
    let out = run_ok(&verify);
    assert!(out.contains("all 2 tables match"), "{out}");
    psql(&pg, "UPDATE users SET age = 99 WHERE id = 'int32:1'");
    let (code, out, err) = run(&verify);
    assert_ne!(code, 0, "verify missed a changed flat column\n{out}\n{err}");
    assert!(out.contains("✗ users"), "{out}");
}

#[test]
fn a_value_its_column_cannot_hold_stops_init_naming_the_document() {
    let name = fresh_mongo_db();
    insert(
        &name,
        "users",
        vec![
            doc! {"_id": 1, "age": 31},
            doc! {"_id": "x9", "age": "thirty"},
        ],
    );
    let uri = mongo_uri(&name);
    let (url, pg) = fresh_db();
    let (code, out, err) = init_flattening(&uri, &url, "users:age=int");
    assert_ne!(code, 0, "{out}\n{err}");
    for want in [
        "collection `users`",
        "_id x9",
        "field `age`",
        "string \"thirty\"",
        "integer",
    ] {
        assert!(err.contains(want), "no `{want}` in: {err}");
    }
    assert_eq!(
        psql(
            &pg,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'users'"
        ),
        "0",
        "a half-written table was left"
    );
    // As text, the same documents copy.
    let (code, out, err) = init_flattening(&uri, &url, "users:age=text");
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        psql(&pg, "SELECT string_agg(age, ',' ORDER BY id) FROM users"),
        "31,thirty"
    );
}

#[test]
fn bad_flatten_requests_are_refused_before_anything_is_written() {
    let name = fresh_mongo_db();
    insert(&name, "users", vec![doc! {"_id": 1, "age": 31}]);
    let uri = mongo_uri(&name);
    let (url, _) = fresh_db();
    let dir = tempdir();
    let sqlite = dir.path().join("app.db");
    rusqlite::Connection::open(&sqlite)
        .unwrap()
        .execute_batch("CREATE TABLE t (a INTEGER PRIMARY KEY)")
        .unwrap();
    let sqlite = sqlite.display().to_string();
    for (source, flag, says) in [
        (
            uri.as_str(),
            "users:age=integr",
            "unknown column type `integr`",
        ),
        (uri.as_str(), "users:age", "has no `=TYPE`"),
        (
            uri.as_str(),
            "nosuch:age=int",
            "collection `nosuch`, which is not copied",
        ),
        (uri.as_str(), "users:_id=text", "already the `id` column"),
        (uri.as_str(), "users:data=text", "JSONB mode's own columns"),
        (sqlite.as_str(), "t:a=int", "MongoDB sources only"),
    ] {
        let (code, out, err) = init_flattening(source, &url, flag);
        assert_ne!(code, 0, "{flag}: {out}\n{err}");
        assert!(err.contains(says), "{flag}: no `{says}` in: {err}");
    }
}
