//! MongoDB → PostgreSQL against a throwaway SecantusDB server (`mongo_server`).

mod bad_input;
mod conformance;
mod copy;
mod flatten;
mod matrix;
mod sync;

use crate::mongo_server::{mongo_uri, OwnServer};
use seren_mongodb::mongodb::bson::{doc, RawDocumentBuf};
use seren_mongodb::mongodb::{Client, Database};

/// Run `f` on a fresh runtime (the tests themselves are synchronous, like the CLI runs).
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A server of its own that requires authentication, with user `user` (role `root` in
/// `admin`) whose password is `password`; its data lives in `dir`.
pub fn auth_server(dir: &std::path::Path, user: &str, password: &str) -> OwnServer {
    let data = dir.join("data");
    let server = OwnServer::start(&[], &data);
    block_on(async {
        let uri = format!("mongodb://127.0.0.1:{}/?directConnection=true", server.port);
        let client = Client::with_uri_str(uri).await.unwrap();
        client
            .database("admin")
            .run_command(doc! {"createUser": user, "pwd": password, "roles": ["root"]})
            .await
            .unwrap();
    });
    // A clean stop, so that the user is on disk when the server restarts with --auth.
    server.stop();
    OwnServer::start(&["--auth"], &data)
}

/// A driver handle on database `db` of the shared server.
pub async fn database(db: &str) -> Database {
    Client::with_uri_str(mongo_uri(db))
        .await
        .unwrap()
        .database(db)
}

/// Insert raw documents (exact bytes) into `coll`.
pub async fn insert_raw(db: &Database, coll: &str, docs: Vec<Vec<u8>>) {
    let docs: Vec<RawDocumentBuf> = docs
        .into_iter()
        .map(|d| RawDocumentBuf::from_bytes(d).unwrap())
        .collect();
    let c = db.collection::<RawDocumentBuf>(coll);
    for chunk in docs.chunks(200) {
        c.insert_many(chunk.to_vec()).await.unwrap();
    }
}

/// Every document of `coll` as the server returns it (raw bytes).
pub async fn read_raw(db: &Database, coll: &str) -> Vec<Vec<u8>> {
    let mut cursor = db
        .collection::<RawDocumentBuf>(coll)
        .find(seren_mongodb::mongodb::bson::doc! {})
        .await
        .unwrap();
    let mut out = Vec::new();
    while cursor.advance().await.unwrap() {
        out.push(cursor.current().as_bytes().to_vec());
    }
    out
}
