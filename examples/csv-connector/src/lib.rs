//! An example third-party connector for seren-replicator: a directory of CSV files as a source.
//!
//! Built on the `pipeline` crate alone, exactly as the built-in connectors are; the walk-through
//! is `docs/writing-a-connector.md` in the seren-replicator repository, and the contract it
//! keeps is `connectors/SPEC.md`.
//!
//! * Locations: `csv://PATH`, a directory holding `*.csv` files, or one `PATH.csv` file.
//! * Each file is a table named after the file (`orders.csv` → `orders`); its header line names
//!   the columns; column types are inferred from every value (see [`types`]).
//! * Partitions are runs of `partition_rows` records, cut at record boundaries found by one scan
//!   of the file; each is read by a thread of its own.
//! * JSONB mode identifies rows by their number in the file (hidden column [`ROW_COLUMN`]).
#![deny(missing_docs)]

mod catalog;
mod parse;
mod read;
mod source;
pub mod types;

pub use source::CsvSource;

use pipeline::{Error, ErrorKind, Result, Side, Source, SourceFactory, SourceOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The hidden column holding each record's number in its file (from 1), the row id of JSONB mode.
pub const ROW_COLUMN: &str = "csv:row";

/// URL prefix of CSV locations.
const SCHEME: &str = "csv://";

/// Creates [`CsvSource`]s; register it in a `pipeline::Registry`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvFactory;

/// Whether `path` names a CSV file by its extension.
fn is_csv(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// The tables at `path`: the file itself, or every `*.csv` file of the directory, by name.
fn tables_at(path: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let shown = path.display();
    let connect = |m: String| Error::new(ErrorKind::Connect, Side::Source, m).retryable(false);
    let meta = std::fs::metadata(path).map_err(|e| {
        connect(format!(
            "cannot read {shown}: {e}; check the path and its permissions"
        ))
    })?;
    let files: Vec<PathBuf> = if meta.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| connect(format!("cannot list {shown}: {e}; check its permissions")))?;
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_csv(p) && p.is_file())
            .collect()
    } else {
        vec![path.to_path_buf()]
    };
    let mut tables = BTreeMap::new();
    for file in files {
        let name = file.file_stem().and_then(|s| s.to_str()).ok_or_else(|| {
            let what = format!(
                "{}: the file name is not valid UTF-8; rename it",
                file.display()
            );
            Error::new(ErrorKind::Schema, Side::Source, what)
        })?;
        if let Some(other) = tables.insert(name.to_string(), file.clone()) {
            return Err(Error::new(
                ErrorKind::Schema,
                Side::Source,
                format!(
                    "{} and {} would both be table \"{name}\"; rename one",
                    other.display(),
                    file.display()
                ),
            ));
        }
    }
    if tables.is_empty() {
        return Err(Error::new(
            ErrorKind::Schema,
            Side::Source,
            format!("{shown} holds no .csv files; give a directory of CSV files or one CSV file"),
        ));
    }
    Ok(tables)
}

#[pipeline::async_trait]
impl SourceFactory for CsvFactory {
    fn name(&self) -> &'static str {
        "csv"
    }

    fn forms(&self) -> &'static [&'static str] {
        &["csv://PATH", "PATH.csv", "directory of *.csv files"]
    }

    fn accepts(&self, location: &str) -> bool {
        if location.starts_with(SCHEME) {
            return true;
        }
        if location.contains("://") {
            return false; // another connector's URL
        }
        let path = Path::new(location);
        is_csv(path)
            || std::fs::read_dir(path)
                .is_ok_and(|mut entries| entries.any(|e| e.is_ok_and(|e| is_csv(&e.path()))))
    }

    async fn open(&self, location: &str, options: &SourceOptions) -> Result<Arc<dyn Source>> {
        let path = PathBuf::from(location.strip_prefix(SCHEME).unwrap_or(location));
        Ok(Arc::new(CsvSource::open(path, options.clone()).await?))
    }
}
