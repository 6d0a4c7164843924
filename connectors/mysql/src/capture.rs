//! `pipeline::ChangeCapture` for MySQL: the snapshot that `init` reads at, and (see `binlog`)
//! the change stream `sync` follows from its position.

use crate::source::MySqlSource;
use pipeline::{ChangeCapture, ChangeStream, Result, TableInfo};

#[async_trait::async_trait]
impl ChangeCapture for MySqlSource {
    async fn check(&self, tables: &[TableInfo]) -> Result<()> {
        crate::binlog::check(&self.location, tables).await
    }

    async fn start_snapshot(&self, readers: usize) -> Result<serde_json::Value> {
        let snapshot = self.snapshot(readers, true).await?;
        Ok(snapshot.position.clone())
    }

    async fn stream(
        &self,
        position: serde_json::Value,
        tables: &[TableInfo],
    ) -> Result<Box<dyn ChangeStream>> {
        self.binlog(position, tables).await
    }
}
