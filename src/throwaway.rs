//! A throwaway local PostgreSQL cluster (initdb in a temp dir, a free port, stopped by PID when
//! dropped), built from the server binaries installed on this machine. Used by `demo` and by the
//! test suite.

use anyhow::{bail, Context, Result};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running cluster; dropping it stops the server and removes its directory.
pub struct ThrowawayPg {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    /// The server options `pg_ctl start` was given (port, socket directory, settings).
    opts: String,
}

/// The newest installed PostgreSQL server binary directory.
pub fn server_bin_dir() -> Result<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.join("initdb").exists() {
            return Ok(p);
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    dirs.retain(|p| p.join("initdb").exists());
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().context(
        "no PostgreSQL server binaries (initdb) found; install them with \
         `apt-get install postgresql`, or pass --target with an existing database",
    )
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// `initdb` refuses to run as root: run server binaries as `postgres` when we are root.
fn server_command(bin: &Path) -> Command {
    if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl ThrowawayPg {
    /// Start a cluster with `wal_level=logical`, trust auth and the extra `-c` `settings`.
    pub fn start(settings: &[&str]) -> Result<ThrowawayPg> {
        let bin = server_bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("seren-pg.")
            .tempdir_in("/tmp")?
            .keep();
        if running_as_root() {
            let ok = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&dir)
                .status()?
                .success();
            if !ok {
                bail!("cannot hand {} to the postgres user", dir.display());
            }
        }
        let data = dir.join("data");
        let out = server_command(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ])
            .output()
            .context("running initdb")?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        for _ in 0..5 {
            let port = free_port()?;
            let mut opts = format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k {} -c wal_level=logical \
                 -c max_replication_slots=10 -c max_wal_senders=10 -c max_connections=100",
                dir.display()
            );
            for s in settings {
                opts.push_str(" -c ");
                opts.push_str(s);
            }
            if pg_ctl_start(&bin, &dir, &opts)? {
                return Ok(ThrowawayPg {
                    port,
                    dir,
                    bin,
                    opts,
                });
            }
            // Most likely another process took the port between probe and bind: try another.
        }
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        bail!("could not start a throwaway PostgreSQL: {}", log.trim())
    }

    /// URL of database `db` as the `postgres` superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The cluster's directory (data, socket and server log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stop the server as an administrator would (fast shutdown: sessions are terminated),
    /// keep it down for `down`, then start it again with the same data, port and settings.
    pub fn restart(&self, down: std::time::Duration) -> Result<()> {
        let stopped = server_command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .status()?
            .success();
        if !stopped {
            bail!(
                "pg_ctl stop failed for the cluster in {}",
                self.dir.display()
            );
        }
        std::thread::sleep(down);
        if !pg_ctl_start(&self.bin, &self.dir, &self.opts)? {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            bail!("could not restart the throwaway PostgreSQL: {}", log.trim());
        }
        Ok(())
    }

    /// Stop the server (immediate shutdown) and remove its directory.
    pub fn stop(&self) {
        let _ = server_command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `pg_ctl start` on the cluster in `dir` with server options `opts`, waiting until it accepts
/// connections; false when it did not start (most likely its port was taken).
fn pg_ctl_start(bin: &Path, dir: &Path, opts: &str) -> Result<bool> {
    Ok(server_command(&bin.join("pg_ctl"))
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-l")
        .arg(dir.join("server.log"))
        .args(["-w", "-t", "30", "-o", opts, "start"])
        .stdout(Stdio::null())
        .status()?
        .success())
}

/// Run `sql` through `psql` against `url` (no `PGPASSWORD` from the environment); returns its
/// unaligned, tuples-only output, trimmed. For tests and demos.
pub fn psql(url: &str, sql: &str) -> Result<String> {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .env_remove("PGPASSWORD")
        .output()
        .context("running psql (install postgresql-client)")?;
    if !out.status.success() {
        bail!(
            "psql on {url} failed on {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}
