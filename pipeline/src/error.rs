//! One error type for the whole pipeline: a kind, the side it happened on, and a message that says
//! what failed, where, and what to do about it.

use std::fmt;

/// What sort of failure this is; drives exit codes and retry decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The server could not be reached, or the file could not be opened.
    Connect,
    /// The server refused the credentials.
    Auth,
    /// A query or command failed on the server.
    Query,
    /// The catalog or the requested objects are not what the command needs.
    Schema,
    /// A value could not be converted to its target type.
    Conversion,
    /// Local I/O failed.
    Io,
    /// The command line or configuration is invalid.
    Config,
    /// The target already holds data the command would overwrite.
    Conflict,
    /// The run was cancelled by the user.
    Cancelled,
}

/// Which end of the pipeline an error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The database being read.
    Source,
    /// The PostgreSQL database being written.
    Target,
    /// The tool itself (configuration, local files, pipeline).
    Local,
}

/// A pipeline error. Messages never contain passwords: callers build them from redacted locations.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    side: Side,
    retryable: bool,
    message: String,
    #[source]
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A new error of `kind` on `side` with a message that says what failed and what to do.
    pub fn new(kind: ErrorKind, side: Side, message: impl Into<String>) -> Self {
        Error {
            kind,
            side,
            retryable: matches!(kind, ErrorKind::Connect),
            message: message.into(),
            cause: None,
        }
    }

    /// Attach the underlying cause (kept for `source()`, not repeated in the message).
    pub fn with_cause(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    /// Mark whether retrying the same operation may succeed.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Prefix the message with more context (e.g. the table being copied).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The failure category.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The side the failure happened on.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Whether retrying may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The message without the cause chain.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Shorthand for a conversion error on the local side.
    pub fn conversion(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Conversion, Side::Local, message)
    }

    /// Shorthand for a configuration error.
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, Side::Local, message)
    }

    /// Shorthand for a cancelled run.
    pub fn cancelled() -> Self {
        Error::new(ErrorKind::Cancelled, Side::Local, "cancelled")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Result alias used across the pipeline and connectors.
pub type Result<T, E = Error> = std::result::Result<T, E>;
