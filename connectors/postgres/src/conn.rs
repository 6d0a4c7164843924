//! Connecting to PostgreSQL the way psql does: `postgresql://` URLs or `key=value` strings,
//! `PG*` environment defaults, `PGPASSWORD` and `~/.pgpass`, with every message redacted.

use crate::tls::Tls;
use pipeline::{Error, ErrorKind, Result, Side};
use std::path::PathBuf;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::{CancelToken, Client, Config};

/// Where and how to connect, and how to name the server in messages (never with a password).
#[derive(Clone)]
pub struct PgTarget {
    pub(crate) config: Config,
    pub(crate) tls: Tls,
    pub(crate) side: Side,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl PgTarget {
    /// Parse a libpq connection string (URL or `key=value`) for `side`, filling what it leaves
    /// out from `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD` and the password file.
    pub fn parse(conninfo: &str, side: Side) -> Result<PgTarget> {
        let (conninfo, tls) = Tls::extract(conninfo, side)?;
        let conninfo = conninfo.as_str();
        let mut config: Config = conninfo.parse().map_err(|e: tokio_postgres::Error| {
            Error::new(
                ErrorKind::Config,
                side,
                format!(
                    "invalid PostgreSQL connection string `{}`: {e}; expected \
                     postgresql://user:password@host:port/dbname or `host=… dbname=…`",
                    redact_conninfo(conninfo)
                ),
            )
        })?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if config.get_hosts().is_empty() {
            match env("PGHOST") {
                Some(h) => {
                    for host in h.split(',') {
                        config.host(host);
                    }
                }
                None => {
                    config.host("localhost");
                }
            }
        }
        if config.get_ports().is_empty() {
            if let Some(p) = env("PGPORT").and_then(|p| p.parse().ok()) {
                config.port(p);
            }
        }
        if config.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .unwrap_or_else(|| "postgres".into());
            config.user(user);
        }
        if config.get_dbname().is_none() {
            if let Some(db) = env("PGDATABASE") {
                config.dbname(db);
            }
        }
        if config.get_password().is_none() {
            if let Some(pw) = env("PGPASSWORD") {
                config.password(pw);
            } else if let Some(pw) = pgpass_lookup(&config) {
                config.password(pw);
            }
        }
        if config.get_application_name().is_none() {
            config.application_name(env("PGAPPNAME").as_deref().unwrap_or("seren-replicator"));
        }
        config.ssl_mode(tls.mode);
        Ok(PgTarget { config, tls, side })
    }

    /// `host:port/dbname` as user, for messages.
    pub fn display(&self) -> String {
        format!("{}@{}/{}", self.user(), self.host_port(), self.dbname())
    }

    /// The first host and port, e.g. `db.example.com:5432`.
    pub fn host_port(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) if h.contains(':') => format!("[{h}]"),
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        format!(
            "{host}:{}",
            self.config.get_ports().first().copied().unwrap_or(5432)
        )
    }

    /// The user name.
    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("postgres")
    }

    /// The database name (defaults to the user name, as in libpq).
    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or_else(|| self.user())
    }

    /// The same server and credentials, database `dbname`.
    pub fn with_dbname(&self, dbname: &str) -> PgTarget {
        let mut other = self.clone();
        other.config.dbname(dbname);
        other
    }

    /// Which side of the migration this server is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Open a connection; its driver task runs on the current tokio runtime.
    pub async fn connect(&self) -> Result<Client> {
        let (client, connection) = self
            .config
            .connect(self.tls.connector(self.side)?)
            .await
            .map_err(|e| self.connect_error(e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL connection closed");
            }
        });
        Ok(client)
    }

    /// A guard that cancels whatever statement `client` runs if it is dropped before
    /// [`CancelOnDrop::done`]: an abandoned index build stops on the server at once instead of
    /// running on and holding its locks.
    pub fn cancel_on_drop(&self, client: &Client) -> Result<CancelOnDrop> {
        Ok(CancelOnDrop {
            token: Some(client.cancel_token()),
            tls: self.tls.connector(self.side)?,
        })
    }

    /// Run `sql` on a connection of its own, cancelled on the server if this future is dropped
    /// first (an index build abandoned with the run); errors name `what`.
    pub async fn execute_alone(&self, what: &str, sql: &str) -> Result<()> {
        let client = self.connect().await?;
        let abandoned = self.cancel_on_drop(&client)?;
        client
            .batch_execute(sql)
            .await
            .map_err(|e| query_error(self.side, what, e))?;
        abandoned.done();
        Ok(())
    }

    fn connect_error(&self, e: tokio_postgres::Error) -> Error {
        let side = side_name(self.side);
        let at = self.host_port();
        let (kind, msg) = match e.code() {
            Some(c)
                if *c == SqlState::INVALID_PASSWORD
                    || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
            {
                (
                    ErrorKind::Auth,
                    format!(
                        "{side} PostgreSQL at {at} rejected user \"{}\": {}; check the password \
                     (in the URL, PGPASSWORD or ~/.pgpass) and pg_hba.conf",
                        self.user(),
                        db_message(&e)
                    ),
                )
            }
            Some(c) if *c == SqlState::INVALID_CATALOG_NAME => (
                ErrorKind::Connect,
                format!(
                    "database \"{db}\" does not exist on {side} PostgreSQL at {at}; create it \
                     first, e.g. `createdb -h {h} -p {p} -U {u} '{db}'` or CREATE DATABASE {q};",
                    db = self.dbname(),
                    h = at.rsplit_once(':').map_or(at.as_str(), |x| x.0),
                    p = at.rsplit_once(':').map_or("5432", |x| x.1),
                    u = self.user(),
                    q = crate::ddl::quote_ident(self.dbname()),
                ),
            ),
            _ if e.as_db_error().is_some() => (
                ErrorKind::Connect,
                format!(
                    "{side} PostgreSQL at {at} refused the connection: {}",
                    db_message(&e)
                ),
            ),
            _ if cause_chain(&e).contains("password missing") => (
                ErrorKind::Auth,
                format!(
                    "{side} PostgreSQL at {at} asks user \"{}\" for a password and none was \
                     given; put it in the URL, PGPASSWORD, ~/.pgpass or {}",
                    self.user(),
                    match self.side {
                        Side::Source => "--source-password-file",
                        _ => "--password-file",
                    }
                ),
            ),
            _ => (
                ErrorKind::Connect,
                format!(
                    "cannot connect to {side} PostgreSQL at {at}: {}; check the host and port \
                     and that the server accepts TCP connections",
                    cause_chain(&e)
                ),
            ),
        };
        Error::new(kind, self.side, msg).retryable(kind == ErrorKind::Connect)
    }
}

/// A query error on this server as a pipeline error with the server's message and hint.
pub fn query_error(side: Side, what: &str, e: tokio_postgres::Error) -> Error {
    let kind = match e.code() {
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => ErrorKind::Auth,
        Some(c) if c.code().starts_with("22") || c.code().starts_with("23") => {
            ErrorKind::Conversion
        }
        _ if e.is_closed() => ErrorKind::Connect,
        _ => ErrorKind::Query,
    };
    // Worth retrying: a lost connection, a serialization failure or deadlock, a server
    // shutting down or starting up.
    let transient = e.is_closed()
        || e.code().is_some_and(|c| {
            let c = c.code();
            c.starts_with("08") || c == "40001" || c == "40P01" || c.starts_with("57P")
        });
    let mut msg = format!("{what}: {}", db_message(&e));
    if kind == ErrorKind::Auth {
        msg.push_str(
            "; grant the privilege (e.g. GRANT CREATE ON DATABASE/SCHEMA … TO the user) or \
             connect as the owner",
        );
    }
    if let Some(hint) = e.code().and_then(resource_hint) {
        msg.push_str(hint);
    }
    Error::new(kind, side, msg).retryable(transient)
}

/// What to do when the server ran out of disk (SQLSTATE 53100) or hit a configured limit such
/// as `temp_file_limit`, which index builds count against (53400).
fn resource_hint(code: &SqlState) -> Option<&'static str> {
    match code.code() {
        "53100" => Some(
            "; the server's disk is full: free space on it (or move the database to a \
             tablespace with room), then run the command again (init from PostgreSQL resumes \
             where it stopped)",
        ),
        "53400" => Some(
            "; a server limit was reached (such as temp_file_limit): raise it, e.g. \
             ALTER SYSTEM SET temp_file_limit = -1 and SELECT pg_reload_conf(), then run the \
             command again (init from PostgreSQL resumes where it stopped)",
        ),
        _ => None,
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Source => "source",
        Side::Target => "target",
        Side::Local => "local",
    }
}

fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = db.message().to_string();
            if let Some(d) = db.detail() {
                m.push_str(&format!(" ({d})"));
            }
            if let Some(h) = db.hint() {
                m.push_str(&format!("; hint: {h}"));
            }
            m
        }
        None => cause_chain(e),
    }
}

fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// A connection string with any password replaced by `***`, safe to print.
pub fn redact_conninfo(conninfo: &str) -> String {
    // Any `scheme://` URL (not only PostgreSQL's: an unsupported `oracle://u:pw@h` is echoed in
    // the "no connector accepts" message) has its userinfo password blanked.
    let url_scheme = conninfo.split_once("://").and_then(|(scheme, rest)| {
        let valid = !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        valid.then(|| (&conninfo[..scheme.len() + 3], rest))
    });
    if let Some(rest) = url_scheme {
        let (scheme, rest) = rest;
        let (auth_end, _) = rest
            .char_indices()
            .find(|(_, c)| *c == '/' || *c == '?')
            .unwrap_or((rest.len(), ' '));
        let (authority, tail) = rest.split_at(auth_end);
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => {
                let user = userinfo.split_once(':').map_or(userinfo, |u| u.0);
                format!("{user}:***@{hosts}")
            }
            None => authority.to_string(),
        };
        let tail = redact_params(tail);
        return format!("{scheme}{authority}{tail}");
    }
    // key=value form: blank out the password value, quoted or not.
    let mut out = String::new();
    let mut rest = conninfo;
    while let Some(i) = rest.find("password") {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let after_key = &after["password".len()..];
        let trimmed = after_key.trim_start();
        if let Some(v) = trimmed.strip_prefix('=') {
            out.push_str("password=***");
            let v = v.trim_start();
            rest = if let Some(q) = v.strip_prefix('\'') {
                let mut end = q.len();
                let mut esc = false;
                for (j, c) in q.char_indices() {
                    if esc {
                        esc = false;
                    } else if c == '\\' {
                        esc = true;
                    } else if c == '\'' {
                        end = j + 1;
                        break;
                    }
                }
                &q[end.min(q.len())..]
            } else {
                let end = v.find(char::is_whitespace).unwrap_or(v.len());
                &v[end..]
            };
        } else {
            out.push_str("password");
            rest = after_key;
        }
    }
    out.push_str(rest);
    out
}

fn redact_params(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k == "password" => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{path}?{}", params.join("&"))
}

/// The password for `config` from the password file (`PGPASSFILE` or `~/.pgpass`), matching
/// host, port, database and user as libpq does (`*` wildcards, `\` escapes). Like libpq, a file
/// readable by group or others is ignored.
fn pgpass_lookup(config: &Config) -> Option<String> {
    let path = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    let meta = std::fs::metadata(&path).ok()?;
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "password file has group or world access; ignoring it (chmod 0600)");
            return None;
        }
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "localhost".into(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default();
    let db = config.get_dbname().unwrap_or(user);
    pgpass_match(&text, &host, &port, db, user)
}

/// The password of the first line of a pgpass file matching the connection fields.
pub fn pgpass_match(text: &str, host: &str, port: &str, db: &str, user: &str) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() != 5 {
            continue;
        }
        let ok = |pat: &str, val: &str| pat == "*" || pat == val;
        if ok(&fields[0], host)
            && ok(&fields[1], port)
            && ok(&fields[2], db)
            && ok(&fields[3], user)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().unwrap().push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

/// Sends a cancel request for its connection's running statement when dropped, unless
/// [`CancelOnDrop::done`] was called (see [`PgTarget::cancel_on_drop`]).
pub struct CancelOnDrop {
    token: Option<CancelToken>,
    tls: postgres_openssl::MakeTlsConnector,
}

impl CancelOnDrop {
    /// The work finished: nothing to cancel.
    pub fn done(mut self) {
        self.token = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let (Some(token), Ok(runtime)) = (self.token.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let tls = self.tls.clone();
        runtime.spawn(async move {
            if let Err(e) = token.cancel_query(tls).await {
                tracing::debug!(error = %e, "could not cancel an abandoned statement");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_url_and_keyvalue_passwords() {
        assert_eq!(
            redact_conninfo("postgresql://alice:s3cr%40t@db:5432/app?sslmode=disable&password=x"),
            "postgresql://alice:***@db:5432/app?sslmode=disable&password=***"
        );
        assert_eq!(redact_conninfo("postgres://db/app"), "postgres://db/app");
        assert_eq!(redact_conninfo("oracle://u:pw@h/db"), "oracle://u:***@h/db");
        let kv = redact_conninfo("host=db password='a b\\' c' user=alice");
        assert_eq!(kv, "host=db password=*** user=alice");
        assert!(!redact_conninfo("password = hunter2 host=x").contains("hunter2"));
    }

    #[test]
    fn pgpass_matching_follows_libpq() {
        let file = "# comment\nother:5432:*:bob:nope\ndb\\:x:*:app:alice:pa\\:ss\\\\w\n*:*:*:alice:fallback\n";
        assert_eq!(
            pgpass_match(file, "db:x", "5433", "app", "alice").as_deref(),
            Some("pa:ss\\w")
        );
        assert_eq!(
            pgpass_match(file, "elsewhere", "1", "z", "alice").as_deref(),
            Some("fallback")
        );
        assert_eq!(pgpass_match(file, "other", "5432", "z", "carol"), None);
    }

    #[test]
    fn resource_errors_say_what_to_do() {
        let disk = resource_hint(&SqlState::DISK_FULL).unwrap();
        assert!(disk.contains("disk is full") && disk.contains("free space"));
        let limit = resource_hint(&SqlState::CONFIGURATION_LIMIT_EXCEEDED).unwrap();
        assert!(limit.contains("raise it") && limit.contains("temp_file_limit"));
        assert_eq!(resource_hint(&SqlState::UNIQUE_VIOLATION), None);
    }

    #[test]
    fn display_never_shows_password() {
        let t = PgTarget::parse(
            "postgresql://alice:hunter2@127.0.0.1:6543/app",
            Side::Target,
        )
        .unwrap();
        assert_eq!(t.display(), "alice@127.0.0.1:6543/app");
        assert!(!format!("{t:?}").contains("hunter2"));
    }
}
