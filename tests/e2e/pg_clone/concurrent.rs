//! Writes on the source during `init`: every table on the target must show the source at one
//! instant. A writer moves money between accounts, logging each transfer in a ledger in the
//! same transaction; on the target the total balance must be unchanged and every account's
//! balance must match its ledger entries, although the two tables (and the parts of the split
//! `accounts` table) are copied at different moments.

use crate::pg_pair::{fresh_source_db, fresh_target_db, init_ok, script, sql, table_digest};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACCOUNTS: i64 = 20_000;
const INITIAL: i64 = 1000;

#[test]
fn snapshot_is_consistent_under_writes() {
    let (src, _) = fresh_source_db();
    script(
        &src,
        &format!(
            "CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL, pad text);
             INSERT INTO accounts SELECT g, {INITIAL}, repeat('p', 200) FROM generate_series(1, {ACCOUNTS}) g;
             CREATE TABLE ledger (id bigserial PRIMARY KEY, from_id int NOT NULL, to_id int NOT NULL,
                                  amount bigint NOT NULL, at timestamptz DEFAULT clock_timestamp());
             CREATE TABLE filler (id int PRIMARY KEY, s text);
             INSERT INTO filler SELECT g, md5(g::text) FROM generate_series(1, 150000) g;
             ANALYZE;"
        ),
    );

    // One writer session fed transfers through its stdin until told to stop.
    let mut writer = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &src])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_w = stop.clone();
    let feeder = std::thread::spawn(move || {
        let mut i: u64 = 0;
        while !stop_w.load(Ordering::SeqCst) {
            i += 1;
            let r = rand::random::<u64>();
            let a = 1 + (r % ACCOUNTS as u64);
            let b = 1 + ((r >> 20) % ACCOUNTS as u64);
            let amount = 1 + (r >> 40) % 100;
            let tx = format!(
                "BEGIN; UPDATE accounts SET balance = balance - {amount} WHERE id = {a}; \
                 UPDATE accounts SET balance = balance + {amount} WHERE id = {b}; \
                 INSERT INTO ledger (from_id, to_id, amount) VALUES ({a}, {b}, {amount}); COMMIT;\n"
            );
            if stdin.write_all(tx.as_bytes()).is_err() {
                break;
            }
            if i % 20 == 0 {
                let _ = stdin.flush();
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        drop(stdin);
    });

    let count = || -> i64 { sql(&src, "SELECT count(*) FROM ledger").parse().unwrap() };
    let waiting = Instant::now();
    while count() < 50 {
        assert!(
            waiting.elapsed() < Duration::from_secs(30),
            "the writer does not write"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = count();
    let (dst, _) = fresh_target_db();
    let result = std::panic::catch_unwind(|| {
        init_ok(
            &src,
            &dst,
            &["--jobs", "2", "--split-tables-larger-than", "1MB"],
        )
    });
    let after = count();
    stop.store(true, Ordering::SeqCst);
    feeder.join().unwrap();
    let w = writer.wait_with_output().unwrap();
    assert!(
        w.status.success(),
        "writer: {}",
        String::from_utf8_lossy(&w.stderr)
    );
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert!(
        after > before,
        "no write happened while init ran ({before} → {after})"
    );

    let copied: i64 = sql(&dst, "SELECT count(*) FROM ledger").parse().unwrap();
    assert!(
        (before..=after).contains(&copied),
        "target ledger has {copied} rows; the source had {before} when init started and {after} when it ended"
    );
    // One writer session: ids are handed out in commit order, so a snapshot holds 1..=n.
    assert_eq!(
        sql(&dst, "SELECT coalesce(max(id), 0) FROM ledger"),
        copied.to_string(),
        "ledger is not a prefix of the source's"
    );
    assert_eq!(
        sql(&dst, "SELECT sum(balance) FROM accounts"),
        (ACCOUNTS * INITIAL).to_string(),
        "money created or destroyed: accounts copied at more than one instant"
    );
    let mismatched = sql(
        &dst,
        &format!(
            "SELECT count(*) FROM accounts a LEFT JOIN (
               SELECT id, sum(delta) AS delta FROM (
                 SELECT to_id AS id, amount AS delta FROM ledger
                 UNION ALL SELECT from_id, -amount FROM ledger) x GROUP BY id) l USING (id)
             WHERE a.balance - {INITIAL} <> coalesce(l.delta, 0)"
        ),
    );
    assert_eq!(
        mismatched, "0",
        "accounts and ledger copied at different instants"
    );
    assert_eq!(table_digest(&dst, "filler"), table_digest(&src, "filler"));
    // The sequence is at least where the copied rows got to: new rows on the target after a
    // cutover must not collide.
    let seq: i64 = sql(
        &dst,
        "SELECT coalesce(last_value, 0) FROM pg_sequences WHERE sequencename = 'ledger_id_seq'",
    )
    .parse()
    .unwrap();
    assert!(
        seq >= copied,
        "ledger_id_seq at {seq} below the copied max id {copied}"
    );
    // Exactly the source as of the snapshot: the ledger's first `copied` rows, and balances
    // rebuilt from them on the source.
    assert_eq!(
        table_digest(&dst, "ledger"),
        table_digest(
            &src,
            &format!("(SELECT * FROM ledger WHERE id <= {copied})")
        )
    );
    let balances = |url: &str, query: &str| {
        sql(
            url,
            &format!(
                "SELECT md5(string_agg(id || ':' || balance, ',' ORDER BY id)) FROM ({query}) b"
            ),
        )
    };
    assert_eq!(
        balances(&dst, "SELECT id, balance FROM accounts"),
        balances(
            &src,
            &format!(
                "SELECT a.id, {INITIAL} + coalesce(l.delta, 0) AS balance FROM accounts a LEFT JOIN (
                   SELECT id, sum(delta) AS delta FROM (
                     SELECT to_id AS id, amount AS delta FROM ledger WHERE id <= {copied}
                     UNION ALL SELECT from_id, -amount FROM ledger WHERE id <= {copied}) x
                   GROUP BY id) l USING (id)"
            )
        ),
        "target balances differ from the source's at the snapshot"
    );
}
