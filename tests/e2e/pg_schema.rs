//! The PostgreSQL schema phases (`seren_postgres::schema`): pg_dump → pre-data through psql →
//! post-data entry by entry, against the shared throwaway cluster.

use crate::harness::{fresh_db, pg_port, psql};
use crate::pg_pair::{target_psql, target_url};
use pipeline::{ErrorKind, Side};
use seren_postgres::schema::{copy_roles, run_sql, DumpOptions, PostDataEntry, SchemaDump};
use seren_postgres::tools::ClientTools;
use seren_postgres::PgTarget;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// Every kind of object the schema phases must carry, with names that need quoting and names
/// that imitate pg_restore's own entry headers.
const SOURCE_DDL: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.n := NEW.n + 0; RETURN NEW; END$$;
CREATE SEQUENCE ticket_seq;
CREATE TABLE "My ""Odd"" Table" (
    id int PRIMARY KEY,
    "a col" text UNIQUE,
    m mood,
    p posint CHECK (p < 100),
    n bigint DEFAULT nextval('ticket_seq')
);
CREATE TABLE child (id int PRIMARY KEY, parent int REFERENCES "My ""Odd"" Table" (id), note text);
CREATE INDEX "idx; Type: X" ON child (parent);
COMMENT ON INDEX "idx; Type: X" IS E'tricky;\n--\n-- TOC entry 1 (class 0 OID 0)\n-- Name: x; Type: INDEX; Schema: -; Owner: -\n--\n';
CREATE INDEX "line
break; Type: Y" ON child (note);
CREATE TRIGGER touch_it BEFORE INSERT ON "My ""Odd"" Table" FOR EACH ROW EXECUTE FUNCTION touch();
CREATE RULE no_delete AS ON DELETE TO child DO INSTEAD NOTHING;
CREATE TABLE measurements (id int, k int, v text) PARTITION BY RANGE (k);
CREATE TABLE measurements_a PARTITION OF measurements FOR VALUES FROM (0) TO (10);
CREATE TABLE measurements_b PARTITION OF measurements FOR VALUES FROM (10) TO (20);
CREATE INDEX measurements_k ON measurements (k);
CREATE VIEW child_view AS SELECT id, note FROM child;
CREATE SCHEMA "Sp ace";
CREATE TABLE "Sp ace"."t t" ("x y" int, label text);
CREATE UNIQUE INDEX "i i" ON "Sp ace"."t t" ("x y");
ALTER TABLE "Sp ace"."t t" ADD CONSTRAINT "t t; Type: Z" UNIQUE (label);
CREATE TABLE "Sp ace"."ünï" (a int PRIMARY KEY);
CREATE INDEX "ÄÖ" ON "Sp ace"."ünï" (a DESC);
ALTER TABLE "Sp ace"."t t" ADD CONSTRAINT fk_uni FOREIGN KEY ("x y") REFERENCES "Sp ace"."ünï" (a);
CREATE SCHEMA seren_replicator;
CREATE TABLE seren_replicator.state (id int PRIMARY KEY);
"#;

fn target(db: &str) -> PgTarget {
    PgTarget::parse(
        &format!("postgresql://postgres@127.0.0.1:{}/{db}", pg_port()),
        Side::Target,
    )
    .unwrap()
}

fn source(db: &str) -> PgTarget {
    PgTarget::parse(
        &format!("postgresql://postgres@127.0.0.1:{}/{db}", pg_port()),
        Side::Source,
    )
    .unwrap()
}

fn tools() -> ClientTools {
    ClientTools::find(15).expect("PostgreSQL client tools")
}

/// `pg_dump --schema-only` of `db` without comment lines, blank lines and `\restrict` lines.
fn schema_of(tools: &ClientTools, db: &str) -> String {
    let out = Command::new(tools.bin_dir.join("pg_dump"))
        .args(["--schema-only", "-N", "seren_replicator", "-h", "127.0.0.1"])
        .args(["-p", &pg_port().to_string(), "-U", "postgres", db])
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| {
            !l.starts_with("--")
                && !l.starts_with("\\restrict")
                && !l.starts_with("\\unrestrict")
                && !l.trim().is_empty()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn entry<'a>(entries: &'a [PostDataEntry], kind: &str, tag: &str) -> &'a PostDataEntry {
    entries
        .iter()
        .find(|e| e.kind == kind && e.tag == tag)
        .unwrap_or_else(|| panic!("no {kind} entry `{tag}` in {entries:#?}"))
}

fn table(schema: &str, name: &str) -> Option<(String, String)> {
    Some((schema.to_string(), name.to_string()))
}

#[tokio::test]
async fn schema_round_trips_through_pre_and_post_data() {
    let tools = tools();
    let (_, src) = fresh_db();
    let (_, dst) = fresh_db();
    psql(&src, SOURCE_DDL);

    let opts = DumpOptions {
        exclude_schemas: vec!["seren_replicator".into()],
        ..DumpOptions::default()
    };
    let dump = SchemaDump::dump(&tools, &source(&src), &opts)
        .await
        .unwrap();
    let pre = dump.pre_data_sql().await.unwrap();
    assert!(
        !pre.contains("\\restrict") && !pre.contains("INDEX"),
        "{pre}"
    );
    run_sql(&tools, &target(&dst), &pre, true).await.unwrap();

    let post = dump.post_data().await.unwrap();
    let e = &post.entries;
    assert!(!post.preamble.contains('\\'));
    // The right table for every entry that has one, resolved from the catalog.
    let odd = "My \"Odd\" Table";
    assert_eq!(
        entry(e, "INDEX", "line break; Type: Y").table,
        table("public", "child")
    );
    assert_eq!(
        entry(e, "INDEX", "idx; Type: X").table,
        table("public", "child")
    );
    assert_eq!(
        entry(e, "CONSTRAINT", &format!("{odd} {odd}_pkey")).table,
        table("public", odd)
    );
    assert_eq!(
        entry(e, "CONSTRAINT", &format!("{odd} {odd}_a col_key")).table,
        table("public", odd)
    );
    assert_eq!(
        entry(e, "FK CONSTRAINT", "child child_parent_fkey").table,
        table("public", "child")
    );
    assert_eq!(
        entry(e, "FK CONSTRAINT", "t t fk_uni").table,
        table("Sp ace", "t t")
    );
    assert_eq!(
        entry(e, "TRIGGER", &format!("{odd} touch_it")).table,
        table("public", odd)
    );
    assert_eq!(
        entry(e, "RULE", "child no_delete").table,
        table("public", "child")
    );
    assert_eq!(
        entry(e, "INDEX", "measurements_k").table,
        table("public", "measurements")
    );
    assert_eq!(
        entry(e, "INDEX ATTACH", "measurements_a_k_idx").table,
        table("public", "measurements_a")
    );
    assert_eq!(entry(e, "INDEX", "i i").table, table("Sp ace", "t t"));
    let odd_constraint = entry(e, "CONSTRAINT", "t t t t; Type: Z");
    assert_eq!(odd_constraint.table, table("Sp ace", "t t"));
    assert_eq!(odd_constraint.schema, "Sp ace");
    assert_eq!(entry(e, "INDEX", "ÄÖ").table, table("Sp ace", "ünï"));
    let comment = entry(e, "COMMENT", "INDEX \"idx; Type: X\"");
    assert_eq!(comment.table, None);
    assert!(comment.sql.contains("-- TOC entry 1 (class 0 OID 0)"));
    for x in e {
        if matches!(
            x.kind.as_str(),
            "INDEX" | "CONSTRAINT" | "FK CONSTRAINT" | "TRIGGER" | "RULE" | "INDEX ATTACH"
        ) {
            assert!(x.table.is_some(), "no table for {x:?}");
        }
        assert!(x.schema != "seren_replicator" && !x.sql.contains("seren_replicator"));
    }
    let ids: std::collections::HashSet<u32> = e.iter().map(|x| x.dump_id).collect();
    assert_eq!(ids.len(), e.len());

    // Each entry runs on its own session after the preamble, in restore order.
    let dst_target = target(&dst);
    for x in e {
        let client = dst_target.connect().await.unwrap();
        client
            .batch_execute(&format!("{}\n{}", post.preamble, x.sql))
            .await
            .unwrap_or_else(|err| panic!("{x:?}: {err:?}"));
    }
    assert_eq!(schema_of(&tools, &src), schema_of(&tools, &dst));
    assert_eq!(
        psql(
            &dst,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'seren_replicator'"
        ),
        "0"
    );
}

#[tokio::test]
async fn table_selection_is_literal() {
    let tools = tools();
    let (_, src) = fresh_db();
    let (_, dst) = fresh_db();
    psql(
        &src,
        r#"CREATE SCHEMA "My Schema";
           CREATE TABLE "My Schema"."T*" (id int PRIMARY KEY);
           CREATE TABLE "My Schema"."Tx" (id int PRIMARY KEY);
           CREATE TABLE "My Schema"."with space" (id int PRIMARY KEY, "a b" text);
           CREATE INDEX "a b idx" ON "My Schema"."with space" ("a b");
           CREATE TABLE public.other (id int PRIMARY KEY);"#,
    );
    let opts = DumpOptions {
        include_tables: vec![
            ("My Schema".into(), "T*".into()),
            ("My Schema".into(), "with space".into()),
        ],
        no_owner: true,
        no_privileges: true,
        ..DumpOptions::default()
    };
    let dump = SchemaDump::dump(&tools, &source(&src), &opts)
        .await
        .unwrap();
    let pre = dump.pre_data_sql().await.unwrap();
    assert!(pre.contains(r#""My Schema"."T*""#), "{pre}");
    assert!(pre.contains(r#""My Schema"."with space""#), "{pre}");
    assert!(!pre.contains("Tx") && !pre.contains("other") && !pre.contains("OWNER TO"));
    psql(&dst, r#"CREATE SCHEMA "My Schema""#);
    run_sql(&tools, &target(&dst), &pre, true).await.unwrap();
    let post = dump.post_data().await.unwrap();
    let tags: Vec<(&str, &str)> = post
        .entries
        .iter()
        .map(|e| (e.kind.as_str(), e.tag.as_str()))
        .collect();
    assert_eq!(
        tags.len(),
        3,
        "two primary keys and one index expected: {tags:?}"
    );
    let idx = entry(&post.entries, "INDEX", "a b idx");
    assert_eq!(idx.table, table("My Schema", "with space"));
    for e in &post.entries {
        run_sql(
            &tools,
            &target(&dst),
            &format!("{}\n{}", post.preamble, e.sql),
            false,
        )
        .await
        .unwrap();
    }
    assert_eq!(
        psql(
            &dst,
            r#"SELECT count(*) FROM pg_indexes WHERE schemaname = 'My Schema'"#
        ),
        "3"
    );

    // Excluding instead of including.
    let opts = DumpOptions {
        exclude_tables: vec![("My Schema".into(), "T*".into())],
        ..DumpOptions::default()
    };
    let dump = SchemaDump::dump(&tools, &source(&src), &opts)
        .await
        .unwrap();
    let pre = dump.pre_data_sql().await.unwrap();
    assert!(!pre.contains(r#""T*""#) && pre.contains(r#""Tx""#), "{pre}");

    // A table that does not exist is an error, not an empty dump.
    let opts = DumpOptions {
        include_tables: vec![("My Schema".into(), "missing".into())],
        ..DumpOptions::default()
    };
    let err = SchemaDump::dump(&tools, &source(&src), &opts)
        .await
        .unwrap_err();
    assert!(err.message().contains("missing"), "{}", err.message());
}

/// With an exported snapshot, the dump and the table lookup see the schema as of the snapshot.
#[tokio::test]
async fn dump_follows_the_snapshot() {
    let tools = tools();
    let (_, src) = fresh_db();
    psql(&src, "CREATE TABLE a (id int PRIMARY KEY, v int)");
    let from = source(&src);
    let holder = from.connect().await.unwrap();
    holder
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    let snapshot: String = holder
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .unwrap()
        .get(0);
    psql(
        &src,
        "CREATE INDEX a_v ON a (v); CREATE TABLE b (id int PRIMARY KEY)",
    );
    let opts = DumpOptions {
        snapshot: Some(snapshot),
        ..DumpOptions::default()
    };
    let dump = SchemaDump::dump(&tools, &from, &opts).await.unwrap();
    let post = dump.post_data().await.unwrap();
    let tags: Vec<&str> = post.entries.iter().map(|e| e.tag.as_str()).collect();
    assert_eq!(tags, ["a a_pkey"]);
    assert_eq!(post.entries[0].table, table("public", "a"));
    assert!(!dump.pre_data_sql().await.unwrap().contains("public.b"));
    holder.batch_execute("COMMIT").await.unwrap();
}

#[tokio::test]
async fn run_sql_reports_psql_errors_and_rolls_back() {
    let tools = tools();
    let (_, db) = fresh_db();
    let t = target(&db);
    let err = run_sql(&tools, &t, "CREATE TABLE a (x int);\nSELECT nope;", true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Query);
    assert!(err.message().contains("nope"), "{}", err.message());
    assert!(err.message().contains(&t.display()), "{}", err.message());
    assert_eq!(
        psql(&db, "SELECT count(*) FROM pg_class WHERE relname = 'a'"),
        "0"
    );
    let err = run_sql(&tools, &t, "SELECT 1;\n\\! echo hi\n", false)
        .await
        .unwrap_err();
    assert!(err.message().contains("meta-command"), "{}", err.message());
}

#[test]
fn missing_client_tools_give_the_fix() {
    let err = ClientTools::find(99).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("version 99"), "{}", err.message());
    assert!(
        err.message().contains(
            "install postgresql-client-99: apt-get install postgresql-client-99, or put its bin \
             directory first in PATH"
        ),
        "{}",
        err.message()
    );
}

/// A role that must authenticate with SCRAM: the password reaches psql through the private
/// password file only.
#[tokio::test]
async fn passwords_go_through_a_private_password_file() {
    let tools = tools();
    let (_, db) = fresh_db();
    let user = format!("pw_{:08x}", rand::random::<u32>());
    let password = "s3cr:et\\pa ss'word";
    psql(
        "postgres",
        &format!(
            "SET password_encryption = 'scram-sha-256'; CREATE ROLE {user} LOGIN PASSWORD '{}'; \
             GRANT ALL ON DATABASE {db} TO {user}",
            password.replace('\'', "''")
        ),
    );
    psql(&db, &format!("GRANT CREATE ON SCHEMA public TO {user}"));
    let hba = psql("postgres", "SHOW hba_file");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host all {user} 127.0.0.1/32 scram-sha-256\n{old}"),
    )
    .unwrap();
    psql("postgres", "SELECT pg_reload_conf()");

    let url = |pw: &str| {
        format!(
            "host=127.0.0.1 port={} user={user} dbname={db} password='{}'",
            pg_port(),
            pw.replace('\\', "\\\\").replace('\'', "\\'")
        )
    };
    let t = PgTarget::parse(&url(password), Side::Target).unwrap();
    let conn = t.child_conn(None).unwrap();
    assert!(!conn.conninfo().contains("s3cr"), "{}", conn.conninfo());
    let mode = std::fs::metadata(conn.passfile())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(conn.passfile().parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    drop(conn);

    run_sql(&tools, &t, "CREATE TABLE by_scram (x int);", false)
        .await
        .unwrap();
    assert_eq!(
        psql(
            &db,
            "SELECT tableowner FROM pg_tables WHERE tablename = 'by_scram'"
        ),
        user
    );
    let wrong = PgTarget::parse(&url("wrong"), Side::Target).unwrap();
    let err = run_sql(&tools, &wrong, "SELECT 1;", false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.message());
    assert!(!err.message().contains("wrong"), "{}", err.message());

    let now = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        now.replacen(
            &format!("host all {user} 127.0.0.1/32 scram-sha-256\n"),
            "",
            1,
        ),
    )
    .unwrap();
    psql("postgres", "SELECT pg_reload_conf()");
}

/// Roles go from the shared cluster to the second one (`pg_pair`'s target cluster): new roles
/// arrive with their attributes, existing ones are left exactly as they are.
#[tokio::test]
async fn roles_are_copied_and_existing_ones_left_alone() {
    let tools = tools();
    let (_, db) = fresh_db();
    let role = format!("Reader {:08x}", rand::random::<u32>());
    psql(
        "postgres",
        &format!(
            "CREATE ROLE \"{role}\" NOLOGIN CONNECTION LIMIT 7; COMMENT ON ROLE \"{role}\" IS 'r'"
        ),
    );
    let to = PgTarget::parse(&target_url("postgres"), Side::Target).unwrap();
    let on_target = |q: &str| target_psql("postgres", q);
    let attrs = format!(
        "SELECT rolconnlimit, rolcanlogin, shobj_description(oid, 'pg_authid') \
         FROM pg_roles WHERE rolname = '{role}'"
    );

    let warnings = copy_roles(&tools, &source(&db), &to).await.unwrap();
    assert_eq!(on_target(&attrs), "7|f|r");
    // `postgres` exists on both sides: skipped, with one warning.
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("\"postgres\" already exists")),
        "{warnings:?}"
    );
    assert!(!warnings.iter().any(|w| w.contains(&role)), "{warnings:?}");

    // Now the role exists on the target: changes made there survive a second copy.
    on_target(&format!("ALTER ROLE \"{role}\" CONNECTION LIMIT 3"));
    let warnings = copy_roles(&tools, &source(&db), &to).await.unwrap();
    assert_eq!(on_target(&attrs), "3|f|r");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&role) && w.contains("left unchanged")),
        "{warnings:?}"
    );
    psql("postgres", &format!("DROP ROLE \"{role}\""));
    on_target(&format!("DROP ROLE \"{role}\""));
}
