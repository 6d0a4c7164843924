//! Resuming after the source changed: the killed run finished some tables under its snapshot;
//! the resumed run reads under a new one. As documented (README-PostgreSQL.md, "Resume after a
//! crash"), finished tables are kept and the rest is copied at the new instant — never
//! silently: the resumed run says which tables come from the earlier instant.

use crate::harness::cli;
use crate::pg_pair::{all_digests, fresh_source_db, fresh_target_db, init, script, sql};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn resume_after_the_source_changed() {
    let (src, _) = fresh_source_db();
    script(
        &src,
        "CREATE TABLE first_big (id int PRIMARY KEY, v text);
         INSERT INTO first_big SELECT g, md5(g::text) FROM generate_series(1, 100000) g;
         CREATE TABLE second (id int PRIMARY KEY, v text);
         INSERT INTO second SELECT g, md5(g::text) FROM generate_series(1, 60000) g;
         ANALYZE;",
    );
    let (dst, _) = fresh_target_db();
    let flags = ["--jobs", "1", "--split-tables-larger-than", "1MB"];
    let mut args = vec![
        "init",
        "--source",
        &src,
        "--target",
        &dst,
        "--no-sync",
        "-y",
        "-v",
    ];
    args.extend_from_slice(&flags);
    let mut child = cli()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    let mut killed = false;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        // Once one table is whole and the other has started, kill.
        if log.contains("table copied") && line.contains("partition committed") && !killed {
            child.kill().unwrap();
            killed = true;
        }
    }
    child.wait().unwrap();
    assert!(
        killed,
        "never saw one table finished and the next started:\n{log}"
    );

    // Both tables change on the source.
    let before = all_digests(&src);
    sql(&src, "UPDATE first_big SET v = 'changed' WHERE id <= 100");
    sql(&src, "UPDATE second SET v = 'changed' WHERE id <= 100");
    let after = all_digests(&src);

    let (code, out, err) = init(&src, &dst, &flags);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let said = format!("{out}{err}");
    assert!(
        said.contains("resuming: public.first_big finished by the interrupted run is kept"),
        "the resumed run did not say which table is from the earlier instant:\n{said}"
    );
    let target = all_digests(&dst);
    assert_eq!(target["public.first_big"], before["public.first_big"]);
    assert_eq!(target["public.second"], after["public.second"]);
}
