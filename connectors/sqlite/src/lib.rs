//! SQLite source connector for seren-replicator.
//!
//! Reads a SQLite database file (never writing to it) into Arrow batches: tables from the
//! catalog, rowid-range partitions, one reader thread per partition. Built on `pipeline` alone,
//! as a third-party connector would be.
//!
//! * [`SqliteFactory`] accepts `sqlite://PATH`, paths ending in `.db`, `.sqlite` or `.sqlite3`,
//!   and any existing file that starts with the SQLite header.
//! * JSONB mode keeps SQLite's dynamic typing: every column is a dense union of the storage
//!   classes. Native mode maps declared types by SQLite's affinity rules and checks every value
//!   first (see the `types` and `census` modules).
#![deny(missing_docs)]

mod catalog;
mod census;
mod error;
mod partition;
mod read;
mod source;
mod types;

pub use source::{SqliteSource, DEFAULT_BUSY_TIMEOUT, ROWID_COLUMN};

use pipeline::{Result, Source, SourceFactory, SourceOptions};
use std::path::PathBuf;
use std::sync::Arc;

/// URL prefix of SQLite locations: `sqlite:///abs/path` or `sqlite://rel/path`.
const SCHEME: &str = "sqlite://";
/// File extensions taken to be SQLite databases without looking inside.
const EXTENSIONS: [&str; 3] = [".db", ".sqlite", ".sqlite3"];

/// Creates [`SqliteSource`]s; register it in a `pipeline::Registry`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteFactory;

/// The file path a location names.
fn file_path(location: &str) -> PathBuf {
    PathBuf::from(location.strip_prefix(SCHEME).unwrap_or(location))
}

#[async_trait::async_trait]
impl SourceFactory for SqliteFactory {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn forms(&self) -> &'static [&'static str] {
        &[
            "sqlite://PATH",
            "PATH.db",
            "PATH.sqlite",
            "PATH.sqlite3",
            "any SQLite file",
        ]
    }

    fn accepts(&self, location: &str) -> bool {
        if location.starts_with(SCHEME) {
            return true;
        }
        if location.contains("://") {
            return false; // another connector's URL
        }
        let lower = location.to_ascii_lowercase();
        EXTENSIONS.iter().any(|ext| lower.ends_with(ext))
            || source::read_header(&file_path(location))
                .is_ok_and(|header| &header == source::SQLITE_HEADER)
    }

    async fn open(&self, location: &str, options: &SourceOptions) -> Result<Arc<dyn Source>> {
        let (path, options) = (file_path(location), options.clone());
        let source = tokio::task::spawn_blocking(move || SqliteSource::open(path, options))
            .await
            .map_err(|e| pipeline::Error::config(format!("opening {location} failed: {e}")))??;
        Ok(Arc::new(source))
    }
}
