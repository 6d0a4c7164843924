//! mysql_async errors → pipeline errors: the kind from the server's error code, the side always
//! `Source`, the server's own words kept, and a hint where there is something to do.

use pipeline::{Error, ErrorKind, Side};
use std::fmt::Display;

/// Server error codes with their own advice.
const ER_ACCESS_DENIED: u16 = 1045;
const ER_DBACCESS_DENIED: u16 = 1044;
const ER_BAD_DB: u16 = 1049;
const ER_SPECIFIC_ACCESS_DENIED: u16 = 1227;
const ER_TABLEACCESS_DENIED: u16 = 1142;

/// Map a mysql_async error raised while doing `what` (e.g. `reading table "t"`).
pub(crate) fn mysql(e: mysql_async::Error, what: impl Display) -> Error {
    use mysql_async::Error as E;
    let (kind, hint, retryable) = match &e {
        E::Server(s) => match s.code {
            ER_ACCESS_DENIED => (
                ErrorKind::Auth,
                "; check the user name and password in the source URL",
                false,
            ),
            ER_DBACCESS_DENIED | ER_TABLEACCESS_DENIED => (
                ErrorKind::Auth,
                "; grant the user SELECT on the database (GRANT SELECT ON db.* TO user)",
                false,
            ),
            ER_BAD_DB => (
                ErrorKind::Schema,
                "; check the database name in the source URL (SHOW DATABASES lists them)",
                false,
            ),
            ER_SPECIFIC_ACCESS_DENIED => (ErrorKind::Auth, "", false),
            _ => (ErrorKind::Query, "", false),
        },
        E::Io(_) => (
            ErrorKind::Connect,
            "; check the host and port, and that the server is running",
            true,
        ),
        E::Driver(_) => (ErrorKind::Connect, "", false),
        _ => (ErrorKind::Query, "", false),
    };
    let message = match &e {
        E::Server(s) => format!("{} (MySQL error {})", s.message, s.code),
        other => other.to_string(),
    };
    Error::new(kind, Side::Source, format!("{what}: {message}{hint}"))
        .retryable(retryable)
        .with_cause(e)
}

/// The server error code of `e`, if the server raised it.
pub(crate) fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// A source-side error of `kind` with `message`.
pub(crate) fn source_error(kind: ErrorKind, message: impl Into<String>) -> Error {
    Error::new(kind, Side::Source, message)
}
