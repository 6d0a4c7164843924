//! Continuous-sync status: what the target's subscriptions and the source's replication slots
//! say, and a verdict per subscription (healthy, lagging, broken) with its reason and fix.
//!
//! Read-only: catalog and statistics views only, on PostgreSQL 12 to 17 (columns that appeared
//! later are read only where `server_version_num` has them). Each side is read on its own, so
//! one unreachable server still leaves the other side's facts in the report.
//!
//! Scope: the subscriptions of the target URL's database (the ones continuous sync creates are
//! named `seren_replication_sub`, `seren_replication_sub_<db>` with several databases), and the
//! logical slots of the source server whose name starts with `seren_` or that one of those
//! subscriptions uses.
//!
//! Lag: in bytes, `pg_wal_lsn_diff(current WAL position, confirmed_flush_lsn)` of the
//! subscription's slot on the source. In seconds, 0 when that byte lag is 0, otherwise
//! `now() - latest_end_time` of the apply worker on the target. `latest_end_time` is the source's
//! send time of the last position the subscriber confirmed; confirmations follow every keepalive,
//! which an idle walsender sends at least every `wal_sender_timeout / 2` (30 s by default), so
//! the figure is an upper bound that can read up to that interval high (plus any clock skew
//! between the servers). Before the first confirmation, the age of the last message; unknown
//! (null) when no apply worker runs.

mod probe;
mod verdict;

pub use probe::table_state;
pub use verdict::judge;
use verdict::notes;

use crate::ddl::quote_literal;
use crate::PgTarget;
use pipeline::{Error, ErrorKind, Result};
use probe::{publications, source_facts, target_facts, SubRow};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

/// Name (prefix, with several databases) of the subscriptions continuous sync creates.
pub const SUBSCRIPTION_PREFIX: &str = "seren_replication_sub";
/// Logical slots named with this prefix belong to this tool: an inactive one that no
/// subscription on the target uses is reported as orphaned (it keeps WAL on the source forever).
pub const SLOT_PREFIX: &str = "seren_";
/// Lag in seconds above which a streaming subscription is `lagging`. Above the 30 s keepalive
/// granularity of the estimate (module docs), so an idle, up-to-date subscription never reads as
/// lagging.
pub const DEFAULT_MAX_LAG_SECONDS: f64 = 60.0;
/// How long each side may take to connect and answer before it counts as unreachable: a status
/// check must answer even when a server hangs.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The verdict on one subscription, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Enabled, streaming, every table ready, lag below the threshold.
    Healthy,
    /// Working but behind: initial copy in progress, lag above the threshold, WAL at risk.
    Lagging,
    /// Not replicating: disabled, no worker, errors, a side unreachable, slot missing or lost.
    Broken,
}

/// One reason a subscription is not healthy, and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// How bad it is.
    pub health: Health,
    /// What is wrong.
    pub reason: String,
    /// What to do about it.
    pub fix: String,
}

/// One server as seen by this check.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    /// `user@host:port/db`, never with a password.
    pub server: String,
    /// Whether it answered.
    pub reachable: bool,
    /// `server_version_num`.
    pub version: Option<i32>,
    /// Why it did not answer.
    pub error: Option<String>,
}

/// The apply worker of a subscription (`pg_stat_subscription`, target side).
#[derive(Debug, Clone, Serialize)]
pub struct Worker {
    /// Process id on the target.
    pub pid: i32,
    /// Last WAL position received.
    pub received_lsn: Option<String>,
    /// Last position confirmed to the source.
    pub latest_end_lsn: Option<String>,
    /// When the last message arrived (target clock).
    pub last_msg_receipt_time: Option<String>,
    /// Source send time of the last confirmed position.
    pub latest_end_time: Option<String>,
    /// Seconds since the last message arrived.
    pub seconds_since_last_message: Option<f64>,
    /// Table synchronization workers running besides it.
    pub sync_workers: usize,
    #[serde(skip)]
    seconds_since_latest_end: Option<f64>,
}

/// Per-table states of a subscription (`pg_subscription_rel`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tables {
    /// Tables in the subscription.
    pub total: usize,
    /// Tables in state `r` (ready: initial copy done, changes applied by the apply worker).
    pub ready: usize,
    /// Count per state: init, data_copy, finished_copy, synchronized, ready.
    pub states: BTreeMap<String, usize>,
    /// Every table not ready yet, with its state.
    pub not_ready: Vec<TableState>,
}

impl Tables {
    /// The first ten tables not ready, with their states (`a (data_copy), b (init) and 3
    /// more`).
    pub fn not_ready_list(&self) -> String {
        let list: Vec<String> = self
            .not_ready
            .iter()
            .take(10)
            .map(|x| format!("{} ({})", x.table, x.state))
            .collect();
        let mut out = list.join(", ");
        if self.not_ready.len() > 10 {
            out.push_str(&format!(" and {} more", self.not_ready.len() - 10));
        }
        out
    }
}

/// A table and its synchronization state.
#[derive(Debug, Clone, Serialize)]
pub struct TableState {
    /// `schema.table` as `regclass` prints it.
    pub table: String,
    /// init, data_copy, finished_copy, synchronized or ready.
    pub state: String,
}

/// Error counters of a subscription (`pg_stat_subscription_stats`, PostgreSQL 15+), cumulative
/// since `stats_reset`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorCounts {
    /// Errors of the apply worker.
    pub apply_error_count: i64,
    /// Errors of table synchronization workers.
    pub sync_error_count: i64,
    /// When the counters were last reset (null: never).
    pub stats_reset: Option<String>,
}

/// A logical replication slot on the source (`pg_replication_slots`).
#[derive(Debug, Clone, Serialize)]
pub struct Slot {
    /// Slot name.
    pub name: String,
    /// Source database it decodes.
    pub database: Option<String>,
    /// Output plugin.
    pub plugin: Option<String>,
    /// Whether a walsender uses it now.
    pub active: bool,
    /// That walsender's pid.
    pub active_pid: Option<i32>,
    /// Oldest WAL the slot keeps.
    pub restart_lsn: Option<String>,
    /// Position the subscriber confirmed.
    pub confirmed_flush_lsn: Option<String>,
    /// Bytes of WAL written since `confirmed_flush_lsn`: the replication lag.
    pub lag_bytes: Option<i64>,
    /// Bytes of WAL since `restart_lsn`: what the slot forces the source to keep.
    pub retained_wal_bytes: Option<i64>,
    /// reserved, extended, unreserved or lost (PostgreSQL 13+).
    pub wal_status: Option<String>,
    /// Bytes still writable before the slot risks losing WAL (13+; null: no limit).
    pub safe_wal_size: Option<i64>,
    /// Why the slot was invalidated (16: conflicting, 17+: invalidation_reason).
    pub invalidation_reason: Option<String>,
}

/// The walsender streaming a slot (`pg_stat_replication`, source side).
#[derive(Debug, Clone, Serialize)]
pub struct Walsender {
    /// Process id on the source.
    pub pid: i32,
    /// startup, catchup, streaming, …
    pub state: Option<String>,
    /// Last position sent.
    pub sent_lsn: Option<String>,
    /// Last position the subscriber wrote.
    pub write_lsn: Option<String>,
    /// Last position the subscriber flushed.
    pub flush_lsn: Option<String>,
    /// Last position the subscriber applied.
    pub replay_lsn: Option<String>,
    /// `write_lag` in seconds (null when idle).
    pub write_lag_seconds: Option<f64>,
    /// `flush_lag` in seconds.
    pub flush_lag_seconds: Option<f64>,
    /// `replay_lag` in seconds.
    pub replay_lag_seconds: Option<f64>,
    /// Last reply from the subscriber.
    pub reply_time: Option<String>,
}

/// A publication a subscription reads, looked up in its source database.
#[derive(Debug, Clone, Serialize)]
pub struct Publication {
    /// Publication name.
    pub name: String,
    /// Source database looked in.
    pub database: String,
    /// Whether it exists there.
    pub exists: bool,
    /// FOR ALL TABLES.
    pub all_tables: bool,
    /// Tables it publishes.
    pub tables: i64,
}

/// Everything known about one subscription, and the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Subscription {
    /// Subscription name.
    pub name: String,
    /// Target database it lives in.
    pub database: String,
    /// `subenabled`.
    pub enabled: bool,
    /// Publications it subscribes to.
    pub publications: Vec<String>,
    /// Its slot on the source (null: `slot_name = NONE`).
    pub slot_name: Option<String>,
    /// The verdict.
    pub health: Health,
    /// Why it is not healthy, worst first (empty when healthy).
    pub problems: Vec<Problem>,
    /// Apply worker running and its slot active on the source.
    pub streaming: bool,
    /// The apply worker, when one runs.
    pub worker: Option<Worker>,
    /// Table states.
    pub tables: Tables,
    /// Error counters (PostgreSQL 15+).
    pub errors: Option<ErrorCounts>,
    /// The slot on the source (null: missing or source unreachable).
    pub slot: Option<Slot>,
    /// The walsender streaming it.
    pub walsender: Option<Walsender>,
    /// Its publications on the source (null: not looked up).
    pub publication_status: Option<Vec<Publication>>,
    /// Replication lag in bytes (module docs).
    pub lag_bytes: Option<i64>,
    /// Replication lag in seconds, an upper bound (module docs).
    pub lag_seconds: Option<f64>,
}

/// A `seren_` slot nobody uses.
#[derive(Debug, Clone, Serialize)]
pub struct OrphanSlot {
    /// Slot name.
    pub slot: String,
    /// Source database.
    pub database: Option<String>,
    /// WAL it keeps on the source.
    pub retained_wal_bytes: Option<i64>,
    /// The statement that drops it, to run on the source.
    pub drop_sql: String,
}

/// The whole status.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Every subscription healthy (and at least one).
    pub ok: bool,
    /// The worst verdict (null: no subscription found).
    pub health: Option<Health>,
    /// The source server.
    pub source: Server,
    /// The target server.
    pub target: Server,
    /// The target database's subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// The source's `seren_` logical slots and the ones the subscriptions use.
    pub source_slots: Vec<Slot>,
    /// Inactive `seren_` slots no subscription on the target uses.
    pub orphaned_slots: Vec<OrphanSlot>,
    /// Things to know that do not change the verdict.
    pub warnings: Vec<String>,
    /// What to do when nothing is set up.
    pub hint: Option<String>,
}

async fn within<T>(server: &PgTarget, work: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(TIMEOUT, work).await {
        Ok(r) => r,
        Err(_) => Err(Error::new(
            ErrorKind::Connect,
            server.side(),
            format!(
                "{} did not answer within {} s",
                server.host_port(),
                TIMEOUT.as_secs()
            ),
        )),
    }
}

fn server(t: &PgTarget, version: Option<i32>, error: Option<&Error>) -> Server {
    Server {
        server: t.display(),
        reachable: error.is_none(),
        version,
        error: error.map(|e| e.to_string()),
    }
}

/// Read both sides and judge every subscription. Never fails: what cannot be read is reported.
pub async fn status(source: &PgTarget, target: &PgTarget, max_lag_seconds: f64) -> Report {
    let (t, s) = tokio::join!(
        within(target, target_facts(target)),
        within(source, source_facts(source))
    );
    let mut warnings = Vec::new();
    let src = server(source, s.as_ref().ok().map(|f| f.version), s.as_ref().err());
    let tgt = server(target, t.as_ref().ok().map(|f| f.version), t.as_ref().err());

    // Publications, looked up in each subscription's source database (its slot's, else the
    // source URL's).
    let mut pubs: BTreeMap<(String, String), Publication> = BTreeMap::new();
    if let (Ok(tf), Ok(sf)) = (&t, &s) {
        let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for sub in &tf.subs {
            let db = source_db(sub, &sf.slots, source);
            wanted
                .entry(db)
                .or_default()
                .extend(sub.publications.iter().cloned());
        }
        for (db, names) in wanted {
            let found = if db == source.dbname() {
                within(source, publications(&sf.client, &db, &names)).await
            } else {
                let other = source.with_dbname(&db);
                within(source, async {
                    publications(&other.connect().await?, &db, &names).await
                })
                .await
            };
            match found {
                Ok(list) => {
                    for p in list {
                        pubs.insert((db.clone(), p.name.clone()), p);
                    }
                }
                Err(e) => warnings.push(format!("cannot read publications in {db}: {e}")),
            }
        }
    }

    let mut subscriptions = Vec::new();
    if let Ok(tf) = &t {
        for row in &tf.subs {
            let slot = s.as_ref().ok().and_then(|sf| {
                sf.slots
                    .iter()
                    .find(|sl| Some(&sl.name) == row.slot.as_ref())
                    .cloned()
            });
            let walsender = match (&s, slot.as_ref().and_then(|sl| sl.active_pid)) {
                (Ok(sf), Some(pid)) => sf.walsenders.iter().find(|w| w.pid == pid).cloned(),
                _ => None,
            };
            let publication_status = s.as_ref().ok().and_then(|sf| {
                let db = source_db(row, &sf.slots, source);
                row.publications
                    .iter()
                    .map(|p| pubs.get(&(db.clone(), p.clone())).cloned())
                    .collect::<Option<Vec<_>>>()
            });
            let worker = tf.workers.get(&row.oid).cloned();
            let lag_bytes = slot.as_ref().and_then(|sl| sl.lag_bytes);
            let lag_seconds = match lag_bytes {
                Some(0) => Some(0.0),
                // No confirmation received yet: the last message's age is the best bound.
                Some(_) => worker
                    .as_ref()
                    .and_then(|w| w.seconds_since_latest_end.or(w.seconds_since_last_message))
                    .map(|x| x.max(0.0)),
                None => None,
            };
            let mut sub = Subscription {
                name: row.name.clone(),
                database: tf.database.clone(),
                enabled: row.enabled,
                publications: row.publications.clone(),
                slot_name: row.slot.clone(),
                health: Health::Healthy,
                problems: Vec::new(),
                streaming: worker.is_some() && slot.as_ref().is_some_and(|sl| sl.active),
                worker,
                tables: tf.tables.get(&row.oid).cloned().unwrap_or_default(),
                errors: tf.errors.get(&row.oid).cloned(),
                slot,
                walsender,
                publication_status,
                lag_bytes,
                lag_seconds,
            };
            sub.problems = judge(&sub, s.as_ref().err(), max_lag_seconds);
            sub.health = sub
                .problems
                .iter()
                .map(|p| p.health)
                .max()
                .unwrap_or(Health::Healthy);
            warnings.extend(notes(&sub, row.oid));
            subscriptions.push(sub);
        }
    }

    let mut source_slots = Vec::new();
    let mut orphaned_slots = Vec::new();
    if let Ok(sf) = &s {
        let used: BTreeSet<&String> = subscriptions
            .iter()
            .filter_map(|x| x.slot_name.as_ref())
            .collect();
        for sl in &sf.slots {
            if sl.name.starts_with(SLOT_PREFIX) || used.contains(&sl.name) {
                source_slots.push(sl.clone());
            }
        }
        match &t {
            Ok(tf) => {
                for sl in &source_slots {
                    if sl.name.starts_with(SLOT_PREFIX)
                        && !sl.active
                        && !tf.slots_in_use.contains(&sl.name)
                    {
                        orphaned_slots.push(OrphanSlot {
                            slot: sl.name.clone(),
                            database: sl.database.clone(),
                            retained_wal_bytes: sl.retained_wal_bytes,
                            drop_sql: format!(
                                "SELECT pg_drop_replication_slot({});",
                                quote_literal(&sl.name)
                            ),
                        });
                    }
                }
            }
            Err(_) if !source_slots.is_empty() => warnings.push(
                "cannot tell whether the source's seren_ slots are orphaned while the target is \
                 unreachable"
                    .into(),
            ),
            Err(_) => {}
        }
    }

    if let (Ok(tf), true) = (&t, subscriptions.is_empty()) {
        if !tf.elsewhere.is_empty() {
            let list: Vec<String> = tf
                .elsewhere
                .iter()
                .take(10)
                .map(|(db, sub)| format!("{sub} in {db}"))
                .collect();
            warnings.push(format!(
                "database {} has no subscription but other databases of the target do ({}): \
                 run status with --target naming that database",
                tf.database,
                list.join(", ")
            ));
        }
    }
    let health = subscriptions.iter().map(|x| x.health).max();
    let hint = (t.is_ok() && subscriptions.is_empty())
        .then(|| "no replication set up: run init without --no-sync".to_string());
    Report {
        ok: health == Some(Health::Healthy),
        health,
        source: src,
        target: tgt,
        subscriptions,
        source_slots,
        orphaned_slots,
        warnings,
        hint,
    }
}

/// The source database a subscription reads: its slot's, else the source URL's.
fn source_db(sub: &SubRow, slots: &[Slot], source: &PgTarget) -> String {
    slots
        .iter()
        .find(|sl| Some(&sl.name) == sub.slot.as_ref())
        .and_then(|sl| sl.database.clone())
        .unwrap_or_else(|| source.dbname().to_string())
}
