//! One PostgreSQL → PostgreSQL migration shared by 1, 2, then 3 `worker` processes: a job
//! server with a PostgreSQL job store, one large table split into partitions, every worker run
//! with `-j 1` so the number of workers is the number of copy lanes. Prints wall time, rows/s,
//! the speed-up over one worker and the largest worker's peak RSS, as a Markdown table.
//!
//! Usage: `seren-bench workers [ROWS]` (default 4,000,000). Build both binaries in release
//! mode first.

use super::pg::SETTINGS;
use super::{createdb, measure, our_binary};
use anyhow::{bail, Context, Result};
use seren_replicator::throwaway::{psql, ThrowawayPg};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const TOKEN: &str = "bench-token";

pub fn run(rows: Option<&String>) -> Result<()> {
    let rows: u64 = rows.map(|r| r.parse()).transpose()?.unwrap_or(4_000_000);
    let bin = our_binary()?;
    let dir = tempfile::Builder::new()
        .prefix("seren-bench.")
        .tempdir_in("/tmp")?;
    let (key, tokens) = (dir.path().join("key"), dir.path().join("tokens"));
    std::fs::write(&key, [7u8; 32])?;
    std::fs::write(&tokens, TOKEN)?;
    let source = ThrowawayPg::start(SETTINGS)?;
    let target = ThrowawayPg::start(SETTINGS)?;
    let src = createdb(&source, "bench")?;
    eprintln!("generating {rows} rows …");
    psql(
        &src,
        &format!(
            "CREATE TABLE big (id bigint PRIMARY KEY, s text, n numeric, at timestamptz);
             INSERT INTO big SELECT i, md5(i::text), i * 0.25, \
             '2020-01-01'::timestamptz + i * interval '1 second' FROM generate_series(1, {rows}) i;"
        ),
    )?;
    psql(&src, "VACUUM ANALYZE big")?;
    let size = psql(&src, "SELECT pg_size_pretty(pg_table_size('big'))")?;
    let state = createdb(&target, "jobs")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let api = format!("http://127.0.0.1:{port}");
    let mut server = Command::new(&bin)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--state",
            &state,
        ])
        .arg("--token-file")
        .arg(&tokens)
        .arg("--key-file")
        .arg(&key)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(server.stderr.take().context("server stderr")?).lines();
    loop {
        let line = lines.next().context("the job server stopped")??;
        if line.contains("listening on") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));

    let mut results = Vec::new();
    for workers in 1..=3usize {
        let dst = createdb(&target, &format!("copy_{workers}"))?;
        let mut submit = Command::new(&bin)
            .args(["init", "--remote", &api, "--workers", "--no-sync"])
            .args(["--split-tables-larger-than", "32MB"])
            .args(["--source", &src, "--target", &dst])
            .arg("--token-file")
            .arg(&tokens)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let out = BufReader::new(submit.stdout.take().context("submit stdout")?);
        let mut out = out.lines();
        let job = loop {
            let line = out.next().context("no job id printed")??;
            if let Some(id) = line.strip_prefix("Job ID: ") {
                break id.trim().to_string();
            }
        };
        std::thread::spawn(move || out.for_each(drop));
        let one = format!(
            "{} worker --job {job} --state {state} --key-file {} -j 1 -q",
            bin.display(),
            key.display()
        );
        let script = format!(
            "pids=''; for i in $(seq {workers}); do {one} & pids=\"$pids $!\"; done; \
             s=0; for p in $pids; do wait $p || s=1; done; exit $s"
        );
        let shown = format!(
            "{workers} × seren-replicator worker --job ID --state postgresql://…/jobs \
             --key-file KEY -j 1 (job: init --remote … --workers --no-sync \
             --split-tables-larger-than 32MB)"
        );
        let m = measure(
            &format!("{workers} worker(s)"),
            &shown,
            Command::new("sh").args(["-c", &script]),
        )?;
        if !submit.wait()?.success() {
            bail!("job {job} did not succeed");
        }
        let copied: u64 = psql(&dst, "SELECT count(*) FROM big")?.parse()?;
        if copied != rows {
            bail!("{workers} workers copied {copied} rows, not {rows}");
        }
        eprintln!("{workers} worker(s): {:.2} s", m.seconds);
        results.push(m);
    }
    let _ = server.kill();
    let _ = server.wait();

    let base = results[0].seconds;
    println!("Table `big`: {rows} rows, {size}; split into 32 MB partitions.\n");
    println!("| workers | time | rows/s | speed-up | largest worker's peak RSS |");
    println!("|---:|---:|---:|---:|---:|");
    for (i, m) in results.iter().enumerate() {
        println!(
            "| {} | {:.2} s | {:.0}k | {:.2}× | {:.0} MB |",
            i + 1,
            m.seconds,
            rows as f64 / m.seconds / 1e3,
            base / m.seconds,
            m.peak_rss_mb
        );
    }
    println!("\nCommand per run: `{}`", results[0].command);
    Ok(())
}
