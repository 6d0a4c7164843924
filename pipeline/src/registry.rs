//! An open registry of source connectors: the binary registers the built-in ones, a custom
//! binary can register its own, and a location (path or URL) picks the connector that accepts it.

use crate::error::{Error, Result};
use crate::source::{Source, SourceOptions};
use std::sync::Arc;

/// Creates sources of one kind from a location string.
#[async_trait::async_trait]
pub trait SourceFactory: Send + Sync {
    /// Connector name, e.g. `sqlite`.
    fn name(&self) -> &'static str;
    /// Location forms this connector accepts, for help text (e.g. `sqlite://PATH`, `*.db`).
    fn forms(&self) -> &'static [&'static str];
    /// Whether this connector handles `location` (decided from its form, without connecting).
    fn accepts(&self, location: &str) -> bool;
    /// Open the source at `location`: check it is reachable and readable.
    async fn open(&self, location: &str, options: &SourceOptions) -> Result<Arc<dyn Source>>;
}

/// The set of connectors a binary knows.
#[derive(Default)]
pub struct Registry {
    factories: Vec<Box<dyn SourceFactory>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a connector; earlier registrations win when several accept a location.
    pub fn register(&mut self, factory: impl SourceFactory + 'static) -> &mut Self {
        self.factories.push(Box::new(factory));
        self
    }

    /// Every registered connector.
    pub fn factories(&self) -> impl Iterator<Item = &dyn SourceFactory> {
        self.factories.iter().map(|f| &**f)
    }

    /// The connector for `location`, or a config error listing the accepted forms.
    /// `location` must already be redacted of secrets if it is to appear in the message.
    pub fn find(&self, location: &str, shown_as: &str) -> Result<&dyn SourceFactory> {
        self.factories()
            .find(|f| f.accepts(location))
            .ok_or_else(|| {
                let forms: Vec<String> = self
                    .factories()
                    .map(|f| format!("{} ({})", f.name(), f.forms().join(", ")))
                    .collect();
                Error::config(format!(
                    "no connector accepts source `{shown_as}`; supported sources: {}",
                    forms.join("; ")
                ))
            })
    }
}
