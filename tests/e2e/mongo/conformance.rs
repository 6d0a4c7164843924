//! The MongoDB source against the connector conformance kit (`pipeline::testkit`), in both
//! modes: a collection split into `_id` ranges (with `_id`s of several types), an empty
//! collection, and large documents.

use super::{block_on, database};
use crate::mongo_server::{fresh_mongo_db, mongo_uri};
use pipeline::testkit::assert_source_conformance;
use pipeline::{Mode, SourceOptions};
use seren_mongodb::mongodb::bson::{doc, Bson, Document};
use seren_mongodb::MongoFactory;

#[test]
fn mongodb_source_conforms_in_both_modes() {
    let name = fresh_mongo_db();
    block_on(async {
        let db = database(&name).await;
        let mut docs: Vec<Document> = (0..40)
            .map(|i| doc! {"_id": i, "name": format!("item {i} 🦀"), "tags": ["a", Bson::Null]})
            .collect();
        docs.push(doc! {"_id": "a string id", "n": 1});
        docs.push(doc! {"_id": {"compound": 1}, "n": 2});
        db.collection::<Document>("items")
            .insert_many(docs)
            .await
            .unwrap();
        db.create_collection("empty").await.unwrap();
        let wide: Vec<Document> = (0..12)
            .map(|i| doc! {"_id": i, "body": "w".repeat(10_000)})
            .collect();
        db.collection::<Document>("wide")
            .insert_many(wide)
            .await
            .unwrap();
    });
    let uri = mongo_uri(&name);
    for mode in [Mode::Jsonb, Mode::Native] {
        let options = SourceOptions {
            mode,
            partition_rows: 10,
            partition_rows_given: true,
            batch_rows: 7,
            batch_bytes: 16 << 10,
            ..SourceOptions::default()
        };
        let report = block_on(assert_source_conformance(&MongoFactory, &uri, &options));
        let items = report.table("items").unwrap();
        assert_eq!(items.rows, 42);
        assert!(items.partitions > 1, "{mode:?}: {items:?}");
        assert_eq!(report.table("empty").unwrap().rows, 0);
        let wide = report.table("wide").unwrap();
        assert!(
            wide.batches > 12 / 7,
            "{mode:?}: the byte bound must cut: {wide:?}"
        );
    }
}
