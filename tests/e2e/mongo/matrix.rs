//! The BSON type matrix through the whole path: SecantusDB → `init` → PostgreSQL `jsonb` →
//! `data::text` → `document_from_json` must give back the server's document byte for byte.

#[path = "../../../connectors/mongodb/tests/fixtures/matrix.rs"]
mod fixtures;

use super::{block_on, database, insert_raw, read_raw};
use crate::harness::{fresh_db, psql, run_ok};
use crate::mongo_server::{fresh_mongo_db, mongo_uri};
use seren_mongodb::{document_from_json, id_and_json};

#[test]
fn every_bson_type_round_trips_byte_for_byte_through_jsonb() {
    let name = fresh_mongo_db();
    let served = block_on(async {
        let db = database(&name).await;
        insert_raw(&db, "matrix", fixtures::documents()).await;
        read_raw(&db, "matrix").await
    });
    assert_eq!(served.len(), fixtures::documents().len());
    let (url, pg) = fresh_db();
    run_ok(&[
        "init",
        "--source",
        &mongo_uri(&name),
        "--target",
        &url,
        "-y",
    ]);

    assert_eq!(
        psql(
            &pg,
            "SELECT count(*), min(_source_type), max(_source_type) FROM matrix"
        ),
        format!("{}|mongodb|mongodb", served.len())
    );
    let mut ids: Vec<String> = psql(&pg, "SELECT id FROM matrix")
        .lines()
        .map(String::from)
        .collect();
    let mut expected: Vec<String> = fixtures::expected_ids()
        .into_iter()
        .map(String::from)
        .collect();
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected);

    for doc in &served {
        let (id, _) = id_and_json(doc).unwrap();
        let text = psql(
            &pg,
            &format!(
                "SELECT data::text FROM matrix WHERE id = '{}'",
                id.replace('\'', "''")
            ),
        );
        let back = document_from_json(&text)
            .unwrap_or_else(|e| panic!("decoding {id}: {e}: {}", &text[..text.len().min(500)]));
        assert!(
            back == *doc,
            "document {id} changed on the way:\n{}",
            &text[..text.len().min(3000)]
        );
    }
    // The stored JSON is queryable as documented.
    assert_eq!(
        psql(
            &pg,
            "SELECT data->>'string' FROM matrix WHERE id = '65a1b2c3d4e5f60718293a4b'"
        ),
        "héllo 😀"
    );
    assert_eq!(
        psql(
            &pg,
            "SELECT id FROM matrix WHERE data @> '{\"regex\":{\"_type\":\"regex\"}}'"
        ),
        "65a1b2c3d4e5f60718293a4b"
    );
    assert_eq!(
        psql(
            &pg,
            "SELECT octet_length(data->>'text') FROM matrix WHERE id = '15 MB'"
        ),
        (2 * (15 * (1 << 20) / 2 - 100)).to_string()
    );
}
