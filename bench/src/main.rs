//! End-to-end throughput: a generated SQLite table loaded into a throwaway PostgreSQL by
//! seren-replicator (JSONB and native modes), by pgloader, and by a raw `sqlite3 | COPY` pipe,
//! in one run on the same data. Prints rows/s, MB/s, peak RSS and ratios, and a JSON report.
//!
//! Usage: `cargo run --release -p seren-bench -- [sqlite] [ROWS]` (default 1,000,000). Build the
//! main binary first with `cargo build --release`.
//!
//! Other benchmarks (one module each):
//! - `seren-bench pg …`: PostgreSQL → PostgreSQL (`pg.rs`).
//! - `seren-bench mysql [ROWS]` (default 1,000,000): throwaway MariaDB → PostgreSQL, ours
//!   (native, JSONB) vs pgloader vs a raw `mariadb | psql COPY` pipe (`mysql.rs`).
//! - `seren-bench mongo [DOCS]` (default 1,000,000): throwaway SecantusDB → PostgreSQL, ours vs a
//!   bare Rust-driver scan of the collection (`mongo.rs`).
//! - `seren-bench parquet [ROWS]` (default 5,000,000): a generated Parquet file, ours (native)
//!   vs a server-side `COPY … FROM 'file.csv'` of the same values and `psql \copy` (`parquet.rs`).
//! - `seren-bench workers [ROWS]` (default 4,000,000): one PostgreSQL → PostgreSQL job shared by
//!   1, 2 and 3 `worker` processes (`workers.rs`).
//!
//! Build both binaries first: `cargo build --release -p seren-replicator -p seren-bench`.

mod mongo;
mod mysql;
mod parquet;
mod pg;
mod workers;

use anyhow::{bail, Context, Result};
use seren_replicator::throwaway::ThrowawayPg;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Measure {
    name: String,
    command: String,
    seconds: f64,
    peak_rss_mb: f64,
    /// Row count found in the target afterwards, or another check's outcome.
    note: String,
}

/// Run `cmd` to completion; wall time and the peak RSS of the largest process in the child's
/// tree (`VmHWM` sampled every 20 ms). Not wait4's `ru_maxrss`: a child spawned with vfork
/// inherits this process's high-water mark at exec, which would count the bench itself.
fn measure(name: &str, shown: &str, cmd: &mut Command) -> Result<Measure> {
    let started = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let root = child.id() as i32;
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(tree_hwm_kb(root), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(root, &mut status, 0, &mut usage) };
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
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
        peak_rss_mb: peak.load(Ordering::Relaxed) as f64 / 1024.0,
        note: String::new(),
    })
}

/// The largest `VmHWM` (KiB) among `root` and its descendants, now.
fn tree_hwm_kb(root: i32) -> u64 {
    let mut kids: HashMap<i32, Vec<i32>> = HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid …"
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1)?.parse().ok());
        if let Some(ppid) = ppid {
            kids.entry(ppid).or_default().push(pid);
        }
    }
    let mut pids = vec![root];
    let mut i = 0;
    while i < pids.len() {
        if let Some(k) = kids.get(&pids[i]) {
            pids.extend(k);
        }
        i += 1;
    }
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .max()
        .unwrap_or(0)
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
        Some("mysql") => mysql::run(args.get(1)),
        Some("mongo") => mongo::run(args.get(1)),
        Some("mongo-scan") => mongo::scan_main(&args[1..]),
        Some("parquet") => parquet::run(args.get(1)),
        Some("workers") => workers::run(args.get(1)),
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

/// `n` parsed from the optional argument, else `default`.
fn count_arg(arg: Option<&String>, default: u64) -> Result<u64> {
    Ok(arg
        .map(|r| r.replace([',', '_'], "").parse())
        .transpose()
        .context("the count must be a number")?
        .unwrap_or(default))
}

/// Rows in the one table named `table` (any non-system schema) of the database at `url`.
fn target_count(url: &str, table: &str) -> Result<u64> {
    let sql = format!(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = '{table}' \
         AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    );
    let found = psql_query(url, &sql)?;
    let names: Vec<&str> = found.lines().filter(|l| !l.is_empty()).collect();
    if names.len() != 1 {
        bail!("expected one table {table:?} in the target, found {names:?}");
    }
    psql_query(url, &format!("SELECT count(*) FROM {}", names[0]))?
        .trim()
        .parse()
        .context("count(*)")
}

/// A psql query; tuples only, unaligned, trimmed.
fn psql_query(url: &str, sql: &str) -> Result<String> {
    seren_replicator::throwaway::psql(url, sql)
}

/// "N rows ✓" when the target holds `want` rows, else the mismatch.
fn count_note(url: &str, table: &str, want: u64) -> String {
    match target_count(url, table) {
        Ok(n) if n == want => format!("{n} rows ✓"),
        Ok(n) => format!("{n} rows ✗ (want {want})"),
        Err(e) => format!("count failed: {e:#}"),
    }
}

/// The 1-minute load average, with the 5- and 15-minute ones.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Print the Markdown table, the commands and a JSON report (stderr). `unit`: "rows" or
/// "documents"; `mb`: the source size the MB/s column divides; `base`: the method the ratio
/// column compares with; `speedup`: ratio as base time ÷ this time (else this ÷ base).
fn print_report(
    unit: &str,
    n: u64,
    mb: f64,
    results: &[Measure],
    base: &str,
    speedup: bool,
    extra: serde_json::Value,
) {
    let base_s = results.iter().find(|m| m.name == base).map(|m| m.seconds);
    let ratio_head = if speedup {
        format!("speed vs {base}")
    } else {
        format!("time ÷ {base}")
    };
    println!("| method | wall s | {unit}/s | MB/s | peak RSS MB | {ratio_head} | target check |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for m in results {
        let ratio = base_s.map_or("—".into(), |b| {
            let r = if speedup {
                b / m.seconds
            } else {
                m.seconds / b
            };
            format!("{r:.2}×")
        });
        println!(
            "| {} | {:.2} | {:.0} | {:.1} | {:.0} | {ratio} | {} |",
            m.name,
            m.seconds,
            n as f64 / m.seconds,
            mb / m.seconds,
            m.peak_rss_mb,
            m.note
        );
    }
    println!();
    for m in results {
        println!("- {}: `{}`", m.name, m.command);
    }
    let report: Vec<_> = results
        .iter()
        .map(|m| {
            serde_json::json!({"method": m.name, "command": m.command, "seconds": m.seconds,
            "per_sec": n as f64 / m.seconds, "peak_rss_mb": m.peak_rss_mb, "check": m.note})
        })
        .collect();
    eprintln!(
        "{}",
        serde_json::json!({unit: n, "source_mb": mb, "extra": extra, "results": report})
    );
}
