//! Many small tables in many schemas: planning, connections and post-data steps scale.

use crate::pg_pair::{assert_same_data, fresh_source_db, fresh_target_db, init_ok, script};

#[test]
fn many_tables() {
    let (src, _) = fresh_source_db();
    script(
        &src,
        "DO $$ BEGIN
           FOR s IN 1..5 LOOP
             EXECUTE format('CREATE SCHEMA s%s', s);
             FOR t IN 1..80 LOOP
               EXECUTE format('CREATE TABLE s%s.t%s (id int PRIMARY KEY, v text)', s, t);
               EXECUTE format('CREATE INDEX ON s%s.t%s (v)', s, t);
               EXECUTE format('INSERT INTO s%s.t%s SELECT g, md5(g::text) FROM generate_series(1, %s) g',
                              s, t, 1 + (s * t) % 50);
             END LOOP;
           END LOOP;
         END $$;",
    );
    let (dst, _) = fresh_target_db();
    let started = std::time::Instant::now();
    init_ok(&src, &dst, &[]);
    let took = started.elapsed();
    let digests = assert_same_data(&src, &dst);
    assert_eq!(digests.len(), 400);
    eprintln!("many tables: 400 tables in {took:?}");
    assert!(took.as_secs() < 90, "400 small tables took {took:?}");
}
