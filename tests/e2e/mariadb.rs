//! A throwaway MariaDB server for the end-to-end tests: one per test binary, started on first
//! use in its own temp dir on a free port (recipe in TESTING.md), stopped by PID at exit.

use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    dir: tempfile::TempDir,
}

static RUNNING: Mutex<Vec<Server>> = Mutex::new(Vec::new());

extern "C" fn stop_all() {
    let servers = std::mem::take(&mut *RUNNING.lock().unwrap_or_else(|e| e.into_inner()));
    for mut s in servers {
        let _ = s.child.kill();
        let _ = s.child.wait();
        drop(s.dir);
    }
}

/// Port of the MariaDB server shared by this test binary (binlog ROW, FULL image and metadata).
pub fn port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| start(&[]).unwrap_or_else(|e| panic!("start MariaDB: {e}")))
}

/// Another server for this test binary, its binlog settings overridden by `settings` (e.g.
/// `--binlog-format=MIXED`); returns its port.
pub fn server_with(settings: &[&str]) -> u16 {
    start(settings).unwrap_or_else(|e| panic!("start MariaDB with {settings:?}: {e}"))
}

fn start(settings: &[&str]) -> Result<u16, String> {
    static STOP_AT_EXIT: std::sync::Once = std::sync::Once::new();
    STOP_AT_EXIT.call_once(|| unsafe {
        libc::atexit(stop_all);
    });
    let dir = tempfile::Builder::new()
        .prefix("mdbtest.")
        .tempdir_in("/tmp")
        .map_err(|e| e.to_string())?;
    let data = dir.path().join("data");
    let out = Command::new("mariadb-install-db")
        .args([
            "--no-defaults",
            "--user=root",
            "--auth-root-authentication-method=normal",
        ])
        .args(["--skip-test-db", "--innodb-log-file-size=8M"])
        .arg(format!("--datadir={}", data.display()))
        .output()
        .map_err(|e| format!("mariadb-install-db: {e} (apt-get install mariadb-server)"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    for _attempt in 0..5 {
        let port = super::harness::free_port();
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
            .args([
                "--binlog-row-metadata=FULL",
                "--innodb-buffer-pool-size=64M",
            ])
            .args(["--innodb-flush-log-at-trx-commit=0", "--sync-binlog=0"])
            .args([
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci",
            ])
            .args(settings)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("mariadbd: {e}"))?;
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
                RUNNING.lock().unwrap().push(Server { child, dir });
                return Ok(port);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    Err("MariaDB did not start (see error.log)".into())
}

/// Run SQL through the `mariadb` client as root on database `db` (empty: none); returns
/// tab-separated rows without headers.
pub fn sql(db: &str, sql: &str) -> String {
    sql_on(port(), db, sql)
}

/// [`sql`] on the server at `port`.
pub fn sql_on(port: u16, db: &str, sql: &str) -> String {
    let mut c = Command::new("mariadb");
    c.args([
        "--no-defaults",
        "--default-character-set=utf8mb4",
        "-h127.0.0.1",
        "-uroot",
    ])
    .args(["-N", "-B"])
    .arg(format!("-P{port}"))
    .arg("-e")
    .arg(sql);
    if !db.is_empty() {
        c.arg(db);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "mariadb failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

/// A fresh database with a random name: (source URL as root, name).
pub fn fresh_db() -> (String, String) {
    let name = format!("m_{:016x}", rand::random::<u64>());
    sql("", &format!("CREATE DATABASE {name}"));
    (url("root", "", &name), name)
}

/// `mysql://user:password@127.0.0.1:PORT/db`.
pub fn url(user: &str, password: &str, db: &str) -> String {
    let auth = match password {
        "" => user.to_string(),
        p => format!("{user}:{p}"),
    };
    format!("mysql://{auth}@127.0.0.1:{}/{db}", port())
}
