//! Continuous sync set-up with a gapless handoff: the publication first, then a logical
//! replication slot created over the replication protocol **with an exported snapshot**
//! (`CREATE_REPLICATION_SLOT … LOGICAL pgoutput (SNAPSHOT 'export')`), the copy under that
//! snapshot, and only then the subscription, attached to the existing slot without copying
//! (`create_slot = false, copy_data = false`). The slot starts exactly where the snapshot
//! stands, so no write is lost or applied twice.

use crate::catalog::PgTable;
use crate::child::{quote, ssl_mode};
use crate::conn::{query_error, PgTarget};
use crate::ddl::{quote_ident, quote_literal};
use pgwire_replication::client::ReplicationClient;
use pgwire_replication::config::{ReplicationConfig, TlsConfig};
use pipeline::{Error, ErrorKind, Result, Side};
use std::time::Duration;
use tokio_postgres::config::Host;

/// Default publication name (the spec's troubleshooting names it).
pub const PUBLICATION: &str = "seren_replication_pub";
/// Default subscription name; its slot on the source has the same name.
pub const SUBSCRIPTION: &str = "seren_replication_sub";

/// The names of one database's replication objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationNames {
    /// Publication on the source.
    pub publication: String,
    /// Subscription on the target, and its slot on the source.
    pub subscription: String,
}

impl ReplicationNames {
    /// The names from `publication` and `subscription` (the defaults when `None`); with several
    /// databases each gets a `_<db>` suffix.
    pub fn for_database(
        db: &str,
        several: bool,
        publication: Option<&str>,
        subscription: Option<&str>,
    ) -> ReplicationNames {
        let suffix = if several {
            format!("_{}", db.replace(|c: char| !c.is_ascii_alphanumeric(), "_"))
        } else {
            String::new()
        };
        ReplicationNames {
            publication: format!("{}{suffix}", publication.unwrap_or(PUBLICATION)),
            subscription: format!("{}{suffix}", subscription.unwrap_or(SUBSCRIPTION)),
        }
    }
}

/// Refuse a slot name another database of the source already uses (slots are cluster-wide).
pub async fn check_slot_free(source: &PgTarget, names: &ReplicationNames) -> Result<()> {
    let client = source.connect().await?;
    let other: Option<String> = client
        .query_opt(
            "SELECT database FROM pg_replication_slots
             WHERE slot_name = $1 AND database IS DISTINCT FROM current_database()",
            &[&names.subscription],
        )
        .await
        .map_err(|e| query_error(Side::Source, "checking replication slots", e))?
        .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default());
    match other {
        None => Ok(()),
        Some(db) => Err(Error::new(
            ErrorKind::Conflict,
            Side::Source,
            format!(
                "replication slot {} on {} already serves database \"{db}\"; choose other \
                 names with --subscription NAME (and --publication NAME)",
                names.subscription,
                source.display()
            ),
        )),
    }
}

/// A replication slot just created with an exported snapshot. The snapshot lives as long as
/// this session: keep it until every reader has imported it, then drop it (never run another
/// command on it: that would end the snapshot).
pub struct SlotSnapshot {
    _session: ReplicationClient,
    /// The exported snapshot's name, for `SET TRANSACTION SNAPSHOT`.
    pub snapshot: String,
    /// The LSN the slot starts streaming from.
    pub consistent_point: String,
}

/// Create the publication for `tables` (with their row filters, PostgreSQL 15+). Replaces a
/// publication of the same name left by an earlier run.
pub async fn create_publication(
    source: &PgTarget,
    names: &ReplicationNames,
    tables: &[(PgTable, Option<String>)],
    server_major: u32,
) -> Result<()> {
    let filtered: Vec<String> = tables
        .iter()
        .filter(|(_, f)| f.is_some())
        .map(|(t, _)| t.display())
        .collect();
    if !filtered.is_empty() && server_major < 15 {
        return Err(Error::config(format!(
            "row filters cannot be replicated from PostgreSQL {server_major} (publications \
             filter rows from version 15): {}; use --no-sync, or copy these tables unfiltered",
            filtered.join(", ")
        )));
    }
    let list: Vec<String> = tables
        .iter()
        .map(|(t, f)| match f {
            Some(f) => format!("TABLE ONLY {} WHERE ({f})", t.sql_name()),
            None => format!("TABLE ONLY {}", t.sql_name()),
        })
        .collect();
    let client = source.connect().await?;
    let publication = quote_ident(&names.publication);
    let create = if list.is_empty() {
        format!("CREATE PUBLICATION {publication}")
    } else {
        format!("CREATE PUBLICATION {publication} FOR {}", list.join(", "))
    };
    client
        .batch_execute(&format!(
            "DROP PUBLICATION IF EXISTS {publication}; {create}"
        ))
        .await
        .map_err(|e| {
            query_error(
                Side::Source,
                &format!("creating publication {}", names.publication),
                e,
            )
        })
}

/// Tables whose UPDATEs and DELETEs could not be replicated: no primary key and no replica
/// identity (`REPLICA IDENTITY DEFAULT` needs a primary key).
pub async fn tables_without_identity(
    source: &tokio_postgres::Client,
    tables: &[PgTable],
) -> Result<Vec<PgTable>> {
    let mut out = Vec::new();
    for t in tables {
        let row = source
            .query_one(
                "SELECT c.relreplident::text,
                        EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
                                AND (i.indisprimary OR i.indisreplident))
                 FROM pg_class c WHERE c.oid = $1",
                &[&t.oid],
            )
            .await
            .map_err(|e| query_error(Side::Source, "reading replica identities", e))?;
        let (identity, has_key): (String, bool) = (row.get(0), row.get(1));
        let ok = identity == "f" || (matches!(identity.as_str(), "d" | "i") && has_key);
        if !ok {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// `ALTER TABLE … REPLICA IDENTITY FULL` on the source (`--set-replica-identity-full`).
pub async fn set_replica_identity_full(source: &PgTarget, tables: &[PgTable]) -> Result<()> {
    let client = source.connect().await?;
    for t in tables {
        client
            .batch_execute(&format!(
                "ALTER TABLE {} REPLICA IDENTITY FULL",
                t.sql_name()
            ))
            .await
            .map_err(|e| {
                query_error(
                    Side::Source,
                    &format!("setting REPLICA IDENTITY FULL on {}", t.display()),
                    e,
                )
            })?;
    }
    Ok(())
}

/// Create the logical replication slot over the replication protocol with an exported
/// snapshot. Waits at most `timeout` (the command waits for write transactions in progress
/// on the source to end).
pub async fn create_slot_with_snapshot(
    source: &PgTarget,
    names: &ReplicationNames,
    timeout: Duration,
) -> Result<SlotSnapshot> {
    let config = replication_config(source, names)?;
    let fail = |what: String| Error::new(ErrorKind::Connect, Side::Source, what);
    let mut session = ReplicationClient::connect_gated(config)
        .await
        .map_err(|e| {
            fail(format!(
                "opening a replication connection to {}: {e}; the user needs the REPLICATION \
             attribute (ALTER ROLE {} WITH REPLICATION) and pg_hba.conf must allow it",
                source.display(),
                quote_ident(source.user())
            ))
        })?;
    let sql = format!(
        "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT 'export')",
        quote_ident(&names.subscription)
    );
    let rows = tokio::time::timeout(timeout, session.simple_query(&sql))
        .await
        .map_err(|_| {
            fail(format!(
                "creating replication slot {} on {} waited {}s for write transactions in \
                 progress to end; finish or cancel long transactions on the source and retry",
                names.subscription,
                source.display(),
                timeout.as_secs()
            ))
        })?
        .map_err(|e| {
            fail(format!(
                "creating replication slot {} on {}: {e}; continuous sync needs wal_level = \
                 logical and a free replication slot on the source (`seren-replicator \
                 validate` lists what is missing), or copy without it: --no-sync",
                names.subscription,
                source.display()
            ))
        })?;
    let row = rows
        .into_iter()
        .next()
        .ok_or_else(|| fail("CREATE_REPLICATION_SLOT returned no row".to_string()))?;
    let text = |i: usize| {
        row.get(i)
            .and_then(|v| v.as_ref())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    Ok(SlotSnapshot {
        consistent_point: text(1),
        snapshot: text(2),
        _session: session,
    })
}

/// Create the subscription on the target, attached to the slot made by
/// [`create_slot_with_snapshot`], copying nothing, and wait until it streams.
pub async fn create_subscription(
    source: &PgTarget,
    target: &PgTarget,
    names: &ReplicationNames,
) -> Result<()> {
    let client = target.connect().await?;
    let sql = format!(
        "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (create_slot = false, \
         slot_name = {}, copy_data = false)",
        quote_ident(&names.subscription),
        quote_literal(&subscription_conninfo(source)),
        quote_ident(&names.publication),
        quote_literal(&names.subscription),
    );
    // The statement holds the source's password: it is never logged or shown; errors carry
    // the server's message only.
    client.batch_execute(&sql).await.map_err(|e| {
        query_error(
            Side::Target,
            &format!("creating subscription {}", names.subscription),
            e,
        )
    })?;
    wait_streaming(&client, names, Duration::from_secs(60)).await
}

/// Wait until the subscription's apply worker is connected (the subscription is created even
/// when it cannot reach the source or the slot is missing).
async fn wait_streaming(
    client: &tokio_postgres::Client,
    names: &ReplicationNames,
    timeout: Duration,
) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        let streaming: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_subscription
                 WHERE subname = $1 AND pid IS NOT NULL AND received_lsn IS NOT NULL)",
                &[&names.subscription],
            )
            .await
            .map_err(|e| query_error(Side::Target, "checking the subscription", e))?
            .get(0);
        if streaming {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(Error::new(
                ErrorKind::Connect,
                Side::Target,
                format!(
                    "subscription {} was created but has not started streaming after {}s; \
                     check that the target server can reach the source (the target's log says \
                     why) and run `seren-replicator status`",
                    names.subscription,
                    timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Remove the replication objects (best effort, each step independent): the subscription on
/// the target (without dropping the slot through it), then the slot and the publication on
/// the source. Returns what could not be removed.
pub async fn drop_replication(
    source: &PgTarget,
    target: Option<&PgTarget>,
    names: &ReplicationNames,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(target) = target {
        let sub = quote_ident(&names.subscription);
        let sql = format!(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_subscription WHERE subname = {lit} AND \
             subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())) THEN \
             EXECUTE 'ALTER SUBSCRIPTION {esc} DISABLE'; \
             EXECUTE 'ALTER SUBSCRIPTION {esc} SET (slot_name = NONE)'; END IF; END $$; \
             DROP SUBSCRIPTION IF EXISTS {sub}",
            lit = quote_literal(&names.subscription),
            esc = sub.replace('\'', "''"),
        );
        match target.connect().await {
            Ok(c) => {
                if let Err(e) = c.batch_execute(&sql).await {
                    problems.push(
                        query_error(Side::Target, "dropping the subscription", e).to_string(),
                    );
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    match source.connect().await {
        Ok(c) => {
            // The slot may still be held by a walsender for a moment after the subscription
            // went away: retry briefly.
            for attempt in 0..20 {
                let r = c
                    .query(
                        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                         WHERE slot_name = $1 AND database = current_database()",
                        &[&names.subscription],
                    )
                    .await;
                match r {
                    Ok(_) => break,
                    Err(e) if attempt == 19 => {
                        problems.push(query_error(Side::Source, "dropping the slot", e).to_string())
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                }
            }
            let sql = format!(
                "DROP PUBLICATION IF EXISTS {}",
                quote_ident(&names.publication)
            );
            if let Err(e) = c.batch_execute(&sql).await {
                problems.push(query_error(Side::Source, "dropping the publication", e).to_string());
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    problems
}

/// The libpq conninfo the target's subscription uses to reach the source, password included
/// (PostgreSQL keeps it in `pg_subscription`, readable by superusers only).
fn subscription_conninfo(source: &PgTarget) -> String {
    let mut parts = source.address_conninfo(None);
    if let Some(pw) = source.config.get_password() {
        parts.push(format!("password={}", quote(&String::from_utf8_lossy(pw))));
    }
    parts.push(format!("sslmode={}", ssl_mode(source)));
    if let Some(root) = &source.tls.root_cert {
        parts.push(format!(
            "sslrootcert={}",
            quote(&root.display().to_string())
        ));
    }
    parts.join(" ")
}

fn replication_config(source: &PgTarget, names: &ReplicationNames) -> Result<ReplicationConfig> {
    let config = &source.config;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let mut rc = ReplicationConfig::new(
        host,
        source.user(),
        config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default(),
        source.dbname(),
        names.subscription.clone(),
        names.publication.clone(),
    );
    rc.port = config.get_ports().first().copied().unwrap_or(5432);
    rc.tls = match ssl_mode(source) {
        "disable" => TlsConfig::disabled(),
        "verify-full" => TlsConfig::verify_full(source.tls.root_cert.clone()),
        "verify-ca" => TlsConfig::verify_ca(source.tls.root_cert.clone()),
        "require" => TlsConfig::require(),
        _ => {
            let mut t = TlsConfig::disabled();
            t.mode = pgwire_replication::config::SslMode::Prefer;
            t
        }
    };
    rc.options = Some("-c idle_in_transaction_session_timeout=0".into());
    rc.application_name = Some("seren-replicator".into());
    Ok(rc)
}

/// Whether the target has this subscription (in its database).
pub async fn subscription_exists(target: &PgTarget, names: &ReplicationNames) -> Result<bool> {
    let client = target.connect().await?;
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_subscription WHERE subname = $1 AND subdbid =
                 (SELECT oid FROM pg_database WHERE datname = current_database()))",
            &[&names.subscription],
        )
        .await
        .map_err(|e| query_error(Side::Target, "reading subscriptions", e))?
        .get(0))
}

/// Wait until the target has applied everything the source had committed when this was
/// called: the slot's confirmed position reaches the source's WAL insert position. (Not the
/// write position, `pg_current_wal_lsn()`: with `synchronous_commit = off` a commit can be
/// inserted but not yet written, and the wait would end before it is applied.)
pub async fn wait_caught_up(
    source: &PgTarget,
    names: &ReplicationNames,
    timeout: Duration,
) -> Result<()> {
    let client = source.connect().await?;
    let err = |e| query_error(Side::Source, "reading the replication position", e);
    let goal: String = client
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await
        .map_err(err)?
        .get(0);
    let started = std::time::Instant::now();
    loop {
        let row = client
            .query_opt(
                "SELECT confirmed_flush_lsn >= $1::text::pg_lsn,
                        pg_wal_lsn_diff($1::text::pg_lsn, confirmed_flush_lsn)::bigint
                 FROM pg_replication_slots WHERE slot_name = $2 AND database = current_database()",
                &[&goal, &names.subscription],
            )
            .await
            .map_err(err)?;
        let Some(row) = row else {
            return Err(Error::new(
                ErrorKind::Conflict,
                Side::Source,
                format!(
                    "replication slot {} does not exist on {}: continuous sync is not set up \
                     (run init without --no-sync)",
                    names.subscription,
                    source.display()
                ),
            ));
        };
        if row.get::<_, Option<bool>>(0) == Some(true) {
            return Ok(());
        }
        if started.elapsed() > timeout {
            let behind: Option<i64> = row.get(1);
            return Err(Error::new(
                ErrorKind::Conflict,
                Side::Target,
                format!(
                    "the target is still {} bytes behind the source after {}s; check \
                     `seren-replicator status`, then retry (--timeout SECONDS waits longer)",
                    behind.map_or("an unknown number of".into(), |b| b.to_string()),
                    timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Set the target's sequences to the source's current values plus `margin` (sequences are
/// not replicated by PostgreSQL). Returns how many were set.
pub async fn copy_sequence_values(
    source: &PgTarget,
    target: &PgTarget,
    margin: i64,
) -> Result<usize> {
    let values = crate::catalog::sequences(&source.connect().await?).await?;
    let client = target.connect().await?;
    let err = |e| query_error(Side::Target, "setting sequences", e);
    let mut n = 0;
    for s in values {
        let name = format!("{}.{}", quote_ident(&s.schema), quote_ident(&s.name));
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .await
            .map_err(err)?
            .get(0);
        if exists {
            client
                .execute(
                    "SELECT pg_catalog.setval($1::text::regclass, $2, $3)",
                    &[&name, &s.last_value.saturating_add(margin), &s.is_called],
                )
                .await
                .map_err(err)?;
            n += 1;
        }
    }
    Ok(n)
}

/// What continuous sync needs, checked on the side that needs it: one `(check, outcome)` per
/// line, the error text carrying the fix.
pub async fn sync_checks(
    source: &PgTarget,
    target: &PgTarget,
) -> Vec<(&'static str, std::result::Result<String, String>)> {
    let mut out = Vec::new();
    match source.connect().await {
        Err(e) => out.push(("source reachable for sync", Err(e.to_string()))),
        Ok(c) => {
            let q = |sql: &'static str| {
                let c = &c;
                async move {
                    c.query_one(sql, &[]).await.map_err(|e| {
                        query_error(Side::Source, "checking sync settings", e).to_string()
                    })
                }
            };
            match q("SELECT current_setting('wal_level')").await {
                Ok(r) if r.get::<_, String>(0) == "logical" => {
                    out.push(("source wal_level", Ok("logical".into())))
                }
                Ok(r) => out.push((
                    "source wal_level",
                    Err(format!(
                        "wal_level is {}; set `wal_level = logical` in postgresql.conf (or \
                         ALTER SYSTEM SET wal_level = logical) and restart the source",
                        r.get::<_, String>(0)
                    )),
                )),
                Err(e) => out.push(("source wal_level", Err(e))),
            }
            match q("SELECT current_setting('max_replication_slots')::int
                        - (SELECT count(*)::int FROM pg_replication_slots),
                        current_setting('max_wal_senders')::int
                        - (SELECT count(*)::int FROM pg_stat_replication)")
            .await
            {
                Ok(r) => {
                    let (slots, senders): (i32, i32) = (r.get(0), r.get(1));
                    out.push((
                        "source replication slots",
                        if slots > 0 {
                            Ok(format!("{slots} free"))
                        } else {
                            Err("no free replication slot: raise max_replication_slots \
                                 (restart) or drop an unused slot"
                                .into())
                        },
                    ));
                    out.push((
                        "source WAL senders",
                        if senders > 0 {
                            Ok(format!("{senders} free"))
                        } else {
                            Err("no free WAL sender: raise max_wal_senders (restart)".into())
                        },
                    ));
                }
                Err(e) => out.push(("source replication slots", Err(e))),
            }
            match q("SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user")
                .await
            {
                Ok(r) if r.get::<_, bool>(0) => out.push((
                    "source REPLICATION privilege",
                    Ok(source.user().to_string()),
                )),
                Ok(_) => out.push((
                    "source REPLICATION privilege",
                    Err(format!(
                        "user {0} cannot open replication connections: ALTER ROLE {0} WITH \
                         REPLICATION; (or use --no-sync)",
                        quote_ident(source.user())
                    )),
                )),
                Err(e) => out.push(("source REPLICATION privilege", Err(e))),
            }
            match c
                .query(
                    "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                       AND n.nspname NOT LIKE 'pg\\_%'
                       AND c.relreplident IN ('d', 'i')
                       AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
                                       AND (i.indisprimary OR i.indisreplident))
                     ORDER BY 1",
                    &[],
                )
                .await
            {
                Ok(rows) if rows.is_empty() => {
                    out.push(("replica identity", Ok("every table has one".into())))
                }
                Ok(rows) => {
                    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
                    out.push((
                        "replica identity",
                        Err(format!(
                            "UPDATE/DELETE on {} cannot be replicated (no primary key or \
                             replica identity): init with --set-replica-identity-full, or \
                             add primary keys",
                            names.join(", ")
                        )),
                    ))
                }
                Err(e) => out.push((
                    "replica identity",
                    Err(query_error(Side::Source, "checking replica identities", e).to_string()),
                )),
            }
        }
    }
    let maintenance = target.with_dbname("postgres");
    let client = match target.connect().await {
        Ok(c) => Ok(c),
        Err(_) => maintenance.connect().await,
    };
    match client {
        Err(e) => out.push(("target can create subscriptions", Err(e.to_string()))),
        Ok(c) => {
            let r = c
                .query_one(
                    "SELECT rolsuper OR CASE WHEN current_setting('server_version_num')::int
                        >= 160000 THEN pg_has_role(current_user, 'pg_create_subscription',
                        'MEMBER') ELSE false END
                     FROM pg_roles WHERE rolname = current_user",
                    &[],
                )
                .await;
            out.push((
                "target can create subscriptions",
                match r {
                    Ok(r) if r.get::<_, bool>(0) => Ok(target.user().to_string()),
                    Ok(_) => Err(format!(
                        "user {0} cannot create subscriptions: make it superuser, or on \
                         PostgreSQL 16+ GRANT pg_create_subscription TO {0}; (or use --no-sync)",
                        quote_ident(target.user())
                    )),
                    Err(e) => Err(query_error(Side::Target, "checking privileges", e).to_string()),
                },
            ));
        }
    }
    out
}
