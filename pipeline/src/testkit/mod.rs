//! The conformance test kit (cargo feature `testkit`): what every connector's test suite runs to
//! show it keeps the contract in `connectors/SPEC.md`.
//!
//! * [`assert_source_conformance`] opens a source through its [`SourceFactory`](crate::SourceFactory)
//!   twice (partitioned, and as one partition per table) and checks the source rules: schema from
//!   the catalog and stable, every batch matching `describe`, a deterministic and serialisable
//!   plan whose partitions cover every row exactly once, empty tables, batch bounds, errors for
//!   unknown tables.
//! * [`assert_sink_conformance`] drives a [`Sink`](crate::Sink) through
//!   `prepare → encoder → writer → finish_table → finish`, and through a run that aborts, and
//!   checks with a [`SinkProbe`] what the target shows after each step.
//! * [`MemorySource`] / [`MemoryFactory`] serve given Arrow batches (partitions of N rows);
//!   [`MemorySink`] keeps the COPY bytes the pipeline's encoders produce and decodes them back
//!   into tuples. They are the kit's reference implementations and the fixtures' home for
//!   testing encoders and the runtime without a server.
//! * [`fixtures`] holds Arrow batches per type family (integers, floats with NaN/±Inf/-0.0,
//!   decimals, strings with NUL and emoji, binary, dates/times/timestamps with and without zone,
//!   nested lists and structs, nulls everywhere, an empty table).
//!
//! The kit asserts with panics that name the table, partition and rule broken, so a failing
//! check reads as a test failure in the connector's own suite.
//!
//! ```
//! use pipeline::testkit::{assert_source_conformance, fixtures, MemoryFactory};
//! use pipeline::SourceOptions;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let factory = MemoryFactory::new(fixtures::all());
//! // Small partitions and batches, so that the plan and the bounds are exercised.
//! let options = SourceOptions { partition_rows: 2, batch_rows: 3, ..SourceOptions::default() };
//! let report = assert_source_conformance(&factory, "memory://fixtures", &options).await;
//! assert!(report.table("empty").unwrap().rows == 0);
//! # });
//! ```

pub mod fixtures;
mod memory;
mod rows;
mod sink_check;
mod source_check;

pub use memory::{MemoryFactory, MemorySink, MemorySource, MemoryTable};
pub use rows::{decode_tuples, row_keys, Tuple};
pub use sink_check::{assert_sink_conformance, SinkProbe};
pub use source_check::{assert_source_conformance, SourceReport, TableReport};

#[cfg(test)]
mod tests;
