//! rusqlite errors → pipeline errors: the kind from SQLite's result code, the side always
//! `Source`, SQLite's own message kept, and a hint where there is something to do.

use pipeline::{Error, ErrorKind, Side};
use rusqlite::ErrorCode;
use std::fmt::Display;

/// Map a rusqlite error raised while doing `what` (e.g. `reading table "t"`).
pub(crate) fn sqlite(e: rusqlite::Error, what: impl Display) -> Error {
    let (kind, retryable, hint) = match code(&e).map(|c| c.code) {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => (
            ErrorKind::Query,
            true,
            "; another process holds a lock on the file: retry when it is idle",
        ),
        Some(ErrorCode::NotADatabase) => (
            ErrorKind::Schema,
            false,
            "; the file is not a SQLite database, or it is encrypted",
        ),
        Some(ErrorCode::DatabaseCorrupt) => (
            ErrorKind::Schema,
            false,
            "; the file is damaged: check it with `sqlite3 FILE 'PRAGMA integrity_check'`",
        ),
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => (
            ErrorKind::Connect,
            false,
            "; check the path and its permissions",
        ),
        Some(ErrorCode::SystemIoFailure) => (ErrorKind::Io, false, ""),
        Some(ErrorCode::OperationInterrupted) => (ErrorKind::Cancelled, false, ""),
        _ => (ErrorKind::Query, false, ""),
    };
    Error::new(kind, Side::Source, format!("{what}: {}{hint}", message(&e)))
        .retryable(retryable)
        .with_cause(e)
}

/// Whether SQLite rejected the SQL text itself (syntax, unknown column or function): the generic
/// `SQLITE_ERROR` code, as opposed to locks, I/O or corruption.
pub(crate) fn is_sql_error(e: &rusqlite::Error) -> bool {
    code(e).map(|c| c.extended_code & 0xff) == Some(rusqlite::ffi::SQLITE_ERROR)
        || matches!(e, rusqlite::Error::MultipleStatement)
}

/// SQLite's result code, from a failed call or from SQL it could not compile.
fn code(e: &rusqlite::Error) -> Option<&rusqlite::ffi::Error> {
    match e {
        rusqlite::Error::SqliteFailure(code, _)
        | rusqlite::Error::SqlInputError { error: code, .. } => Some(code),
        _ => None,
    }
}

/// SQLite's own words, without the statement text rusqlite appends to compile errors.
pub(crate) fn message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        e => e.to_string(),
    }
}
