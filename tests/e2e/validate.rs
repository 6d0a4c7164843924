//! `validate` per source kind: a passing and a failing setup each, the exact check lines, the
//! exit code (0, or 5 for a failed check), and no password in the output.

use crate::harness::{self, fresh_db, psql, run, tempdir};
use crate::mongo::block_on;
use crate::mongo_server::{fresh_mongo_db, mongo_port, OwnServer};
use crate::{mariadb, pg_pair};
use seren_mongodb::mongodb::bson::{doc, Document};
use seren_mongodb::mongodb::Client;

/// Run `validate` with `args` after `--source` and `--target`; returns (code, stdout).
fn validate(source: &str, target: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["validate", "--source", source, "--target", target];
    args.extend(extra);
    let (code, out, err) = run(&args);
    for secret in SECRETS {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "password leaked:\n{out}\n{err}"
        );
    }
    (code, out)
}

/// Passwords the tests use: none may appear in any output.
const SECRETS: [&str; 4] = ["Tgt-S3cret", "My-S3cret", "Mongo-Wr0ng", "Mongo-R1ght"];

/// A target URL on the shared cluster, with a password the trust auth ignores.
fn target() -> String {
    let (_, db) = fresh_db();
    format!(
        "postgresql://postgres:Tgt-S3cret@127.0.0.1:{}/{db}",
        harness::pg_port()
    )
}

/// Assert every line of `lines` is a line of `out`, or starts one when it ends with `…`.
fn assert_lines(out: &str, lines: &[&str]) {
    for want in lines {
        let found = match want.strip_suffix('…') {
            Some(prefix) => out.lines().any(|l| l.starts_with(prefix)),
            None => out.lines().any(|l| l == *want),
        };
        assert!(found, "no line `{want}` in:\n{out}");
    }
}

/// The target checks every passing run prints.
const TARGET_OK: [&str; 5] = [
    "✓ target reachable: …",
    "✓ target version: PostgreSQL …",
    "✓ target privileges: user postgres can create tables in schema \"public\"",
    "✓ target connections: …",
    "✓ disk: the source holds about …",
];

#[test]
fn validate_sqlite_passes_and_reports_json() {
    let dir = tempdir();
    let file = dir.path().join("app.db");
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT); INSERT INTO t VALUES (1, 'x');",
        )
        .unwrap();
    let source = file.to_str().unwrap();
    let target = target();
    let (code, out) = validate(source, &target, &[]);
    assert_eq!(code, 0, "{out}");
    assert_lines(
        &out,
        &[
            &format!("✓ source readable: sqlite {source}"),
            "✓ tables selected: 1 table(s)",
            "✓ sync: periodic refresh: sqlite sources have no change capture; `sync` re-reads \
             the tables",
        ],
    );
    assert_lines(&out, &TARGET_OK);
    assert!(
        !out.contains('✗') && !out.contains("source version"),
        "{out}"
    );

    let (code, out) = validate(source, &target, &["--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["ok"], true, "{c}");
            assert_eq!(c["warning"], false, "{c}");
            c["check"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            "source readable",
            "tables selected",
            "target reachable",
            "target version",
            "target privileges",
            "target connections",
            "disk",
            "sync: periodic refresh"
        ]
    );

    // Too many jobs for the target's connections: the fix names --jobs and max_connections.
    let (code, out) = validate(source, &target, &["--jobs", "100000"]);
    assert_eq!(code, 5, "{out}");
    assert_lines(&out, &["✗ target connections: …"]);
    assert!(
        out.contains("init needs 100001 (100000 jobs + 1): run init with --jobs")
            && out.contains("ALTER SYSTEM SET max_connections = "),
        "{out}"
    );
}

#[test]
fn validate_sqlite_missing_file_fails_and_still_checks_the_target() {
    let dir = tempdir();
    let file = dir.path().join("missing.db");
    let source = file.to_str().unwrap();
    let (code, out) = validate(source, &target(), &[]);
    assert_eq!(code, 5, "{out}");
    assert_lines(
        &out,
        &[
            &format!("✗ source readable: SQLite file {source} does not exist; check the path"),
            "✓ target reachable: …",
            "✓ target privileges: …",
        ],
    );
    assert!(!out.contains("sync:"), "{out}");
}

#[test]
fn validate_parquet_passes_and_fails_on_an_unreadable_file() {
    use arrow_array::{ArrayRef, Int32Array, RecordBatch};
    let dir = tempdir();
    let file = dir.path().join("items.parquet");
    let ids: ArrayRef = std::sync::Arc::new(Int32Array::from(vec![1, 2, 3]));
    let batch = RecordBatch::try_from_iter([("id", ids)]).unwrap();
    crate::parquet::write_parquet(&file, &batch, 10);
    let source = file.to_str().unwrap();
    let target = target();
    let (code, out) = validate(source, &target, &[]);
    assert_eq!(code, 0, "{out}");
    assert_lines(
        &out,
        &[
            "✓ source readable: parquet …",
            "✓ tables selected: 1 table(s)",
            "✓ sync: periodic refresh: parquet sources have no change capture; `sync` re-reads \
             the tables",
        ],
    );
    assert_lines(&out, &TARGET_OK);

    let bad = dir.path().join("broken.parquet");
    std::fs::write(&bad, b"this is not a parquet file at all").unwrap();
    let (code, out) = validate(bad.to_str().unwrap(), &target, &[]);
    assert_eq!(code, 5, "{out}");
    assert_lines(&out, &["✗ source readable: …", "✓ target reachable: …"]);
    assert!(out.contains("broken.parquet"), "{out}");
}

/// A MariaDB user with password `My-S3cret` and `grants` (each `PRIV ON what`); its name.
fn mysql_user(grants: &[&str]) -> String {
    let user = format!("u_{:08x}", rand::random::<u32>());
    let mut sql = format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'My-S3cret';");
    for g in grants {
        sql.push_str(&format!("GRANT {g} TO '{user}'@'%';"));
    }
    mariadb::sql("", &sql);
    user
}

#[test]
fn validate_mysql_passes_and_warns_when_binlog_sync_is_not_possible() {
    let (root, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    let target = target();
    let (code, out) = validate(&root, &target, &[]);
    assert_eq!(code, 0, "{out}");
    assert_lines(
        &out,
        &[
            &format!(
                "✓ source readable: mysql 127.0.0.1:{}/{db}",
                mariadb::port()
            ),
            "✓ source version: MariaDB …",
            "✓ source read privileges: user 'root'@…",
            "✓ sync: change capture: available",
        ],
    );
    assert_lines(&out, &TARGET_OK);

    // SELECT only, no REPLICATION SLAVE: still valid, sync would refresh; the line says how.
    let user = mysql_user(&[&format!("SELECT ON {db}.*")]);
    let (code, out) = validate(&mariadb::url(&user, "My-S3cret", &db), &target, &[]);
    assert_eq!(code, 0, "{out}");
    assert_lines(
        &out,
        &[
            &format!("✓ source read privileges: user '{user}'@'%' can read 1 table(s)"),
            "! sync: change capture: …",
        ],
    );
    assert!(
        out.contains(&format!(
            "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'%'"
        )) && out.contains("refreshes periodically"),
        "{out}"
    );
    let (code, out) = validate(
        &mariadb::url(&user, "My-S3cret", &db),
        &target,
        &["--no-sync"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("sync:"), "{out}");
}

#[test]
fn validate_mysql_names_the_unreadable_table_and_the_grant() {
    let (_, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "CREATE TABLE a (id INT PRIMARY KEY); CREATE TABLE b (id INT PRIMARY KEY);",
    );
    // INSERT makes `b` visible in the catalog, but it cannot be read.
    let user = mysql_user(&[&format!("SELECT ON {db}.a"), &format!("INSERT ON {db}.b")]);
    let (code, out) = validate(&mariadb::url(&user, "My-S3cret", &db), &target(), &[]);
    assert_eq!(code, 5, "{out}");
    assert_lines(
        &out,
        &[
            "✓ tables selected: 2 table(s)",
            "✓ source version: MariaDB …",
            "✗ source read table \"b\": …",
        ],
    );
    assert!(
        out.contains(&format!("run: GRANT SELECT ON `{db}`.`b` TO '{user}'@'%';")),
        "{out}"
    );
    assert!(
        !out.contains("read table \"a\"") && !out.contains("source read privileges"),
        "{out}"
    );

    // A wrong password: the server's own words, never the password.
    let (code, out) = validate(&mariadb::url(&user, "My-S3cretX", &db), &target(), &[]);
    assert_eq!(code, 5, "{out}");
    assert_lines(&out, &["✗ source readable: …", "✓ target reachable: …"]);
    assert!(out.contains("Access denied"), "{out}");
}

/// Insert one document into `db.items` on the server at `port` (as `auth`, e.g. `u:p@`).
fn mongo_insert(port: u16, auth: &str, db: &str) {
    block_on(async {
        let admin = if auth.is_empty() {
            ""
        } else {
            "&authSource=admin"
        };
        let uri = format!("mongodb://{auth}127.0.0.1:{port}/{db}?directConnection=true{admin}");
        let client = Client::with_uri_str(uri).await.unwrap();
        client
            .database(db)
            .collection::<Document>("items")
            .insert_one(doc! {"_id": 1, "a": 1})
            .await
            .unwrap();
    });
}

#[test]
fn validate_mongodb_passes_and_warns_on_a_standalone_server() {
    let db = fresh_mongo_db();
    mongo_insert(mongo_port(), "", &db);
    let source = format!(
        "mongodb://127.0.0.1:{}/{db}?directConnection=true",
        mongo_port()
    );
    let target = target();
    let (code, out) = validate(&source, &target, &[]);
    assert_eq!(code, 0, "{out}");
    assert_lines(
        &out,
        &[
            &format!("✓ source readable: mongodb 127.0.0.1:{}/{db}", mongo_port()),
            "✓ tables selected: 1 table(s)",
            "✓ source version: MongoDB …",
            "✓ source read privileges: 1 collection(s) readable",
            "✓ sync: change capture: available",
        ],
    );
    assert_lines(&out, &TARGET_OK);

    let dir = tempdir();
    let server = OwnServer::start(&["--standalone"], &dir.path().join("data"));
    mongo_insert(server.port, "", "shop");
    let source = format!(
        "mongodb://127.0.0.1:{}/shop?directConnection=true",
        server.port
    );
    let (code, out) = validate(&source, &target, &[]);
    assert_eq!(code, 0, "{out}");
    assert_lines(&out, &["! sync: change capture: …"]);
    assert!(
        out.contains("standalone") && out.contains("--replSet") && out.contains("refreshes"),
        "{out}"
    );
}

#[test]
fn validate_mongodb_wrong_password_is_an_auth_failure() {
    let dir = tempdir();
    let server = crate::mongo::auth_server(dir.path(), "app", "Mongo-R1ght");
    mongo_insert(server.port, "app:Mongo-R1ght@", "shop");
    let source = |pw: &str| {
        format!(
            "mongodb://app:{pw}@127.0.0.1:{}/shop?authSource=admin&directConnection=true",
            server.port
        )
    };
    let target = target();
    let (code, out) = validate(&source("Mongo-Wr0ng"), &target, &[]);
    assert_eq!(code, 5, "{out}");
    assert_lines(&out, &["✗ source readable: …", "✓ target reachable: …"]);
    let line = out.lines().next().unwrap().to_lowercase();
    assert!(line.contains("auth"), "{out}");

    let (code, out) = validate(&source("Mongo-R1ght"), &target, &[]);
    assert_eq!(code, 0, "{out}");
    assert_lines(
        &out,
        &["✓ source read privileges: 1 collection(s) readable"],
    );
}

#[test]
fn validate_postgres_passes() {
    let (src, _) = pg_pair::fresh_source_db();
    pg_pair::script(
        &src,
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    let (dst, _) = pg_pair::fresh_target_db();
    let (code, out) = validate(&src, &dst, &[]);
    assert_eq!(code, 0, "{out}");
    assert_lines(
        &out,
        &[
            "✓ source readable: postgres …",
            "✓ tables selected: 1 table(s)",
            "✓ source version: PostgreSQL …",
            "✓ source read privileges: user postgres can read 1 table(s)",
            "✓ sync: source wal_level: logical",
        ],
    );
    assert_lines(&out, &TARGET_OK);
}

#[test]
fn validate_postgres_without_create_or_select_gives_the_grants() {
    let role = format!("r_{:08x}", rand::random::<u32>());
    psql("postgres", &format!("CREATE ROLE {role} LOGIN"));
    // Target: the role may connect but not create anything.
    let (_, tdb) = fresh_db();
    psql(
        &tdb,
        &format!("REVOKE CREATE ON SCHEMA public FROM PUBLIC; REVOKE CREATE ON DATABASE {tdb} FROM PUBLIC"),
    );
    let port = harness::pg_port();
    let target = format!("postgresql://{role}:Tgt-S3cret@127.0.0.1:{port}/{tdb}");
    let (src, sdb) = fresh_db();
    psql(
        &sdb,
        "CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE u (id int PRIMARY KEY)",
    );
    psql(&sdb, &format!("GRANT SELECT ON u TO {role}"));

    let (code, out) = validate(&src, &target, &["--no-sync"]);
    assert_eq!(code, 5, "{out}");
    assert_lines(
        &out,
        &["✓ source read privileges: …", "✗ target privileges: …"],
    );
    assert!(
        out.contains(&format!(
            "GRANT CREATE ON DATABASE \"{tdb}\" TO \"{role}\"; GRANT CREATE ON SCHEMA \"public\" \
             TO \"{role}\";"
        )),
        "{out}"
    );

    // Source: the role reads `u` but not `t`.
    let source = format!("postgresql://{role}@127.0.0.1:{port}/{sdb}");
    let (code, out) = validate(&source, &pg_pair::fresh_target_db().0, &["--no-sync"]);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains(&format!(
            "✗ source read table public.t: user \"{role}\" cannot read \"public\".\"t\"; run: \
             GRANT USAGE ON SCHEMA \"public\" TO \"{role}\"; GRANT SELECT ON \"public\".\"t\" TO \
             \"{role}\";"
        )),
        "{out}"
    );
    assert!(!out.contains("read table public.u"), "{out}");
}
