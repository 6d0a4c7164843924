//! Applies change sets from a source's change capture to the tables `init` wrote, exactly once.
//!
//! Each call applies one or more consecutive [`ChangeSet`]s in one target transaction and stores
//! the last set's position in the sync state table in that same transaction: after a crash the
//! target holds either all of a set and its position, or neither. Entries are applied in order;
//! each upsert or delete entry is encoded with the encoder `init` used (so a row is written
//! exactly as `init` writes it), loaded with binary COPY into a temp table (`ON COMMIT DROP`)
//! that numbers rows in COPY order, then merged by row identity (see [`target`]).

pub mod target;

use crate::conn::{query_error, PgTarget};
use crate::ddl::quote_ident;
use crate::sync_state::{self, SyncKey};
use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use pipeline::encode::{JsonbEncoder, NativeEncoder, COPY_HEADER, COPY_TRAILER};
use pipeline::{
    BatchEncoder, ChangeOp, ChangeSet, Error, ErrorKind, Mode, Result, Side, TableInfo,
};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use target::TargetTable;
use tokio_postgres::{Client, Transaction};

/// What applying change sets did to the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ApplyCounts {
    /// Rows inserted.
    pub inserted: u64,
    /// Rows whose content changed.
    pub updated: u64,
    /// Rows deleted (truncates not counted).
    pub deleted: u64,
    /// Tables truncated.
    pub truncated: u64,
}

impl ApplyCounts {
    /// Add `other` to these counts.
    pub fn add(&mut self, other: ApplyCounts) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.truncated += other.truncated;
    }
}

struct Table {
    target: TargetTable,
    encoder: Arc<dyn BatchEncoder>,
    /// The temp table's name, unique within the applier.
    work: String,
}

/// Applies change sets to one target schema over its own connection.
pub struct Applier {
    client: Client,
    key: SyncKey,
    tables: HashMap<String, Table>,
}

impl Applier {
    /// An applier for `tables` (described in the mode `init` wrote them in) in the target schema
    /// of `key`; positions are recorded in the state row of `key`, which must exist.
    pub async fn new(
        target: &PgTarget,
        key: SyncKey,
        mode: Mode,
        tables: &[TableInfo],
    ) -> Result<Applier> {
        let mut by_name = HashMap::with_capacity(tables.len());
        for (i, t) in tables.iter().enumerate() {
            let encoder: Arc<dyn BatchEncoder> = match mode {
                Mode::Jsonb => Arc::new(JsonbEncoder::new(t, &key.source_kind)?),
                Mode::Native => Arc::new(NativeEncoder::new(t)?),
            };
            let table = Table {
                target: TargetTable::new(t, &key.target_schema, mode)?,
                encoder,
                work: quote_ident(&format!("_seren_apply_{i}")),
            };
            by_name.insert(t.name.clone(), table);
        }
        Ok(Applier {
            client: target.connect().await?,
            key,
            tables: by_name,
        })
    }

    /// Apply `sets` in order in one transaction and store the last set's position (and the
    /// latest source commit time among them); `caught_up` records that the stream had nothing
    /// more to send. Nothing is applied or stored when any change fails.
    pub async fn apply(&mut self, sets: &[ChangeSet], caught_up: bool) -> Result<ApplyCounts> {
        let Some(last) = sets.last() else {
            return Ok(ApplyCounts::default());
        };
        let err = |e| query_error(Side::Target, "applying changes", e);
        let tx = self.client.transaction().await.map_err(err)?;
        let mut counts = ApplyCounts::default();
        let mut created = HashSet::new();
        for set in sets {
            for change in &set.changes {
                let table = self.tables.get(&change.table).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Schema,
                        Side::Source,
                        format!(
                            "the change stream sent a change to table \"{}\", which is not \
                             synced into schema \"{}\" (a connector bug: please report it)",
                            change.table, self.key.target_schema
                        ),
                    )
                })?;
                let done = apply_change(&tx, table, change, &mut created)
                    .await
                    .map_err(|e| e.context(format!("table \"{}\"", change.table)))?;
                counts.add(done);
            }
        }
        let committed = sets.iter().filter_map(|s| s.committed_at_ms).max();
        sync_state::record_position(&tx, &self.key, &last.position, committed, caught_up).await?;
        tx.commit().await.map_err(err)?;
        Ok(counts)
    }
}

/// Apply one entry of a change set inside `tx`.
async fn apply_change(
    tx: &Transaction<'_>,
    table: &Table,
    change: &pipeline::TableChange,
    created: &mut HashSet<String>,
) -> Result<ApplyCounts> {
    let t = &table.target;
    let what = format!("applying changes to {}", t.sql_name);
    let err = |e| query_error(Side::Target, &what, e);
    let mut counts = ApplyCounts::default();
    if change.op == ChangeOp::Truncate {
        tx.batch_execute(&format!("TRUNCATE ONLY {}", t.sql_name))
            .await
            .map_err(err)?;
        counts.truncated = 1;
        return Ok(counts);
    }
    if change.rows.num_rows() == 0 {
        return Ok(counts);
    }
    let work = &table.work;
    if created.insert(work.clone()) {
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE {work} ({}) ON COMMIT DROP",
            t.work_definitions()
        ))
        .await
        .map_err(err)?;
    } else {
        tx.batch_execute(&format!("TRUNCATE {work}"))
            .await
            .map_err(err)?;
    }
    let mut buf = BytesMut::with_capacity(64 * 1024);
    buf.extend_from_slice(COPY_HEADER);
    table.encoder.encode(&change.rows, &mut buf)?;
    buf.extend_from_slice(COPY_TRAILER);
    copy_in(tx, &t.copy_sql(work), buf.freeze(), &what).await?;
    match (change.op, t.keyed()) {
        (ChangeOp::Upsert, true) => {
            let row = tx
                .query_one(&t.upsert_sql(work, true), &[])
                .await
                .map_err(err)?;
            counts.inserted = row.get::<_, i64>(0) as u64;
            counts.updated = row.get::<_, i64>(1) as u64;
        }
        (ChangeOp::Upsert, false) => {
            counts.inserted = tx
                .execute(&t.insert_all_sql(work), &[])
                .await
                .map_err(err)?;
        }
        (ChangeOp::Delete, true) => {
            counts.deleted = tx
                .execute(&t.delete_keys_sql(work), &[])
                .await
                .map_err(err)?;
        }
        (ChangeOp::Delete, false) => {
            counts.deleted = tx
                .execute(&t.delete_matching_sql(work), &[])
                .await
                .map_err(err)?;
        }
        (ChangeOp::Truncate, _) => unreachable!("handled above"),
    }
    Ok(counts)
}

/// Send one complete binary COPY stream (header, tuples, trailer) with `sql`.
async fn copy_in(tx: &Transaction<'_>, sql: &str, data: Bytes, what: &str) -> Result<u64> {
    let err = |e| query_error(Side::Target, what, e);
    let sink = tx.copy_in::<_, Bytes>(sql).await.map_err(err)?;
    let mut sink = std::pin::pin!(sink);
    sink.send(data).await.map_err(err)?;
    sink.as_mut().finish().await.map_err(err)
}
