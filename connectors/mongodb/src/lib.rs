//! MongoDB source connector for seren-replicator.
//!
//! Reads every collection of one database (views and `system.*` skipped) into Arrow batches of
//! two columns: `_id`, the canonical id text (the JSONB `id`), and `document`, the whole
//! document as JSON text (`seren.jsonb_document`), so the JSONB `data` column *is* the document.
//! Big collections are split into `_id` ranges from a sorted `$sample`; reads use
//! `readConcern: majority`. Change streams provide continuous sync ([`pipeline::ChangeCapture`]).
//!
//! * [`MongoFactory`] accepts `mongodb://` and `mongodb+srv://` URIs naming the database.
//! * [`encode`] and [`decode`] are the BSON ⇄ JSON rules; `decode` is the exact inverse of
//!   `encode`, byte for byte, also after the JSON went through PostgreSQL's `jsonb`.
#![deny(missing_docs)]

mod change;
pub mod decode;
pub mod encode;
mod error;
mod flat;
mod partition;
mod preflight;
mod read;
mod source;

pub use decode::document_from_json;
pub use encode::{document_json, id_and_json, id_of};
pub use source::{MongoSource, DOCUMENT_COLUMN, ID_COLUMN};

use pipeline::{Result, Source, SourceFactory, SourceOptions};
use std::sync::Arc;

/// Creates [`MongoSource`]s; register it in a `pipeline::Registry`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MongoFactory;

#[async_trait::async_trait]
impl SourceFactory for MongoFactory {
    fn name(&self) -> &'static str {
        "mongodb"
    }

    fn forms(&self) -> &'static [&'static str] {
        &["mongodb://HOST[:PORT]/DB", "mongodb+srv://HOST/DB"]
    }

    fn accepts(&self, location: &str) -> bool {
        location.starts_with("mongodb://") || location.starts_with("mongodb+srv://")
    }

    async fn open(&self, location: &str, options: &SourceOptions) -> Result<Arc<dyn Source>> {
        Ok(Arc::new(
            MongoSource::open(location, options.clone()).await?,
        ))
    }
}

/// The driver this connector is built on, for tests and tools that need a client of their own.
pub use mongodb;
