//! Where a non-PostgreSQL source's sync stands, kept in the target (table
//! `seren_replicator.source_sync`, one row per source and target schema).
//!
//! `init` writes the row once its copy is committed: the change-capture position taken before
//! the copy read anything, or the time the copy started (periodic refresh). `sync` updates it in
//! the same transaction as the changes it applies, so after a crash it resumes exactly after the
//! last committed change set, never applying one twice or skipping one.

use crate::catalog::STATE_SCHEMA;
use crate::conn::query_error;
use crate::ddl::quote_ident;
use pipeline::{Error, ErrorKind, FlatColumn, Mode, OnTypeMismatch, Result, Side};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_postgres::{Client, GenericClient};

/// The state table, schema-qualified.
pub const SYNC_TABLE: &str = "seren_replicator.source_sync";

/// How `sync` keeps the target fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Stream committed changes from the stored position (binlog, change stream).
    ChangeCapture,
    /// Re-read every table and apply the difference.
    Refresh,
}

impl Method {
    /// The name stored in the state table.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::ChangeCapture => "change_capture",
            Method::Refresh => "refresh",
        }
    }

    fn parse(s: &str) -> Result<Method> {
        match s {
            "change_capture" => Ok(Method::ChangeCapture),
            "refresh" => Ok(Method::Refresh),
            other => Err(unreadable(format!("unknown method `{other}`"))),
        }
    }
}

/// Which sync a state row belongs to: the source (kind and location, never a password) and the
/// target schema it was copied into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncKey {
    /// Connector name, e.g. `sqlite`, `mysql`.
    pub source_kind: String,
    /// `Source::location()`: a path or `host:port/db`, without credentials.
    pub source_location: String,
    /// Target schema the tables live in.
    pub target_schema: String,
}

/// One sync's state row.
#[derive(Debug, Clone, Serialize)]
pub struct SyncState {
    /// Which sync this is.
    #[serde(flatten)]
    pub key: SyncKey,
    /// How the tables are laid out in the target.
    pub mode: Mode,
    /// The rule `init` used for values that do not fit their declared type (native mode).
    pub on_type_mismatch: OnTypeMismatch,
    /// The synced tables (source names), in copy order.
    pub tables: Vec<String>,
    /// Row filters `init` copied with (table → predicate in the source's query language);
    /// refresh re-reads with the same filters.
    pub filters: BTreeMap<String, String>,
    /// Fields `init` also wrote as typed columns (`--flatten`), by table; sync writes them too.
    pub flatten: BTreeMap<String, Vec<FlatColumn>>,
    /// How `sync` keeps the target fresh.
    pub method: Method,
    /// The change-capture position the target is consistent with (change capture only).
    pub position: Option<serde_json::Value>,
    /// When a change set was last committed to the target.
    #[serde(with = "unix_ms")]
    pub last_applied_at: Option<SystemTime>,
    /// When the source committed the last applied change.
    #[serde(with = "unix_ms")]
    pub last_commit_at: Option<SystemTime>,
    /// When the stream last reported it had nothing more to send (the target was caught up).
    #[serde(with = "unix_ms")]
    pub caught_up_at: Option<SystemTime>,
    /// When the last complete copy or refresh started reading the source: the target holds the
    /// source's rows as of at least this time.
    #[serde(with = "unix_ms")]
    pub last_refresh_at: Option<SystemTime>,
}

mod unix_ms {
    use serde::Serializer;
    use std::time::{SystemTime, UNIX_EPOCH};

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
            Some(d) => s.serialize_i64(d.as_millis() as i64),
            None => s.serialize_none(),
        }
    }
}

fn unreadable(what: String) -> Error {
    Error::new(
        ErrorKind::Schema,
        Side::Target,
        format!(
            "the sync state in {SYNC_TABLE} is unreadable ({what}); run `seren-replicator init \
             --drop-existing` again to copy afresh and record a new starting point"
        ),
    )
}

/// `ms` since the Unix epoch as a time.
pub fn from_unix_ms(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// Create the state schema and table if missing. Checks for the schema first:
/// `CREATE SCHEMA IF NOT EXISTS` needs CREATE on the database even when the schema exists.
pub async fn ensure_table(client: &Client) -> Result<()> {
    let err = |e| query_error(Side::Target, "creating the sync state table", e);
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&STATE_SCHEMA],
        )
        .await
        .map_err(err)?
        .get(0);
    if !exists {
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote_ident(STATE_SCHEMA)
            ))
            .await
            .map_err(err)?;
    }
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {SYNC_TABLE} (
                source_kind text NOT NULL,
                source_location text NOT NULL,
                target_schema text NOT NULL,
                mode text NOT NULL,
                on_type_mismatch text NOT NULL,
                tables jsonb NOT NULL,
                filters jsonb NOT NULL,
                flatten jsonb NOT NULL DEFAULT '{{}}',
                method text NOT NULL CHECK (method IN ('change_capture', 'refresh')),
                position jsonb,
                last_applied_at timestamptz,
                last_commit_at timestamptz,
                caught_up_at timestamptz,
                last_refresh_at timestamptz,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (source_kind, source_location, target_schema))"
        ))
        .await
        .map_err(err)?;
    // A table made before `flatten` existed gets it (ALTER only then: it needs ownership).
    let has_flatten: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1)
                AND attname = 'flatten' AND NOT attisdropped)",
            &[&SYNC_TABLE],
        )
        .await
        .map_err(err)?
        .get(0);
    if !has_flatten {
        client
            .batch_execute(&format!(
                "ALTER TABLE {SYNC_TABLE} ADD COLUMN IF NOT EXISTS flatten jsonb NOT NULL \
                 DEFAULT '{{}}'"
            ))
            .await
            .map_err(err)?;
    }
    Ok(())
}

/// Record a sync's state, replacing any earlier row for the same key (a new `init`).
pub async fn save(client: &impl GenericClient, state: &SyncState) -> Result<()> {
    let tables = serde_json::to_value(&state.tables).expect("names serialise");
    let filters = serde_json::to_value(&state.filters).expect("filters serialise");
    let flatten = serde_json::to_value(&state.flatten).expect("columns serialise");
    let mode = enum_name(&state.mode);
    let rule = enum_name(&state.on_type_mismatch);
    client
        .execute(
            &format!(
                "INSERT INTO {SYNC_TABLE} (source_kind, source_location, target_schema, mode,
                    on_type_mismatch, tables, filters, method, position, last_applied_at,
                    last_commit_at, caught_up_at, last_refresh_at, flatten)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (source_kind, source_location, target_schema) DO UPDATE SET
                    mode = EXCLUDED.mode, on_type_mismatch = EXCLUDED.on_type_mismatch,
                    tables = EXCLUDED.tables, filters = EXCLUDED.filters,
                    method = EXCLUDED.method, position = EXCLUDED.position,
                    last_applied_at = EXCLUDED.last_applied_at,
                    last_commit_at = EXCLUDED.last_commit_at,
                    caught_up_at = EXCLUDED.caught_up_at,
                    last_refresh_at = EXCLUDED.last_refresh_at, flatten = EXCLUDED.flatten,
                    created_at = now()"
            ),
            &[
                &state.key.source_kind,
                &state.key.source_location,
                &state.key.target_schema,
                &mode,
                &rule,
                &tables,
                &filters,
                &state.method.as_str(),
                &state.position,
                &state.last_applied_at,
                &state.last_commit_at,
                &state.caught_up_at,
                &state.last_refresh_at,
                &flatten,
            ],
        )
        .await
        .map(drop)
        .map_err(|e| query_error(Side::Target, "recording the sync state", e))
}

/// Record an applied change set: its position, and when the source committed it (if it holds
/// changes). Run inside the transaction that applied the changes.
pub async fn record_position(
    client: &impl GenericClient,
    key: &SyncKey,
    position: &serde_json::Value,
    committed_at_ms: Option<i64>,
    caught_up: bool,
) -> Result<()> {
    let committed = committed_at_ms.map(from_unix_ms);
    let updated = client
        .execute(
            &format!(
                "UPDATE {SYNC_TABLE} SET position = $4, last_applied_at = now(),
                    last_commit_at = coalesce($5, last_commit_at),
                    caught_up_at = CASE WHEN $6 THEN now() ELSE caught_up_at END
                 WHERE source_kind = $1 AND source_location = $2 AND target_schema = $3"
            ),
            &[
                &key.source_kind,
                &key.source_location,
                &key.target_schema,
                position,
                &committed,
                &caught_up,
            ],
        )
        .await
        .map_err(|e| query_error(Side::Target, "recording the applied position", e))?;
    if updated != 1 {
        return Err(unreadable(format!(
            "no row for {} {} into schema \"{}\"",
            key.source_kind, key.source_location, key.target_schema
        )));
    }
    Ok(())
}

/// Record a complete refresh that started reading the source at `started`.
pub async fn record_refresh(
    client: &impl GenericClient,
    key: &SyncKey,
    started: SystemTime,
) -> Result<()> {
    client
        .execute(
            &format!(
                "UPDATE {SYNC_TABLE} SET last_refresh_at = $4
                 WHERE source_kind = $1 AND source_location = $2 AND target_schema = $3"
            ),
            &[
                &key.source_kind,
                &key.source_location,
                &key.target_schema,
                &started,
            ],
        )
        .await
        .map(drop)
        .map_err(|e| query_error(Side::Target, "recording the refresh time", e))
}

/// Every sync state row of `source_kind` at `source_location` (one per target schema it was
/// copied into); empty when `init` never recorded one.
pub async fn load(
    client: &Client,
    source_kind: &str,
    source_location: &str,
) -> Result<Vec<SyncState>> {
    let err = |e| query_error(Side::Target, "reading the sync state", e);
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&SYNC_TABLE])
        .await
        .map_err(err)?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            &format!(
                "SELECT source_kind, source_location, target_schema, mode, on_type_mismatch,
                    tables, filters, method, position, last_applied_at, last_commit_at,
                    caught_up_at, last_refresh_at, to_jsonb(s) -> 'flatten'
                 FROM {SYNC_TABLE} s WHERE source_kind = $1 AND source_location = $2
                 ORDER BY target_schema"
            ),
            &[&source_kind, &source_location],
        )
        .await
        .map_err(err)?;
    rows.iter()
        .map(|r| {
            Ok(SyncState {
                key: SyncKey {
                    source_kind: r.get(0),
                    source_location: r.get(1),
                    target_schema: r.get(2),
                },
                mode: parse("mode", serde_json::Value::String(r.get(3)))?,
                on_type_mismatch: parse("on_type_mismatch", serde_json::Value::String(r.get(4)))?,
                tables: parse("tables", r.get(5))?,
                filters: parse("filters", r.get(6))?,
                method: Method::parse(r.get(7))?,
                position: r.get(8),
                last_applied_at: r.get(9),
                last_commit_at: r.get(10),
                caught_up_at: r.get(11),
                last_refresh_at: r.get(12),
                // NULL in a state table made before `flatten` existed.
                flatten: match r.get::<_, Option<serde_json::Value>>(13) {
                    Some(v) => parse("flatten", v)?,
                    None => BTreeMap::new(),
                },
            })
        })
        .collect()
}

/// A state column's JSON value as `T`.
fn parse<T: serde::de::DeserializeOwned>(column: &str, value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| unreadable(format!("{column}: {e}")))
}

/// The serde name of a unit enum variant (`jsonb`, `fail`, …).
fn enum_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => unreachable!("unit variants serialise as strings"),
    }
}
