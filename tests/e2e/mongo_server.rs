//! A throwaway MongoDB-wire server (SecantusDB) for the tests: one per test binary, started on
//! first use in its own temp dir on a port it picks itself, stopped by PID when the binary exits.
//!
//! The server is found as: `$SECANTUSD` (path to `secantusd-py`), else
//! `<workspace>/target/secantus-venv/bin/secantusd-py`, else `secantusd-py` on `PATH`. Without
//! one the tests fail, saying how to install it. (Also used by `connectors/mongodb`'s tests.)

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How to install the server, for the failure message.
const INSTALL: &str = "python3 -m venv target/secantus-venv && \
                       target/secantus-venv/bin/pip install 'SecantusDB==0.7.0b3'";

/// The shared server: its process and its directory.
struct Server {
    _own: OwnServer,
    _dir: tempfile::TempDir,
}

static RUNNING: Mutex<Vec<Server>> = Mutex::new(Vec::new());

/// The `secantusd-py` executable.
fn executable() -> PathBuf {
    if let Some(path) = std::env::var_os("SECANTUSD") {
        return PathBuf::from(path);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for dir in manifest.ancestors() {
        let candidate = dir.join("target/secantus-venv/bin/secantusd-py");
        if candidate.is_file() {
            return candidate;
        }
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("secantusd-py"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "the MongoDB tests need the SecantusDB test server (secantusd-py): install it in the \
             workspace with `{INSTALL}`, or set SECANTUSD to its path"
        )
    })
}

/// Start a new server; returns its port. It lives until the test binary exits.
pub fn start_server() -> u16 {
    static STOP_AT_EXIT: std::sync::Once = std::sync::Once::new();
    extern "C" fn stop_all() {
        let servers = std::mem::take(&mut *RUNNING.lock().unwrap_or_else(|e| e.into_inner()));
        drop(servers);
    }
    STOP_AT_EXIT.call_once(|| unsafe {
        libc::atexit(stop_all);
    });
    let dir = tempfile::Builder::new()
        .prefix("mongotest.")
        .tempdir()
        .expect("temp dir");
    let server = OwnServer::start(&[], &dir.path().join("data"));
    let port = server.port;
    RUNNING.lock().unwrap().push(Server {
        _own: server,
        _dir: dir,
    });
    port
}

/// A server a test starts with its own flags and stops (by PID) when it drops it.
pub struct OwnServer {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl OwnServer {
    /// Start `secantusd-py` with `flags`, its data in `data` (reopened intact by a later start).
    pub fn start(flags: &[&str], data: &std::path::Path) -> OwnServer {
        let exe = executable();
        let log = data.with_extension("log");
        let child = Command::new(&exe)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(flags)
            .arg("--storage-path")
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", exe.display()));
        let mut server = OwnServer { child, port: 0 };
        let started = Instant::now();
        loop {
            let mut text = String::new();
            if let Ok(mut f) = std::fs::File::open(&log) {
                let _ = f.read_to_string(&mut text);
            }
            let port = text.lines().find_map(|l| {
                l.split("secantus listening on 127.0.0.1:")
                    .nth(1)
                    .and_then(|p| p.trim().parse::<u16>().ok())
            });
            if let Some(port) = port {
                server.port = port;
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("SecantusDB exited ({status}) before listening:\n{text}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "SecantusDB did not start listening within 60 s:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl OwnServer {
    /// Stop it with SIGTERM and wait, so that it writes its data out (a kill may lose recent
    /// writes).
    pub fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Port of the server shared by every test of this binary.
pub fn mongo_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(start_server)
}

/// URI of database `db` on the shared server.
pub fn mongo_uri(db: &str) -> String {
    format!(
        "mongodb://127.0.0.1:{}/{db}?directConnection=true",
        mongo_port()
    )
}

/// A database name no other test uses.
pub fn fresh_mongo_db() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "t{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
