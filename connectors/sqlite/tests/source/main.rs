//! The SQLite source against real SQLite files in temporary directories, through the public
//! `SourceFactory` / `Source` contract only.

mod catalog;
mod conformance;
mod files;
mod jsonb;
mod native;
mod partitions;
mod support;
