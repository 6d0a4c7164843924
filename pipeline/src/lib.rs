//! The seren-replicator pipeline: the contract every connector implements, and the runtime that
//! moves Arrow batches from a [`Source`] to a [`Sink`] through bounded channels, with encoding to
//! PostgreSQL's COPY-binary format on the rayon pool.
//!
//! A connector depends on this crate alone. A source describes tables from its catalog
//! ([`TableInfo`]), splits them into serialisable [`Partition`]s and streams each as Arrow
//! `RecordBatch`es; a sink turns batches into its wire format ([`BatchEncoder`]) and writes them
//! ([`PartitionWriter`]).
//!
//! # Writing a connector
//!
//! The full contract, in MUST/SHOULD terms, is `connectors/SPEC.md`; a complete example is
//! `examples/csv-connector`, walked through in `docs/writing-a-connector.md`. In short:
//!
//! 1. A [`SourceFactory`] names the connector, lists the location forms it takes, decides from a
//!    location string alone whether it [`accepts`](SourceFactory::accepts) it, and opens a
//!    [`Source`].
//! 2. The [`Source`] lists tables and [`describe`](Source::describe)s each from its catalog: a
//!    [`TableInfo`] whose Arrow schema every batch will have. It [`plan`](Source::plan)s
//!    [`Partition`]s that cover every row exactly once (at least one, even for an empty table),
//!    and [`open`](Source::open)s each as a [`BatchStream`] of batches of at most
//!    [`SourceOptions::batch_rows`] rows and about [`SourceOptions::batch_bytes`] bytes.
//! 3. Errors are [`Error`]s with a [`ErrorKind`], a [`Side`] and a message saying what failed,
//!    where, and what to do; never a password.
//! 4. A binary registers the factory in a [`Registry`]; `seren_replicator::run_with` runs the
//!    product's command line with it added.
//! 5. Tests call `testkit::assert_source_conformance` (feature `testkit`) on real data.
//!
//! A source serving one fixed table, split into two partitions:
//!
//! ```
//! use pipeline::arrow_array::{ArrayRef, Int64Array, RecordBatch};
//! use pipeline::arrow_schema::{DataType, Field, Schema};
//! use pipeline::futures::{stream, StreamExt};
//! use pipeline::{BatchStream, ColumnInfo, Error, ErrorKind, Partition, Result, Side, Source};
//! use pipeline::{SourceFactory, SourceOptions, TableInfo};
//! use std::sync::Arc;
//!
//! /// The numbers 1 to 10 as table `numbers`.
//! struct Numbers;
//!
//! #[pipeline::async_trait]
//! impl Source for Numbers {
//!     fn kind(&self) -> &'static str {
//!         "numbers"
//!     }
//!     fn location(&self) -> String {
//!         "numbers://".into()
//!     }
//!     async fn list_tables(&self) -> Result<Vec<String>> {
//!         Ok(vec!["numbers".into()])
//!     }
//!     async fn describe(&self, table: &str) -> Result<TableInfo> {
//!         if table != "numbers" {
//!             let message = format!("table \"{table}\" does not exist; the only table is numbers");
//!             return Err(Error::new(ErrorKind::Schema, Side::Source, message));
//!         }
//!         Ok(TableInfo {
//!             name: table.into(),
//!             schema: Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)])),
//!             columns: vec![ColumnInfo { name: "n".into(), source_type: "int".into(), nullable: false }],
//!             primary_key: vec!["n".into()],
//!             rows: 10,
//!             rows_exact: true,
//!             ..Default::default()
//!         })
//!     }
//!     async fn plan(&self, table: &TableInfo, _filter: Option<&str>) -> Result<Vec<Partition>> {
//!         let part = |index: usize, from: i64| Partition {
//!             table: table.name.clone(),
//!             index,
//!             count: 2,
//!             description: format!("n {from}..={}", from + 4),
//!             estimated_rows: 5,
//!             bounds: pipeline::serde_json::json!({ "from": from }),
//!         };
//!         Ok(vec![part(0, 1), part(1, 6)])
//!     }
//!     async fn open(&self, table: &TableInfo, partition: &Partition) -> Result<BatchStream> {
//!         let from = partition.bounds["from"].as_i64().unwrap_or(1);
//!         let column: ArrayRef = Arc::new(Int64Array::from_iter_values(from..from + 5));
//!         let batch = RecordBatch::try_new(table.schema.clone(), vec![column])
//!             .map_err(|e| Error::conversion(e.to_string()));
//!         Ok(stream::iter([batch]).boxed())
//!     }
//! }
//!
//! /// Opens [`Numbers`] for `numbers://`.
//! struct NumbersFactory;
//!
//! #[pipeline::async_trait]
//! impl SourceFactory for NumbersFactory {
//!     fn name(&self) -> &'static str {
//!         "numbers"
//!     }
//!     fn forms(&self) -> &'static [&'static str] {
//!         &["numbers://"]
//!     }
//!     fn accepts(&self, location: &str) -> bool {
//!         location.starts_with("numbers://")
//!     }
//!     async fn open(&self, _: &str, _: &SourceOptions) -> Result<Arc<dyn Source>> {
//!         Ok(Arc::new(Numbers))
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let mut registry = pipeline::Registry::new();
//! registry.register(NumbersFactory);
//! let factory = registry.find("numbers://", "numbers://").unwrap();
//! let source = factory.open("numbers://", &SourceOptions::default()).await.unwrap();
//! let table = source.describe("numbers").await.unwrap();
//! let mut rows = 0;
//! for partition in source.plan(&table, None).await.unwrap() {
//!     let mut batches = source.open(&table, &partition).await.unwrap();
//!     while let Some(batch) = batches.next().await {
//!         rows += batch.unwrap().num_rows();
//!     }
//! }
//! assert_eq!(rows, 10);
//! # });
//! ```
#![deny(missing_docs)]

pub mod catalog;
pub mod change;
pub mod cleanup;
pub mod encode;
pub mod error;
pub mod progress;
pub mod raw;
pub mod registry;
pub mod runtime;
pub mod sink;
pub mod source;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod types;

pub use catalog::{AutoIncrement, CheckInfo, ColumnInfo, ForeignKeyInfo, IndexInfo, TableInfo};
pub use change::{ChangeCapture, ChangeOp, ChangeSet, ChangeStream, TableChange};
pub use error::{Error, ErrorKind, Result, Side};
pub use progress::{Progress, TableState};
pub use registry::{Registry, SourceFactory};
pub use runtime::{copy_tables, RunOptions, TableOutcome, TableWork};
pub use sink::{BatchEncoder, Chunk, PartitionWriter, Sink};
pub use source::{
    BatchStream, Check, FlatColumn, Mode, OnTypeMismatch, Partition, Source, SourceOptions,
    ZeroDates,
};
pub use types::PgType;

pub use arrow_array;
pub use arrow_schema;
/// The attribute macro the contract's async traits are written with: implement them as
/// `#[pipeline::async_trait] impl Source for MySource { … }`.
pub use async_trait::async_trait;
/// The stream types [`BatchStream`] is built from (`futures::stream`, `StreamExt`).
pub use futures;
/// The JSON values a [`Partition`]'s `bounds` and a change position are made of.
pub use serde_json;
