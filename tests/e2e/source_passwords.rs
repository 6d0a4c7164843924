//! The source password outside the source URL: `--source-password-file` (PostgreSQL and
//! MariaDB sources) and `MYSQL_PWD` (MariaDB). The copy works, and the password shows nowhere:
//! not in the output (plain, `--json`, `-v`), the target's state tables, nor any argument list
//! of the CLI or its children. An unreadable file is a usage error naming it, for every command
//! that takes a source.

use crate::bad_input_suite::{assert_clean, password_role, PASSWORD};
use crate::harness::{fresh_db, pg_port, pg_url, psql, run, tempdir};
use crate::mariadb;
use crate::secrets::{mariadb_password_user, run_watching_cmdlines, state_tables};

/// A file holding the password on its first line (and a second line that must be ignored).
fn password_file(dir: &tempfile::TempDir) -> String {
    let p = dir.path().join("source-pw");
    std::fs::write(&p, format!("{PASSWORD}\nnot the password\n")).unwrap();
    p.display().to_string()
}

/// `init --no-sync --keep-state` into a fresh target, plain, with `--json` and with `-v`, each
/// watched for argument lists; asserts `rows` rows of `t` arrived; returns all that was seen.
fn copies(source: &str, flags: &[&str], env: &[(&str, &str)], rows: &str) -> String {
    let mut seen = String::new();
    for extra in [&[][..], &["--json"], &["-v"]] {
        let (_, dst_db) = fresh_db();
        let target = pg_url(&dst_db);
        let mut args = vec!["init", "-y", "--no-sync", "--keep-state"];
        args.extend(["--source", source, "--target", &target]);
        args.extend_from_slice(flags);
        args.extend_from_slice(extra);
        seen.push_str(&run_watching_cmdlines(&args, env));
        assert_eq!(psql(&dst_db, "SELECT count(*) FROM t"), rows);
        seen.push_str(&state_tables(&dst_db));
    }
    seen
}

#[test]
fn postgresql_source_password_from_a_file() {
    let (_, src_db) = fresh_db();
    psql(
        &src_db,
        "CREATE TABLE t (id int PRIMARY KEY, s text);
         INSERT INTO t SELECT i, 'row ' || i FROM generate_series(1, 500) i;",
    );
    let dir = tempdir();
    let file = password_file(&dir);
    let source = format!(
        "postgresql://{}@127.0.0.1:{}/{src_db}",
        password_role(),
        pg_port()
    );
    let mut seen = copies(&source, &["--source-password-file", &file], &[], "500");

    // verify reads the same file.
    let (_, dst_db) = fresh_db();
    let target = pg_url(&dst_db);
    let both = ["--source", &source, "--target", &target];
    let with_file = ["--source-password-file", &file];
    let init = [&["init", "-y", "--no-sync"][..], &both, &with_file].concat();
    seen.push_str(&run_watching_cmdlines(&init, &[]));
    let (code, out, err) = run(&[&["verify"][..], &both, &with_file].concat());
    assert_eq!(code, 0, "{out}\n{err}");
    seen.push_str(&format!("{out}{err}"));

    // Without it the source asks for a password, and the message names the flag.
    let (code, out, err) = run(&[&["verify"][..], &both].concat());
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("asks user") && err.contains("--source-password-file"),
        "{err}"
    );
    seen.push_str(&format!("{out}{err}"));
    assert_clean(&[&seen]);
}

/// A MariaDB database with `t` (3 rows) and a user of password `PASSWORD`; returns the source
/// URL without the password.
fn mariadb_source() -> String {
    let (db, user) = mariadb_password_user("p");
    mariadb::url(&user, "", &db)
}

#[test]
fn mariadb_source_password_from_a_file() {
    let source = mariadb_source();
    let dir = tempdir();
    let file = password_file(&dir);
    let seen = copies(&source, &["--source-password-file", &file], &[], "3");
    assert_clean(&[&seen]);
}

#[test]
fn mariadb_source_password_from_mysql_pwd() {
    let source = mariadb_source();
    let mut seen = copies(&source, &[], &[("MYSQL_PWD", PASSWORD)], "3");
    // The harness keeps the machine's MYSQL_PWD away: without it, the server refuses.
    let (_, dst_db) = fresh_db();
    let target = pg_url(&dst_db);
    let (code, out, err) = run(&["init", "-y", "--source", &source, "--target", &target]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("Access denied"), "{err}");
    seen.push_str(&format!("{out}{err}"));
    assert_clean(&[&seen]);
}

#[test]
fn an_unreadable_source_password_file_is_a_usage_error_for_every_command() {
    let (target, _) = fresh_db();
    let source = mariadb::url("app", "", "shop");
    let dir = tempdir();
    let out_dir = dir.path().display().to_string();
    let file = ["--source-password-file", "/nonexistent/pw"];
    let both = ["--source", &source, "--target", &target];
    for args in [
        [&["init", "-y"][..], &both, &file].concat(),
        [&["validate"][..], &both, &file].concat(),
        [&["verify"][..], &both, &file].concat(),
        [&["sync", "--once"][..], &both, &file].concat(),
        [&["status"][..], &both, &file].concat(),
        [
            &["export", "--source", &source, "--target", &out_dir][..],
            &file,
        ]
        .concat(),
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{args:?}\n{out}\n{err}");
        assert!(
            err.contains("cannot read the source password file /nonexistent/pw")
                && err.contains("check --source-password-file"),
            "{args:?}\n{err}"
        );
        assert_clean(&[&out, &err]);
    }
}
