//! PostgreSQL connector: connection handling (libpq-compatible strings, `.pgpass`, redaction),
//! the binary-COPY sink with staging tables and an atomic swap, and PostgreSQL as a source:
//! snapshot-consistent raw COPY reads, schema restore and resumable PostgreSQL → PostgreSQL copy.

pub mod apply;
pub mod catalog;
pub mod child;
pub mod clone;
pub mod clone_sink;
pub mod conn;
pub mod ddl;
pub mod pgverify;
pub mod refresh;
pub mod replication;
pub mod schema;
pub mod shared;
pub mod sink;
pub mod source;
pub mod state;
pub mod status;
pub mod sync_state;
pub mod tls;
pub mod tools;
pub mod typed;
pub mod verify;

pub use conn::{redact_conninfo, PgTarget};
pub use sink::{GinIndex, PgSink, PgSinkOptions};
