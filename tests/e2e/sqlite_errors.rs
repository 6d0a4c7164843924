//! Bad input: clear messages, non-zero exits, nothing written, and no password in any output.

use crate::harness::{cli, fresh_db, output, pg_port, psql, run, run_ok, tempdir};
use rusqlite::Connection;
use std::os::unix::fs::PermissionsExt;
use std::sync::OnceLock;

const PASSWORD: &str = "s3cr3t-Pa55:w/rd";
const WRONG: &str = "wr0ng-Pa55-xyzzy";

/// A login role that must authenticate with scram-sha-256 (other roles keep trust).
fn password_role() -> &'static str {
    static ROLE: OnceLock<String> = OnceLock::new();
    ROLE.get_or_init(|| crate::harness::password_role("pw", PASSWORD, ""))
}

fn sample(dir: &std::path::Path) -> String {
    let p = dir.join("ok.db");
    Connection::open(&p)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT); INSERT INTO t VALUES (1, 'x');",
        )
        .unwrap();
    p.display().to_string()
}

fn assert_no_secret(texts: &[&str]) {
    for t in texts {
        for secret in [PASSWORD, WRONG, "s3cr3t", "wr0ng"] {
            assert!(!t.contains(secret), "a password leaked into output: {t}");
        }
    }
}

#[test]
fn bad_sources_are_explained() {
    let dir = tempdir();
    let (url, db) = fresh_db();
    let missing = dir.path().join("missing.db");
    let (code, out, err) = run(&[
        "init",
        "--source",
        missing.to_str().unwrap(),
        "--target",
        &url,
        "-y",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains(missing.to_str().unwrap()), "{out}{err}");
    let not_sqlite = dir.path().join("notes.db");
    std::fs::write(&not_sqlite, "just some text, not a database\n").unwrap();
    let (code, _, err) = run(&[
        "init",
        "--source",
        not_sqlite.to_str().unwrap(),
        "--target",
        &url,
        "-y",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("not a SQLite database"), "{err}");
    let (code, _, err) = run(&[
        "init",
        "--source",
        "ftp://nowhere/x",
        "--target",
        &url,
        "-y",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no connector accepts source"), "{err}");
    assert!(!err.contains("panicked"));
    // `sync` and `status` of a missing SQLite file name it (sync itself: tests/e2e/sync_refresh.rs).
    for command in ["sync", "status"] {
        let (code, _, err) = run(&[command, "--source", "x.db", "--target", &url]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("SQLite file x.db does not exist"), "{err}");
    }
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0"
    );
}

#[test]
fn bad_targets_are_explained() {
    let dir = tempdir();
    let source = sample(dir.path());
    let port = crate::harness::free_port();
    let (code, _, err) = run(&[
        "init",
        "--source",
        &source,
        "--target",
        &format!("postgresql://postgres@127.0.0.1:{port}/x"),
        "-y",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!(
            "cannot connect to target PostgreSQL at 127.0.0.1:{port}"
        )),
        "{err}"
    );

    let (code, _, err) = run(&[
        "init",
        "--source",
        &source,
        "--target",
        &format!("postgresql://postgres@127.0.0.1:{}/no_such_db", pg_port()),
        "-y",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("database \"no_such_db\" does not exist") && err.contains("createdb"),
        "{err}"
    );

    let (code, _, err) = run(&[
        "init",
        "--source",
        &source,
        "--target",
        "postgresql://[bad",
        "-y",
    ]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn passwords_work_everywhere_and_never_show() {
    let role = password_role();
    let dir = tempdir();
    let source = sample(dir.path());
    let (_, db) = fresh_db();
    psql(&db, &format!("GRANT CREATE ON SCHEMA public TO {role}"));
    let port = pg_port();
    let url_with = |pw: &str| {
        format!(
            "postgresql://{role}:{}@127.0.0.1:{port}/{db}",
            pw.replace(':', "%3A").replace('/', "%2F")
        )
    };

    // Wrong password: rejected, explained, never echoed (text and JSON output).
    for json in [false, true] {
        let mut args = vec!["init", "--source", &source, "-y"];
        let target = url_with(WRONG);
        args.extend(["--target", &target]);
        if json {
            args.push("--json");
        }
        let (code, out, err) = run(&args);
        assert_ne!(code, 0);
        assert!(
            format!("{out}{err}").contains("rejected user"),
            "{out}{err}"
        );
        assert_no_secret(&[&out, &err]);
    }
    // No password at all: says where to put one.
    let bare = format!("postgresql://{role}@127.0.0.1:{port}/{db}");
    let (code, out, _) = run(&["validate", "--source", &source, "--target", &bare]);
    assert_eq!(code, 5);
    assert!(
        out.contains("✗ target reachable") && out.contains("none was given"),
        "{out}"
    );

    // Right password in the URL, in PGPASSWORD, in a pgpass file, in --password-file.
    let out = run_ok(&[
        "validate",
        "--source",
        &source,
        "--target",
        &url_with(PASSWORD),
    ]);
    assert!(out.contains("✓ target privileges"), "{out}");
    assert_no_secret(&[&out]);
    let (code, out, err) = output(
        cli()
            .args(["validate", "--source", &source, "--target", &bare])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let pgpass = dir.path().join("pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "127.0.0.1:{port}:*:{role}:{}\n",
            PASSWORD.replace(':', "\\:")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, out, err) = output(
        cli()
            .args(["validate", "--source", &source, "--target", &bare])
            .env("PGPASSFILE", &pgpass)
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let pwfile = dir.path().join("pw");
    std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
    let kv = format!("host=127.0.0.1 port={port} user={role} dbname={db}");
    let out = run_ok(&[
        "init",
        "--source",
        &source,
        "--target",
        &kv,
        "--password-file",
        pwfile.to_str().unwrap(),
        "-y",
    ]);
    assert_no_secret(&[&out]);
    assert_eq!(psql(&db, "SELECT data->>'s' FROM t"), "x");
}

#[test]
fn missing_privileges_are_explained() {
    let role = password_role();
    let dir = tempdir();
    let source = sample(dir.path());
    let (_, db) = fresh_db();
    psql(&db, &format!("REVOKE CREATE ON SCHEMA public FROM PUBLIC; REVOKE CREATE ON DATABASE {db} FROM PUBLIC"));
    let url = format!(
        "postgresql://{role}:{}@127.0.0.1:{}/{db}",
        PASSWORD.replace(':', "%3A").replace('/', "%2F"),
        pg_port()
    );
    let (code, out, err) = run(&["init", "--source", &source, "--target", &url, "-y"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("permission denied") && err.contains("GRANT"),
        "{err}"
    );
    assert_no_secret(&[&out, &err]);
    let (code, out, _) = run(&["validate", "--source", &source, "--target", &url]);
    assert_eq!(code, 5);
    assert!(
        out.contains("✗ target privileges") && out.contains("GRANT CREATE ON SCHEMA"),
        "{out}"
    );
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0"
    );
}
