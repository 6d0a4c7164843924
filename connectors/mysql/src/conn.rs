//! Where the source is and how to connect to it: URL parsing (credentials kept out of every
//! message), and connections set up the way every reader needs them.

use crate::error::mysql;
use mysql_async::{Conn, Opts, OptsBuilder};
use pipeline::{Error, Result};

/// URL prefixes this connector accepts.
pub(crate) const SCHEMES: [&str; 2] = ["mysql://", "mariadb://"];

/// Statements run on every new connection: UTF-8 in full (4-byte characters), instants in UTC so
/// `TIMESTAMP` values arrive as UTC, and no server-side timeouts cutting a long snapshot read.
const SESSION_SETUP: [&str; 3] = [
    "SET NAMES utf8mb4",
    "SET time_zone = '+00:00'",
    "SET SESSION net_write_timeout = 3600, net_read_timeout = 3600, wait_timeout = 86400",
];

/// A parsed source URL: connection options, and a display form without credentials.
#[derive(Clone)]
pub struct MySqlLocation {
    opts: Opts,
    shown: String,
    database: String,
}

impl std::fmt::Debug for MySqlLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown) // never the password
    }
}

impl MySqlLocation {
    /// Parse `mysql://user:pass@host:port/db` (or `mariadb://`). The database is required.
    pub fn parse(location: &str) -> Result<Self> {
        let rest = SCHEMES
            .iter()
            .find_map(|s| location.strip_prefix(s))
            .ok_or_else(|| Error::config("a MySQL source starts with mysql:// or mariadb://"))?;
        let url = format!("mysql://{rest}");
        let parsed = url::Url::parse(&url).map_err(|e| {
            Error::config(format!(
                "cannot parse the MySQL source URL ({e}); write it as \
                 mysql://USER:PASSWORD@HOST:PORT/DATABASE (percent-encode special characters)"
            ))
        })?;
        let host = parsed.host_str().unwrap_or("localhost").to_string();
        let port = parsed.port().unwrap_or(3306);
        let database = parsed.path().trim_start_matches('/').to_string();
        let shown = format!("{host}:{port}/{database}");
        if database.is_empty() {
            return Err(Error::config(format!(
                "the MySQL source URL names no database ({shown}); add it: \
                 mysql://USER:PASSWORD@HOST:PORT/DATABASE"
            )));
        }
        let opts = Opts::from_url(&url).map_err(|e| {
            let what = e
                .to_string()
                .replace(parsed.password().unwrap_or("\u{0}"), "***");
            Error::config(format!("invalid MySQL source URL for {shown}: {what}"))
        })?;
        let opts = OptsBuilder::from_opts(opts)
            .prefer_socket(false)
            .stmt_cache_size(16)
            .setup(SESSION_SETUP.to_vec())
            .into();
        let database = percent_decode(&database);
        Ok(MySqlLocation {
            opts,
            shown,
            database,
        })
    }

    /// `host:port/db`, for messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The database (schema) read.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The user name, for messages about privileges.
    pub(crate) fn user(&self) -> &str {
        self.opts.user().unwrap_or("")
    }

    /// The connection options (carry the password: never print them).
    pub(crate) fn opts(&self) -> &Opts {
        &self.opts
    }

    /// A new connection, set up for reading.
    pub(crate) async fn connect(&self) -> Result<Conn> {
        let conn = Conn::new(self.opts.clone())
            .await
            .map_err(|e| mysql(e, format!("connecting to MySQL source {}", self.shown)))?;
        Ok(conn)
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_never_show_the_password() {
        let l = MySqlLocation::parse("mariadb://u:s3cret@127.0.0.1:3307/shop").unwrap();
        assert_eq!(l.shown(), "127.0.0.1:3307/shop");
        assert_eq!(l.database(), "shop");
        assert!(!format!("{l:?}").contains("s3cret"));
        let e = MySqlLocation::parse("mysql://u:s3cret@h:3306").unwrap_err();
        assert!(e.to_string().contains("names no database"), "{e}");
        assert!(!e.to_string().contains("s3cret"));
        assert_eq!(
            MySqlLocation::parse("mysql://u@h/my%20db")
                .unwrap()
                .database(),
            "my db"
        );
    }
}
