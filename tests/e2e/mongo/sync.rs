//! Continuous sync from change streams: writes during and after `init` (updates to documents
//! mid-copy included), catch-up, `verify` exact; a killed sync restarted without duplicates or
//! gaps; and the periodic-refresh path (`sync --once`) with a MongoDB source.

use super::{block_on, database};
use crate::harness::{fresh_db, psql, run, run_ok, Background};
use crate::mongo_server::{fresh_mongo_db, mongo_uri};
use seren_mongodb::mongodb::bson::{doc, Document};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Documents in the collection before `init`.
const SEEDED: i32 = 3000;

fn seed(name: &str) {
    block_on(async {
        let db = database(name).await;
        let docs: Vec<Document> = (0..SEEDED)
            .map(|i| doc! {"_id": i, "n": i, "state": "seeded", "pad": "x".repeat(200)})
            .collect();
        for chunk in docs.chunks(1000) {
            db.collection::<Document>("items")
                .insert_many(chunk.to_vec())
                .await
                .unwrap();
        }
    });
}

/// Writes inserts, updates (of seeded documents too) and deletes until `stop`; returns how many
/// rounds it made.
fn writer(name: String, stop: Arc<AtomicBool>, first: i32) -> std::thread::JoinHandle<i32> {
    std::thread::spawn(move || {
        block_on(async {
            let items = database(&name).await.collection::<Document>("items");
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                let k = first + round;
                items
                    .insert_one(doc! {"_id": 100_000 + k, "n": k, "state": "new"})
                    .await
                    .unwrap();
                items
                    .update_one(
                        doc! {"_id": (k * 7) % SEEDED},
                        doc! {"$set": {"state": format!("updated {k}")}, "$inc": {"n": 1}},
                    )
                    .await
                    .unwrap();
                items
                    .delete_one(doc! {"_id": (k * 13 + 1) % SEEDED})
                    .await
                    .unwrap();
                round += 1;
            }
            round
        })
    })
}

/// `sync` from `uri` into `url`, running until stopped.
pub(super) fn start_sync(uri: &str, url: &str) -> Background {
    Background::start(&["sync", "--source", uri, "--target", url])
}

/// Wait until the target holds the sentinel document written last.
fn wait_for(pg: &str, id: &str, sync: &Background) {
    sync.wait_until(
        &format!("catching up to {id}"),
        Duration::from_secs(120),
        || psql(pg, &format!("SELECT count(*) FROM items WHERE id = '{id}'")) == "1",
    );
}

fn insert_sentinel(name: &str, id: &str) {
    block_on(async {
        database(name)
            .await
            .collection::<Document>("items")
            .insert_one(doc! {"_id": id, "sentinel": true})
            .await
            .unwrap();
    });
}

#[test]
fn writes_during_and_after_init_arrive_and_a_killed_sync_resumes_exactly() {
    let name = fresh_mongo_db();
    seed(&name);
    let uri = mongo_uri(&name);
    let (url, pg) = fresh_db();

    let halt = Arc::new(AtomicBool::new(false));
    let during = writer(name.clone(), halt.clone(), 0);
    std::thread::sleep(Duration::from_millis(300));
    run_ok(&[
        "init",
        "--source",
        &uri,
        "--target",
        &url,
        "-y",
        "--partition-rows",
        "700",
    ]);
    let sync = start_sync(&uri, &url);
    std::thread::sleep(Duration::from_secs(2));
    halt.store(true, Ordering::Relaxed);
    let rounds = during.join().unwrap();
    assert!(rounds > 0, "the writer made no changes during init");
    insert_sentinel(&name, "sentinel-1");
    wait_for(&pg, "sentinel-1", &sync);

    // Kill it hard in the middle of a burst, write more, restart.
    let halt = Arc::new(AtomicBool::new(false));
    let burst = writer(name.clone(), halt.clone(), 10_000);
    std::thread::sleep(Duration::from_millis(1500));
    sync.kill();
    std::thread::sleep(Duration::from_millis(500));
    halt.store(true, Ordering::Relaxed);
    burst.join().unwrap();
    insert_sentinel(&name, "sentinel-2");
    let sync = start_sync(&uri, &url);
    wait_for(&pg, "sentinel-2", &sync);
    sync.stop();

    run_ok(&["verify", "--source", &uri, "--target", &url]);
    let expected = block_on(async {
        database(&name)
            .await
            .collection::<Document>("items")
            .count_documents(doc! {})
            .await
            .unwrap()
    });
    assert_eq!(
        psql(&pg, "SELECT count(*) FROM items"),
        expected.to_string()
    );
    assert_eq!(
        psql(
            &pg,
            "SELECT count(*) FROM items WHERE data->>'state' LIKE 'updated%'"
        ),
        block_on(async {
            database(&name)
                .await
                .collection::<Document>("items")
                .count_documents(doc! {"state": {"$regex": "^updated"}})
                .await
                .unwrap()
        })
        .to_string()
    );
}

#[test]
fn sync_once_by_refresh_applies_changes_and_deletions() {
    let name = fresh_mongo_db();
    block_on(async {
        let items = database(&name).await.collection::<Document>("items");
        items
            .insert_many(vec![
                doc! {"_id": 1, "v": "a"},
                doc! {"_id": 2, "v": "b"},
                doc! {"_id": 3, "v": "c"},
            ])
            .await
            .unwrap();
    });
    let uri = mongo_uri(&name);
    let (url, pg) = fresh_db();
    run_ok(&["init", "--source", &uri, "--target", &url, "-y"]);
    // Make this target refresh instead of stream (as on a server without change streams).
    psql(
        &pg,
        "UPDATE seren_replicator.source_sync SET method = 'refresh', position = NULL",
    );
    block_on(async {
        let items = database(&name).await.collection::<Document>("items");
        items.delete_one(doc! {"_id": 1}).await.unwrap();
        items
            .update_one(doc! {"_id": 2}, doc! {"$set": {"v": "B"}})
            .await
            .unwrap();
        items.insert_one(doc! {"_id": 4, "v": "d"}).await.unwrap();
    });
    let (code, out, err) = run(&["sync", "--source", &uri, "--target", &url, "--once"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        psql(
            &pg,
            "SELECT string_agg(id || '=' || (data->>'v'), ',' ORDER BY id) FROM items"
        ),
        "int32:2=B,int32:3=c,int32:4=d"
    );
    run_ok(&["verify", "--source", &uri, "--target", &url]);
}

/// A backlog of large documents streams in several transactions: a change set closes at 16 MB
/// of documents, not only at 5000 events, so memory stays bounded whatever the documents' size.
#[test]
fn a_backlog_of_large_documents_is_applied_in_bounded_change_sets() {
    const DOCS: i32 = 40;
    let name = fresh_mongo_db();
    block_on(async {
        let items = database(&name).await.collection::<Document>("items");
        items
            .insert_one(doc! {"_id": -1, "v": "seed"})
            .await
            .unwrap();
    });
    let uri = mongo_uri(&name);
    let (url, pg) = fresh_db();
    run_ok(&["init", "--source", &uri, "--target", &url, "-y"]);
    // 40 MB of inserts waiting in the change stream before sync starts.
    block_on(async {
        let items = database(&name).await.collection::<Document>("items");
        for i in 0..DOCS {
            let body = char::from(b'a' + (i % 26) as u8)
                .to_string()
                .repeat(1 << 20);
            items
                .insert_one(doc! {"_id": i, "body": body})
                .await
                .unwrap();
        }
    });
    insert_sentinel(&name, "sentinel");
    let sync = start_sync(&uri, &url);
    wait_for(&pg, "sentinel", &sync);
    let output = sync.output();
    sync.stop();

    let inserted: Vec<u64> = output
        .lines()
        .filter_map(|l| l.strip_prefix("applied: +"))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        inserted.iter().sum::<u64>(),
        DOCS as u64 + 1,
        "every insert applied once:\n{output}"
    );
    assert!(
        inserted.iter().all(|&n| n <= 17),
        "no change set holds more than 16 MB of documents (16 of 1 MB, plus the one that \
         crosses the mark): {inserted:?}"
    );
    assert_eq!(
        psql(
            &pg,
            "SELECT count(*) FROM items WHERE octet_length(data->>'body') = 1048576"
        ),
        DOCS.to_string()
    );
    run_ok(&["verify", "--source", &uri, "--target", &url]);
}

/// A stored resume token the server refuses ends `sync` with an error that says to run `init`
/// again.
#[test]
fn a_resume_point_the_server_refuses_says_to_run_init_again() {
    use base64::Engine;
    let name = fresh_mongo_db();
    block_on(async {
        let items = database(&name).await.collection::<Document>("items");
        items.insert_one(doc! {"_id": 1}).await.unwrap();
    });
    let uri = mongo_uri(&name);
    let (url, pg) = fresh_db();
    run_ok(&["init", "--source", &uri, "--target", &url, "-y"]);
    let stored = psql(&pg, "SELECT position FROM seren_replicator.source_sync");
    assert!(stored.contains("resume_token"), "{stored}");
    // A token of the documented shape ({_data: hex}) that no server issued.
    let token = seren_mongodb::mongodb::bson::to_vec(
        &doc! {"t": {"_data": "8200000001000000012B0229296E04"}},
    )
    .unwrap();
    let forged = base64::engine::general_purpose::STANDARD.encode(token);
    psql(
        &pg,
        &format!(
            "UPDATE seren_replicator.source_sync SET position = jsonb_build_object('resume_token', '{forged}')"
        ),
    );
    let (code, out, err) = run(&["sync", "--source", &uri, "--target", &url, "--once"]);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("refused to resume from the stored point") && err.contains("run `init` again"),
        "{err}"
    );
}
