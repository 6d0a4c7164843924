//! PostgreSQL connector: connection handling (libpq-compatible strings, `.pgpass`, redaction)
//! and the binary-COPY sink with staging tables and an atomic swap.

pub mod conn;
pub mod ddl;
pub mod sink;
pub mod tls;
pub mod verify;

pub use conn::{redact_conninfo, PgTarget};
pub use sink::{GinIndex, PgSink, PgSinkOptions};
