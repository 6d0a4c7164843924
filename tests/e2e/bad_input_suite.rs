//! Bad input, one case per test: a non-zero exit with the CLI's code (2 usage/config, 1 other),
//! a message that names the problem and the fix, no panic, and no password in any output.
//! Cases already covered elsewhere (sqlite_errors, mysql/errors, mongo/bad_input, validate) are
//! not repeated.

use crate::harness::{cli, free_port, fresh_db, output, pg_port, psql, run, run_ok, tempdir};
use rusqlite::Connection;
use std::sync::OnceLock;

/// A distinctive password, in URLs percent-encoded as `PASSWORD_URL`.
pub const PASSWORD: &str = "Pw-9f3kq!x";
pub const PASSWORD_URL: &str = "Pw-9f3kq%21x";

/// A superuser that must authenticate with scram-sha-256 on 127.0.0.1 (others keep trust).
pub fn password_role() -> &'static str {
    static ROLE: OnceLock<String> = OnceLock::new();
    ROLE.get_or_init(|| crate::harness::password_role("bi", PASSWORD, "SUPERUSER"))
}

/// URL of `db` on the shared cluster as the password role, with `password` (percent-encoded).
pub fn pw_url(db: &str, password: &str) -> String {
    format!(
        "postgresql://{}:{password}@127.0.0.1:{}/{db}",
        password_role(),
        pg_port()
    )
}

/// Assert that no text holds the password, raw or percent-encoded, nor a panic.
pub fn assert_clean(texts: &[&str]) {
    for t in texts {
        for secret in [PASSWORD, PASSWORD_URL, "9f3kq"] {
            assert!(!t.contains(secret), "the password leaked: {t}");
        }
        assert!(!t.contains("panicked"), "a panic: {t}");
    }
}

/// Run `args`, assert exit `code`, no panic/secret and every word in stdout+stderr; returns it.
pub fn fails(args: &[&str], code: i32, words: &[&str]) -> String {
    let (got, out, err) = run(args);
    let all = format!("{out}{err}");
    assert_eq!(got, code, "{args:?}\n{all}");
    assert_clean(&[&out, &err]);
    for w in words {
        assert!(all.contains(w), "missing `{w}` in:\n{all}");
    }
    all
}

/// A SQLite file with one table `t(id, s)` (3 rows), in `dir`.
pub fn sqlite_source(dir: &tempfile::TempDir) -> String {
    let p = dir.path().join("s.db");
    Connection::open(&p)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT);
             INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');",
        )
        .unwrap();
    p.display().to_string()
}

/// A target database and a SQLite file with one table `t` (3 rows).
fn sqlite_pair() -> (tempfile::TempDir, String, String) {
    let dir = tempdir();
    let src = sqlite_source(&dir);
    let (url, _) = fresh_db();
    (dir, src, url)
}

/// A PostgreSQL source database with `public.t(id, s, at)` (3 rows) and an empty target.
fn pg_pair() -> (String, String) {
    let (src, name) = fresh_db();
    psql(
        &name,
        "CREATE TABLE t (id int PRIMARY KEY, s text, at timestamptz DEFAULT now());
         INSERT INTO t (id, s) VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    );
    let (dst, _) = fresh_db();
    (src, dst)
}

fn init<'a>(source: &'a str, target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "init",
        "-y",
        "--no-sync",
        "--source",
        source,
        "--target",
        target,
    ];
    v.extend_from_slice(extra);
    v
}

// ---- malformed URLs, per scheme -------------------------------------------------------------

#[test]
fn malformed_postgresql_source_url() {
    let (_, target) = pg_pair();
    let src = format!("postgresql://u:{PASSWORD_URL}@[bad/db");
    fails(
        &init(&src, &target, &[]),
        2,
        &[
            "invalid PostgreSQL connection string",
            "expected postgresql://",
        ],
    );
}

#[test]
fn malformed_mysql_source_url() {
    let (_, target) = pg_pair();
    let src = format!("mysql://u:{PASSWORD_URL}@host:notaport/db");
    fails(
        &init(&src, &target, &[]),
        2,
        &[
            "MySQL source URL",
            "invalid port",
            "mysql://USER:PASSWORD@HOST:PORT",
        ],
    );
}

#[test]
fn malformed_mongodb_source_url() {
    let (_, target) = pg_pair();
    let src = format!("mongodb://u:{PASSWORD_URL}@:99999/db");
    fails(
        &init(&src, &target, &[]),
        2,
        &[
            "MongoDB URI is not valid",
            "hostname cannot be empty",
            "mongodb://",
        ],
    );
}

#[test]
fn unknown_scheme_lists_the_supported_sources() {
    let (_, target) = pg_pair();
    let src = format!("oracle://u:{PASSWORD_URL}@h/db");
    fails(
        &init(&src, &target, &[]),
        2,
        &[
            "no connector accepts source `oracle://u:***@h/db`",
            "supported sources",
            "mysql://",
        ],
    );
}

#[test]
fn malformed_target_url_hides_the_password() {
    let (dir, source, _) = sqlite_pair();
    let target = format!("postgresql://u:{PASSWORD_URL}@[bad/db");
    fails(
        &init(&source, &target, &[]),
        2,
        &["invalid PostgreSQL connection string"],
    );
    drop(dir);
}

// ---- unreachable servers ----------------------------------------------------------------------

#[test]
fn refused_postgresql_source_port() {
    let (_, target) = pg_pair();
    let port = free_port();
    let src = format!("postgresql://u:{PASSWORD_URL}@127.0.0.1:{port}/db");
    fails(
        &init(&src, &target, &[]),
        1,
        &[
            &format!("cannot connect to source PostgreSQL at 127.0.0.1:{port}"),
            "check the host and port",
        ],
    );
}

#[test]
fn refused_mysql_source_port() {
    let (_, target) = pg_pair();
    let port = free_port();
    let src = format!("mysql://u:{PASSWORD_URL}@127.0.0.1:{port}/db");
    fails(
        &init(&src, &target, &[]),
        1,
        &[&format!("127.0.0.1:{port}"), "check the host and port"],
    );
}

#[test]
fn unresolvable_postgresql_source_host() {
    let (_, target) = pg_pair();
    let src = format!("postgresql://u:{PASSWORD_URL}@no-such-host.invalid:5432/db");
    fails(&init(&src, &target, &[]), 1, &["no-such-host.invalid"]);
}

// ---- authentication and unknown databases ------------------------------------------------------

#[test]
fn wrong_password_for_a_postgresql_source() {
    let (src, dst) = pg_pair();
    let name = src.rsplit('/').next().unwrap().to_string();
    let bad = pw_url(&name, "Wrong-9f3kq%21x");
    fails(&init(&bad, &dst, &[]), 1, &["rejected user"]);
}

#[test]
fn unknown_postgresql_source_database() {
    let (_, dst) = pg_pair();
    let src = pw_url("no_such_db_here", PASSWORD_URL);
    fails(
        &init(&src, &dst, &[]),
        1,
        &["\"no_such_db_here\" does not exist"],
    );
}

/// A source that is its own target is refused before anything is touched (it used to drop
/// the source's tables under --drop-existing).
#[test]
fn source_equal_to_target_is_refused() {
    let (src, _) = pg_pair();
    let db = src.rsplit('/').next().unwrap().to_string();
    // The same database spelt differently: `localhost` and the password role.
    let other = pw_url(&db, PASSWORD_URL).replace("127.0.0.1", "localhost");
    for target in [&src, &other] {
        for extra in [&[][..], &["--drop-existing"]] {
            fails(
                &init(&src, target, extra),
                2,
                &[
                    "source and target are the same database",
                    "choose another target",
                ],
            );
        }
    }
    assert_eq!(psql(&db, "SELECT count(*) FROM t"), "3");
}

// ---- selection and filters ------------------------------------------------------------------

#[test]
fn include_tables_naming_a_missing_postgresql_table() {
    let (src, dst) = pg_pair();
    fails(
        &init(&src, &dst, &["--include-tables", "public.nope"]),
        2,
        &["nope"],
    );
}

#[test]
fn include_tables_naming_a_missing_sqlite_table() {
    let (_dir, src, dst) = sqlite_pair();
    fails(
        &init(&src, &dst, &["--include-tables", "nope"]),
        2,
        &["nope"],
    );
}

#[test]
fn table_filter_with_an_invalid_predicate() {
    let (src, dst) = pg_pair();
    fails(
        &init(&src, &dst, &["--table-filter", "public.t:id >>>= ("]),
        2,
        &["--table-filter", "is not closed", "write TABLE:PREDICATE"],
    );
}

#[test]
fn table_filter_without_a_predicate() {
    let (src, dst) = pg_pair();
    fails(
        &init(&src, &dst, &["--table-filter", "public.t"]),
        2,
        &["--table-filter"],
    );
}

#[test]
fn time_filter_with_an_invalid_window() {
    let (src, dst) = pg_pair();
    fails(
        &init(&src, &dst, &["--time-filter", "public.t:at:ninety days"]),
        2,
        &["--time-filter"],
    );
}

#[test]
fn time_filter_on_a_missing_column() {
    let (src, dst) = pg_pair();
    fails(
        &init(&src, &dst, &["--time-filter", "public.t:nope:90 days"]),
        2,
        &["nope"],
    );
}

fn config_with(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempdir();
    let p = dir.path().join("rules.toml");
    std::fs::write(&p, text).unwrap();
    (dir, p.display().to_string())
}

#[test]
fn config_file_with_an_unknown_key() {
    let (src, dst) = pg_pair();
    let db = src.rsplit('/').next().unwrap();
    let (_d, cfg) = config_with(&format!(
        "[databases.{db}]\ninclude_tabels = [\"public.t\"]\n"
    ));
    fails(
        &init(&src, &dst, &["--config", &cfg]),
        2,
        &["include_tabels", "rules.toml"],
    );
}

#[test]
fn config_file_with_a_wrong_type() {
    let (src, dst) = pg_pair();
    let db = src.rsplit('/').next().unwrap();
    let (_d, cfg) = config_with(&format!(
        "[databases.{db}]\ninclude_tables = \"public.t\"\n"
    ));
    fails(
        &init(&src, &dst, &["--config", &cfg]),
        2,
        &["include_tables", "rules.toml"],
    );
}

#[test]
fn config_file_that_does_not_exist() {
    let (src, dst) = pg_pair();
    fails(
        &init(&src, &dst, &["--config", "/nonexistent/rules.toml"]),
        2,
        &["cannot read the config file", "--config"],
    );
}

// ---- flags --------------------------------------------------------------------------------

#[test]
fn zero_jobs() {
    let (_dir, src, dst) = sqlite_pair();
    fails(
        &init(&src, &dst, &["--jobs", "0"]),
        2,
        &["--jobs 0", "at least one job"],
    );
}

#[test]
fn unknown_mode() {
    let (_dir, src, dst) = sqlite_pair();
    fails(
        &init(&src, &dst, &["--mode", "bogus"]),
        2,
        &["bogus", "use `jsonb` or `native`"],
    );
}

#[test]
fn unknown_gin_index_kind() {
    let (_dir, src, dst) = sqlite_pair();
    fails(
        &init(&src, &dst, &["--gin-index", "btree"]),
        2,
        &["btree", "--gin-index"],
    );
}

#[test]
fn unknown_on_type_mismatch_policy() {
    let (_dir, src, dst) = sqlite_pair();
    fails(
        &init(
            &src,
            &dst,
            &["--mode", "native", "--on-type-mismatch", "ignore"],
        ),
        2,
        &["ignore"],
    );
}

#[test]
fn unparsable_split_size() {
    let (src, dst) = pg_pair();
    fails(
        &init(&src, &dst, &["--split-tables-larger-than", "lots"]),
        2,
        &["lots"],
    );
}

#[test]
fn missing_password_file() {
    let (_dir, src, dst) = sqlite_pair();
    fails(
        &init(&src, &dst, &["--password-file", "/nonexistent/pw"]),
        2,
        &[
            "cannot read the password file /nonexistent/pw",
            "check --password-file",
        ],
    );
}

// ---- awkward data ---------------------------------------------------------------------------

/// 21 three-byte characters: 63 bytes, PostgreSQL's identifier limit.
#[test]
fn multibyte_identifier_of_63_bytes_copies() {
    let name = "日".repeat(21);
    assert_eq!(name.len(), 63);
    let dir = tempdir();
    let p = dir.path().join("mb.db");
    Connection::open(&p)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TABLE \"{name}\" (id INTEGER PRIMARY KEY, \"{col}\" TEXT);
             INSERT INTO \"{name}\" VALUES (1, 'x'), (2, 'y');",
            col = "é".repeat(31)
        ))
        .unwrap();
    let (url, db) = fresh_db();
    let src = p.display().to_string();
    run_ok(&init(&src, &url, &["--mode", "native"]));
    assert_eq!(
        psql(&db, &format!("SELECT count(*) FROM public.\"{name}\"")),
        "2"
    );
    assert_eq!(
        psql(
            &db,
            &format!(
                "SELECT string_agg(\"{}\", ',' ORDER BY id) FROM public.\"{name}\"",
                "é".repeat(31)
            )
        ),
        "x,y"
    );
}

fn wide_sqlite(columns: usize) -> (tempfile::TempDir, String) {
    let dir = tempdir();
    let p = dir.path().join("wide.db");
    let cols: Vec<String> = (1..columns).map(|i| format!("c{i} INTEGER")).collect();
    let vals: Vec<String> = (1..columns).map(|i| i.to_string()).collect();
    let c = Connection::open(&p).unwrap();
    c.execute_batch("PRAGMA max_column = 2000").ok();
    c.execute_batch(&format!(
        "CREATE TABLE w (id INTEGER PRIMARY KEY, {});
         INSERT INTO w VALUES (1, {});",
        cols.join(", "),
        vals.join(", ")
    ))
    .unwrap();
    (dir, p.display().to_string())
}

/// 1,600 columns is PostgreSQL's limit: native mode creates all of them, but 1,599 bigints
/// (12.8 kB) do not fit PostgreSQL's 8 kB heap row, so the copy fails and says so (exit 1).
#[test]
fn table_of_1600_columns_native() {
    let (_dir, src) = wide_sqlite(1600);
    let (url, _) = fresh_db();
    fails(
        &init(&src, &url, &["--mode", "native"]),
        1,
        &["table \"w\"", "row is too big"],
    );
}

/// JSONB mode folds the 1,600 columns into one document.
#[test]
fn table_of_1600_columns_jsonb() {
    let (_dir, src) = wide_sqlite(1600);
    let (url, db) = fresh_db();
    run_ok(&init(&src, &url, &[]));
    assert_eq!(psql(&db, "SELECT data->>'c1599' FROM w"), "1599");
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM jsonb_object_keys((SELECT data FROM w))"
        ),
        "1600"
    );
}

/// A 64 MB text value (not 1 GB, to keep CI fast) copies byte for byte.
#[test]
fn large_text_value_copies() {
    let dir = tempdir();
    let p = dir.path().join("big.db");
    let c = Connection::open(&p).unwrap();
    c.execute_batch("CREATE TABLE big (id INTEGER PRIMARY KEY, s TEXT)")
        .unwrap();
    c.execute("INSERT INTO big VALUES (1, ?1)", [&"x".repeat(64 << 20)])
        .unwrap();
    drop(c);
    let (url, db) = fresh_db();
    let src = p.display().to_string();
    run_ok(&init(&src, &url, &["--mode", "native"]));
    assert_eq!(
        psql(&db, "SELECT length(s) FROM big"),
        (64u64 << 20).to_string()
    );
}

/// SIGINT while copying: exit 130, and a rerun completes with exact counts.
#[test]
fn sigint_during_a_sqlite_init_then_rerun() {
    let dir = tempdir();
    let p = dir.path().join("many.db");
    let c = Connection::open(&p).unwrap();
    c.execute_batch(
        "CREATE TABLE m (id INTEGER PRIMARY KEY, s TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000)
         INSERT INTO m SELECT i, printf('row %d padding padding padding', i) FROM n;",
    )
    .unwrap();
    drop(c);
    let (url, db) = fresh_db();
    let src = p.display().to_string();
    let args = init(&src, &url, &["--partition-rows", "50000", "--jobs", "1"]);
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = cli()
        .args(&args)
        .stdout(std::process::Stdio::from(log.reopen().unwrap()))
        .stderr(std::process::Stdio::from(log.reopen().unwrap()))
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let copied = psql(
            &db,
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'COPY%'",
        );
        if copied != "0" {
            break;
        }
        assert!(started.elapsed().as_secs() < 60, "copy never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before SIGINT"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let printed = std::fs::read_to_string(log.path()).unwrap();
    assert_eq!(status.code(), Some(130), "{printed}");
    assert_clean(&[&printed]);
    run_ok(&args);
    assert_eq!(
        psql(&db, "SELECT count(*), count(DISTINCT id) FROM m"),
        "2000000|2000000"
    );
    let _ = output;
}
