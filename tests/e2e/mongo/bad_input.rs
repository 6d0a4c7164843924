//! Bad input: a malformed URI, no database in it, an unreachable server, an unknown database.
//! (SecantusDB has no authentication, so an auth failure cannot be produced here.)

use crate::harness::{free_port, fresh_db, run};
use crate::mongo_server::{fresh_mongo_db, mongo_port};

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
