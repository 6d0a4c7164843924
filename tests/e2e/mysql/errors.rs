//! Bad input: wrong password, unknown database, missing privileges.

use super::{harness, mariadb};

#[test]
fn wrong_password_fails_without_showing_it() {
    let (_, db) = mariadb::fresh_db();
    let user = format!("u_{:08x}", rand::random::<u32>());
    mariadb::sql(
        "",
        &format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'right-pw'; GRANT SELECT ON {db}.* TO '{user}'@'%'"),
    );
    let (target, _) = harness::fresh_db();
    let source = mariadb::url(&user, "Wr0ngPassw0rd", &db);
    let (code, out, err) = harness::run(&["init", "-y", "--source", &source, "--target", &target]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("Access denied") && err.contains("password"),
        "{err}"
    );
    assert!(
        !err.contains("Wr0ngPassw0rd") && !out.contains("Wr0ngPassw0rd"),
        "{err}"
    );
}

#[test]
fn unknown_database_names_it() {
    let (target, _) = harness::fresh_db();
    let source = mariadb::url("root", "", "no_such_db");
    let (code, _, err) = harness::run(&["init", "-y", "--source", &source, "--target", &target]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no_such_db") && err.contains("check the database name"),
        "{err}"
    );
}

#[test]
fn without_reload_privilege_one_connection_reads_everything() {
    let (_, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "CREATE TABLE a (id INT PRIMARY KEY); INSERT INTO a VALUES (1), (2), (3);
                       CREATE TABLE b (id INT PRIMARY KEY); INSERT INTO b VALUES (4);",
    );
    let user = format!("u_{:08x}", rand::random::<u32>());
    mariadb::sql(
        "",
        &format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; GRANT SELECT ON {db}.* TO '{user}'@'%'"
        ),
    );
    let (target, _) = harness::fresh_db();
    let source = mariadb::url(&user, "pw", &db);
    let (code, out, err) = harness::run(&["init", "-y", "--source", &source, "--target", &target]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("RELOAD"),
        "the fallback must be reported: {err}"
    );
    assert_eq!(
        harness::sql(
            &target,
            "SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)"
        ),
        "4"
    );
}
