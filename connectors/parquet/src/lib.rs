//! Parquet connector for seren-replicator.
//!
//! * Source ([`ParquetFactory`], [`ParquetSource`]): a `.parquet` file, a directory or a glob;
//!   one table per file, or per directory of same-schema files; one partition per row group;
//!   the schema from the file footer. Both native and JSONB modes (see `pipeline::types` for
//!   the Arrow → PostgreSQL type map and the `schema` module for the types widened on read).
//! * Destination ([`PartWriter`]): the files `export` writes, one zstd Parquet file per source
//!   partition under a directory per table.
//!
//! Built on `pipeline` alone, as a third-party connector would be.
#![deny(missing_docs)]

mod discover;
mod schema;
mod sink;
mod source;

pub use schema::ROW_COLUMN;
pub use sink::{
    export_schema, part_file_name, table_dir, table_name, PartWriter, DEFAULT_ROW_GROUP_BYTES,
};
pub use source::{ParquetFactory, ParquetSource};
