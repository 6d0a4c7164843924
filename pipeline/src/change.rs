//! Change capture: the contract a source implements to keep a copied target up to date
//! continuously (MySQL binlog, MongoDB change streams), instead of periodic re-reads.
//!
//! Order of use, by `init` then `sync`:
//! 1. `init` calls [`ChangeCapture::start_snapshot`] before it reads any row, and stores the
//!    position it returns in the target once the copy is committed.
//! 2. `sync` calls [`ChangeCapture::stream`] from the stored position and applies each
//!    [`ChangeSet`] to the target in one transaction, storing the set's `position` in the same
//!    transaction: after a crash it resumes from the last applied set, exactly once.
//!
//! Changes are applied as idempotent upserts and deletes by row identity (the JSONB `id`, or the
//! primary key in native mode), so replaying changes the snapshot already contains converges to
//! the source's state. A source that cannot pin its readers to the position it returns must
//! return a position from *before* its readers start, never after.

use crate::catalog::TableInfo;
use crate::error::Result;
use arrow_array::RecordBatch;

/// What a [`TableChange`] does to its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    /// Insert the rows, or replace the rows with the same identity.
    Upsert,
    /// Delete the rows with these identities. Only the identity columns (primary key, or the
    /// hidden id columns) need values; a table without either needs the whole old row.
    Delete,
    /// Delete every row of the table (`rows` is empty).
    Truncate,
}

/// Rows of one table changed the same way, in source order.
#[derive(Debug, Clone)]
pub struct TableChange {
    /// The table, as `Source::list_tables` names it.
    pub table: String,
    /// What happens to `rows`.
    pub op: ChangeOp,
    /// The rows, in exactly the Arrow schema `Source::describe` gives for `table` (same mode).
    pub rows: RecordBatch,
}

/// One committed source transaction (or several, merged), and where the stream stands after it.
#[derive(Debug, Clone)]
pub struct ChangeSet {
    /// The changes, in commit order. Consecutive changes to one table with the same op may come
    /// as one entry or several; the applier must keep the order between entries.
    pub changes: Vec<TableChange>,
    /// The position after this set (connector-defined, e.g. binlog file and offset or a resume
    /// token): stored in the target with the changes, and handed back to `stream` on restart.
    pub position: serde_json::Value,
    /// When the source committed the last transaction of this set (Unix milliseconds), for lag.
    /// `None` only for an *idle* set: no changes because the source has nothing more committed
    /// to send right now (the stream is caught up). A set of transactions that touched none of
    /// the streamed tables has no changes but does have a commit time.
    pub committed_at_ms: Option<i64>,
}

impl ChangeSet {
    /// Whether the stream had nothing more to send: `sync --once` stops here.
    pub fn is_idle(&self) -> bool {
        self.changes.is_empty() && self.committed_at_ms.is_none()
    }
}

/// A live stream of committed changes.
#[async_trait::async_trait]
pub trait ChangeStream: Send {
    /// The next committed change set. Waits while the source is idle, but returns an idle set
    /// (no changes, no commit time, the current position) at least every few seconds so that lag
    /// can be measured and a stop request noticed; only a caught-up stream returns an idle set. `Ok(None)` means the stream ended and cannot continue (e.g.
    /// the source dropped the data it streamed from); the error says what to do. Dropping a
    /// pending call is allowed; the stream is then discarded.
    async fn next(&mut self) -> Result<Option<ChangeSet>>;

    /// End the stream, waiting until the source has released what it held for it (a server-side
    /// cursor, a connection). Call it before the runtime stops; dropping the stream instead
    /// leaves that cleanup to background tasks the runtime may cut short.
    async fn close(self: Box<Self>) {}
}

/// Change capture offered by a source (see the module documentation).
#[async_trait::async_trait]
pub trait ChangeCapture: Send + Sync {
    /// Whether the source is set up for change capture for these tables. An error says what is
    /// missing and how to fix it (the setting or the privilege); `sync` then falls back to
    /// periodic refresh and prints that message.
    async fn check(&self, tables: &[TableInfo]) -> Result<()>;

    /// Fix the instant every later `Source::open` reads at, for up to `readers` partitions open at
    /// once, and return the stream position of that instant. Called once, before any `open`.
    async fn start_snapshot(&self, readers: usize) -> Result<serde_json::Value>;

    /// Stream every change committed after `position` to the given tables (described in the
    /// mode the target was written in). Changes to other tables are skipped.
    async fn stream(
        &self,
        position: serde_json::Value,
        tables: &[TableInfo],
    ) -> Result<Box<dyn ChangeStream>>;
}
