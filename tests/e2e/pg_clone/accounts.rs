//! Ordinary accounts on both sides, as on managed services: the source read through a role
//! with `pg_read_all_data`, the target written by the non-superuser owner of its database.

use crate::pg_pair::{
    assert_same_data, assert_same_schema, fresh_source_db, fresh_target_db, init_ok, script, sql,
    target_url,
};

#[test]
fn non_superuser_source_and_target() {
    let (src_admin, _) = fresh_source_db();
    script(
        &src_admin,
        "CREATE EXTENSION citext;
         CREATE TYPE mood AS ENUM ('sad', 'ok');
         CREATE TABLE people (id serial PRIMARY KEY, email citext UNIQUE, mood mood);
         CREATE TABLE visits (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                              person int NOT NULL REFERENCES people, at timestamptz NOT NULL);
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN NEW.at := now(); RETURN NEW; END $$;
         INSERT INTO people (email, mood) SELECT 'p' || g || '@x.org', 'ok' FROM generate_series(1, 200) g;
         INSERT INTO visits (person, at) SELECT 1 + g % 200, '2024-01-01'::timestamptz + g * interval '1 minute'
           FROM generate_series(1, 5000) g;
         CREATE TRIGGER visits_touch BEFORE INSERT ON visits FOR EACH ROW EXECUTE FUNCTION touch();
         CREATE VIEW busy AS SELECT person, count(*) FROM visits GROUP BY person;",
    );
    let suffix = format!("{:08x}", rand::random::<u32>());
    let reader = format!("reader_{suffix}");
    sql(
        &src_admin,
        &format!("CREATE ROLE {reader} LOGIN; GRANT pg_read_all_data TO {reader};"),
    );
    let src = src_admin.replace("postgres@", &format!("{reader}@"));

    let owner = format!("owner_{suffix}");
    let (dst_admin, dst_db) = fresh_target_db();
    sql(
        &target_url("postgres"),
        &format!("CREATE ROLE {owner} LOGIN; ALTER DATABASE {dst_db} OWNER TO {owner};"),
    );
    sql(&dst_admin, &format!("ALTER SCHEMA public OWNER TO {owner}"));
    let dst = dst_admin.replace("postgres@", &format!("{owner}@"));

    init_ok(&src, &dst, &["--no-owner"]);
    assert_same_data(&src_admin, &dst_admin);
    assert_same_schema(&src_admin, &dst_admin);
    assert_eq!(
        sql(
            &dst_admin,
            "SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',') FROM pg_class \
             WHERE relnamespace = 'public'::regnamespace"
        ),
        owner,
        "objects belong to the target user"
    );
}
