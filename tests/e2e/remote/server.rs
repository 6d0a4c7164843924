//! The job server under test: a `serve` process with its files in a temp dir, a minimal HTTP
//! client, and the fixtures the remote tests share.

use crate::harness::{cli, free_port, output, Background};
use rusqlite::Connection;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The password `pw_url` puts in URLs (percent-encoded there).
pub const PASSWORD_URL: &str = "Pw-9f3kq%21x";
pub const TOKEN: &str = "t0ken-for-remote-tests";

/// A running `serve`, its token, key and state kept in `dir` (so a restart finds them).
pub struct JobServer {
    bg: Option<Background>,
    pub port: u16,
    dir: PathBuf,
}

impl JobServer {
    /// Start a server on a free port with its files in `dir`.
    pub fn start(dir: &Path) -> JobServer {
        Self::start_on(dir, free_port())
    }

    /// Start a server on `port` with its files in `dir`.
    pub fn start_on(dir: &Path, port: u16) -> JobServer {
        let state = dir.join("state.sqlite");
        Self::start_with(dir, port, state.to_str().unwrap())
    }

    /// Start a server on `port`, its token and key in `dir`, its jobs in `state`.
    pub fn start_with(dir: &Path, port: u16, state: &str) -> JobServer {
        std::fs::write(
            dir.join("tokens"),
            format!("# clients\nother-token\n{TOKEN}\n"),
        )
        .unwrap();
        if !dir.join("key").exists() {
            std::fs::write(dir.join("key"), rand::random::<[u8; 32]>()).unwrap();
        }
        let bg = Background::start(&[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--state",
            state,
            "--token-file",
            dir.join("tokens").to_str().unwrap(),
            "--key-file",
            dir.join("key").to_str().unwrap(),
            "--kill-grace",
            "10s",
        ]);
        bg.wait_until("the server listening", Duration::from_secs(30), || {
            bg.output().contains("listening on http://")
        });
        JobServer {
            bg: Some(bg),
            port,
            dir: dir.to_path_buf(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything the server printed.
    pub fn output(&self) -> String {
        self.bg.as_ref().map(|b| b.output()).unwrap_or_default()
    }

    /// `kill -9`, as a crash would.
    pub fn kill(&mut self) -> String {
        let out = self.output();
        if let Some(b) = self.bg.take() {
            b.kill();
        }
        out
    }

    /// A request with the right token.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        http(self.port, method, path, Some(TOKEN), body)
    }

    /// Poll job `id` until it has finished; returns it.
    pub fn wait_finished(&self, id: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let (code, job) = self.call("GET", &format!("/jobs/{id}"), None);
            assert_eq!(code, 200, "{job}");
            if !matches!(job["status"].as_str(), Some("queued" | "running")) {
                return job;
            }
            assert!(
                started.elapsed() < limit,
                "job {id} not finished after {limit:?}: {job}\nserver:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The raw bytes of every file of the state store (database and any journal), as text.
    pub fn state_bytes(&self) -> String {
        let mut all = String::new();
        for e in std::fs::read_dir(&self.dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("state.sqlite") {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()));
            }
        }
        all
    }
}

impl Drop for JobServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP/1.1 request (`Connection: close`); returns the status and the JSON body (`Null`
/// when the body is not JSON).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, mut payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let dechunked;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = payload;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        dechunked = out;
        payload = &dechunked;
    }
    (status, serde_json::from_str(payload).unwrap_or(Value::Null))
}

/// A SQLite file with `customers` (`n` rows) and `orders` (`2n` rows).
pub fn sqlite_source(dir: &Path, n: u64) -> String {
    let p = dir.join("shop.db");
    let c = Connection::open(&p).unwrap();
    c.execute_batch(&format!(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, balance REAL);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER, note TEXT);
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
         INSERT INTO customers SELECT i, 'customer ' || i, i * 1.5 FROM s;
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n} * 2)
         INSERT INTO orders SELECT i, i % {n}, 'order note ' || i FROM s;"
    ))
    .unwrap();
    p.display().to_string()
}

/// Run the CLI with the job server's token in `SEREN_REMOTE_TOKEN`; (code, stdout, stderr).
pub fn run_remote(args: &[&str], token: &str) -> (i32, String, String) {
    output(
        cli()
            .args(args)
            .env("SEREN_REMOTE_TOKEN", token)
            .output()
            .unwrap(),
    )
}
