//! Bad input: a malformed URI, no database in it, an unreachable server, an unknown database,
//! a wrong password (a server started with `--auth`), and a standalone server without change
//! streams (sync falls back to periodic refresh and says why).

use super::block_on;
use crate::harness::{free_port, fresh_db, psql, run, run_ok, tempdir};
use crate::mongo_server::{fresh_mongo_db, mongo_port, OwnServer};
use seren_mongodb::mongodb::bson::{doc, Document};
use seren_mongodb::mongodb::Client;

fn init_fails(source: &str) -> (i32, String) {
    let (url, _) = fresh_db();
    let (code, out, err) = run(&["init", "--source", source, "--target", &url, "-y"]);
    assert_ne!(code, 0, "init should fail for {source}\n{out}\n{err}");
    (code, err)
}

#[test]
fn a_malformed_uri_is_a_usage_error_that_hides_the_password() {
    let (_, err) = init_fails("mongodb://bob:s3cr3t-pw@127.0.0.1:notaport/db");
    assert!(err.contains("URI"), "{err}");
    assert!(!err.contains("s3cr3t-pw"), "password leaked: {err}");
}

#[test]
fn a_uri_without_a_database_says_how_to_name_one() {
    let (_, err) = init_fails(&format!(
        "mongodb://127.0.0.1:{}/?directConnection=true",
        mongo_port()
    ));
    assert!(err.contains("names no database"), "{err}");
}

#[test]
fn an_unreachable_server_is_named() {
    let port = free_port();
    let (_, err) = init_fails(&format!(
        "mongodb://u:hidden-pw@127.0.0.1:{port}/db?directConnection=true&serverSelectionTimeoutMS=1500"
    ));
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("hidden-pw"), "password leaked: {err}");
}

#[test]
fn an_unknown_database_is_named() {
    let name = fresh_mongo_db();
    let (_, err) = init_fails(&format!(
        "mongodb://127.0.0.1:{}/{name}?directConnection=true",
        mongo_port()
    ));
    assert!(
        err.contains(&format!("database `{name}` does not exist")),
        "{err}"
    );
}

/// Insert `docs` into `db.items` on the server at `port` (as `user:password` when given).
fn insert(port: u16, auth: &str, db: &str, docs: Vec<Document>) {
    block_on(async {
        let source = if auth.is_empty() {
            ""
        } else {
            "&authSource=admin"
        };
        let uri = format!("mongodb://{auth}127.0.0.1:{port}/{db}?directConnection=true{source}");
        let client = Client::with_uri_str(uri).await.unwrap();
        client
            .database(db)
            .collection::<Document>("items")
            .insert_many(docs)
            .await
            .unwrap();
    });
}

#[test]
fn a_wrong_password_is_an_auth_error_that_hides_it() {
    let dir = tempdir();
    let server = crate::mongo::auth_server(dir.path(), "app", "right-pw-1");
    insert(
        server.port,
        "app:right-pw-1@",
        "shop",
        vec![doc! {"_id": 1, "a": 1}],
    );
    let source = |pw: &str| {
        format!(
            "mongodb://app:{pw}@127.0.0.1:{}/shop?authSource=admin&directConnection=true",
            server.port
        )
    };

    let (code, err) = init_fails(&source("wrong-pw-2"));
    assert_eq!(code, 1, "{err}");
    assert!(err.to_lowercase().contains("auth"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{}", server.port)), "{err}");
    assert!(!err.contains("wrong-pw-2"), "password leaked: {err}");

    // The right password works, and appears nowhere in the output either.
    let (url, pg) = fresh_db();
    let out = run_ok(&[
        "init",
        "-y",
        "--source",
        &source("right-pw-1"),
        "--target",
        &url,
    ]);
    assert!(!out.contains("right-pw-1"), "password leaked: {out}");
    assert_eq!(
        psql(&pg, "SELECT data->>'a' FROM items WHERE id = 'int32:1'"),
        "1"
    );
}

#[test]
fn a_standalone_server_falls_back_to_refresh_and_says_why() {
    let dir = tempdir();
    let server = OwnServer::start(&["--standalone"], &dir.path().join("data"));
    insert(
        server.port,
        "",
        "shop",
        vec![doc! {"_id": 1}, doc! {"_id": 2}],
    );
    let source = format!(
        "mongodb://127.0.0.1:{}/shop?directConnection=true",
        server.port
    );
    let (url, pg) = fresh_db();
    let (code, out, err) = run(&["init", "-y", "--source", &source, "--target", &url]);
    assert_eq!(code, 0, "{out}{err}");
    let said = out + &err;
    assert!(
        said.contains("standalone") && said.contains("replica set") && said.contains("refresh"),
        "{said}"
    );
    insert(server.port, "", "shop", vec![doc! {"_id": 3}]);
    let out = run_ok(&["sync", "--once", "--source", &source, "--target", &url]);
    assert!(out.contains("refresh"), "{out}");
    assert_eq!(psql(&pg, "SELECT count(*) FROM items"), "3");
}
