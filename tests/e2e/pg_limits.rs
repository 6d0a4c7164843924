//! A target that runs out of room during a PostgreSQL → PostgreSQL copy. A real full disk
//! needs a small filesystem to put a tablespace on, which a test cannot mount; instead the
//! target database gets a tiny `temp_file_limit`, which the primary-key build (a sort spilling
//! to temporary files) exceeds: SQLSTATE 53400. The error names the table and the fix, and once
//! the limit is lifted a rerun resumes and completes exactly. (The disk-full hint, SQLSTATE
//! 53100, is the same code path: unit test `resource_errors_say_what_to_do`.)

use crate::bad_input_suite::assert_clean;
use crate::pg_pair::{
    assert_same_data, fresh_source_db, fresh_target_db, has_state_schema, init, script, target_psql,
};

#[test]
fn temp_file_limit_names_the_table_and_the_fix_then_a_rerun_resumes() {
    let (src, _) = fresh_source_db();
    script(
        &src,
        "CREATE TABLE big (id bigint PRIMARY KEY, s text);
         INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 300000) g;
         CREATE TABLE small (id int PRIMARY KEY);
         INSERT INTO small SELECT generate_series(1, 10);",
    );
    let (dst, db) = fresh_target_db();
    // 300,000 keys sort in ~10 MB: over 1 MB of maintenance_work_mem they spill to temporary
    // files, and 64 kB of those is all the database allows.
    target_psql(
        "postgres",
        &format!(
            "ALTER DATABASE {db} SET temp_file_limit = '64kB';
             ALTER DATABASE {db} SET maintenance_work_mem = '1MB';"
        ),
    );
    let (code, out, err) = init(&src, &dst, &[]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert_clean(&[&out, &err]);
    for words in [
        "on public.big",
        "temporary file size exceeds temp_file_limit",
        "a server limit was reached",
        "raise it",
        "resumes where it stopped",
    ] {
        assert!(err.contains(words), "missing `{words}` in:\n{err}");
    }
    assert!(has_state_schema(&dst), "the resume state is gone");

    target_psql(
        "postgres",
        &format!("ALTER DATABASE {db} RESET temp_file_limit"),
    );
    let (code, out, err) = init(&src, &dst, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("resuming an interrupted run"), "{out}");
    let digests = assert_same_data(&src, &dst);
    assert_eq!(digests["public.big"].0, 300_000);
    assert_eq!(digests["public.small"].0, 10);
    assert_eq!(
        target_psql(
            &db,
            "SELECT count(*) FROM pg_constraint WHERE conname = 'big_pkey'"
        ),
        "1"
    );
    assert!(!has_state_schema(&dst), "the resume state was left behind");
}
