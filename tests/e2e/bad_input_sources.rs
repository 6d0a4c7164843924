//! More bad input, per source kind, in the style of `bad_input_suite` (one case per test: the
//! exit code, the exact message fragments, no panic, no password): PostgreSQL-only flags with
//! other sources, host names that do not resolve, tables the source user may not read,
//! predicates the source rejects, a source password that cannot be used, and config files
//! of the wrong shape.

use crate::bad_input_suite::{fails, pw_url, sqlite_source, PASSWORD, PASSWORD_URL};
use crate::harness::{fresh_db, pg_port, psql, tempdir};
use crate::mariadb;

fn init<'a>(source: &'a str, target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["init", "-y", "--source", source, "--target", target];
    v.extend_from_slice(extra);
    v
}

// ---- PostgreSQL-only flags with other sources --------------------------------------------------

#[test]
fn split_size_with_a_sqlite_source() {
    let dir = tempdir();
    let src = sqlite_source(&dir);
    let (dst, _) = fresh_db();
    fails(
        &init(&src, &dst, &["--split-tables-larger-than", "1GB"]),
        2,
        &[
            "--split-tables-larger-than only applies to PostgreSQL sources",
            "is sqlite",
        ],
    );
}

/// Refused before connecting: the server need not exist.
#[test]
fn publication_and_no_owner_with_a_mysql_source() {
    let (dst, _) = fresh_db();
    let src = format!("mysql://u:{PASSWORD_URL}@127.0.0.1:1/shop");
    fails(
        &init(&src, &dst, &["--publication", "p", "--no-owner"]),
        2,
        &[
            "--publication, --no-owner only apply to PostgreSQL sources",
            "mysql://u:***@127.0.0.1:1/shop is mysql",
        ],
    );
}

#[test]
fn index_jobs_and_no_resume_with_a_mongodb_source() {
    let (dst, _) = fresh_db();
    let src = format!("mongodb://u:{PASSWORD_URL}@127.0.0.1:1/shop");
    fails(
        &init(&src, &dst, &["--index-jobs", "2", "--no-resume"]),
        2,
        &[
            "--index-jobs, --no-resume only apply to PostgreSQL sources",
            "is mongodb",
        ],
    );
}

// ---- host names that do not resolve ------------------------------------------------------------

#[test]
fn unresolvable_mysql_source_host() {
    let (dst, _) = fresh_db();
    let src = format!("mysql://u:{PASSWORD_URL}@no-such-host.invalid:3306/shop");
    fails(
        &init(&src, &dst, &[]),
        1,
        &["no-such-host.invalid:3306/shop"],
    );
}

#[test]
fn unresolvable_mongodb_source_host() {
    let (dst, _) = fresh_db();
    let src = format!(
        "mongodb://u:{PASSWORD_URL}@no-such-host.invalid:27017/shop?serverSelectionTimeoutMS=1500"
    );
    fails(&init(&src, &dst, &[]), 1, &["no-such-host.invalid:27017"]);
}

#[test]
fn unresolvable_target_host() {
    let dir = tempdir();
    let src = sqlite_source(&dir);
    let dst = format!("postgresql://u:{PASSWORD_URL}@no-such-host.invalid:5432/db");
    fails(
        &init(&src, &dst, &[]),
        1,
        &[
            "cannot connect to target PostgreSQL at no-such-host.invalid:5432",
            "check the host and port",
        ],
    );
}

// ---- tables the source user may not read ------------------------------------------------------

/// A non-superuser PostgreSQL source user without SELECT on `secret`: named, with the GRANT.
#[test]
fn postgresql_source_table_without_select() {
    let (_, db) = fresh_db();
    psql(
        &db,
        "CREATE TABLE open (id int PRIMARY KEY); CREATE TABLE secret (id int PRIMARY KEY);",
    );
    let role = crate::harness::password_role("ro", PASSWORD, "");
    psql(&db, &format!("GRANT SELECT ON open TO {role}"));
    let src = format!(
        "postgresql://{role}:{PASSWORD_URL}@127.0.0.1:{}/{db}",
        pg_port()
    );
    let (dst, _) = fresh_db();
    fails(
        &init(&src, &dst, &["--no-sync"]),
        1,
        &[
            &format!("source user {role} cannot read public.secret;"),
            &format!("GRANT SELECT ON \"public\".\"secret\" TO \"{role}\";"),
        ],
    );
}

/// A MariaDB user that sees `b` (it may INSERT) but may not SELECT from it.
#[test]
fn mysql_source_table_without_select() {
    let (_, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "CREATE TABLE a (id INT PRIMARY KEY); CREATE TABLE b (id INT PRIMARY KEY);
         INSERT INTO a VALUES (1); INSERT INTO b VALUES (2);",
    );
    let user = format!("r_{:08x}", rand::random::<u32>());
    mariadb::sql(
        "",
        &format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}';
             GRANT SELECT ON {db}.a TO '{user}'@'%'; GRANT INSERT ON {db}.b TO '{user}'@'%';"
        ),
    );
    let src = mariadb::url(&user, PASSWORD_URL, &db);
    let (dst, _) = fresh_db();
    fails(
        &init(&src, &dst, &[]),
        1,
        &["`b`", &format!("GRANT SELECT ON `{db}`.`b` TO '{user}'@")],
    );
}

// ---- predicates the source rejects -----------------------------------------------------------

#[test]
fn invalid_predicate_for_a_sqlite_source() {
    let dir = tempdir();
    let src = sqlite_source(&dir);
    let (dst, _) = fresh_db();
    fails(
        &init(&src, &dst, &["--table-filter", "t:id >>>= ("]),
        2,
        &["table \"t\": SQLite rejects the row filter `id >>>= (`"],
    );
}

#[test]
fn invalid_predicate_for_a_mysql_source() {
    let (src, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    let (dst, _) = fresh_db();
    fails(
        &init(&src, &dst, &["--table-filter", "t:no_such_column > 1"]),
        2,
        &[
            "table `t`: MySQL rejects the row filter `no_such_column > 1`",
            "Unknown column 'no_such_column'",
            "write it in MySQL's SQL",
        ],
    );
}

// ---- a source password that cannot be used -----------------------------------------------------

#[test]
fn source_password_file_for_a_sqlite_source() {
    let dir = tempdir();
    let src = sqlite_source(&dir);
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let (dst, _) = fresh_db();
    fails(
        &init(
            &src,
            &dst,
            &["--source-password-file", pw.to_str().unwrap()],
        ),
        2,
        &["--source-password-file", "takes no password"],
    );
}

#[test]
fn source_password_file_without_a_user_in_the_url() {
    let dir = tempdir();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let (dst, _) = fresh_db();
    fails(
        &init(
            "mysql://127.0.0.1:1/shop",
            &dst,
            &["--source-password-file", pw.to_str().unwrap()],
        ),
        2,
        &["names no user", "mysql://USER@HOST/DB"],
    );
}

// ---- config files of the wrong shape -----------------------------------------------------------

fn config_with(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempdir();
    let p = dir.path().join("rules.toml");
    std::fs::write(&p, text).unwrap();
    (dir, p.display().to_string())
}

#[test]
fn config_file_with_a_number_for_a_predicate() {
    let (_, db) = fresh_db();
    psql(&db, "CREATE TABLE t (id int PRIMARY KEY)");
    let src = pw_url(&db, PASSWORD_URL);
    let (dst, _) = fresh_db();
    let (_d, cfg) = config_with(&format!(
        "[[databases.{db}.table_filters]]\ntable = \"public.t\"\nwhere = 5\n"
    ));
    fails(
        &init(&src, &dst, &["--no-sync", "--config", &cfg]),
        2,
        &["rules.toml", "invalid type: integer `5`, expected a string"],
    );
}

#[test]
fn config_file_that_is_not_toml() {
    let (_, db) = fresh_db();
    psql(&db, "CREATE TABLE t (id int PRIMARY KEY)");
    let src = pw_url(&db, PASSWORD_URL);
    let (dst, _) = fresh_db();
    let (_d, cfg) = config_with(&format!("[databases.{db}\ninclude_tables = [\n"));
    fails(
        &init(&src, &dst, &["--no-sync", "--config", &cfg]),
        2,
        &["invalid config file", "rules.toml"],
    );
}
