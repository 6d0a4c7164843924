//! PostgreSQL → PostgreSQL: one generated source database (pgbench tables + a wide mixed-type
//! table) copied into an empty target database by seren-replicator, by a raw binary `COPY` pipe,
//! by pgcopydb and by `pg_dump -Fd | pg_restore`, in one run on two throwaway clusters.
//!
//! Usage: `seren-bench pg [--scale 60] [--wide-rows 1500000] [--only ours,raw,pgcopydb,pgdump]
//! [--ours-args "EXTRA FLAGS"] [--rounds N] [--record]`. Build the workspace in release mode
//! first. With `--rounds N` the methods run N times in rotation and each is reported by its
//! median round (this machine's run-to-run spread is larger than the differences measured).
//!
//! Measured per method: wall clock; CPU seconds of the client processes (`getrusage
//! (RUSAGE_CHILDREN)` deltas) and of both clusters' server processes (`/proc/<pid>/stat` of every
//! process under each postmaster, plus what the postmaster reaped); peak RSS of the client side
//! (largest single process from `wait4`, and the sampled PSS sum over the client process tree).

use anyhow::{bail, Context, Result};
use seren_replicator::throwaway::{server_bin_dir, ThrowawayPg};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Parallelism given to every tool (table lanes, index jobs, pg_dump/pg_restore -j).
const JOBS: usize = 2;
/// The database copied, on both clusters.
const DB: &str = "bench";
const METHODS: [&str; 4] = ["ours", "raw", "pgcopydb", "pgdump"];

/// Same settings on both clusters; durability stays at the defaults (fsync on).
pub(crate) const SETTINGS: &[&str] = &[
    "shared_buffers=256MB",
    "max_wal_size=4GB",
    "checkpoint_timeout=30min",
    "maintenance_work_mem=256MB",
    "max_connections=100",
];

struct Opts {
    scale: u32,
    wide_rows: u64,
    only: Vec<String>,
    ours_args: Vec<String>,
    record: bool,
    /// Times every method runs, in rotation; the median run is reported.
    rounds: usize,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        scale: 60,
        wide_rows: 1_500_000,
        only: METHODS.iter().map(|m| m.to_string()).collect(),
        ours_args: Vec::new(),
        record: false,
        rounds: 1,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .with_context(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--scale" => o.scale = value("--scale")?.parse().context("--scale")?,
            "--wide-rows" => o.wide_rows = value("--wide-rows")?.parse().context("--wide-rows")?,
            "--only" => {
                o.only = value("--only")?
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                for m in &o.only {
                    if !METHODS.contains(&m.as_str()) {
                        bail!("unknown method {m:?} (known: {})", METHODS.join(","));
                    }
                }
            }
            "--ours-args" => {
                o.ours_args = value("--ours-args")?
                    .split_whitespace()
                    .map(String::from)
                    .collect()
            }
            "--record" => o.record = true,
            "--rounds" => o.rounds = value("--rounds")?.parse().context("--rounds")?,
            "-h" | "--help" => {
                println!(
                    "seren-bench pg [--scale 60] [--wide-rows 1500000] \
                     [--only ours,raw,pgcopydb,pgdump] [--ours-args \"FLAGS\"] [--rounds N] [--record]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if o.scale == 0 {
        bail!("--scale must be at least 1");
    }
    if o.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------------
// Process accounting

#[derive(Default)]
struct RunStats {
    /// Largest single client process RSS (KiB), from wait4.
    max_proc_rss_kb: AtomicU64,
}

/// Wait for `child` with wait4; fold its peak RSS into `stats`; Ok only on exit status 0.
fn wait_child(child: Child, what: &str, stats: &RunStats) -> Result<()> {
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    if pid < 0 {
        bail!(
            "wait4 failed for {what}: {}",
            std::io::Error::last_os_error()
        );
    }
    stats
        .max_proc_rss_kb
        .fetch_max(usage.ru_maxrss.max(0) as u64, Ordering::Relaxed);
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if libc::WIFEXITED(status) {
        bail!("{what} exited with status {}", libc::WEXITSTATUS(status))
    } else {
        bail!("{what} killed by signal {}", libc::WTERMSIG(status))
    }
}

fn children_cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

struct ProcStat {
    ppid: i32,
    /// utime + stime + cutime + cstime, in clock ticks.
    ticks: u64,
}

/// pid → (ppid, CPU ticks incl. reaped children) for every process on the machine.
fn all_procs() -> HashMap<i32, ProcStat> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name in parentheses: state ppid … (utime is field 14).
        let Some(rest) = s.rfind(')').map(|i| &s[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 15 {
            continue;
        }
        let n = |i: usize| f[i].parse::<u64>().unwrap_or(0);
        out.insert(
            pid,
            ProcStat {
                ppid: f[1].parse().unwrap_or(0),
                ticks: n(11) + n(12) + n(13) + n(14),
            },
        );
    }
    out
}

/// `root` and all its descendants.
fn tree(procs: &HashMap<i32, ProcStat>, root: i32) -> Vec<i32> {
    let mut kids: HashMap<i32, Vec<i32>> = HashMap::new();
    for (&pid, p) in procs {
        kids.entry(p.ppid).or_default().push(pid);
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(k) = kids.get(&out[i]) {
            out.extend(k);
        }
        i += 1;
    }
    out
}

fn postmaster_pid(pg: &ThrowawayPg) -> Result<i32> {
    let f = pg.dir().join("data/postmaster.pid");
    let s = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
    s.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .context("postmaster.pid has no pid")
}

/// CPU seconds used so far by the servers under these postmasters (processes that exited were
/// reaped by the postmaster, so they are in its cutime/cstime).
fn server_cpu_seconds(postmasters: &[i32]) -> f64 {
    let procs = all_procs();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut ticks = 0;
    for &pm in postmasters {
        for pid in tree(&procs, pm) {
            ticks += procs.get(&pid).map_or(0, |p| p.ticks);
        }
    }
    ticks as f64 / hz
}

/// Sum of PSS (proportional set size: shared pages divided among their users; KiB) over this
/// process's descendants, so that libraries shared by N client processes count once.
fn client_tree_pss_kb() -> u64 {
    let procs = all_procs();
    let me = std::process::id() as i32;
    tree(&procs, me)
        .into_iter()
        .filter(|&p| p != me)
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).ok())
        .filter_map(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .sum()
}

struct Measure {
    method: String,
    command: String,
    wall: f64,
    client_cpu: f64,
    server_cpu: f64,
    max_proc_rss_mb: f64,
    tree_pss_mb: f64,
    note: String,
    /// Wall seconds of every round, in order (the other fields are the median round's).
    walls: Vec<f64>,
}

/// Run `job` and measure it; the error is the job's.
fn measure(
    method: &str,
    command: &str,
    postmasters: &[i32],
    job: impl FnOnce(&RunStats) -> Result<()>,
) -> Result<Measure> {
    let stats = RunStats::default();
    let done = Arc::new(AtomicBool::new(false));
    let peak_tree = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak_tree.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(client_tree_pss_kb(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let (c0, s0) = (children_cpu_seconds(), server_cpu_seconds(postmasters));
    let started = Instant::now();
    let result = job(&stats);
    let wall = started.elapsed().as_secs_f64();
    let (c1, s1) = (children_cpu_seconds(), server_cpu_seconds(postmasters));
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    result?;
    Ok(Measure {
        method: method.into(),
        command: command.into(),
        wall,
        client_cpu: c1 - c0,
        server_cpu: s1 - s0,
        max_proc_rss_mb: stats.max_proc_rss_kb.load(Ordering::Relaxed) as f64 / 1024.0,
        tree_pss_mb: peak_tree.load(Ordering::Relaxed) as f64 / 1024.0,
        note: String::new(),
        walls: vec![wall],
    })
}

/// One measure per method: its median round (by wall time), carrying every round's wall time.
fn medians(rounds: Vec<Measure>) -> Vec<Measure> {
    let mut by_method: Vec<(String, Vec<Measure>)> = Vec::new();
    for m in rounds {
        match by_method.iter_mut().find(|(name, _)| *name == m.method) {
            Some((_, ms)) => ms.push(m),
            None => by_method.push((m.method.clone(), vec![m])),
        }
    }
    by_method
        .into_iter()
        .map(|(_, mut ms)| {
            let walls: Vec<f64> = ms.iter().map(|m| m.wall).collect();
            ms.sort_by(|a, b| a.wall.total_cmp(&b.wall));
            let mut median = ms.swap_remove(ms.len() / 2);
            median.walls = walls;
            median
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tools

struct Tools {
    bin: PathBuf,
    ours: PathBuf,
    /// Where each method's stderr goes (shown when it fails).
    logs: PathBuf,
}

impl Tools {
    fn tool(&self, name: &str) -> Command {
        Command::new(self.bin.join(name))
    }

    fn psql(&self, url: &str) -> Command {
        let mut c = self.tool("psql");
        c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url]);
        c
    }

    fn log(&self, name: &str) -> Result<(PathBuf, std::fs::File)> {
        let p = self.logs.join(format!("{name}.log"));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)?;
        Ok((p, f))
    }

    /// Run a psql query; tuples only, unaligned, `|`-separated.
    fn query(&self, url: &str, sql: &str) -> Result<String> {
        let out = self
            .psql(url)
            .args(["-A", "-t", "-F", "|", "-c", sql])
            .output()
            .context("running psql")?;
        if !out.status.success() {
            bail!(
                "psql failed on {sql:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn exec(&self, url: &str, sql: &str) -> Result<()> {
        self.query(url, sql).map(|_| ())
    }

    /// `producer | consumer`, both waited with wait4; stderr of both into `log`.
    fn pipe(
        &self,
        mut producer: Command,
        mut consumer: Command,
        what: &str,
        log: &str,
        stats: &RunStats,
    ) -> Result<()> {
        let (path, f) = self.log(log)?;
        let mut up = producer
            .stdout(Stdio::piped())
            .stderr(f.try_clone()?)
            .spawn()
            .with_context(|| format!("starting {what} (producer)"))?;
        let out = up.stdout.take().context("producer stdout")?;
        let down = consumer
            .stdin(Stdio::from(out))
            .stdout(Stdio::null())
            .stderr(f)
            .spawn();
        drop(consumer);
        let down = match down {
            Ok(d) => d,
            Err(e) => {
                let _ = up.kill();
                let _ = wait_child(up, what, stats);
                return Err(e).with_context(|| format!("starting {what} (consumer)"));
            }
        };
        let a = wait_child(up, &format!("{what} (producer)"), stats);
        let b = wait_child(down, &format!("{what} (consumer)"), stats);
        a.and(b)
            .map_err(|e| e.context(format!("see {}: {}", path.display(), tail(&path))))
    }

    /// Run one command, stdout discarded (or into `capture`), stderr into `log`.
    fn run(&self, mut cmd: Command, what: &str, log: &str, stats: &RunStats) -> Result<()> {
        let (path, f) = self.log(log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone()?)
            .stderr(f)
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        drop(cmd);
        wait_child(child, what, stats)
            .map_err(|e| e.context(format!("see {}: {}", path.display(), tail(&path))))
    }
}

/// The last few lines of a log, for error messages.
fn tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(6)..].join(" ⏎ ")
}

fn our_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let p = exe.parent().context("binary dir")?.join("seren-replicator");
    if !p.exists() {
        bail!(
            "{} not found: run `cargo build --release --workspace` first",
            p.display()
        );
    }
    Ok(p)
}

fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(tool).is_file()))
}

// ---------------------------------------------------------------------------------------------
// Source data and checks

const WIDE_SQL: &str = r#"
CREATE TABLE wide (
    id      bigint PRIMARY KEY,
    i       integer NOT NULL,
    si      smallint,
    amount  numeric(12,2),
    dbl     double precision,
    rl      real,
    body    text,
    code    varchar(40),
    flag    boolean,
    day     date,
    at_tz   timestamptz,
    at      timestamp,
    span    interval,
    uid     uuid,
    doc     jsonb,
    blob    bytea,
    nums    integer[],
    addr    inet,
    label   text,
    maybe   integer
);
INSERT INTO wide
SELECT g,
       (g * 7919) % 1000003,
       (g % 30000)::smallint,
       ((g * 37) % 10000000) / 100.0,
       g * 1.000001 + 0.5,
       ((g % 1000) / 7.0)::real,
       left(repeat(md5(g::text), 7), 10 + ((g * 37) % 191)::int),
       'code-' || (g % 100000),
       g % 3 = 0,
       date '2000-01-01' + (g % 10000)::int,
       timestamptz '2020-01-01 00:00:00+00' + g::float8 * interval '1.234567 s',
       timestamp '2001-02-03 04:05:06' + g::float8 * interval '0.5 s',
       make_interval(days => (g % 30)::int, secs => (g % 86400)::int),
       md5(g::text)::uuid,
       jsonb_build_object('k', g, 's', 'x' || (g % 100), 'ok', g % 2 = 0, 'v', array[g % 7, g % 11]),
       decode(md5((g * 3)::text), 'hex'),
       array[(g % 10)::int, (g % 100)::int, (g % 1000)::int],
       ('10.' || (g >> 16) % 256 || '.' || (g >> 8) % 256 || '.' || g % 256)::inet,
       'héllo wörld ✓ 日本語 ' || g,
       CASE WHEN g % 5 = 0 THEN NULL ELSE g::int END
FROM generate_series(1::bigint, $ROWS) AS g;
CREATE INDEX wide_i_idx ON wide (i);
"#;

/// Tables of the `public` schema (and any other user schema), qualified and quoted.
fn tables(t: &Tools, url: &str) -> Result<Vec<String>> {
    let out = t.query(
        url,
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema') \
           AND n.nspname NOT LIKE 'pg_toast%' \
         ORDER BY pg_total_relation_size(c.oid) DESC, 1",
    )?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// Exact row count of every table.
fn row_counts(t: &Tools, url: &str) -> Result<BTreeMap<String, u64>> {
    let tabs = tables(t, url)?;
    if tabs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let sql = tabs
        .iter()
        .map(|n| format!("SELECT {}, count(*) FROM {n}", quote_literal(n)))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let mut out = BTreeMap::new();
    for l in t.query(url, &sql)?.lines() {
        if let Some((n, c)) = l.rsplit_once('|') {
            out.insert(n.to_string(), c.trim().parse()?);
        }
    }
    Ok(out)
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Indexes (incl. those behind PK/unique constraints) in user schemas.
fn index_count(t: &Tools, url: &str) -> Result<u64> {
    let out = t.query(
        url,
        "SELECT count(*) FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog','information_schema')",
    )?;
    Ok(out.trim().parse()?)
}

/// Row counts must equal the source's; differing index counts are noted, not fatal.
fn check_target(
    t: &Tools,
    url: &str,
    want: &BTreeMap<String, u64>,
    want_idx: u64,
) -> Result<String> {
    let got = row_counts(t, url)?;
    let mut bad = Vec::new();
    for (tab, n) in want {
        match got.get(tab) {
            Some(m) if m == n => {}
            Some(m) => bad.push(format!("{tab}: {m} rows, source {n}")),
            None => bad.push(format!("{tab}: missing")),
        }
    }
    if !bad.is_empty() {
        bail!("ROW COUNT MISMATCH: {}", bad.join("; "));
    }
    let idx = index_count(t, url)?;
    Ok(if idx == want_idx {
        "rows ok".into()
    } else {
        format!("rows ok; indexes {idx}/{want_idx}")
    })
}

// ---------------------------------------------------------------------------------------------
// Methods

fn run_ours(t: &Tools, src: &str, tgt: &str, extra: &[String], stats: &RunStats) -> Result<()> {
    let (path, f) = t.log("ours")?;
    let out_path = t.logs.join("ours.stdout.json");
    let child = Command::new(&t.ours)
        .args([
            "init",
            "--source",
            src,
            "--target",
            tgt,
            "--no-sync",
            "-y",
            "--json",
        ])
        .args(extra)
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(f)
        .spawn()
        .context("starting seren-replicator")?;
    wait_child(child, "seren-replicator init", stats).map_err(|e| {
        let json = std::fs::read_to_string(&out_path).unwrap_or_default();
        let json: String = json.trim().chars().take(600).collect();
        let err = tail(&path);
        let mut msg = format!("{e:#}");
        if !json.is_empty() {
            msg.push_str(&format!("; stdout: {json}"));
        }
        if !err.is_empty() {
            msg.push_str(&format!("; stderr ({}): {err}", path.display()));
        }
        anyhow::anyhow!(msg)
    })
}

fn run_raw(t: &Tools, src: &str, tgt: &str, stats: &RunStats) -> Result<()> {
    let mut dump = t.tool("pg_dump");
    dump.args(["--schema-only", "--section=pre-data", "-d", src]);
    t.pipe(dump, t.psql(tgt), "pre-data schema", "raw", stats)?;
    let queue = Mutex::new(tables(t, src)?.into_iter());
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..JOBS {
            s.spawn(|| loop {
                let Some(tab) = queue.lock().unwrap().next() else {
                    break;
                };
                let mut out = t.psql(src);
                out.args(["-c", &format!("COPY {tab} TO STDOUT (FORMAT binary)")]);
                let mut inp = t.psql(tgt);
                inp.args(["-c", &format!("COPY {tab} FROM STDIN (FORMAT binary)")]);
                if let Err(e) = t.pipe(out, inp, &format!("COPY {tab}"), "raw", stats) {
                    errors.lock().unwrap().push(format!("{e:#}"));
                    break;
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap();
    if !errors.is_empty() {
        bail!("{}", errors.join("; "));
    }
    let mut dump = t.tool("pg_dump");
    dump.args(["--section=post-data", "-d", src]);
    t.pipe(dump, t.psql(tgt), "post-data (indexes)", "raw", stats)
}

fn run_pgcopydb(t: &Tools, src: &str, tgt: &str, work: &Path, stats: &RunStats) -> Result<()> {
    let jobs = JOBS.to_string();
    let mut c = Command::new("pgcopydb");
    c.args(["clone", "--source", src, "--target", tgt, "--dir"])
        .arg(work)
        .args(["--table-jobs", &jobs, "--index-jobs", &jobs])
        .args(["--no-owner", "--no-acl", "--skip-large-objects"])
        // Use the pg_dump/pg_restore of the running server's version.
        .env("PG_CONFIG", t.bin.join("pg_config"));
    t.run(c, "pgcopydb clone", "pgcopydb", stats)
}

fn run_pgdump(t: &Tools, src: &str, tgt: &str, dir: &Path, stats: &RunStats) -> Result<()> {
    let jobs = JOBS.to_string();
    let mut d = t.tool("pg_dump");
    d.args(["-Fd", "-j", &jobs, "-f"])
        .arg(dir)
        .args(["-d", src]);
    t.run(d, "pg_dump -Fd", "pgdump", stats)?;
    let mut r = t.tool("pg_restore");
    r.args(["-j", &jobs, "-d", tgt]).arg(dir);
    t.run(r, "pg_restore", "pgdump", stats)
}

// ---------------------------------------------------------------------------------------------

fn recreate_target(t: &Tools, target: &ThrowawayPg) -> Result<()> {
    let admin = target.url("postgres");
    t.exec(
        &admin,
        &format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"),
    )?;
    t.exec(&admin, &format!("CREATE DATABASE {DB}"))?;
    // Start every method from a clean WAL/buffer state on both sides.
    t.exec(&admin, "CHECKPOINT")
}

fn shown_command(method: &str, ours_args: &[String]) -> String {
    let j = JOBS;
    match method {
        "ours" => format!(
            "seren-replicator init --source $SRC --target $TGT --no-sync -y --json{}",
            ours_args
                .iter()
                .map(|a| format!(" {a}"))
                .collect::<String>()
        ),
        "raw" => format!(
            "pg_dump --schema-only --section=pre-data $SRC | psql $TGT; per table, {j} lanes, \
             largest first: psql $SRC -c \"COPY t TO STDOUT (FORMAT binary)\" | psql $TGT -c \
             \"COPY t FROM STDIN (FORMAT binary)\"; pg_dump --section=post-data $SRC | psql $TGT"
        ),
        "pgcopydb" => format!(
            "pgcopydb clone --source $SRC --target $TGT --dir $TMP --table-jobs {j} \
             --index-jobs {j} --no-owner --no-acl --skip-large-objects"
        ),
        "pgdump" => format!("pg_dump -Fd -j{j} -f $TMP $SRC && pg_restore -j{j} -d $TGT $TMP"),
        _ => unreachable!(),
    }
}

fn label(method: &str) -> &'static str {
    match method {
        "ours" => "seren-replicator init",
        "raw" => "raw binary COPY pipe + index builds",
        "pgcopydb" => "pgcopydb clone",
        "pgdump" => "pg_dump -Fd (gzip) + pg_restore",
        _ => "?",
    }
}

fn version(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// `seren-bench pg …`.
pub fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let bin = server_bin_dir()?;
    let work = tempfile::Builder::new()
        .prefix("seren-bench-pg.")
        .tempdir_in("/tmp")?;
    let logs = work.path().join("logs");
    std::fs::create_dir(&logs)?;
    let t = Tools {
        bin: bin.clone(),
        ours: if o.only.iter().any(|m| m == "ours") {
            our_binary()?
        } else {
            PathBuf::new()
        },
        logs,
    };
    for tool in ["pgbench", "psql", "pg_dump", "pg_restore"] {
        if !bin.join(tool).exists() {
            bail!(
                "{} missing (apt-get install postgresql-contrib)",
                bin.join(tool).display()
            );
        }
    }

    eprintln!("starting two throwaway clusters ({}) …", SETTINGS.join(" "));
    let source = ThrowawayPg::start(SETTINGS)?;
    let target = ThrowawayPg::start(SETTINGS)?;
    let postmasters = [postmaster_pid(&source)?, postmaster_pid(&target)?];
    let (src, tgt) = (source.url(DB), target.url(DB));

    // Source data.
    let gen_started = Instant::now();
    t.exec(&source.url("postgres"), &format!("CREATE DATABASE {DB}"))?;
    eprintln!(
        "pgbench -i -s {} (server-side generation) + wide table of {} rows …",
        o.scale, o.wide_rows
    );
    let nostats = RunStats::default();
    let mut pgb = t.tool("pgbench");
    pgb.args(["-i", "-q", "-I", "dtGvp", "-s", &o.scale.to_string(), &src]);
    t.run(pgb, "pgbench -i", "generate", &nostats)?;
    t.exec(&src, &WIDE_SQL.replace("$ROWS", &o.wide_rows.to_string()))?;
    t.exec(&src, "VACUUM ANALYZE")?;
    t.exec(&source.url("postgres"), "CHECKPOINT")?;
    let want = row_counts(&t, &src)?;
    let want_idx = index_count(&t, &src)?;
    let sizes = t.query(
        &src,
        &format!(
            "SELECT pg_database_size('{DB}'), \
             (SELECT sum(pg_table_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relkind = 'r' AND n.nspname = 'public'), \
             (SELECT sum(pg_indexes_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relkind = 'r' AND n.nspname = 'public')"
        ),
    )?;
    let sz: Vec<f64> = sizes
        .trim()
        .split('|')
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let (db_gb, heap_gb, idx_gb) = (sz[0] / 1e9, sz[1] / 1e9, sz[2] / 1e9);
    let total_rows: u64 = want.values().sum();
    let data_line = format!(
        "database {db_gb:.2} GB (tables incl. TOAST {heap_gb:.2} GB, indexes {idx_gb:.2} GB), \
         {total_rows} rows in {} tables, {want_idx} indexes",
        want.len()
    );
    println!(
        "source generated in {:.1} s: {data_line}",
        gen_started.elapsed().as_secs_f64()
    );
    for (tab, n) in &want {
        println!("  {tab}: {n} rows");
    }

    // A fresh cluster creates (zero-fills) every WAL segment it writes; later runs recycle
    // them. Measured: the first method on a new target paid 4–5 CPU-s more in its COPY
    // backends for that. One unmeasured copy first, so every method finds recycled segments.
    eprintln!("warming up the target (one unmeasured raw copy fills pg_wal) …");
    recreate_target(&t, &target)?;
    run_raw(&t, &src, &tgt, &RunStats::default()).context("warm-up copy")?;

    let mut results: Vec<Measure> = Vec::new();
    let mut failures: Vec<(String, String)> = Vec::new();
    let rotation = (0..o.rounds).flat_map(|_| METHODS);
    for method in rotation {
        if !o.only.iter().any(|m| m == method) || failures.iter().any(|(f, _)| f == method) {
            continue;
        }
        if method == "pgcopydb" && !have("pgcopydb") {
            let msg = "pgcopydb not installed (apt-get install pgcopydb): skipped".to_string();
            eprintln!("{msg}");
            failures.push((method.into(), msg));
            continue;
        }
        recreate_target(&t, &target)?;
        t.exec(&source.url("postgres"), "CHECKPOINT")?;
        let scratch = work.path().join(method);
        eprintln!("running {method} …");
        let shown = shown_command(method, &o.ours_args);
        let r = measure(method, &shown, &postmasters, |stats| match method {
            "ours" => run_ours(&t, &src, &tgt, &o.ours_args, stats),
            "raw" => run_raw(&t, &src, &tgt, stats),
            "pgcopydb" => run_pgcopydb(&t, &src, &tgt, &scratch, stats),
            "pgdump" => run_pgdump(&t, &src, &tgt, &scratch, stats),
            _ => unreachable!(),
        })
        .and_then(|mut m| {
            m.note = check_target(&t, &tgt, &want, want_idx)?;
            Ok(m)
        });
        let _ = std::fs::remove_dir_all(&scratch);
        match r {
            Ok(m) => {
                eprintln!(
                    "  {method}: {:.2} s wall, {:.1} CPU-s, {}",
                    m.wall,
                    m.client_cpu + m.server_cpu,
                    m.note
                );
                results.push(m);
            }
            Err(e) => {
                let msg = format!("{e:#}");
                eprintln!("  {method} FAILED: {msg}");
                failures.push((method.into(), msg));
            }
        }
    }
    drop(target);
    drop(source);

    let results = medians(results);
    let table = render(&results, &failures);
    println!();
    println!("{table}");
    let report: Vec<_> = results
        .iter()
        .map(|m| {
            serde_json::json!({"method": m.method, "wall_s": m.wall, "client_cpu_s": m.client_cpu,
                "server_cpu_s": m.server_cpu, "max_proc_rss_mb": m.max_proc_rss_mb,
                "client_tree_pss_mb": m.tree_pss_mb, "check": m.note})
        })
        .collect();
    let fails: Vec<_> = failures
        .iter()
        .map(|(m, e)| serde_json::json!({"method": m, "error": e}))
        .collect();
    eprintln!(
        "{}",
        serde_json::json!({"scale": o.scale, "wide_rows": o.wide_rows, "database_bytes": sz[0],
            "rows": total_rows, "results": report, "failures": fails})
    );

    if o.record {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let mem_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .next()?
                    .split_whitespace()
                    .nth(1)?
                    .parse::<f64>()
                    .ok()
            })
            .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
        let date = version(Command::new("date").args(["-u", "+%Y-%m-%d"]));
        let pg_version = version(t.tool("postgres").arg("--version"));
        let pgcopydb_version = if have("pgcopydb") {
            version(Command::new("pgcopydb").arg("--version"))
        } else {
            "not installed".into()
        };
        let argv: Vec<String> = std::env::args().collect();
        let mut md = format!(
            "\n## PostgreSQL → PostgreSQL, pgbench scale {} + {} wide rows ({date})\n\n\
             Machine: {cores} cores, {mem_gib:.0} GiB; {pg_version}; {pgcopydb_version}. Two throwaway \
             clusters (source, target) with `{}`, fsync on. Source: {data_line}.\n\n\
             Command: `{}`\n\n{table}\n",
            o.scale,
            o.wide_rows,
            SETTINGS.join(" "),
            argv.join(" ").replace(
                &std::env::current_dir()?.display().to_string(),
                "."
            ),
        );
        md.push_str("\nMethods (`$SRC`/`$TGT` are the two clusters' `bench` databases):\n");
        for m in &results {
            md.push_str(&format!("- {}: `{}`\n", m.method, m.command));
        }
        // SEREN_BENCH_RESULTS: another file to append to (for trying --record out).
        let path = std::env::var_os("SEREN_BENCH_RESULTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("RESULTS.md"));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?
            .write_all(md.as_bytes())?;
        eprintln!("appended to {}", path.display());
    }
    if !failures.is_empty() {
        eprintln!("logs kept in {}", work.path().display());
        let _ = work.keep();
    }
    Ok(())
}

fn render(results: &[Measure], failures: &[(String, String)]) -> String {
    let ours = results.iter().find(|m| m.method == "ours");
    let mut s = String::from(
        "| method | wall s | CPU s (client + servers) | client CPU s | server CPU s | \
         peak RSS MB (largest process) | peak Σ PSS MB (client processes) | ours ÷ this (wall) | \
         ours ÷ this (CPU) | check | every round's wall s |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
    );
    for m in results {
        let cpu = m.client_cpu + m.server_cpu;
        let (rw, rc) = ours.map_or(("—".into(), "—".into()), |o| {
            (
                format!("{:.2}", o.wall / m.wall),
                format!("{:.2}", (o.client_cpu + o.server_cpu) / cpu.max(1e-9)),
            )
        });
        s.push_str(&format!(
            "| {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {rw} | {rc} | {} | {} |\n",
            label(&m.method),
            m.wall,
            cpu,
            m.client_cpu,
            m.server_cpu,
            m.max_proc_rss_mb,
            m.tree_pss_mb,
            m.note,
            m.walls
                .iter()
                .map(|w| format!("{w:.2}"))
                .collect::<Vec<_>>()
                .join(" / ")
        ));
    }
    for (m, e) in failures {
        let e: String = e.chars().take(300).collect();
        s.push_str(&format!(
            "| {} | — | — | — | — | — | — | — | — | FAILED: {} | — |\n",
            label(m),
            e.replace('|', "\\|").replace('\n', " ")
        ));
    }
    s.push_str(
        "\nCPU s = client processes (getrusage RUSAGE_CHILDREN) + every process of both clusters \
         (/proc/<pid>/stat under each postmaster, incl. exited backends reaped by it). \
         Peak RSS: the largest single client process (wait4 ru_maxrss); Σ PSS: sampled every 50 ms \
         over all client processes at once. Ratios > 1: ours is slower/uses more. With several \
         rounds (methods run in rotation) each row is the method's median round.",
    );
    s
}
