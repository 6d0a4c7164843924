//! One consistent snapshot shared by every reader, and the binlog position it stands at.
//!
//! With the RELOAD privilege: `FLUSH TABLES WITH READ LOCK` (held for milliseconds), then each
//! reader connection runs `START TRANSACTION WITH CONSISTENT SNAPSHOT`, the binlog position is
//! read, and the lock is released — every reader sees the same instant, the one the position
//! names. Without it, a single connection takes the snapshot alone (MariaDB reports the binlog
//! position of exactly that snapshot in `binlog_snapshot_file/position`) and partitions are read
//! one after another on it; a warning says so.

use crate::conn::MySqlLocation;
use crate::error::{mysql, server_code};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use pipeline::{ErrorKind, Result};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// MySQL's "access denied; you need (at least one of) the … privilege(s)".
const ER_SPECIFIC_ACCESS_DENIED: u16 = 1227;

/// Reader connections inside one snapshot transaction.
pub(crate) struct Snapshot {
    conns: Mutex<Vec<Conn>>,
    /// How many connections the snapshot has.
    size: usize,
    /// Since when every connection is back in the pool (`None` while any is on loan).
    idle_since: Mutex<Option<Instant>>,
    permits: Arc<Semaphore>,
    /// Where the binlog stood at the snapshot: `{"file", "pos", "gtid"}` (null when the
    /// server has no binlog).
    pub position: serde_json::Value,
}

/// A reader connection on loan; given back when dropped unless marked lost.
pub(crate) struct Lease {
    conn: Option<Conn>,
    snapshot: Arc<Snapshot>,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    /// The connection.
    pub(crate) fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }

    /// Drop the connection instead of giving it back (it failed mid-query).
    pub(crate) fn lose(&mut self) {
        self.conn = None;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut conns = self.snapshot.conns.lock().unwrap();
            conns.push(conn);
            if conns.len() == self.snapshot.size {
                *self.snapshot.idle_since.lock().unwrap() = Some(Instant::now());
            }
        }
    }
}

impl Snapshot {
    /// Take the snapshot for `readers` connections.
    pub(crate) async fn take(location: &MySqlLocation, readers: usize) -> Result<Arc<Snapshot>> {
        let readers = readers.max(1);
        let mut conns = Vec::with_capacity(readers);
        for _ in 0..readers {
            let mut conn = location.connect().await?;
            run(
                &mut conn,
                "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            )
            .await?;
            conns.push(conn);
        }
        let mut lock = location.connect().await?;
        let (conns, note) = match lock.query_drop("FLUSH TABLES WITH READ LOCK").await {
            Ok(()) => {
                for conn in &mut conns {
                    run(
                        conn,
                        "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
                    )
                    .await?;
                }
                (conns, None)
            }
            Err(e) if server_code(&e) == Some(ER_SPECIFIC_ACCESS_DENIED) => {
                let mut only = conns.swap_remove(0);
                run(
                    &mut only,
                    "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
                )
                .await?;
                let note = format!(
                    "user `{}` lacks the RELOAD privilege needed to lock tables briefly, so all \
                     tables are read on one connection inside one snapshot (slower); grant it \
                     with GRANT RELOAD ON *.* TO ... for parallel consistent reads",
                    location.user()
                );
                tracing::warn!("{note}");
                (vec![only], Some(note))
            }
            Err(e) => return Err(mysql(e, "locking tables for a consistent snapshot")),
        };
        let mut conns = conns;
        let position = position(&mut lock, &mut conns[0], note.is_none()).await;
        if note.is_none() {
            run(&mut lock, "UNLOCK TABLES").await?;
        }
        drop(lock);
        let permits = Arc::new(Semaphore::new(conns.len()));
        Ok(Arc::new(Snapshot {
            size: conns.len(),
            idle_since: Mutex::new(Some(Instant::now())),
            conns: Mutex::new(conns),
            permits,
            position,
        }))
    }

    /// Whether no reader has used the snapshot for `idle`: a run that did not pin it is over,
    /// and the next one should see fresh data.
    pub(crate) fn unused_for(&self, idle: Duration) -> bool {
        self.idle_since
            .lock()
            .unwrap()
            .is_some_and(|since| since.elapsed() >= idle)
    }

    /// Borrow a reader connection, waiting while all are busy.
    pub(crate) async fn lease(self: &Arc<Self>) -> Result<Lease> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| lost())?;
        let conn = self.conns.lock().unwrap().pop().ok_or_else(lost)?;
        *self.idle_since.lock().unwrap() = None;
        Ok(Lease {
            conn: Some(conn),
            snapshot: self.clone(),
            _permit: permit,
        })
    }
}

fn lost() -> pipeline::Error {
    crate::error::source_error(
        ErrorKind::Query,
        "a snapshot connection was lost after an earlier read failed; rerun the command",
    )
}

async fn run(conn: &mut Conn, sql: &str) -> Result<()> {
    conn.query_drop(sql).await.map_err(|e| mysql(e, sql))
}

/// The binlog position of the snapshot: MariaDB's per-snapshot status first (exact for the
/// reader's own snapshot), else `SHOW MASTER STATUS` under the lock. Null without a binlog.
async fn position(lock: &mut Conn, reader: &mut Conn, locked: bool) -> serde_json::Value {
    let status: Vec<(String, String)> = reader
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .unwrap_or_default();
    let get = |name: &str| status.iter().find(|(k, _)| k.eq_ignore_ascii_case(name));
    let (mut file, mut pos) = (
        get("binlog_snapshot_file").map(|(_, v)| v.clone()),
        get("binlog_snapshot_position").and_then(|(_, v)| v.parse::<u64>().ok()),
    );
    if (file.as_deref().unwrap_or("").is_empty() || pos.is_none()) && locked {
        if let Ok(Some(row)) = lock.query_first::<Row, _>("SHOW MASTER STATUS").await {
            file = row.get_opt::<String, _>(0).and_then(|v| v.ok());
            pos = row.get_opt::<u64, _>(1).and_then(|v| v.ok());
        }
    }
    match (file.filter(|f| !f.is_empty()), pos) {
        (Some(file), Some(pos)) => {
            let gtid = match lock
                .exec_first::<mysql_async::Value, _, _>(
                    "SELECT BINLOG_GTID_POS(?, ?)",
                    (file.as_str(), pos),
                )
                .await
            {
                Ok(Some(mysql_async::Value::Bytes(b))) => {
                    Some(String::from_utf8_lossy(&b).into_owned())
                }
                _ => None, // MySQL, or no GTID yet
            };
            serde_json::json!({"file": file, "pos": pos, "gtid": gtid})
        }
        _ => serde_json::Value::Null,
    }
}
