//! Reading both sides: the target's subscriptions, workers, counters and table states; the
//! source's logical slots, walsenders and publications. Version-dependent columns are read only
//! where the server has them.

use super::{ErrorCounts, Publication, Slot, TableState, Tables, Walsender, Worker};
use crate::conn::query_error;
use crate::PgTarget;
use pipeline::{Error, Result, Side};
use std::collections::{BTreeMap, BTreeSet};
use tokio_postgres::Client;

pub(super) struct SubRow {
    pub oid: i64,
    pub name: String,
    pub enabled: bool,
    pub slot: Option<String>,
    pub publications: Vec<String>,
}

pub(super) struct TargetFacts {
    pub version: i32,
    pub database: String,
    pub subs: Vec<SubRow>,
    pub slots_in_use: BTreeSet<String>,
    /// The tool's subscriptions in other databases of the target cluster: (database, name).
    pub elsewhere: Vec<(String, String)>,
    pub workers: BTreeMap<i64, Worker>,
    pub errors: BTreeMap<i64, ErrorCounts>,
    pub tables: BTreeMap<i64, Tables>,
}

pub(super) struct SourceFacts {
    pub version: i32,
    pub client: Client,
    pub slots: Vec<Slot>,
    pub walsenders: Vec<Walsender>,
}

fn qerr(side: Side, what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
    move |e| query_error(side, what, e)
}

async fn version(c: &Client, side: Side) -> Result<i32> {
    Ok(
        c.query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .map_err(qerr(side, "reading the server version"))?
            .get(0),
    )
}

pub(super) async fn target_facts(target: &PgTarget) -> Result<TargetFacts> {
    let c = target.connect().await?;
    let t = Side::Target;
    let version = version(&c, t).await?;
    let subs = c
        .query(
            "SELECT s.oid::int8, s.subname::text, s.subenabled, s.subslotname::text, \
                    s.subpublications::text[] \
             FROM pg_subscription s \
             WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             ORDER BY 2",
            &[],
        )
        .await
        .map_err(qerr(t, "reading pg_subscription"))?
        .iter()
        .map(|r| SubRow {
            oid: r.get(0),
            name: r.get(1),
            enabled: r.get(2),
            slot: r.get(3),
            publications: r.get(4),
        })
        .collect();
    // Slots in use by any subscription of the cluster (pg_subscription is shared): a slot used
    // from another database is not orphaned.
    let slots_in_use = c
        .query(
            "SELECT subslotname::text FROM pg_subscription WHERE subslotname IS NOT NULL",
            &[],
        )
        .await
        .map_err(qerr(t, "reading pg_subscription"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let elsewhere = c
        .query(
            "SELECT d.datname::text, s.subname::text \
             FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid \
             WHERE starts_with(s.subname::text, $1) AND d.datname <> current_database() \
             ORDER BY 1, 2",
            &[&super::SUBSCRIPTION_PREFIX],
        )
        .await
        .map_err(qerr(t, "reading pg_subscription"))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let kind = match version {
        v if v >= 170000 => "worker_type",
        v if v >= 160000 => {
            "CASE WHEN relid IS NOT NULL THEN 'table synchronization' \
             WHEN leader_pid IS NOT NULL THEN 'parallel apply' ELSE 'apply' END"
        }
        _ => "CASE WHEN relid IS NOT NULL THEN 'table synchronization' ELSE 'apply' END",
    };
    let mut workers = BTreeMap::new();
    let mut sync_workers: BTreeMap<i64, usize> = BTreeMap::new();
    for r in c
        .query(
            &format!(
                "SELECT subid::int8, ({kind})::text, pid, received_lsn::text, \
                   latest_end_lsn::text, last_msg_receipt_time::text, latest_end_time::text, \
                   extract(epoch FROM now() - last_msg_receipt_time)::float8, \
                   extract(epoch FROM now() - latest_end_time)::float8 \
                 FROM pg_stat_subscription WHERE pid IS NOT NULL"
            ),
            &[],
        )
        .await
        .map_err(qerr(t, "reading pg_stat_subscription"))?
    {
        let subid: i64 = r.get(0);
        match r.get::<_, String>(1).as_str() {
            "apply" => {
                workers.insert(
                    subid,
                    Worker {
                        pid: r.get(2),
                        received_lsn: r.get(3),
                        latest_end_lsn: r.get(4),
                        last_msg_receipt_time: r.get(5),
                        latest_end_time: r.get(6),
                        seconds_since_last_message: r.get(7),
                        sync_workers: 0,
                        seconds_since_latest_end: r.get(8),
                    },
                );
            }
            "table synchronization" => *sync_workers.entry(subid).or_default() += 1,
            _ => {}
        }
    }
    for (subid, n) in sync_workers {
        if let Some(w) = workers.get_mut(&subid) {
            w.sync_workers = n;
        }
    }
    let mut errors = BTreeMap::new();
    if version >= 150000 {
        for r in c
            .query(
                "SELECT subid::int8, apply_error_count, sync_error_count, stats_reset::text \
                 FROM pg_stat_subscription_stats",
                &[],
            )
            .await
            .map_err(qerr(t, "reading pg_stat_subscription_stats"))?
        {
            errors.insert(
                r.get(0),
                ErrorCounts {
                    apply_error_count: r.get(1),
                    sync_error_count: r.get(2),
                    stats_reset: r.get(3),
                },
            );
        }
    }
    let mut tables: BTreeMap<i64, Tables> = BTreeMap::new();
    for r in c
        .query(
            "SELECT srsubid::int8, srrelid::regclass::text, srsubstate::text \
             FROM pg_subscription_rel ORDER BY 2",
            &[],
        )
        .await
        .map_err(qerr(t, "reading pg_subscription_rel"))?
    {
        let entry = tables.entry(r.get(0)).or_default();
        let state = table_state(r.get(2));
        entry.total += 1;
        *entry.states.entry(state.clone()).or_default() += 1;
        if state == "ready" {
            entry.ready += 1;
        } else {
            entry.not_ready.push(TableState {
                table: r.get(1),
                state,
            });
        }
    }
    Ok(TargetFacts {
        version,
        database: target.dbname().to_string(),
        subs,
        slots_in_use,
        elsewhere,
        workers,
        errors,
        tables,
    })
}

/// `pg_subscription_rel.srsubstate` in words.
pub fn table_state(code: &str) -> String {
    match code {
        "i" => "init",
        "d" => "data_copy",
        "f" => "finished_copy",
        "s" => "synchronized",
        "r" => "ready",
        other => other,
    }
    .to_string()
}

pub(super) async fn source_facts(source: &PgTarget) -> Result<SourceFacts> {
    let c = source.connect().await?;
    let s = Side::Source;
    let version = version(&c, s).await?;
    let (wal_status, safe_wal_size) = if version >= 130000 {
        ("wal_status::text", "safe_wal_size::int8")
    } else {
        ("NULL::text", "NULL::int8")
    };
    let invalidation = match version {
        v if v >= 170000 => "invalidation_reason::text",
        v if v >= 160000 => "CASE WHEN conflicting THEN 'conflicting' END",
        _ => "NULL::text",
    };
    // A standby has no current WAL insert position: use what it has replayed.
    let slots = c
        .query(
            &format!(
                "WITH cur AS (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                   ELSE pg_current_wal_insert_lsn() END AS lsn) \
                 SELECT slot_name::text, database::text, plugin::text, active, active_pid, \
                   restart_lsn::text, confirmed_flush_lsn::text, \
                   (CASE WHEN confirmed_flush_lsn IS NOT NULL \
                     THEN greatest(pg_wal_lsn_diff(cur.lsn, confirmed_flush_lsn), 0) END)::int8, \
                   (CASE WHEN restart_lsn IS NOT NULL \
                     THEN greatest(pg_wal_lsn_diff(cur.lsn, restart_lsn), 0) END)::int8, \
                   {wal_status}, {safe_wal_size}, {invalidation} \
                 FROM pg_replication_slots, cur WHERE slot_type = 'logical' ORDER BY 1"
            ),
            &[],
        )
        .await
        .map_err(qerr(s, "reading pg_replication_slots"))?
        .iter()
        .map(|r| Slot {
            name: r.get(0),
            database: r.get(1),
            plugin: r.get(2),
            active: r.get(3),
            active_pid: r.get(4),
            restart_lsn: r.get(5),
            confirmed_flush_lsn: r.get(6),
            lag_bytes: r.get(7),
            retained_wal_bytes: r.get(8),
            wal_status: r.get(9),
            safe_wal_size: r.get(10),
            invalidation_reason: r.get(11),
        })
        .collect();
    let walsenders = c
        .query(
            "SELECT pid, state::text, sent_lsn::text, write_lsn::text, flush_lsn::text, \
               replay_lsn::text, extract(epoch FROM write_lag)::float8, \
               extract(epoch FROM flush_lag)::float8, extract(epoch FROM replay_lag)::float8, \
               reply_time::text \
             FROM pg_stat_replication",
            &[],
        )
        .await
        .map_err(qerr(s, "reading pg_stat_replication"))?
        .iter()
        .map(|r| Walsender {
            pid: r.get(0),
            state: r.get(1),
            sent_lsn: r.get(2),
            write_lsn: r.get(3),
            flush_lsn: r.get(4),
            replay_lsn: r.get(5),
            write_lag_seconds: r.get(6),
            flush_lag_seconds: r.get(7),
            replay_lag_seconds: r.get(8),
            reply_time: r.get(9),
        })
        .collect();
    Ok(SourceFacts {
        version,
        client: c,
        slots,
        walsenders,
    })
}

pub(super) async fn publications(
    c: &Client,
    db: &str,
    names: &[String],
) -> Result<Vec<Publication>> {
    let rows = c
        .query(
            "SELECT p.pubname::text, p.puballtables, \
               (SELECT count(*) FROM pg_publication_tables t WHERE t.pubname = p.pubname)::int8 \
             FROM pg_publication p WHERE p.pubname::text = ANY($1::text[])",
            &[&names],
        )
        .await
        .map_err(qerr(Side::Source, "reading pg_publication"))?;
    Ok(names
        .iter()
        .map(|n| {
            let row = rows.iter().find(|r| r.get::<_, String>(0) == *n);
            Publication {
                name: n.clone(),
                database: db.to_string(),
                exists: row.is_some(),
                all_tables: row.is_some_and(|r| r.get(1)),
                tables: row.map_or(0, |r| r.get(2)),
            }
        })
        .collect())
}
