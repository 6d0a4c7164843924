//! Crash and resume: `init` killed with SIGKILL at points spread over its data phase, then run
//! again with the same flags, must finish with every table equal to the source — nothing lost,
//! nothing copied twice. A rerun with a different selection while resume state exists is
//! refused; `--no-resume` starts over.

use crate::harness::{cli, tempdir};
use crate::pg_pair::{
    assert_same_data, fresh_source_db, fresh_target_db, has_state_schema, init, init_ok, script,
    sql,
};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// About 225k rows, 5 tables (one partitioned, one without a primary key), ~22 MB: split at
/// 1 MB, some 25 block ranges.
const SOURCE: &str = r#"
CREATE TABLE big1 (id bigint PRIMARY KEY, s text, n numeric, ts timestamptz);
INSERT INTO big1 SELECT g, md5(g::text) || repeat('y', g % 50), g / 3.0,
                        '2024-01-01'::timestamptz + g * interval '1 second'
                 FROM generate_series(1, 100000) g;
CREATE TABLE big2 (id int PRIMARY KEY, doc jsonb);
INSERT INTO big2 SELECT g, jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g % 7, 'c'))
                 FROM generate_series(1, 40000) g;
CREATE TABLE nopk (k int NOT NULL, v text);
INSERT INTO nopk SELECT g, repeat(chr(65 + g % 26), 1 + g % 40) FROM generate_series(1, 40000) g;
CREATE TABLE part (id int, region int NOT NULL, v text, PRIMARY KEY (id, region))
  PARTITION BY LIST (region);
CREATE TABLE part_1 PARTITION OF part FOR VALUES IN (1);
CREATE TABLE part_2 PARTITION OF part FOR VALUES IN (2);
INSERT INTO part SELECT g, 1 + g % 2, md5(g::text) FROM generate_series(1, 40000) g;
CREATE TABLE small (id int PRIMARY KEY, big1_id bigint REFERENCES big1, note text);
INSERT INTO small SELECT g, g * 10, 'note ' || g FROM generate_series(1, 5000) g;
CREATE INDEX big1_s ON big1 (s);
ANALYZE;
"#;

const FLAGS: &[&str] = &["--jobs", "2", "--split-tables-larger-than", "1MB"];

/// Per table: a SQL expression that is unique per row on the source.
const KEYS: &[(&str, &str)] = &[
    ("big1", "id"),
    ("big2", "id"),
    ("nopk", "k"),
    ("part", "(id, region)"),
    ("small", "id"),
];

fn assert_no_duplicates(dst: &str) {
    for (table, key) in KEYS {
        let out = sql(
            dst,
            &format!("SELECT count(*) || ' ' || count(DISTINCT {key}) FROM {table}"),
        );
        let (all, distinct) = out.split_once(' ').unwrap();
        assert_eq!(all, distinct, "{table}: duplicated rows after resume");
    }
}

/// Tables named (`table=…`) on the log lines that contain `event`, colours stripped.
fn tables_logged(log: &str, event: &str) -> BTreeSet<String> {
    let mut plain = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
        .lines()
        .filter(|l| l.contains(event))
        .filter_map(|l| l.split("table=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Deterministic jitter in [0, 1) from a seed (splitmix64).
fn jitter(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Marks a committed block range in `init -v`'s log.
const COMMITTED: &str = "partition committed";

/// Start `init -v` with FLAGS; once `after` block ranges have committed, wait `pause` and send
/// `signal`. Returns whether the signal was sent (the run had not ended) and the exit status. The
/// trigger follows progress, not the clock, so it lands in the same phase however loaded the
/// machine is.
fn signal_after(
    src: &str,
    dst: &str,
    extra: &[&str],
    after: usize,
    pause: Duration,
    signal: i32,
    log: &std::path::Path,
) -> (bool, std::process::ExitStatus) {
    let mut args = vec![
        "init",
        "--source",
        src,
        "--target",
        dst,
        "--no-sync",
        "-y",
        "-v",
    ];
    args.extend_from_slice(FLAGS);
    args.extend_from_slice(extra);
    let mut child = cli()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut file = std::fs::File::create(log).unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut committed = 0;
    let mut sent = false;
    while committed < after {
        match lines.next() {
            Some(Ok(line)) => {
                writeln!(file, "{line}").unwrap();
                if line.contains(COMMITTED) {
                    committed += 1;
                }
            }
            _ => break,
        }
    }
    if committed >= after {
        std::thread::sleep(pause);
        if child.try_wait().unwrap().is_none() {
            unsafe { libc::kill(child.id() as i32, signal) };
            sent = true;
        }
    }
    // Keep the log (and drain the pipe so the child never blocks on it).
    for line in lines.map_while(Result::ok) {
        writeln!(file, "{line}").unwrap();
    }
    let status = child.wait().unwrap();
    (sent, status)
}

#[test]
fn killed_runs_resume() {
    let (src, _) = fresh_source_db();
    script(&src, SOURCE);
    let logs = tempdir();

    // A whole run first: the reference, and the number of block ranges to spread kills over.
    let (dst, _) = fresh_target_db();
    let log = logs.path().join("whole.log");
    let started = Instant::now();
    let (_, whole) = signal_after(
        &src,
        &dst,
        &[],
        usize::MAX,
        Duration::ZERO,
        libc::SIGKILL,
        &log,
    );
    let full = started.elapsed();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(whole.success(), "the whole run failed: {whole:?}\n{text}");
    let ranges = text.matches(COMMITTED).count();
    assert!(
        ranges >= 10,
        "expected the 1 MB split to give 10+ block ranges, the log shows {ranges}:\n{text}"
    );
    assert_same_data(&src, &dst);
    eprintln!("crash test: a whole run takes {full:?}, {ranges} block ranges");

    // Seeds 1-3: SIGKILL at points spread over the data phase; seed 4: after the last range
    // committed (indexes, constraints, sequences, finishing).
    // Seed 0: during the schema phase, before any range committed.
    for seed in 0..=4u64 {
        let after = match seed {
            0 => 0,
            4 => ranges,
            _ => {
                let fraction = 0.1 + 0.25 * (seed - 1) as f64 + 0.15 * jitter(seed);
                ((ranges as f64 * fraction) as usize).max(1)
            }
        };
        let pause = if seed == 0 {
            full.mul_f64(0.05 + 0.1 * jitter(seed))
        } else {
            Duration::from_millis((jitter(seed + 100) * 200.0) as u64)
        };
        let (dst, _) = fresh_target_db();
        let log = logs.path().join(format!("seed{seed}.log"));
        let (killed, status) = signal_after(&src, &dst, &[], after, pause, libc::SIGKILL, &log);
        eprintln!(
            "crash test: seed {seed}, SIGKILL {pause:?} after range {after} of {ranges} \
             (still running: {killed})"
        );
        if !killed {
            // Finished before the kill: nothing to resume, but the copy must be whole.
            assert!(status.success(), "seed {seed}: {status:?}");
            assert_same_data(&src, &dst);
            continue;
        }
        let mut again = FLAGS.to_vec();
        again.push("-v");
        let (code, out, err) = init(&src, &dst, &again);
        assert_eq!(
            code,
            0,
            "seed {seed}: resume after a kill {pause:?} after range {after} failed\n\
             stdout:\n{out}\nstderr:\n{err}\nkilled run's log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert_same_data(&src, &dst);
        assert_no_duplicates(&dst);
        assert!(
            !has_state_schema(&dst),
            "seed {seed}: state schema left behind"
        );
        // Resuming keeps the tables the killed run had finished (a partly copied table is
        // copied again whole, under the new snapshot).
        let finished = tables_logged(&std::fs::read_to_string(&log).unwrap(), "table copied");
        let redone = tables_logged(&err, COMMITTED);
        eprintln!(
            "crash test: seed {seed}, finished before the kill {finished:?}, redone {redone:?}"
        );
        assert!(
            finished.is_disjoint(&redone),
            "seed {seed}: the resumed run copied again {:?}, which the killed run had finished",
            finished.intersection(&redone).collect::<Vec<_>>()
        );
    }

    // Ctrl-C halfway: exit 130, resume state kept. Then a different selection is refused,
    // and the message says why.
    let (dst, _) = fresh_target_db();
    let log = logs.path().join("interrupted.log");
    let (sent, status) = signal_after(
        &src,
        &dst,
        &[],
        ranges / 2,
        Duration::ZERO,
        libc::SIGINT,
        &log,
    );
    assert!(
        sent,
        "the run finished before it could be interrupted: {status:?}"
    );
    assert_eq!(
        status.code(),
        Some(130),
        "interrupted run: {status:?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        has_state_schema(&dst),
        "no resume state after an interrupted run"
    );
    let mut changed = FLAGS.to_vec();
    changed.extend_from_slice(&["--include-tables", "big1,big2"]);
    let (code, out, err) = init(&src, &dst, &changed);
    assert_ne!(
        code, 0,
        "a changed selection resumed\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(
        err.to_lowercase().contains("resume"),
        "the refusal does not explain itself (no mention of resume/--no-resume): {err}"
    );
    // --no-resume starts over (original selection) and --keep-state keeps the state schema.
    let mut fresh = FLAGS.to_vec();
    fresh.extend_from_slice(&["--no-resume", "--keep-state"]);
    init_ok(&src, &dst, &fresh);
    assert_same_data(&src, &dst);
    assert_no_duplicates(&dst);
    assert!(
        has_state_schema(&dst),
        "--keep-state dropped the state schema"
    );

    // Resuming with other performance settings (jobs, index jobs) is still the same copy.
    let (dst, _) = fresh_target_db();
    let log = logs.path().join("retuned.log");
    let (sent, status) = signal_after(
        &src,
        &dst,
        &[],
        ranges / 3,
        Duration::ZERO,
        libc::SIGKILL,
        &log,
    );
    assert!(sent, "the run finished before the kill: {status:?}");
    let (code, out, err) = init(
        &src,
        &dst,
        &[
            "--jobs",
            "1",
            "--index-jobs",
            "1",
            "--split-tables-larger-than",
            "1MB",
        ],
    );
    assert_eq!(
        code, 0,
        "resume with --jobs 1 --index-jobs 1\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert_same_data(&src, &dst);

    // A replacing run (--drop-existing over a finished copy) killed halfway, then the same
    // command again: the target ends whole.
    let (dst, _) = fresh_target_db();
    init_ok(&src, &dst, FLAGS);
    let log = logs.path().join("replace.log");
    let (sent, status) = signal_after(
        &src,
        &dst,
        &["--drop-existing"],
        ranges / 2,
        Duration::ZERO,
        libc::SIGKILL,
        &log,
    );
    assert!(
        sent,
        "the replacing run finished before the kill: {status:?}"
    );
    let mut replace = FLAGS.to_vec();
    replace.push("--drop-existing");
    let (code, out, err) = init(&src, &dst, &replace);
    assert_eq!(
        code, 0,
        "rerun of a killed --drop-existing run\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert_same_data(&src, &dst);
    assert_no_duplicates(&dst);

    // Nothing left on the source by all these killed runs: no replication slot, publication or
    // state schema in its database.
    assert_eq!(
        sql(
            &src,
            "SELECT (SELECT count(*) FROM pg_replication_slots WHERE database = current_database()) \
             || ' ' || (SELECT count(*) FROM pg_publication) \
             || ' ' || (SELECT count(*) FROM pg_namespace WHERE nspname = 'seren_replicator')"
        ),
        "0 0 0",
        "slots, publications, state schemas left on the source"
    );
}
