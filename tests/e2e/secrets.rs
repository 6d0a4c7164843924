//! Passwords never show: source and target both need one, and every command's output (text,
//! `--json`, `-v`), the target's state tables and the child processes' argument lists are
//! searched for it, raw and percent-encoded.

use crate::bad_input_suite::{assert_clean, password_role, pw_url, PASSWORD, PASSWORD_URL};
use crate::harness::{cli, fresh_db, psql, run};
use crate::mariadb;

/// Run `args` three ways (plain, `--json`, `-v`); assert each exit is in `codes`; returns output.
fn every_way(args: &[&str], codes: &[i32]) -> String {
    let mut all = String::new();
    for extra in [&[][..], &["--json"], &["-v"]] {
        let mut a = args.to_vec();
        a.extend_from_slice(extra);
        let (code, out, err) = run(&a);
        assert!(codes.contains(&code), "{a:?} exited {code}\n{out}\n{err}");
        all.push_str(&out);
        all.push_str(&err);
    }
    all
}

/// `init --no-sync --keep-state` from `source`, plain, with `--json` and with `-v`, each into a
/// fresh password-protected target; returns everything printed and stored.
fn snapshot_copies(source: &str) -> String {
    let mut seen = String::new();
    for extra in [&[][..], &["--json"], &["-v"]] {
        let (_, dst_db) = fresh_db();
        let target = pw_url(&dst_db, PASSWORD_URL);
        let mut args = vec!["init", "-y", "--no-sync", "--keep-state"];
        args.extend_from_slice(extra);
        args.extend(["--source", source, "--target", &target]);
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{out}\n{err}");
        seen.push_str(&format!("{out}{err}{}", state_tables(&dst_db)));
    }
    seen
}

/// `init` from `source` into a fresh password-protected target, then `change` on the source,
/// then `verify`, `status`, `sync --once` and `validate` every way; returns the target URL and
/// everything printed and stored.
fn init_then_every_command(source: &str, change: impl FnOnce()) -> (String, String) {
    let (_, dst_db) = fresh_db();
    let target = pw_url(&dst_db, PASSWORD_URL);
    let (code, out, err) = run(&["init", "-y", "--source", source, "--target", &target]);
    assert_eq!(code, 0, "{out}\n{err}");
    let mut seen = format!("{out}{err}");
    change();
    for (cmd, codes) in [
        (&["verify"][..], &[0, 5][..]),
        (&["status"], &[0, 5]),
        (&["sync", "--once"], &[0]),
        (&["validate"], &[0, 5]),
    ] {
        let mut args = cmd.to_vec();
        args.extend(["--source", source, "--target", &target]);
        seen.push_str(&every_way(&args, codes));
    }
    seen.push_str(&state_tables(&dst_db));
    (target, seen)
}

/// Every row of every table in the `seren_replicator` state schema of database `db`, as JSON.
pub fn state_tables(db: &str) -> String {
    let tables = psql(
        db,
        "SELECT string_agg(quote_ident(table_name), ',') FROM information_schema.tables \
         WHERE table_schema = 'seren_replicator'",
    );
    let mut rows = String::new();
    for t in tables.split(',').filter(|t| !t.is_empty()) {
        rows.push_str(&psql(
            db,
            &format!("SELECT row_to_json(x)::text FROM seren_replicator.{t} x"),
        ));
    }
    rows
}

/// The argument lists of `pid` and all its descendants, read from /proc.
fn cmdlines(pid: u32) -> Vec<String> {
    let mut found = Vec::new();
    let mut parents = vec![pid];
    while let Some(parent) = parents.pop() {
        if let Ok(c) = std::fs::read(format!("/proc/{parent}/cmdline")) {
            found.push(String::from_utf8_lossy(&c).replace('\0', " "));
        }
        let Ok(dir) = std::fs::read_dir("/proc") else {
            continue;
        };
        for e in dir.flatten() {
            let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // Fields after the `(comm)`: state, ppid, …
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(parent) {
                parents.push(child);
            }
        }
    }
    found
}

/// Run `args` with the variables `env` set (e.g. a password in `PGPASSWORD`), sampling every
/// descendant's argument list until it exits; asserts success and returns everything seen.
pub fn run_watching_cmdlines(args: &[&str], env: &[(&str, &str)]) -> String {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = cli()
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::from(log.reopen().unwrap()))
        .stderr(std::process::Stdio::from(log.reopen().unwrap()))
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let status = loop {
        seen.extend(cmdlines(child.id()));
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let printed = std::fs::read_to_string(log.path()).unwrap();
    assert!(status.success(), "{args:?}: {status}\n{printed}");
    assert!(!seen.is_empty());
    seen.push(printed);
    seen.join("\n")
}

#[test]
fn postgresql_source_and_target_passwords_never_show() {
    let (_, src_db) = fresh_db();
    psql(
        &src_db,
        "CREATE TABLE t (id int PRIMARY KEY, s text);
         INSERT INTO t SELECT i, 'row ' || i FROM generate_series(1, 1000) i;",
    );
    let source = pw_url(&src_db, PASSWORD_URL);
    // Snapshot-only copies, plain, --json and -v, each into its own target.
    let mut seen = snapshot_copies(&source);

    // The full flow: init with continuous sync, then every other command.
    let (_, dst_db) = fresh_db();
    let target = pw_url(&dst_db, PASSWORD_URL);
    let both = ["--source", &source, "--target", &target];
    let with = |cmd: &[&'static str]| -> Vec<String> {
        cmd.iter()
            .map(|s| s.to_string())
            .chain(both.iter().map(|s| s.to_string()))
            .collect()
    };
    let (code, out, err) = run(&[
        "init",
        "-y",
        "--keep-state",
        "--source",
        &source,
        "--target",
        &target,
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    seen.push_str(&format!("{out}{err}"));
    for (cmd, codes) in [
        (&["verify"][..], &[0][..]),
        (&["status"], &[0, 5]),
        (&["sync"], &[0, 5]),
        (&["validate"], &[0, 5]),
    ] {
        let args = with(cmd);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        seen.push_str(&every_way(&args, codes));
    }
    seen.push_str(&state_tables(&dst_db));
    run(&with(&["sync", "--stop"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());

    // Wrong passwords, source then target.
    let wrong = pw_url(&src_db, "Wrong-9f3kq%21x");
    for (s, t) in [
        (&wrong, &target),
        (&source, &pw_url(&dst_db, "Wrong-9f3kq%21x")),
    ] {
        for extra in [&[][..], &["--json"], &["-v"]] {
            let mut args = vec!["init", "-y", "--no-sync", "--source", s, "--target", t];
            args.extend_from_slice(extra);
            let (code, out, err) = run(&args);
            assert_eq!(code, 1, "{out}\n{err}");
            assert!(
                format!("{out}{err}").contains("rejected user"),
                "{out}\n{err}"
            );
            seen.push_str(&format!("{out}{err}"));
        }
    }

    // The password only in PGPASSWORD: no argument list of the CLI or its children holds it.
    let role = password_role();
    let (_, dst_db) = fresh_db();
    let port = crate::harness::pg_port();
    let bare_src = format!("postgresql://{role}@127.0.0.1:{port}/{src_db}");
    let bare_dst = format!("postgresql://{role}@127.0.0.1:{port}/{dst_db}");
    seen.push_str(&run_watching_cmdlines(
        &[
            "init",
            "-y",
            "--no-sync",
            "-v",
            "--source",
            &bare_src,
            "--target",
            &bare_dst,
        ],
        &[("PGPASSWORD", PASSWORD)],
    ));
    assert_eq!(psql(&dst_db, "SELECT count(*) FROM t"), "1000");
    assert_clean(&[&seen]);
}

#[test]
fn mysql_source_and_postgresql_target_passwords_never_show() {
    let (db, user) = mariadb_password_user("s");
    let source = mariadb::url(&user, PASSWORD_URL, &db);
    let mut seen = snapshot_copies(&source);
    let (target, flow) = init_then_every_command(&source, || {
        mariadb::sql(&db, "INSERT INTO t VALUES (4, 'd')");
    });
    seen.push_str(&flow);
    let wrong = mariadb::url(&user, "Wrong-9f3kq%21x", &db);
    let (code, out, err) = run(&["init", "-y", "--source", &wrong, "--target", &target]);
    assert_eq!(code, 1, "{out}\n{err}");
    seen.push_str(&format!("{out}{err}"));
    assert_clean(&[&seen]);
}

#[test]
fn mongodb_source_and_postgresql_target_passwords_never_show() {
    use seren_mongodb::mongodb::bson::{doc, Document};
    use seren_mongodb::mongodb::Client;
    let dir = crate::harness::tempdir();
    let server = crate::mongo::auth_server(dir.path(), "app", PASSWORD);
    let port = server.port;
    crate::mongo::block_on(async {
        let uri = format!(
            "mongodb://app:{PASSWORD_URL}@127.0.0.1:{port}/shop?authSource=admin&directConnection=true"
        );
        let client = Client::with_uri_str(uri).await.unwrap();
        client
            .database("shop")
            .collection::<Document>("items")
            .insert_many(vec![doc! {"_id": 1, "a": 1}, doc! {"_id": 2, "a": 2}])
            .await
            .unwrap();
    });
    let source_with = |pw: &str| {
        format!("mongodb://app:{pw}@127.0.0.1:{port}/shop?authSource=admin&directConnection=true")
    };
    let source = source_with(PASSWORD_URL);
    let mut seen = snapshot_copies(&source);
    let (target, flow) = init_then_every_command(&source, || {});
    seen.push_str(&flow);
    let wrong = source_with("Wrong-9f3kq%21x");
    let (code, out, err) = run(&["init", "-y", "--source", &wrong, "--target", &target]);
    assert_eq!(code, 1, "{out}\n{err}");
    seen.push_str(&format!("{out}{err}"));
    assert_clean(&[&seen]);
    server.stop();
}

/// A MariaDB database holding `t` (3 rows), and a new user `<prefix>_…` of password `PASSWORD`
/// with every privilege: (database, user).
pub fn mariadb_password_user(prefix: &str) -> (String, String) {
    let (_, db) = mariadb::fresh_db();
    mariadb::sql(
        &db,
        "CREATE TABLE t (id INT PRIMARY KEY, s TEXT);
         INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    );
    let user = format!("{prefix}_{:08x}", rand::random::<u32>());
    mariadb::sql(
        "",
        &format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}';
             GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%';"
        ),
    );
    (db, user)
}
