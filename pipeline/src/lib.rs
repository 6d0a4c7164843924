//! The seren-replicator pipeline: the contract every connector implements, and the runtime that
//! moves Arrow batches from a [`Source`] to a [`Sink`] through bounded channels, with encoding to
//! PostgreSQL's COPY-binary format on the rayon pool.
//!
//! A connector depends on this crate alone. A source describes tables from its catalog
//! ([`TableInfo`]), splits them into serialisable [`Partition`]s and streams each as Arrow
//! `RecordBatch`es; a sink turns batches into its wire format ([`BatchEncoder`]) and writes them
//! ([`PartitionWriter`]).
#![deny(missing_docs)]

pub mod catalog;
pub mod change;
pub mod encode;
pub mod error;
pub mod progress;
pub mod raw;
pub mod registry;
pub mod runtime;
pub mod sink;
pub mod source;
pub mod types;

pub use catalog::{AutoIncrement, CheckInfo, ColumnInfo, ForeignKeyInfo, IndexInfo, TableInfo};
pub use change::{ChangeCapture, ChangeOp, ChangeSet, ChangeStream, TableChange};
pub use error::{Error, ErrorKind, Result, Side};
pub use progress::{Progress, TableState};
pub use registry::{Registry, SourceFactory};
pub use runtime::{copy_tables, RunOptions, TableOutcome, TableWork};
pub use sink::{BatchEncoder, Chunk, PartitionWriter, Sink};
pub use source::{BatchStream, Mode, OnTypeMismatch, Partition, Source, SourceOptions};
pub use types::PgType;

pub use arrow_array;
pub use arrow_schema;
