//! Change capture at the connector level, against a throwaway SecantusDB (a one-member replica
//! set): the snapshot position, every event kind as change sets, resuming from a stored
//! position, and idle sets.

#[path = "../../../tests/e2e/mongo_server.rs"]
#[allow(dead_code)]
mod mongo_server;

use arrow_array::cast::AsArray;
use arrow_array::Array;
use mongo_server::{fresh_mongo_db, mongo_uri};
use pipeline::{ChangeOp, ChangeSet, Source, SourceFactory, SourceOptions, TableInfo};
use seren_mongodb::mongodb::bson::{doc, Document};
use seren_mongodb::mongodb::Client;
use seren_mongodb::MongoFactory;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `(table, op, id, document JSON)` of every row of a set.
fn rows(set: &ChangeSet) -> Vec<(String, ChangeOp, String, Option<String>)> {
    let mut out = Vec::new();
    for c in &set.changes {
        let ids = c.rows.column(0).as_string::<i32>();
        let docs = c.rows.column(1).as_string::<i32>();
        for i in 0..c.rows.num_rows() {
            let doc = (!docs.is_null(i)).then(|| docs.value(i).to_string());
            out.push((c.table.clone(), c.op, ids.value(i).to_string(), doc));
        }
    }
    out
}

/// Collect change rows until `n` have arrived (or 20 s pass); also returns the last position.
async fn collect(
    stream: &mut Box<dyn pipeline::ChangeStream>,
    n: usize,
) -> (
    Vec<(String, ChangeOp, String, Option<String>)>,
    serde_json::Value,
) {
    let started = Instant::now();
    let mut all = Vec::new();
    let mut position = serde_json::Value::Null;
    while all.len() < n && started.elapsed() < Duration::from_secs(20) {
        let set = stream.next().await.unwrap().expect("stream continues");
        all.extend(rows(&set));
        position = set.position;
    }
    (all, position)
}

async fn setup() -> (
    Arc<dyn Source>,
    seren_mongodb::mongodb::Database,
    Vec<TableInfo>,
) {
    let name = fresh_mongo_db();
    let db = Client::with_uri_str(mongo_uri(&name))
        .await
        .unwrap()
        .database(&name);
    db.collection::<Document>("items")
        .insert_many(vec![
            doc! {"_id": 1, "v": "one"},
            doc! {"_id": 2, "v": "two"},
        ])
        .await
        .unwrap();
    db.collection::<Document>("other")
        .insert_one(doc! {"_id": "o"})
        .await
        .unwrap();
    let source = MongoFactory
        .open(&mongo_uri(&name), &SourceOptions::default())
        .await
        .unwrap();
    let items = source.describe("items").await.unwrap();
    (source, db, vec![items])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_kind_becomes_a_change_set_and_resumes_exactly() {
    let (source, db, tables) = setup().await;
    let capture = source
        .change_capture()
        .expect("MongoDB offers change capture");
    capture.check(&tables).await.unwrap();
    let start = capture.start_snapshot(2).await.unwrap();
    assert!(start.get("resume_token").is_some(), "{start}");

    let items = db.collection::<Document>("items");
    items
        .insert_one(doc! {"_id": 3, "v": "three"})
        .await
        .unwrap();
    items
        .update_one(doc! {"_id": 1}, doc! {"$set": {"v": "uno", "n": 1}})
        .await
        .unwrap();
    items
        .replace_one(doc! {"_id": 2}, doc! {"_id": 2, "w": "replaced"})
        .await
        .unwrap();
    items.delete_one(doc! {"_id": 3}).await.unwrap();
    db.collection::<Document>("other")
        .insert_one(doc! {"_id": "skipped"})
        .await
        .unwrap();

    let mut stream = capture.stream(start.clone(), &tables).await.unwrap();
    let (got, _) = collect(&mut stream, 4).await;
    let got: Vec<_> = got
        .into_iter()
        .map(|(t, o, i, d)| (t, o, i, d.map(|d| normalise(&d))))
        .collect();
    let up = |id: &str, json: &str| {
        (
            "items".to_string(),
            ChangeOp::Upsert,
            id.to_string(),
            Some(normalise(json)),
        )
    };
    assert_eq!(
        got,
        vec![
            up("int32:3", r#"{"_id":3,"v":"three","_keys":["_id","v"]}"#),
            up(
                "int32:1",
                r#"{"_id":1,"v":"uno","n":1,"_keys":["_id","v","n"]}"#
            ),
            up("int32:2", r#"{"_id":2,"w":"replaced","_keys":["_id","w"]}"#),
            (
                "items".to_string(),
                ChangeOp::Delete,
                "int32:3".to_string(),
                None
            ),
        ]
    );
    drop(stream);

    // Resuming from the position after the first set's events sees only later changes.
    let mut stream = capture.stream(start, &tables).await.unwrap();
    let (first, position) = collect(&mut stream, 4).await;
    assert_eq!(first.len(), 4);
    drop(stream);
    items
        .insert_one(doc! {"_id": 4, "v": "four"})
        .await
        .unwrap();
    let mut stream = capture.stream(position, &tables).await.unwrap();
    let (later, _) = collect(&mut stream, 1).await;
    assert_eq!(
        later.into_iter().map(|r| r.2).collect::<Vec<_>>(),
        vec!["int32:4".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stream_returns_empty_sets_and_a_drop_truncates() {
    let (source, db, tables) = setup().await;
    let capture = source.change_capture().unwrap();
    let start = capture.start_snapshot(1).await.unwrap();
    let mut stream = capture.stream(start, &tables).await.unwrap();
    let t = Instant::now();
    let set = stream.next().await.unwrap().unwrap();
    assert!(set.changes.is_empty());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "idle set took {:?}",
        t.elapsed()
    );
    assert!(
        set.position.get("resume_token").is_some(),
        "{}",
        set.position
    );

    db.collection::<Document>("items").drop().await.unwrap();
    let started = Instant::now();
    let mut ops = Vec::new();
    while ops.is_empty() && started.elapsed() < Duration::from_secs(20) {
        let set = stream.next().await.unwrap().unwrap();
        ops.extend(set.changes.iter().map(|c| (c.table.clone(), c.op)));
    }
    assert_eq!(ops, vec![("items".to_string(), ChangeOp::Truncate)]);
}

/// JSON objects compared without regard to member order.
fn normalise(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .unwrap()
        .to_string()
}
