//! Driver errors → pipeline errors: the kind from the driver's error kind, the side always
//! `Source`, the driver's message kept (it never contains the password), and a hint where there
//! is something to do.

use mongodb::error::ErrorKind as Driver;
use pipeline::{Error, ErrorKind, Side};
use std::fmt::Display;

/// Map a driver error raised while doing `what` (e.g. `reading collection "users"`).
pub(crate) fn mongo(e: mongodb::error::Error, what: impl Display) -> Error {
    let (kind, retryable, hint) = match e.kind.as_ref() {
        Driver::Authentication { .. } => (
            ErrorKind::Auth,
            false,
            "; check the user name, the password and `authSource` in the URI",
        ),
        Driver::Command(c) if c.code == 18 => (
            ErrorKind::Auth,
            false,
            "; check the user name, the password and `authSource` in the URI",
        ),
        Driver::Command(c) if c.code == 13 => (
            ErrorKind::Auth,
            false,
            "; the user lacks a privilege: grant it the `read` role on the database",
        ),
        Driver::ServerSelection { .. } | Driver::DnsResolve { .. } => (
            ErrorKind::Connect,
            true,
            "; check the host and port, that the server is running, and `directConnection=true` \
             for a single server that is a replica-set member",
        ),
        Driver::Io(_) | Driver::ConnectionPoolCleared { .. } => (ErrorKind::Connect, true, ""),
        Driver::InvalidArgument { .. } | Driver::InvalidTlsConfig { .. } => {
            (ErrorKind::Config, false, "")
        }
        _ => (ErrorKind::Query, false, ""),
    };
    let message = match e.kind.as_ref() {
        Driver::Command(c) => format!("{} ({}, code {})", c.message, c.code_name, c.code),
        Driver::Authentication { message, .. } => message.clone(),
        Driver::ServerSelection { message, .. } => message.clone(),
        _ => e.to_string(),
    };
    Error::new(kind, Side::Source, format!("{what}: {message}{hint}"))
        .retryable(retryable)
        .with_cause(e)
}

/// A source-side conversion error for one document.
pub(crate) fn document(collection: &str, id: Option<&str>, problem: &str) -> Error {
    let at = id.map_or(String::new(), |id| format!(", document _id {id}"));
    Error::conversion(format!("collection `{collection}`{at}: {problem}"))
}

/// `message` with the password of `uri` (if it has one) replaced by `***`.
pub(crate) fn redact(message: &str, uri: &str) -> String {
    let password = uri
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty());
    match password {
        Some(p) => message.replace(p, "***"),
        None => message.to_string(),
    }
}
