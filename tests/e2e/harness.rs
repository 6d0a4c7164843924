//! Throwaway servers for the end-to-end tests, started and stopped by the tests themselves.
//!
//! One PostgreSQL cluster per test binary (the product's own `ThrowawayPg`: initdb in a temp dir,
//! a free port, `wal_level=logical`), started on first use and stopped by PID when the binary
//! exits. Every test makes its own database with a random name, so tests share nothing.

use seren_replicator::throwaway::ThrowawayPg;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// Clusters started for this test binary, stopped (by PID) when it exits.
static RUNNING: Mutex<Vec<ThrowawayPg>> = Mutex::new(Vec::new());

/// Start a throwaway cluster that lives until the test binary exits; returns its port.
pub fn cluster_for_binary(what: &str) -> u16 {
    static STOP_AT_EXIT: std::sync::Once = std::sync::Once::new();
    extern "C" fn stop_all() {
        let clusters = std::mem::take(&mut *RUNNING.lock().unwrap_or_else(|e| e.into_inner()));
        drop(clusters);
    }
    STOP_AT_EXIT.call_once(|| unsafe {
        libc::atexit(stop_all);
    });
    let pg = ThrowawayPg::start(&[
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
    ])
    .unwrap_or_else(|e| panic!("start the {what} PostgreSQL: {e}"));
    let port = pg.port;
    RUNNING.lock().unwrap().push(pg);
    port
}

/// Port of the cluster shared by every test of this binary.
pub fn pg_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| cluster_for_binary("shared"))
}

/// A TCP port nothing listens on (probed, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// URL of database `db` on the shared cluster.
pub fn pg_url(db: &str) -> String {
    format!("postgresql://postgres@127.0.0.1:{}/{db}", pg_port())
}

/// Run SQL through `psql` on the shared cluster; returns unaligned, tuples-only output.
pub fn psql(db: &str, sql: &str) -> String {
    self::sql(&pg_url(db), sql)
}

/// Run SQL through `psql` against any URL; returns unaligned, tuples-only output (trimmed).
pub fn sql(url: &str, sql: &str) -> String {
    seren_replicator::throwaway::psql(url, sql).unwrap_or_else(|e| panic!("{e:#}"))
}

/// A new login role on the shared cluster (`attributes` such as `SUPERUSER`) that must
/// authenticate with scram-sha-256 and `password` from 127.0.0.1; other roles keep trust.
/// `pg_hba.conf` edits are serialised, so roles made by concurrent tests all take effect.
pub fn password_role(prefix: &str, password: &str, attributes: &str) -> String {
    static HBA: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _edit = HBA.lock().unwrap_or_else(|e| e.into_inner());
    let role = format!("{prefix}_{:08x}", rand::random::<u32>());
    psql(
        "postgres",
        &format!("CREATE ROLE {role} LOGIN {attributes} PASSWORD '{password}'"),
    );
    let hba = psql("postgres", "SHOW hba_file");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host all {role} 127.0.0.1/32 scram-sha-256\n{old}"),
    )
    .unwrap();
    psql("postgres", "SELECT pg_reload_conf()");
    std::thread::sleep(std::time::Duration::from_millis(300));
    role
}

/// A fresh database with a random name on the shared cluster: (url, name).
pub fn fresh_db() -> (String, String) {
    let name = format!("t_{:016x}", rand::random::<u64>());
    psql("postgres", &format!("CREATE DATABASE {name}"));
    (pg_url(&name), name)
}

/// The binary under test, with no PostgreSQL or MySQL environment leaking in from the machine
/// (a test that wants `PGPASSWORD` or `MYSQL_PWD` sets it on the returned command).
pub fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_seren-replicator"));
    for var in [
        "PGPASSWORD",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSFILE",
        "MYSQL_PWD",
        "RUST_LOG",
    ] {
        c.env_remove(var);
    }
    c.stdin(Stdio::null());
    c
}

/// Run the CLI with `args`; returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    output((cli().args(args).output()).unwrap())
}

/// Exit code, stdout and stderr of a finished command.
pub fn output(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run the CLI and assert it succeeded; returns stdout.
pub fn run_ok(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(
        code, 0,
        "command {args:?} failed\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

/// The CLI running in the background, its stdout and stderr going to a file (a pipe nobody
/// reads would block it).
pub struct Background {
    child: std::process::Child,
    log: tempfile::NamedTempFile,
}

impl Background {
    /// Start the CLI with `args`.
    pub fn start(args: &[&str]) -> Background {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = cli()
            .args(args)
            .stdout(Stdio::from(log.reopen().unwrap()))
            .stderr(Stdio::from(log.reopen().unwrap()))
            .spawn()
            .unwrap();
        Background { child, log }
    }

    /// What it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Kill it with SIGKILL, as a crash would.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Stop it with SIGTERM and assert it exited cleanly.
    pub fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "exited with {status}:\n{}", self.output());
    }

    /// Interrupt it with SIGINT, as Ctrl-C would; returns its exit code, how long it took to
    /// exit, and its output.
    pub fn interrupt(mut self) -> (i32, std::time::Duration, String) {
        let sent = std::time::Instant::now();
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        (status.code().unwrap_or(-1), sent.elapsed(), self.output())
    }

    /// Poll `done` until it holds, failing with the output after `limit`.
    pub fn wait_until(&self, what: &str, limit: std::time::Duration, done: impl Fn() -> bool) {
        let started = std::time::Instant::now();
        while !done() {
            assert!(
                started.elapsed() < limit,
                "{what} did not happen within {limit:?}; output:\n{}",
                self.output()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

/// A temp dir for source files, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("seren-test.")
        .tempdir_in("/tmp")
        .unwrap()
}
