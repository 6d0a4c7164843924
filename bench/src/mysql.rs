//! MariaDB → PostgreSQL: one generated table (int primary key + bigint, decimal, double,
//! varchar, datetime, date, tinyint, text) on a throwaway MariaDB, loaded into empty databases
//! of a throwaway PostgreSQL by seren-replicator (native, JSONB with and without its GIN index),
//! by pgloader and by a raw
//! `mariadb --batch | psql COPY` pipe (no indexes: the floor), in one run.
//!
//! Usage: `seren-bench mysql [ROWS]` (default 1,000,000).

use super::{count_arg, createdb, have, loadavg, measure, our_binary, print_report, Measure};
use anyhow::{bail, Context, Result};
use seren_replicator::throwaway::ThrowawayPg;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DB: &str = "src";
const TABLE: &str = "items";

/// A throwaway MariaDB (recipe in /work/shared/TESTING.md); killed by PID when dropped.
struct Mariadb {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Mariadb {
    fn start() -> Result<Mariadb> {
        let dir = tempfile::Builder::new()
            .prefix("seren-bench-mdb.")
            .tempdir_in("/tmp")?;
        let data = dir.path().join("data");
        let out = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--user=root"])
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .output()
            .context("mariadb-install-db (apt-get install mariadb-server)")?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr));
        }
        for _attempt in 0..5 {
            let port = free_port()?;
            let d = dir.path();
            let mut child = Command::new("mariadbd")
                .args(["--no-defaults", "--user=root", "--bind-address=127.0.0.1"])
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--port={port}"))
                .arg(format!("--socket={}", d.join("mysqld.sock").display()))
                .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
                .arg(format!("--log-error={}", d.join("error.log").display()))
                .arg(format!("--log-bin={}", data.join("binlog").display()))
                .args([
                    "--server-id=1",
                    "--binlog-format=ROW",
                    "--binlog-row-image=FULL",
                ])
                .args(["--binlog-row-metadata=FULL", "--innodb-buffer-pool-size=1G"])
                .args(["--innodb-flush-log-at-trx-commit=0", "--sync-binlog=0"])
                .args(["--character-set-server=utf8mb4"])
                .args(["--collation-server=utf8mb4_unicode_ci"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("mariadbd")?;
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken, most likely: try another
                }
                let ping = Command::new("mariadb-admin")
                    .args(["--no-defaults", "-h127.0.0.1", "-uroot"])
                    .arg(format!("-P{port}"))
                    .arg("ping")
                    .output();
                if ping.is_ok_and(|o| o.status.success()) {
                    return Ok(Mariadb {
                        child,
                        port,
                        _dir: dir,
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        bail!("MariaDB did not start")
    }

    fn client(&self) -> Command {
        let mut c = Command::new("mariadb");
        c.args(["--no-defaults", "--default-character-set=utf8mb4"])
            .args(["-h127.0.0.1", "-uroot", "-N", "-B"])
            .arg(format!("-P{}", self.port));
        c
    }

    fn sql(&self, db: &str, sql: &str) -> Result<String> {
        let out = self.client().args(["-e", sql, db]).output()?;
        if !out.status.success() {
            bail!(
                "mariadb failed on {sql}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// Server-side generation from the Sequence engine (`seq_1_to_N`).
fn generate_sql(rows: u64) -> String {
    format!(
        "CREATE TABLE {TABLE} (id int PRIMARY KEY, big bigint NOT NULL, amount decimal(12,2), \
         dbl double, name varchar(100), at datetime, day date, flag tinyint, note text); \
         INSERT INTO {TABLE} SELECT seq, seq * 7919 % 1000000007 * 1000, (seq * 37 % 10000000) / 100, \
         seq * 1.000001e0 + 0.5, concat('name-', seq % 100000, '-', left(md5(seq), 4 + seq % 28)), \
         timestamp'2020-01-01 00:00:00' + interval seq * 13 second, \
         date'2000-01-01' + interval seq % 10000 day, seq % 3, \
         if(seq % 10 = 0, NULL, left(concat(md5(seq), md5(seq + 1)), 40 + seq % 21)) \
         FROM seq_1_to_{rows}; ANALYZE TABLE {TABLE}"
    )
}

/// `seren-bench mysql [ROWS]`.
pub fn run(arg: Option<&String>) -> Result<()> {
    let rows = count_arg(arg, 1_000_000)?;
    if !have("mariadbd") {
        bail!("mariadbd not installed (apt-get install mariadb-server)");
    }
    let bin = our_binary()?;
    let mdb = Mariadb::start()?;
    let started = Instant::now();
    eprintln!("generating {rows} rows in MariaDB …");
    mdb.sql("", &format!("CREATE DATABASE {DB}"))?;
    mdb.sql(DB, &generate_sql(rows))?;
    // pgloader needs a user with mysql_native_password (root uses unix_socket/none here).
    mdb.sql(
        "",
        "CREATE USER bench@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('bench'); \
         GRANT ALL ON *.* TO bench@'%'",
    )?;
    let size = mdb.sql(
        "",
        &format!(
            "SELECT data_length, count(*) FROM information_schema.tables, {DB}.{TABLE} \
             WHERE table_schema = '{DB}' AND table_name = '{TABLE}'"
        ),
    )?;
    let mut f = size.split_whitespace();
    let data_mb = f.next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 1e6;
    let have_rows: u64 = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    if have_rows != rows {
        bail!("generated {have_rows} rows, wanted {rows}");
    }
    eprintln!(
        "generated in {:.1} s ({data_mb:.0} MB InnoDB data)",
        started.elapsed().as_secs_f64()
    );

    let pg = ThrowawayPg::start(&["shared_buffers=512MB", "max_wal_size=4GB"])?;
    let src = format!("mysql://root@127.0.0.1:{}/{DB}", mdb.port);
    let shown_src = "mysql://root@127.0.0.1:$PORT/src";
    let mut results: Vec<Measure> = Vec::new();
    let mut loads = Vec::new();
    let runs: [(&str, &[&str]); 3] = [
        ("native", &["--mode", "native"]),
        ("jsonb", &["--mode", "jsonb"]),
        ("jsonb_nogin", &["--mode", "jsonb", "--gin-index", "none"]),
    ];
    for (name, flags) in runs {
        let url = createdb(&pg, &format!("ours_{name}"))?;
        let shown = format!(
            "seren-replicator init --source {shown_src} --target $PG/ours_{name} {} -y -q",
            flags.join(" ")
        );
        let mut m = measure(
            &format!("seren-replicator {}", flags.join(" ")),
            &shown,
            Command::new(&bin)
                .args(["init", "--source", &src, "--target", &url, "-y", "-q"])
                .args(flags),
        )?;
        loads.push(format!("{name}: {}", loadavg()));
        m.note = super::count_note(&url, TABLE, rows);
        eprintln!("  {}: {:.2} s, {}", m.name, m.seconds, m.note);
        results.push(m);
    }
    if have("pgloader") {
        let url = createdb(&pg, "pgloader")?;
        let log = std::env::temp_dir().join(format!("seren-bench-pgloader-{}.log", mdb.port));
        let mut m = measure(
            "pgloader",
            "pgloader mysql://bench:bench@127.0.0.1:$PORT/src $PG/pgloader",
            Command::new("pgloader")
                .arg(format!("mysql://bench:bench@127.0.0.1:{}/{DB}", mdb.port))
                .arg(&url)
                .current_dir(std::env::temp_dir())
                .stderr(std::fs::File::create(&log)?),
        )?;
        loads.push(format!("pgloader: {}", loadavg()));
        m.note = super::count_note(&url, TABLE, rows);
        eprintln!(
            "  pgloader: {:.2} s, {} (log {})",
            m.seconds,
            m.note,
            log.display()
        );
        results.push(m);
    } else {
        eprintln!("pgloader not installed (apt-get install pgloader): skipped");
    }
    let url = createdb(&pg, "rawpipe")?;
    super::psql_query(
        &url,
        &format!(
            "CREATE TABLE {TABLE} (id integer, big bigint, amount numeric(12,2), \
             dbl double precision, name varchar(100), at timestamp, day date, flag smallint, \
             note text)"
        ),
    )?;
    let select = format!("SELECT * FROM {TABLE}");
    let copy = format!("COPY {TABLE} FROM STDIN (FORMAT text, NULL 'NULL')");
    let pipe = format!(
        "mariadb --no-defaults -h127.0.0.1 -P{} -uroot --batch --raw -N --quick -e \"{select}\" {DB} \
         | psql -X -q -d '{url}' -c \"{copy}\"",
        mdb.port
    );
    let mut m = measure(
        "raw mariadb → psql COPY pipe (no indexes)",
        &pipe
            .replace(&url, "$PG/rawpipe")
            .replace(&format!("-P{}", mdb.port), "-P$PORT"),
        Command::new("sh").args(["-c", &pipe]),
    )?;
    loads.push(format!("raw: {}", loadavg()));
    m.note = super::count_note(&url, TABLE, rows);
    results.push(m);
    drop(pg);
    drop(mdb);

    println!(
        "MariaDB → PostgreSQL, {rows} rows × 9 columns, {data_mb:.0} MB InnoDB data; \
         load average after each run: {}",
        loads.join("; ")
    );
    print_report(
        "rows",
        rows,
        data_mb,
        &results,
        "pgloader",
        true,
        serde_json::json!({"loadavg": loads}),
    );
    Ok(())
}
