//! Connection settings for child processes (`pg_dump`, `psql`, …) that never expose the
//! password: not on the command line (visible in `ps`), not in the environment (readable in
//! `/proc/PID/environ` by the same user and inherited by grandchildren), only in a private
//! password file that exists while the child runs.

use crate::conn::PgTarget;
use crate::tls::Verify;
use pipeline::{Error, ErrorKind, Result};
use std::fs::Permissions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio_postgres::config::{Host, SslMode, TargetSessionAttrs};

/// Where OpenSSL-based systems keep their trusted roots; libpq older than 16 has no
/// `sslrootcert=system`, so the parent's "system roots" default is passed as a file.
const SYSTEM_ROOTS: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// How a child process (pg_dump, psql, …) connects to a server, without ever putting the
/// password on its command line or in its environment: a libpq conninfo string with no
/// password, `PG*` settings for TLS (`PGSSLMODE`, `PGSSLROOTCERT`), and the password in a
/// private temporary pgpass file (mode 0600 from its creation, in a fresh 0700 temp dir) passed
/// as `PGPASSFILE`. The file is removed on drop: keep the `ChildConn` alive until the child
/// has exited.
pub struct ChildConn {
    conninfo: String,
    env: Vec<(&'static str, String)>,
    passfile: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for ChildConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildConn")
            .field("conninfo", &self.conninfo)
            .field("env", &self.env)
            .field("passfile", &self.passfile)
            .finish()
    }
}

impl PgTarget {
    /// `key='value'` pairs naming the server, user and database (`dbname`, or this
    /// target's): host, hostaddr, port, user, dbname. Never a password.
    pub(crate) fn address_conninfo(&self, dbname: Option<&str>) -> Vec<String> {
        let config = &self.config;
        let mut parts = Vec::new();
        let mut add = |key: &str, value: &str| parts.push(format!("{key}={}", quote(value)));
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(h) => h.clone(),
                Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        if !hosts.is_empty() {
            add("host", &hosts.join(","));
        }
        let addrs: Vec<String> = config
            .get_hostaddrs()
            .iter()
            .map(|a| a.to_string())
            .collect();
        if !addrs.is_empty() {
            add("hostaddr", &addrs.join(","));
        }
        let ports: Vec<String> = config.get_ports().iter().map(|p| p.to_string()).collect();
        if !ports.is_empty() {
            add("port", &ports.join(","));
        }
        add("user", self.user());
        add("dbname", dbname.unwrap_or(self.dbname()));
        parts
    }

    /// Settings for a child process connecting to this server, to database `dbname` (or the
    /// target's own database when None).
    pub fn child_conn(&self, dbname: Option<&str>) -> Result<ChildConn> {
        let config = &self.config;
        let mut parts = self.address_conninfo(dbname);
        let mut add = |key: &str, value: &str| parts.push(format!("{key}={}", quote(value)));
        if let Some(name) = config.get_application_name() {
            add("application_name", name);
        }
        if let Some(options) = config.get_options() {
            add("options", options);
        }
        if let Some(t) = config.get_connect_timeout().filter(|t| t.as_secs() > 0) {
            // libpq treats values below 2 seconds as 2.
            add("connect_timeout", &t.as_secs().to_string());
        }
        match config.get_target_session_attrs() {
            TargetSessionAttrs::ReadWrite => add("target_session_attrs", "read-write"),
            TargetSessionAttrs::ReadOnly => add("target_session_attrs", "read-only"),
            _ => {}
        }

        let mut env = vec![("PGSSLMODE", ssl_mode(self).to_string())];
        match (&self.tls.root_cert, self.tls.verify) {
            (Some(path), _) => env.push(("PGSSLROOTCERT", path.display().to_string())),
            (None, Verify::Ca | Verify::Full) => {
                let roots = std::env::var_os("SSL_CERT_FILE")
                    .map(PathBuf::from)
                    .into_iter()
                    .chain(SYSTEM_ROOTS.iter().map(PathBuf::from))
                    .find(|p| p.is_file())
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Config,
                            self.side,
                            format!(
                                "{}: sslmode verifies the server certificate but no system \
                                 certificate bundle was found for the PostgreSQL client tools; \
                                 add sslrootcert=/path/to/ca.pem to the connection string",
                                self.display()
                            ),
                        )
                    })?;
                env.push(("PGSSLROOTCERT", roots.display().to_string()));
            }
            (None, Verify::None) => {}
        }

        let io_error = |what: &str, e: std::io::Error| {
            Error::new(
                ErrorKind::Io,
                self.side,
                format!("{what} for the PostgreSQL client tools: {e}"),
            )
            .with_cause(e)
        };
        sweep_stale_passfiles();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PASSFILE_PREFIX}{}.", std::process::id()))
            .permissions(Permissions::from_mode(0o700))
            .tempdir()
            .map_err(|e| io_error("creating a private temporary directory", e))?;
        let passfile = dir.path().join("pgpass");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&passfile)
            .map_err(|e| io_error("creating a private password file", e))?;
        if let Some(password) = config.get_password() {
            if password.contains(&b'\n') || password.contains(&b'\r') {
                return Err(Error::new(
                    ErrorKind::Config,
                    self.side,
                    format!(
                        "{}: the password contains a line break, which the PostgreSQL client \
                         tools cannot read from a password file; change the password",
                        self.display()
                    ),
                ));
            }
            // One wildcard line: the file is private to this child and this server.
            let mut line = b"*:*:*:*:".to_vec();
            for &b in password {
                if b == b':' || b == b'\\' {
                    line.push(b'\\');
                }
                line.push(b);
            }
            line.push(b'\n');
            file.write_all(&line)
                .and_then(|()| file.flush())
                .map_err(|e| io_error("writing the private password file", e))?;
        }
        env.push(("PGPASSFILE", passfile.display().to_string()));
        Ok(ChildConn {
            conninfo: parts.join(" "),
            env,
            passfile,
            _dir: dir,
        })
    }
}

impl ChildConn {
    /// The conninfo (`host=… port=… user=… dbname=…` with values quoted per libpq rules),
    /// never containing a password.
    pub fn conninfo(&self) -> &str {
        &self.conninfo
    }

    /// The private password file passed as `PGPASSFILE` (empty when there is no password).
    pub fn passfile(&self) -> &Path {
        &self.passfile
    }

    /// Set the environment on `cmd`: every `PG*` variable inherited from the parent is removed
    /// (`PGPASSWORD`, `PGHOST`, `PGSERVICE`, … so nothing leaks or overrides the conninfo),
    /// then `PGPASSFILE`, `PGSSLMODE` and `PGSSLROOTCERT` are set.
    pub fn apply(&self, cmd: &mut tokio::process::Command) {
        for (name, _) in std::env::vars_os() {
            if name.as_encoded_bytes().starts_with(b"PG") {
                cmd.env_remove(&name);
            }
        }
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
    }
}

/// libpq's `sslmode` for the target's TLS settings.
/// Prefix of the private directories holding a child's password file; the creating process's
/// id follows, so a later run can tell leftovers of a killed process from live ones.
const PASSFILE_PREFIX: &str = "seren-pgpass.";

/// Remove password-file directories left in the temp directory by processes that no longer
/// run (a kill -9 skips the cleanup on drop). Only this user's directories with our prefix
/// and a dead creator are touched.
fn sweep_stale_passfiles() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PASSFILE_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        let mine = entry
            .metadata()
            // SAFETY: getuid has no preconditions and cannot fail.
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == unsafe { libc::getuid() })
            .unwrap_or(false);
        if !alive && mine {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

pub(crate) fn ssl_mode(target: &PgTarget) -> &'static str {
    match (target.tls.mode, target.tls.verify) {
        (SslMode::Disable, _) => "disable",
        (_, Verify::Full) => "verify-full",
        (_, Verify::Ca) => "verify-ca",
        (SslMode::Require, Verify::None) => "require",
        _ => "prefer",
    }
}

/// A conninfo value in single quotes, `\` and `'` escaped with a backslash (libpq rules).
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline::Side;

    #[test]
    fn conninfo_is_quoted_and_password_is_only_in_the_file() {
        let t = PgTarget::parse(
            "postgresql://al%27ice:s3cr%3At@db.example:6543/my%20db?sslmode=require",
            Side::Source,
        )
        .unwrap();
        let c = t.child_conn(None).unwrap();
        assert_eq!(
            c.conninfo(),
            "host='db.example' port='6543' user='al\\'ice' dbname='my db' \
             application_name='seren-replicator'"
        );
        assert!(!c.conninfo().contains("s3cr"));
        assert!(c.env.iter().all(|(_, v)| !v.contains("s3cr")));
        assert!(c.env.contains(&("PGSSLMODE", "require".into())));
        let meta = std::fs::metadata(c.passfile()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dir = std::fs::metadata(c.passfile().parent().unwrap()).unwrap();
        assert_eq!(dir.permissions().mode() & 0o777, 0o700);
        assert_eq!(
            std::fs::read_to_string(c.passfile()).unwrap(),
            "*:*:*:*:s3cr\\:t\n"
        );
        let other = t.child_conn(Some("postgres")).unwrap();
        assert!(other.conninfo().contains("dbname='postgres'"));
        let path = c.passfile().to_path_buf();
        drop(c);
        assert!(!path.exists());
    }

    #[test]
    fn apply_removes_inherited_pg_variables() {
        let t = PgTarget::parse("host=h user=u dbname=d sslmode=disable", Side::Target).unwrap();
        let c = t.child_conn(None).unwrap();
        let mut cmd = tokio::process::Command::new("true");
        c.apply(&mut cmd);
        let envs: Vec<_> = cmd.as_std().get_envs().collect();
        assert!(envs
            .iter()
            .any(|(k, v)| *k == "PGSSLMODE" && *v == Some("disable".as_ref())));
        assert!(envs.iter().any(|(k, _)| *k == "PGPASSFILE"));
        assert_eq!(std::fs::read(c.passfile()).unwrap(), b"");
    }
}
