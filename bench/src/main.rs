//! End-to-end throughput: a generated SQLite table loaded into a throwaway PostgreSQL by
//! seren-replicator (JSONB and native modes), by pgloader, and by a raw `sqlite3 | COPY` pipe,
//! in one run on the same data. Prints rows/s, MB/s, peak RSS and ratios, and a JSON report.
//!
//! Usage: `cargo run --release -p seren-bench -- [sqlite] [ROWS]` (default 1,000,000). Build the
//! main binary first with `cargo build --release`.
//!
//! `seren-bench pg …` runs the PostgreSQL → PostgreSQL benchmark instead (see `pg.rs`).

mod pg;

use anyhow::{bail, Context, Result};
use seren_replicator::throwaway::ThrowawayPg;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

struct Measure {
    name: String,
    command: String,
    seconds: f64,
    peak_rss_mb: f64,
}

/// Run `cmd` to completion; wall time and the child's peak RSS (from wait4).
fn measure(name: &str, shown: &str, cmd: &mut Command) -> Result<Measure> {
    let started = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    if pid < 0 {
        bail!("wait4 failed for {name}");
    }
    let seconds = started.elapsed().as_secs_f64();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("{name} failed (status {status})");
    }
    Ok(Measure {
        name: name.into(),
        command: shown.into(),
        seconds,
        peak_rss_mb: usage.ru_maxrss as f64 / 1024.0,
    })
}

fn our_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let p = exe.parent().context("binary dir")?.join("seren-replicator");
    if !p.exists() {
        bail!(
            "{} not found: run `cargo build --release` first",
            p.display()
        );
    }
    Ok(p)
}

fn createdb(pg: &ThrowawayPg, name: &str) -> Result<String> {
    let ok = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-d",
            &pg.url("postgres"),
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .status()?
        .success();
    if !ok {
        bail!("createdb {name} failed");
    }
    Ok(pg.url(name))
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("pg") => pg::run(&args[1..]),
        Some("sqlite") => sqlite_main(args.get(1)),
        _ => sqlite_main(args.first()),
    }
}

fn sqlite_main(rows: Option<&String>) -> Result<()> {
    let rows: u64 = rows.map(|r| r.parse()).transpose()?.unwrap_or(1_000_000);
    let dir = tempfile::Builder::new()
        .prefix("seren-bench.")
        .tempdir_in("/tmp")?;
    let db = dir.path().join("wide.db");
    eprintln!("generating {rows} rows × 10 columns …");
    seren_replicator::sample::generate_wide(&db, rows)?;
    let file_mb = std::fs::metadata(&db)?.len() as f64 / 1e6;
    // Default durability settings, as a production target would have.
    let pg = ThrowawayPg::start(&["shared_buffers=512MB", "max_wal_size=4GB"])?;
    let bin = our_binary()?;
    let mut results = Vec::new();
    let src = db.display().to_string();
    let runs: [(&str, &[&str]); 3] = [
        ("native", &["--mode", "native"]),
        ("jsonb", &["--mode", "jsonb"]),
        ("jsonb_nogin", &["--mode", "jsonb", "--gin-index", "none"]),
    ];
    for (name, flags) in runs {
        let url = createdb(&pg, &format!("ours_{name}"))?;
        let shown = format!(
            "seren-replicator init --source wide.db --target {url} {} -y -q",
            flags.join(" ")
        );
        results.push(measure(
            &format!("seren-replicator {}", flags.join(" ")),
            &shown,
            Command::new(&bin)
                .args(["init", "--source", &src, "--target", &url, "-y", "-q"])
                .args(flags),
        )?);
    }
    if have("pgloader") {
        let url = createdb(&pg, "pgloader")?;
        let shown = format!("pgloader sqlite:///wide.db {url}");
        results.push(measure(
            "pgloader",
            &shown,
            Command::new("pgloader")
                .arg(format!("sqlite://{src}"))
                .arg(&url)
                .stderr(Stdio::null()),
        )?);
    } else {
        eprintln!("pgloader not installed (apt-get install pgloader): skipped");
    }
    if have("sqlite3") {
        let url = createdb(&pg, "rawpipe")?;
        Command::new("psql").args(["-X", "-q", "-d", &url, "-c",
            "CREATE TABLE wide (id bigint, a bigint, b bigint, c bigint, x float8, y float8, s text, t text, at timestamp, bin bytea)"]).status()?;
        let pipe = format!(
            "sqlite3 -csv {} \"SELECT id,a,b,c,x,y,s,t,at,'\\x'||hex(bin) FROM wide\" | psql -X -q -d '{url}' -c \"COPY wide FROM STDIN (FORMAT csv)\"",
            shell_quote(&db)
        );
        results.push(measure(
            "raw sqlite3 | COPY (no indexes)",
            &pipe.replace(&src, "wide.db"),
            Command::new("sh").args(["-c", &pipe]),
        )?);
    }
    println!("| method | seconds | rows/s | MB/s (source file) | peak RSS MB | vs pgloader |");
    println!("|---|---:|---:|---:|---:|---:|");
    let pgloader = results
        .iter()
        .find(|m| m.name == "pgloader")
        .map(|m| m.seconds);
    for m in &results {
        println!(
            "| {} | {:.2} | {:.0} | {:.1} | {:.0} | {} |",
            m.name,
            m.seconds,
            rows as f64 / m.seconds,
            file_mb / m.seconds,
            m.peak_rss_mb,
            pgloader.map_or("—".into(), |p| format!("{:.2}×", p / m.seconds))
        );
    }
    println!();
    for m in &results {
        println!("- {}: `{}`", m.name, m.command);
    }
    let report: Vec<_> = results
        .iter()
        .map(|m| {
            serde_json::json!({"method": m.name, "command": m.command, "seconds": m.seconds,
            "rows_per_sec": rows as f64 / m.seconds, "peak_rss_mb": m.peak_rss_mb})
        })
        .collect();
    eprintln!(
        "{}",
        serde_json::json!({"rows": rows, "source_mb": file_mb, "results": report})
    );
    Ok(())
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}
