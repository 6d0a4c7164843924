//! The verdict on one subscription from what both sides report: healthy, lagging or broken,
//! each problem with its reason and its fix.

use super::{Health, Problem, Subscription};
use crate::ddl::quote_ident;
use pipeline::Error;

/// Why `sub` is not healthy, worst first.
pub fn judge(sub: &Subscription, source_error: Option<&Error>, max_lag: f64) -> Vec<Problem> {
    let mut out = Vec::new();
    let name = quote_ident(&sub.name);
    let mut add = |health, reason: String, fix: String| {
        out.push(Problem {
            health,
            reason,
            fix,
        })
    };
    let recreate = format!(
        "changes made in between are lost to this subscription: on the target, ALTER \
         SUBSCRIPTION {name} DISABLE; ALTER SUBSCRIPTION {name} SET (slot_name = NONE); DROP \
         SUBSCRIPTION {name}; then run init again"
    );
    // The root cause first: without the source, nothing else can work.
    if let Some(e) = source_error {
        add(
            Health::Broken,
            format!("source unreachable: {e}"),
            "start the source server or restore its network path; the subscription reconnects \
             by itself once it answers"
                .into(),
        );
    }
    let errors = sub.errors.as_ref();
    let apply_errors = errors.map_or(0, |e| e.apply_error_count);
    let sync_errors = errors.map_or(0, |e| e.sync_error_count);
    if !sub.enabled {
        let behind = match sub.lag_bytes {
            Some(b) if b > 0 => {
                format!(
                    "; the source has written {b} bytes of WAL since its last confirmed position"
                )
            }
            _ => String::new(),
        };
        add(
            Health::Broken,
            format!("subscription is disabled{behind}"),
            format!("on the target: ALTER SUBSCRIPTION {name} ENABLE;"),
        );
    } else if sub.worker.is_none() {
        let errs = if apply_errors + sync_errors > 0 {
            format!(" ({apply_errors} apply, {sync_errors} sync errors so far)")
        } else {
            String::new()
        };
        add(
            Health::Broken,
            format!(
                "enabled but no apply worker runs{errs}: it exits on an error and restarts after \
                 wal_retrieve_retry_interval"
            ),
            "read the apply worker's error in the target's server log; check \
             max_logical_replication_workers and max_worker_processes on the target"
                .into(),
        );
    }
    if sub.slot_name.is_none() {
        add(
            Health::Broken,
            "subscription has no replication slot (slot_name = NONE)".into(),
            recreate.clone(),
        );
    }
    if let Some(slot_name) = sub.slot_name.as_ref().filter(|_| source_error.is_none()) {
        match &sub.slot {
            None => add(
                Health::Broken,
                format!("replication slot {slot_name} does not exist on the source"),
                format!("{recreate} (or --source is not the server this subscription reads from)"),
            ),
            Some(slot) => {
                let lost = slot.wal_status.as_deref() == Some("lost");
                if lost || slot.invalidation_reason.is_some() {
                    add(
                        Health::Broken,
                        format!(
                            "replication slot {slot_name} is invalidated ({}): the source removed \
                             WAL it still needed",
                            slot.invalidation_reason
                                .as_deref()
                                .unwrap_or("wal_status lost")
                        ),
                        format!("{recreate}; raise max_slot_wal_keep_size on the source"),
                    );
                } else if slot.wal_status.as_deref() == Some("unreserved") {
                    add(
                        Health::Lagging,
                        format!(
                            "slot {slot_name} holds more WAL than max_slot_wal_keep_size: the next \
                             checkpoint on the source may invalidate it"
                        ),
                        "let the subscription catch up now, or raise max_slot_wal_keep_size on \
                         the source"
                            .into(),
                    );
                }
                if sub.enabled && sub.worker.is_some() && !slot.active {
                    add(
                        Health::Broken,
                        format!(
                            "apply worker runs but slot {slot_name} on the source is inactive: it \
                             is starting up or failing to connect"
                        ),
                        "read the target's server log; check the subscription's connection \
                         string and the source's pg_hba.conf"
                            .into(),
                    );
                }
            }
        }
        for p in sub.publication_status.iter().flatten() {
            if !p.exists {
                add(
                    Health::Broken,
                    format!(
                        "publication {} does not exist in source database {}",
                        p.name, p.database
                    ),
                    "run init again (it creates the publication and the subscription)".into(),
                );
            }
        }
    }
    let t = &sub.tables;
    if !t.not_ready.is_empty() {
        let list = t.not_ready_list();
        if sync_errors > 0 {
            add(
                Health::Broken,
                format!(
                    "table synchronization failing ({sync_errors} errors); {} of {} tables \
                     ready, not ready: {list}",
                    t.ready, t.total
                ),
                "read the sync worker's error in the target's server log (a table missing or \
                 different on the target, duplicate keys); it retries by itself once fixed"
                    .into(),
            );
        } else {
            add(
                Health::Lagging,
                format!(
                    "initial copy in progress: {} of {} tables ready, not ready: {list}",
                    t.ready, t.total
                ),
                "wait; `status --watch` shows the progress".into(),
            );
        }
    }
    if let Some(secs) = sub.lag_seconds.filter(|s| *s > max_lag) {
        let bytes = sub.lag_bytes.unwrap_or(0);
        if apply_errors > 0 {
            add(
                Health::Broken,
                format!(
                    "{secs:.0} s ({bytes} bytes) behind with {apply_errors} apply errors so far"
                ),
                "read the apply worker's error in the target's server log (a conflicting row, a \
                 missing table or column) and fix its cause on the target"
                    .into(),
            );
        } else {
            add(
                Health::Lagging,
                format!("{secs:.0} s ({bytes} bytes) behind the source, more than {max_lag:.0} s"),
                "the apply worker cannot keep up: check the target's CPU, I/O and locks; long \
                 transactions on the source arrive at commit"
                    .into(),
            );
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.health));
    out
}

/// Warnings about a subscription that do not change its verdict.
pub(super) fn notes(sub: &Subscription, oid: i64) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &sub.errors {
        if sub.health == Health::Healthy && e.apply_error_count + e.sync_error_count > 0 {
            out.push(format!(
                "subscription {}: {} apply and {} sync errors since {} (none now: it streams and \
                 is caught up); clear the counters with SELECT \
                 pg_stat_reset_subscription_stats({oid});",
                sub.name,
                e.apply_error_count,
                e.sync_error_count,
                e.stats_reset.as_deref().unwrap_or("the cluster started"),
            ));
        }
    }
    if let Some([p]) = sub.publication_status.as_deref() {
        if p.exists && p.tables > sub.tables.total as i64 {
            out.push(format!(
                "subscription {}: publication {} has {} tables but the subscription knows {}: \
                 on the target, ALTER SUBSCRIPTION {} REFRESH PUBLICATION;",
                sub.name,
                p.name,
                p.tables,
                sub.tables.total,
                quote_ident(&sub.name)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::*;
    use pipeline::{ErrorKind, Side};

    fn healthy() -> Subscription {
        Subscription {
            name: "seren_replication_sub".into(),
            database: "shop".into(),
            enabled: true,
            publications: vec!["seren_replication_pub".into()],
            slot_name: Some("seren_replication_sub".into()),
            health: Health::Healthy,
            problems: vec![],
            streaming: true,
            worker: Some(Worker {
                pid: 42,
                received_lsn: Some("0/1".into()),
                latest_end_lsn: Some("0/1".into()),
                last_msg_receipt_time: None,
                latest_end_time: None,
                seconds_since_last_message: Some(0.5),
                sync_workers: 0,
                seconds_since_latest_end: Some(0.5),
            }),
            tables: Tables {
                total: 2,
                ready: 2,
                ..Tables::default()
            },
            errors: None,
            slot: Some(Slot {
                name: "seren_replication_sub".into(),
                database: Some("shop".into()),
                plugin: Some("pgoutput".into()),
                active: true,
                active_pid: Some(7),
                restart_lsn: None,
                confirmed_flush_lsn: None,
                lag_bytes: Some(0),
                retained_wal_bytes: Some(0),
                wal_status: Some("reserved".into()),
                safe_wal_size: None,
                invalidation_reason: None,
            }),
            walsender: None,
            publication_status: None,
            lag_bytes: Some(0),
            lag_seconds: Some(0.0),
        }
    }

    fn verdict(sub: &Subscription, source_error: Option<&Error>) -> (Health, String) {
        let p = judge(sub, source_error, DEFAULT_MAX_LAG_SECONDS);
        let h = p.iter().map(|p| p.health).max().unwrap_or(Health::Healthy);
        let text = p
            .iter()
            .map(|p| format!("{} / {}", p.reason, p.fix))
            .collect::<Vec<_>>()
            .join("\n");
        (h, text)
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(&healthy(), None).0, Health::Healthy);

        let mut s = healthy();
        s.enabled = false;
        s.worker = None;
        s.lag_bytes = Some(120);
        let (h, text) = verdict(&s, None);
        assert_eq!(h, Health::Broken);
        assert!(
            text.contains("disabled; the source has written 120 bytes"),
            "{text}"
        );
        assert!(text.contains("ALTER SUBSCRIPTION \"seren_replication_sub\" ENABLE;"));

        let mut s = healthy();
        s.tables.ready = 1;
        s.tables.not_ready.push(TableState {
            table: "public.t".into(),
            state: "data_copy".into(),
        });
        let (h, text) = verdict(&s, None);
        assert_eq!(h, Health::Lagging);
        assert!(text.contains("1 of 2 tables ready, not ready: public.t (data_copy)"));
        s.errors = Some(ErrorCounts {
            apply_error_count: 0,
            sync_error_count: 3,
            stats_reset: None,
        });
        assert_eq!(verdict(&s, None).0, Health::Broken);

        let mut s = healthy();
        s.lag_bytes = Some(1 << 20);
        s.lag_seconds = Some(300.0);
        assert_eq!(verdict(&s, None).0, Health::Lagging);
        s.errors = Some(ErrorCounts {
            apply_error_count: 2,
            sync_error_count: 0,
            stats_reset: None,
        });
        assert_eq!(verdict(&s, None).0, Health::Broken);

        let mut s = healthy();
        s.slot = None;
        let (h, text) = verdict(&s, None);
        assert_eq!(h, Health::Broken);
        assert!(text.contains("does not exist on the source"), "{text}");

        let mut s = healthy();
        s.slot.as_mut().unwrap().wal_status = Some("lost".into());
        assert_eq!(verdict(&s, None).0, Health::Broken);
        s.slot.as_mut().unwrap().wal_status = Some("unreserved".into());
        assert_eq!(verdict(&s, None).0, Health::Lagging);

        let mut s = healthy();
        s.slot = None;
        let down = Error::new(ErrorKind::Connect, Side::Source, "connection refused");
        let (h, text) = verdict(&s, Some(&down));
        assert_eq!(h, Health::Broken);
        assert!(
            text.contains("source unreachable: connection refused"),
            "{text}"
        );
        assert!(!text.contains("does not exist"), "{text}");

        let mut s = healthy();
        s.publication_status = Some(vec![Publication {
            name: "seren_replication_pub".into(),
            database: "shop".into(),
            exists: false,
            all_tables: false,
            tables: 0,
        }]);
        assert_eq!(verdict(&s, None).0, Health::Broken);
    }

    #[test]
    fn table_states_in_words() {
        assert_eq!(table_state("d"), "data_copy");
        assert_eq!(table_state("r"), "ready");
        assert_eq!(table_state("x"), "x");
    }
}
