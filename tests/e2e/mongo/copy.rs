//! `init` and `verify` of whole databases: several collections (empty, odd names, mixed `_id`
//! types split into partitions), views skipped, selection flags, and the documented queries.

use super::{block_on, database};
use crate::harness::{fresh_db, psql, run, run_ok};
use crate::mongo_server::{fresh_mongo_db, mongo_uri};
use seren_mongodb::mongodb::bson::{doc, oid::ObjectId, Bson, Document};

/// Collections with awkward names, an empty one, and a view.
const ODD: &str = "Odd Name \"quoted\" ünï.dots";

fn seed(name: &str) {
    block_on(async {
        let db = database(name).await;
        let users: Vec<Document> = (0..300)
            .map(|i| {
                // Mixed _id types: ObjectIds, strings and numbers across partitions.
                let id = match i % 3 {
                    0 => Bson::ObjectId(ObjectId::new()),
                    1 => Bson::String(format!("user-{i:04}")),
                    _ => Bson::Int32(i),
                };
                doc! {"_id": id, "email": format!("u{i}@example.com"), "age": i % 90,
                "tags": ["a", format!("t{}", i % 7)], "profile": {"active": i % 2 == 0}}
            })
            .collect();
        db.collection::<Document>("users")
            .insert_many(users)
            .await
            .unwrap();
        db.collection::<Document>(ODD)
            .insert_one(doc! {"_id": 1, "select": "reserved word"})
            .await
            .unwrap();
        db.collection::<Document>("select")
            .insert_one(doc! {"_id": "x", "v": 1.5})
            .await
            .unwrap();
        db.create_collection("empty").await.unwrap();
        db.create_collection("active_users")
            .view_on("users".to_string())
            .pipeline(vec![doc! {"$match": {"profile.active": true}}])
            .await
            .unwrap();
    });
}

#[test]
fn init_copies_every_collection_and_verify_is_exact() {
    let name = fresh_mongo_db();
    seed(&name);
    let (url, pg) = fresh_db();
    let uri = mongo_uri(&name);
    let (code, out, err) = run(&[
        "init",
        "--source",
        &uri,
        "--target",
        &url,
        "-y",
        "--partition-rows",
        "40",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("users"), "{out}");
    // The view is listed as skipped.
    assert!(
        err.contains("views are not copied") && err.contains("active_users"),
        "{err}"
    );

    let tables = psql(
        &pg,
        "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables \
         WHERE table_schema = 'public'",
    );
    assert_eq!(tables, format!("{ODD},empty,select,users"));
    assert_eq!(psql(&pg, "SELECT count(*) FROM users"), "300");
    assert_eq!(psql(&pg, "SELECT count(*) FROM empty"), "0");
    assert_eq!(
        psql(
            &pg,
            &format!(
                "SELECT id, data->>'select' FROM \"{}\"",
                ODD.replace('"', "\"\"")
            )
        ),
        "int32:1|reserved word"
    );
    assert_eq!(psql(&pg, "SELECT id, data->>'v' FROM \"select\""), "x|1.5");
    // The documented queries: a field as text, and containment served by the GIN index.
    assert_eq!(
        psql(
            &pg,
            "SELECT id, data->>'email' FROM users WHERE id = 'user-0001'"
        ),
        "user-0001|u1@example.com"
    );
    assert_eq!(
        psql(&pg, "SELECT data->>'email' FROM users WHERE id = 'int32:2'"),
        "u2@example.com"
    );
    assert_eq!(
        psql(
            &pg,
            r#"SELECT count(*) FROM users WHERE data @> '{"profile": {"active": true}}'"#
        ),
        "150"
    );
    assert_eq!(
        psql(
            &pg,
            r#"SELECT count(*) FROM users WHERE data @> '{"tags": ["t3"]}'"#
        ),
        (0..300).filter(|i| i % 7 == 3).count().to_string()
    );
    assert_eq!(
        psql(
            &pg,
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'users' AND indexdef LIKE '%gin%'"
        ),
        "1"
    );

    run_ok(&["verify", "--source", &uri, "--target", &url]);
    // A changed document is found.
    psql(
        &pg,
        "UPDATE users SET data = jsonb_set(data, '{age}', '1000') WHERE id = 'int32:5'",
    );
    let (code, out, err) = run(&["verify", "--source", &uri, "--target", &url]);
    assert_eq!(code, 5, "verify should fail\n{out}\n{err}");
    assert!(format!("{out}{err}").contains("users"), "{out}{err}");
}

#[test]
fn include_and_exclude_select_collections() {
    let name = fresh_mongo_db();
    seed(&name);
    let uri = mongo_uri(&name);
    let (url, pg) = fresh_db();
    run_ok(&[
        "init",
        "--source",
        &uri,
        "--target",
        &url,
        "-y",
        "--include-tables",
        "select,empty",
    ]);
    assert_eq!(
        psql(&pg, "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'"),
        "empty,select"
    );
    let (url, pg) = fresh_db();
    run_ok(&[
        "init",
        "--source",
        &uri,
        "--target",
        &url,
        "-y",
        "--exclude-tables",
        "users",
    ]);
    assert_eq!(
        psql(&pg, "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'"),
        format!("{ODD},empty,select")
    );
    // A view is not a collection to copy: naming it is an error that says so.
    let (url, _) = fresh_db();
    let (code, out, err) = run(&[
        "init",
        "--source",
        &uri,
        "--target",
        &url,
        "-y",
        "--include-tables",
        "active_users",
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("active_users"), "{err}");
}
