//! MySQL / MariaDB source connector for seren-replicator.
//!
//! Reads one database over the binary protocol (prepared statements, so values arrive typed)
//! into Arrow batches: tables from `information_schema`, primary-key-range partitions for big
//! tables, every reader inside one consistent snapshot, and binlog change capture for `sync`.
//! Built on `pipeline` alone, as a third-party connector would be.
//!
//! * [`MySqlFactory`] accepts `mysql://user:pass@host:port/db` and `mariadb://…`.
//! * The type map for both modes is in the `types` module and `README-MySQL.md`.
#![deny(missing_docs)]

mod batch;
mod binlog;
mod capture;
mod catalog;
mod conn;
mod error;
mod partition;
mod preflight;
mod read;
mod render;
mod snapshot;
mod source;
mod types;

pub use conn::MySqlLocation;
pub use source::MySqlSource;

use pipeline::{Result, Source, SourceFactory, SourceOptions};
use std::sync::Arc;

/// Creates [`MySqlSource`]s; register it in a `pipeline::Registry`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MySqlFactory;

#[async_trait::async_trait]
impl SourceFactory for MySqlFactory {
    fn name(&self) -> &'static str {
        "mysql"
    }

    fn forms(&self) -> &'static [&'static str] {
        &[
            "mysql://USER:PASS@HOST:PORT/DB",
            "mariadb://USER:PASS@HOST:PORT/DB",
        ]
    }

    fn accepts(&self, location: &str) -> bool {
        conn::SCHEMES.iter().any(|s| location.starts_with(s))
    }

    async fn open(&self, location: &str, options: &SourceOptions) -> Result<Arc<dyn Source>> {
        let location = MySqlLocation::parse(location)?;
        Ok(Arc::new(
            MySqlSource::open(location, options.clone()).await?,
        ))
    }
}
