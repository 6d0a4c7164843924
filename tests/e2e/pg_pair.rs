//! Source and target on two different PostgreSQL clusters, for PostgreSQL → PostgreSQL runs.
//!
//! The source is the binary's shared cluster (`harness`); targets live on a second cluster,
//! started on first use and stopped by PID when the binary exits. Its OID counter is pushed
//! well ahead on start, so user types (enums, composites, domains, arrays of them) get OIDs that
//! differ from the source's: a copy that leaks source OIDs into binary COPY fails here.

pub use crate::harness::sql;
use crate::harness::{cluster_for_binary, fresh_db, run};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::OnceLock;

/// Port of the target cluster shared by the PostgreSQL → PostgreSQL tests.
pub fn target_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let port = cluster_for_binary("target");
        // ~4,000 OIDs consumed and released: the target's type OIDs no longer match the source's.
        sql(
            &format!("postgresql://postgres@127.0.0.1:{port}/postgres"),
            "DO $$ BEGIN FOR i IN 1..1000 LOOP \
               EXECUTE format('CREATE TYPE oid_shift_%s AS ENUM (''x'')', i); \
               EXECUTE format('DROP TYPE oid_shift_%s', i); \
             END LOOP; END $$",
        );
        port
    })
}

/// URL of database `db` on the target cluster.
pub fn target_url(db: &str) -> String {
    format!("postgresql://postgres@127.0.0.1:{}/{db}", target_port())
}

/// Run a multi-statement SQL script (psql -f -) against any URL.
pub fn script(url: &str, script: &str) {
    use std::io::Write;
    let mut child = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"])
        .env_remove("PGPASSWORD")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "psql script on {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run SQL on target database `db`.
pub fn target_psql(db: &str, query: &str) -> String {
    sql(&target_url(db), query)
}

/// A fresh, empty database with a random name on the target cluster: (url, name).
pub fn fresh_target_db() -> (String, String) {
    let name = format!("t_{:016x}", rand::random::<u64>());
    target_psql("postgres", &format!("CREATE DATABASE {name}"));
    (target_url(&name), name)
}

/// A fresh, empty source database on the shared cluster: (url, name).
pub fn fresh_source_db() -> (String, String) {
    fresh_db()
}

/// `init` from PostgreSQL source to target, without sync and without asking; returns
/// (exit code, stdout, stderr).
pub fn init(source: &str, target: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "init",
        "--source",
        source,
        "--target",
        target,
        "--no-sync",
        "-y",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// `init` that must succeed; returns stdout.
pub fn init_ok(source: &str, target: &str, extra: &[&str]) -> String {
    let (code, out, err) = init(source, target, extra);
    assert_eq!(
        code, 0,
        "init {extra:?} from {source} to {target} failed\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

/// Row count and an order-independent content digest of `table` (a SQL name such as
/// `schema.table` or `public."My Table"`, rows of inheritance children included): the sum of
/// the first 60 bits of each row's md5 — equal multisets of rows give equal digests, a
/// duplicated or missing row changes both figures. Unlike an ordered `string_agg` this needs
/// no sort, so it stays cheap on a million rows.
pub fn table_digest(url: &str, table: &str) -> (i64, String) {
    digest_of(url, table)
}

fn digest_of(url: &str, from: &str) -> (i64, String) {
    let out = sql(
        url,
        &format!(
            "SELECT count(*) || ' ' || coalesce(sum(('x' || substr(md5(ROW(t.*)::text), 1, 15))::bit(60)::bigint), 0) \
             FROM {from} t"
        ),
    );
    let (n, d) = out
        .split_once(' ')
        .unwrap_or_else(|| panic!("digest of {from}: {out}"));
    (n.parse().unwrap(), d.to_string())
}

/// Every user table and materialized view (`schema.name`, quoted as needed), partitions and
/// inheritance children included, the tool's own state schema excluded.
pub fn relations(url: &str) -> Vec<String> {
    let out = sql(
        url,
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname NOT IN \
           ('pg_catalog', 'information_schema', 'seren_replicator') \
           AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
         ORDER BY 1",
    );
    out.lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Digest of every relation's own rows (`FROM ONLY`: a parent's digest does not include its
/// children's rows, partitioned parents hold none), keyed by name.
pub fn all_digests(url: &str) -> BTreeMap<String, (i64, String)> {
    // One session for all of them (a temporary function runs the dynamic queries): a psql
    // process per table would take minutes on hundreds of tables.
    let out = sql(
        url,
        "CREATE FUNCTION pg_temp.digest(rel regclass) RETURNS text LANGUAGE plpgsql AS $f$
         DECLARE d text;
         BEGIN
           EXECUTE format('SELECT count(*) || '' '' || coalesce(sum((''x'' || \
             substr(md5(ROW(t.*)::text), 1, 15))::bit(60)::bigint), 0) FROM ONLY %s t', rel) INTO d;
           RETURN d;
         END $f$;
         SELECT format('%I.%I', n.nspname, c.relname) || E'\\t' ||
           CASE WHEN c.relkind = 'm' AND NOT c.relispopulated
             THEN '-1 materialized view not populated' ELSE pg_temp.digest(c.oid) END
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname NOT IN
           ('pg_catalog', 'information_schema', 'seren_replicator')
           AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
         ORDER BY 1",
    );
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, d) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("digest line {l}"));
            let (n, d) = d
                .split_once(' ')
                .unwrap_or_else(|| panic!("digest line {l}"));
            (name.to_string(), (n.parse().unwrap(), d.to_string()))
        })
        .collect()
}

/// Assert two databases hold the same relations with the same rows; returns the digests.
pub fn assert_same_data(source: &str, target: &str) -> BTreeMap<String, (i64, String)> {
    let s = all_digests(source);
    let t = all_digests(target);
    let mut diffs = Vec::new();
    for (name, d) in &s {
        match t.get(name) {
            None => diffs.push(format!("{name}: missing on target")),
            Some(td) if td != d => diffs.push(format!(
                "{name}: source {} rows / {}, target {} rows / {}",
                d.0, d.1, td.0, td.1
            )),
            _ => {}
        }
    }
    for name in t.keys() {
        if !s.contains_key(name) {
            diffs.push(format!("{name}: on target only"));
        }
    }
    assert!(diffs.is_empty(), "data differs:\n  {}", diffs.join("\n  "));
    s
}

/// `schema.sequence=last_value` for every sequence (identity and serial ones included).
pub fn sequences(url: &str) -> String {
    sql(
        url,
        "SELECT coalesce(string_agg(s, E'\\n' ORDER BY s), '') FROM ( \
           SELECT format('%I.%I', schemaname, sequencename) || '=' || \
             coalesce(last_value::text, 'not called') AS s \
           FROM pg_sequences WHERE schemaname <> 'seren_replicator') q",
    )
}

/// `pg_dump --schema-only --no-owner`, without the `\restrict` key lines, comments and blank
/// lines (which differ between two dumps of the same schema).
pub fn schema_dump(url: &str) -> String {
    let out = Command::new("pg_dump")
        .args(["--schema-only", "--no-owner", "-d", url])
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_dump {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| {
            !l.starts_with("\\restrict")
                && !l.starts_with("\\unrestrict")
                && !l.starts_with("--")
                && !l.trim().is_empty()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Assert both databases dump the same schema; on a difference, show the lines each side has
/// that the other lacks.
pub fn assert_same_schema(source: &str, target: &str) {
    let s = schema_dump(source);
    let t = schema_dump(target);
    if s == t {
        return;
    }
    let sl: Vec<&str> = s.lines().collect();
    let tl: Vec<&str> = t.lines().collect();
    let only_s: Vec<&str> = sl.iter().filter(|l| !tl.contains(l)).copied().collect();
    let only_t: Vec<&str> = tl.iter().filter(|l| !sl.contains(l)).copied().collect();
    panic!(
        "schemas differ\n--- source only ({}):\n{}\n--- target only ({}):\n{}\n{}",
        only_s.len(),
        only_s.join("\n"),
        only_t.len(),
        only_t.join("\n"),
        if only_s.is_empty() && only_t.is_empty() {
            "(same lines, different order)"
        } else {
            ""
        }
    );
}

/// Whether the tool's resume-state schema exists in the database.
pub fn has_state_schema(url: &str) -> bool {
    sql(
        url,
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'seren_replicator'",
    ) != "0"
}

/// The digest covers every column, even in a table with a column named like the row alias,
/// and tells a duplicated row from a changed one.
#[test]
fn digests_see_every_column() {
    let setup = "CREATE TABLE x (id int, t text, n numeric);
                 INSERT INTO x VALUES (1, 'a', 1.5), (2, NULL, 2)";
    let (a, _) = fresh_source_db();
    let (b, _) = fresh_source_db();
    script(&a, setup);
    script(&b, setup);
    assert_eq!(all_digests(&a), all_digests(&b));
    sql(&b, "UPDATE x SET n = 2.0 WHERE id = 2");
    assert_ne!(all_digests(&a), all_digests(&b), "a changed numeric scale");
    sql(
        &b,
        "UPDATE x SET n = 2 WHERE id = 2; INSERT INTO x VALUES (1, 'a', 1.5)",
    );
    assert_ne!(all_digests(&a)["public.x"].0, all_digests(&b)["public.x"].0);
    assert_ne!(table_digest(&a, "x"), table_digest(&b, "x"));
}
